-- marketsync state, version 7: one order event per Odoo delivery.
--
-- An order delivered in parts (a backorder in Odoo) has a 'shipment' event for each delivery
-- done, with its lines and tracking; the whole order's 'shipped' and 'delivered' follow when
-- the last one is done. An event is now unique per order, kind and part (the delivery's
-- picking id for a shipment; '' for the order-wide facts). Ids are kept, so every subscriber's
-- cursor still points where it did: nothing is lost or delivered again.

CREATE TABLE order_events_v7 (
    id           INTEGER PRIMARY KEY,
    channel      TEXT    NOT NULL,
    external_id  TEXT    NOT NULL,
    kind         TEXT    NOT NULL CHECK (kind IN ('confirmed', 'shipment', 'shipped', 'delivered', 'cancelled', 'invoiced', 'paid', 'returned')),
    part         TEXT    NOT NULL DEFAULT '',      -- a shipment's Odoo picking id; '' otherwise
    data         TEXT    NOT NULL DEFAULT '{}',
    at           INTEGER NOT NULL,
    UNIQUE (channel, external_id, kind, part)
);

INSERT INTO order_events_v7 (id, channel, external_id, kind, part, data, at)
SELECT id, channel, external_id, kind, '', data, at FROM order_events;

DROP TABLE order_events;
ALTER TABLE order_events_v7 RENAME TO order_events;
