-- marketsync state, version 4: an order waiting for the retailer's OTP is flagged in its
-- channel data (`meta.awaiting_otp`), no longer recognised by the sentence shown to the operator.
UPDATE channel_orders
SET meta = json_set(CASE WHEN json_type(meta) = 'object' THEN meta ELSE '{}' END, '$.awaiting_otp', json('true'))
WHERE channel = 'cartona'
  AND attention = 'delivered in Odoo; Cartona needs the retailer''s OTP: run `marketsync order otp <reference> <otp>`';
