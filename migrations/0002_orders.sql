-- marketsync state, version 2: orders known per channel, and the record an inbox event is about.

-- One row per marketplace order: where it stands on both sides.
CREATE TABLE channel_orders (
    channel             TEXT    NOT NULL,
    external_id         TEXT    NOT NULL,           -- e.g. Cartona hashed_id
    reference           TEXT    NOT NULL,           -- sale.order client_order_ref, e.g. CARTONA-632717520571
    odoo_id             INTEGER,                    -- the sale.order, once created
    marketplace_status  TEXT,                       -- last status the channel reported
    sent_status         TEXT,                       -- last status we reported to the channel
    payload_hash        TEXT,                       -- of the last order payload applied to Odoo
    delivered_by        TEXT,
    needs_otp           INTEGER NOT NULL DEFAULT 0,
    otp                 TEXT,                       -- the retailer's delivery OTP, when recorded
    attention           TEXT,                       -- why the operator should look (returned, edited after confirmation)
    meta                TEXT,                       -- channel-specific ids (JSON), e.g. a Medusa fulfillment
    updated_at          INTEGER NOT NULL,
    PRIMARY KEY (channel, external_id)
);
CREATE UNIQUE INDEX channel_orders_reference ON channel_orders (reference);

ALTER TABLE inbox ADD COLUMN subject TEXT;

-- Channel-specific ids of a mapped record (JSON), e.g. a Medusa product, variant and inventory item.
ALTER TABLE mappings ADD COLUMN meta TEXT;
CREATE INDEX inbox_subject ON inbox (source, subject, state);

-- The planner asks whether the same value already died for a record (no retry storm).
CREATE INDEX jobs_key_state ON jobs (coalesce_key, state);
