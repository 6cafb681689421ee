//! The sync engine's channel-independent parts: turning inbound marketplace orders into Odoo
//! sale orders (exactly once) and applying marketplace statuses to them, the watcher that turns
//! their progress in Odoo into order events, the catalog snapshot every channel plans from, and
//! money.

pub mod catalog;
pub mod currency;
pub mod money;
pub mod order_import;
pub mod order_money;
pub mod order_watch;
pub mod pricelist;
pub mod quotations;
