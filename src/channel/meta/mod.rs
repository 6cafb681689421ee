//! Meta's Commerce catalog (Facebook and Instagram shops): Odoo's products, prices and stock
//! kept in step through the Graph API's `items_batch` (issue 14). Meta brings no orders in:
//! buyers follow each item's link to the supplier's store.
//!
//! This build carries the channel's wire format (`wire.rs`: prices, GTINs, availability,
//! Graph errors and usage headers, all checked by tests); the channel itself (config, batch
//! push with status polls, read-back, simulator) is not wired yet, and `channels.meta` still
//! refuses `enabled = true`.

pub mod wire;
