-- marketsync state, version 9: Sha6er shipments, one per Odoo delivery.
--
-- A row is written before `create_shipment` is sent (state 'creating'), so a crash or a lost
-- answer never makes a second shipment: the next attempt looks the shipment up by its
-- reference (the picking's name) before creating again. `state` then follows Sha6er's status
-- (pending, accepted, assigned, picked_up, in_transit, delivered, failed, returned,
-- cancelled); 'refused' is a create Sha6er turned down (`reason`), which `marketsync ship`
-- tries again. `steps` counts the steps of Sha6er's history already told in the picking's
-- chatter and acted on; `packages` is what was sent, with the Odoo products in each package.

CREATE TABLE shipments (
    picking_id    INTEGER PRIMARY KEY,             -- Odoo stock.picking id
    picking       TEXT    NOT NULL,                -- its name (WH/OUT/00012): the reference sent
    channel       TEXT    NOT NULL DEFAULT '',     -- the order's marketplace ('' for an Odoo order)
    external_id   TEXT    NOT NULL DEFAULT '',
    order_ref     TEXT    NOT NULL,
    state         TEXT    NOT NULL CHECK (state IN ('creating', 'refused', 'pending', 'accepted', 'assigned', 'picked_up', 'in_transit', 'delivered', 'failed', 'returned', 'cancelled')),
    shipment_id   TEXT    UNIQUE,
    tracking      TEXT,
    courier       TEXT,                            -- name (phone)
    reason        TEXT,
    packages      TEXT    NOT NULL DEFAULT '[]',
    cod           TEXT,                            -- amount and currency collected, if any
    steps         INTEGER NOT NULL DEFAULT 0,
    told          INTEGER NOT NULL DEFAULT 0,      -- tracking written on the picking
    validated     INTEGER NOT NULL DEFAULT 0,      -- the picking validated for what was delivered
    news_at       INTEGER,                         -- last webhook or read of it
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX shipments_state ON shipments (state, news_at);
CREATE INDEX shipments_order ON shipments (channel, external_id);
