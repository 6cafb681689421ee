//! Simulators of marketsync's peers, part of the product: `marketsync demo` runs the real
//! daemon against them and the tests use them as faithful, fault-injectable stand-ins. They
//! speak the real protocols (Python's `xmlrpc.client` works against the Odoo one) and are held
//! to the recordings in `fixtures/`.

pub mod cartona;
pub mod faults;
pub mod medusa;
pub mod odoo;
