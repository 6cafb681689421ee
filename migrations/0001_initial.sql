-- marketsync state, version 1.
-- Times are Unix milliseconds (UTC). JSON columns hold serde_json text.

-- Which Odoo record is which record on a channel, and what was last sent for it.
CREATE TABLE mappings (
    id            INTEGER PRIMARY KEY,
    channel       TEXT    NOT NULL,
    kind          TEXT    NOT NULL,               -- product, order, partner, ...
    odoo_model    TEXT    NOT NULL,
    odoo_id       INTEGER NOT NULL,
    external_id   TEXT    NOT NULL,
    last_hash     TEXT,                           -- hash of the payload last accepted by the channel
    last_sent_at  INTEGER,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    UNIQUE (channel, kind, odoo_id),
    UNIQUE (channel, kind, external_id)
);

-- The durable job queue.
CREATE TABLE jobs (
    id              INTEGER PRIMARY KEY,
    channel         TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    coalesce_key    TEXT    NOT NULL,             -- channel + kind + record: latest value wins
    payload         TEXT    NOT NULL,
    state           TEXT    NOT NULL CHECK (state IN ('pending', 'running', 'retrying', 'done', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,   -- failed attempts so far
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    error_class     TEXT,
    correlation_id  TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
-- At most one waiting job per key: enqueueing again replaces its payload.
CREATE UNIQUE INDEX jobs_one_waiting_per_key ON jobs (coalesce_key) WHERE state IN ('pending', 'retrying');
CREATE INDEX jobs_due ON jobs (state, next_attempt_at);
CREATE INDEX jobs_channel_state ON jobs (channel, state);

-- What happened, for the operator (`marketsync logs`). Pruned after log.retention_days.
CREATE TABLE sync_log (
    id              INTEGER PRIMARY KEY,
    at              INTEGER NOT NULL,
    channel         TEXT,
    operation       TEXT    NOT NULL,
    level           TEXT    NOT NULL CHECK (level IN ('error', 'warn', 'info', 'debug')),
    message         TEXT    NOT NULL,
    details         TEXT,
    record_count    INTEGER,
    correlation_id  TEXT
);
CREATE INDEX sync_log_at ON sync_log (at);
CREATE INDEX sync_log_channel_at ON sync_log (channel, at);

-- One row per stream (e.g. cartona.catalog): its cursor and the outcome of its last runs.
CREATE TABLE streams (
    name            TEXT PRIMARY KEY,
    cursor          TEXT,
    last_run_at     INTEGER,
    last_success_at INTEGER,
    last_error      TEXT,
    last_error_at   INTEGER
);

-- Every event received from a channel (webhook or pull), committed before it is acknowledged.
CREATE TABLE inbox (
    id            INTEGER PRIMARY KEY,
    source        TEXT    NOT NULL,
    event_id      TEXT    NOT NULL,
    kind          TEXT    NOT NULL,
    payload       TEXT    NOT NULL,
    state         TEXT    NOT NULL CHECK (state IN ('received', 'done', 'parked')),
    error         TEXT,
    attempts      INTEGER NOT NULL DEFAULT 0,
    received_at   INTEGER NOT NULL,
    processed_at  INTEGER,
    UNIQUE (source, event_id)
);
CREATE INDEX inbox_state ON inbox (state, id);

-- Small facts the daemon publishes for `status` (Odoo reachability, version, heartbeat).
CREATE TABLE facts (
    key         TEXT PRIMARY KEY,
    value       TEXT NOT NULL,
    updated_at  INTEGER NOT NULL
);
