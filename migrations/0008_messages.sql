-- marketsync state, version 8: the customers' WhatsApp messages.
--
-- One row per (order, step) told: recorded before the message is sent, so a crash or a lost
-- answer never sends a step twice. `state` follows the message: planned (recorded, not yet
-- sent), sending (the request is going out), unconfirmed (the answer was lost: the status
-- webhook of the message settles it), accepted (WhatsApp took it: wamid), sent, delivered,
-- read, failed (a status webhook's error), skipped (no consent, no usable number: nothing
-- sent, `reason` says why) and dead (WhatsApp refused it: `reason`).
-- A number WhatsApp said is not on WhatsApp (131026) is not tried again for later steps.

CREATE TABLE messages (
    id           INTEGER PRIMARY KEY,
    channel      TEXT    NOT NULL,                 -- the order's marketplace
    external_id  TEXT    NOT NULL,
    step         TEXT    NOT NULL CHECK (step IN ('confirmed', 'shipped', 'delivered', 'cancelled')),
    event_id     INTEGER NOT NULL,
    state        TEXT    NOT NULL CHECK (state IN ('planned', 'sending', 'unconfirmed', 'accepted', 'sent', 'delivered', 'read', 'failed', 'skipped', 'dead')),
    phone        TEXT,                             -- E.164
    template     TEXT,
    language     TEXT,
    wamid        TEXT UNIQUE,
    reason       TEXT,
    sent_at      INTEGER,                          -- when its last request was about to go out
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    UNIQUE (channel, external_id, step)
);
CREATE INDEX messages_state ON messages (state, updated_at);

CREATE TABLE unreachable_numbers (
    phone   TEXT    PRIMARY KEY,
    reason  TEXT    NOT NULL,
    at      INTEGER NOT NULL
);
