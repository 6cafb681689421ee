-- marketsync state, version 6: what only one channel knows about an order lives in that order's
-- channel data, not in columns every channel carries. Cartona's delivery mode and OTP flag move
-- into `meta`; the retailer's OTP, a secret, moves into `order_secrets`, which nothing prints.

CREATE TABLE order_secrets (
    channel      TEXT NOT NULL,
    external_id  TEXT NOT NULL,
    name         TEXT NOT NULL,                 -- e.g. 'otp'
    value        TEXT NOT NULL,
    recorded_at  INTEGER NOT NULL,
    PRIMARY KEY (channel, external_id, name)
);

INSERT INTO order_secrets (channel, external_id, name, value, recorded_at)
SELECT channel, external_id, 'otp', otp, updated_at FROM channel_orders WHERE otp IS NOT NULL;

UPDATE channel_orders
SET meta = json_set(CASE WHEN json_type(meta) = 'object' THEN meta ELSE '{}' END, '$.delivered_by', delivered_by)
WHERE delivered_by IS NOT NULL;

UPDATE channel_orders
SET meta = json_set(CASE WHEN json_type(meta) = 'object' THEN meta ELSE '{}' END, '$.needs_otp', json('true'))
WHERE needs_otp = 1;

ALTER TABLE channel_orders DROP COLUMN delivered_by;
ALTER TABLE channel_orders DROP COLUMN needs_otp;
ALTER TABLE channel_orders DROP COLUMN otp;
