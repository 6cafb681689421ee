-- marketsync state, version 5: durable order events.
--
-- The Odoo-side progress of every marketplace order becomes rows of `order_events`, each fact
-- once per order, in the order it happened. Every channel that subscribes to an order (its
-- owning marketplace; later WhatsApp, Sha6er) has its own cursor per order: the last event it
-- took. A delivery job reads the events after its cursor and moves the cursor in the same
-- transaction as what it did, so each subscriber gets each event once and in order, and one
-- subscriber failing holds no other back.

CREATE TABLE order_events (
    id           INTEGER PRIMARY KEY,
    channel      TEXT    NOT NULL,                 -- the order's owner (channel_orders.channel)
    external_id  TEXT    NOT NULL,                 -- its id there (channel_orders.external_id)
    kind         TEXT    NOT NULL CHECK (kind IN ('confirmed', 'shipped', 'delivered', 'cancelled', 'invoiced', 'paid', 'returned')),
    data         TEXT    NOT NULL DEFAULT '{}',    -- JSON: order name, carrier, tracking, dates
    at           INTEGER NOT NULL,
    UNIQUE (channel, external_id, kind)
);

CREATE TABLE order_event_cursors (
    subscriber   TEXT    NOT NULL,                 -- the channel the events are delivered to
    channel      TEXT    NOT NULL,
    external_id  TEXT    NOT NULL,
    through      INTEGER NOT NULL,                 -- order_events.id of the last one it took
    PRIMARY KEY (subscriber, channel, external_id)
);

-- An order is known by its channel and id there; two channels may one day carry the same
-- reference text, so the reference no longer has to be unique.
DROP INDEX channel_orders_reference;
CREATE INDEX channel_orders_reference ON channel_orders (reference);

-- What the previous version already told the owners becomes their first events, with the
-- owner's cursor past them: nothing sent is produced or sent again. Seeded events carry
-- `"seeded": true` (their details were not kept by the version that sent them).
INSERT INTO order_events (channel, external_id, kind, data, at)
SELECT channel, external_id, 'confirmed', '{"seeded":true}', updated_at FROM channel_orders
WHERE (channel = 'cartona' AND sent_status IN ('approved', 'delivered'))
   OR (channel = 'medusa' AND sent_status IN ('order.confirmed', 'order.shipped', 'order.delivered'));

INSERT INTO order_events (channel, external_id, kind, data, at)
SELECT channel, external_id, 'shipped', '{"seeded":true}', updated_at FROM channel_orders
WHERE (channel = 'cartona' AND sent_status = 'delivered')
   OR (channel = 'medusa' AND sent_status IN ('order.shipped', 'order.delivered'));

INSERT INTO order_events (channel, external_id, kind, data, at)
SELECT channel, external_id, 'delivered', '{"seeded":true}', updated_at FROM channel_orders
WHERE (channel = 'cartona' AND sent_status = 'delivered')
   OR (channel = 'medusa' AND sent_status = 'order.delivered');

INSERT INTO order_events (channel, external_id, kind, data, at)
SELECT channel, external_id, 'cancelled', '{"seeded":true}', updated_at FROM channel_orders
WHERE (channel = 'cartona' AND sent_status = 'cancelled_by_supplier')
   OR (channel = 'medusa' AND sent_status = 'order.cancelled');

INSERT INTO order_events (channel, external_id, kind, data, at)
SELECT channel, external_id, 'invoiced', '{"seeded":true}', updated_at FROM channel_orders
WHERE channel = 'medusa' AND json_type(meta) = 'object' AND json_extract(meta, '$.invoiced_sent') = 1;

INSERT INTO order_events (channel, external_id, kind, data, at)
SELECT channel, external_id, 'paid', '{"seeded":true}', updated_at FROM channel_orders
WHERE channel = 'medusa' AND json_type(meta) = 'object' AND json_extract(meta, '$.paid_sent') = 1;

INSERT INTO order_event_cursors (subscriber, channel, external_id, through)
SELECT channel, channel, external_id, MAX(id) FROM order_events GROUP BY channel, external_id;
