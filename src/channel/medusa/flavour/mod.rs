//! Medusa's two flavours behind one trait: MarqaSouq's `/odoo/*` routes (`marqasouq.rs`:
//! `x-odoo-api-key`, amounts in minor units) and any Medusa v2 store's Admin API
//! (`admin_api.rs`: the secret key as `Authorization: Basic`, amounts in major units). The
//! channel's flows are written once against [`Flavour`].

use super::*;

mod admin_api;
mod fulfil;
mod marqasouq;

/// What differs between the two APIs.
pub trait Flavour: Send + Sync {
    /// The header that carries the key.
    fn auth(&self, token: Secret) -> (&'static str, Secret);
    /// The read `check` makes to prove the key.
    fn check_path(&self) -> &'static str;
    /// Where one order is read.
    fn order_path(&self, id: &str) -> String;
    /// The order list the pull reads: path and query of one page.
    fn order_list(
        &self,
        from: &str,
        limit: usize,
        offset: String,
    ) -> (&'static str, Vec<(&'static str, String)>);
    /// A unit price as the flavour writes it, in major units; `None` when it is not one.
    fn unit_price(&self, amount: Decimal, currency: &str) -> Option<Decimal>;
    /// The request that tells the store an order is in Odoo: path and body.
    fn synced(&self, id: &str, odoo_id: i64, at: &str) -> (String, serde_json::Value);
    fn push_products<'a>(
        &'a self,
        m: &'a Medusa,
        jobs: &'a [Job],
    ) -> BoxFuture<'a, Vec<Result<(), JobError>>>;
    fn push_stock<'a>(
        &'a self,
        m: &'a Medusa,
        pushes: &'a [&'a StockPush],
    ) -> BoxFuture<'a, Result<(), JobError>>;
    /// Whether the store hears of each Odoo delivery as it is done (`order.shipment`), not
    /// only of the whole order shipped.
    fn partial_shipments(&self) -> bool {
        false
    }
    /// Sends one order event.
    fn send_status<'a>(
        &'a self,
        m: &'a Medusa,
        id: &'a str,
        event: &'a str,
        p: &'a jobs::SendStatus,
        known: &'a order_state::ChannelOrder,
    ) -> BoxFuture<'a, Result<(), JobError>>;
}

/// The configured flavour.
pub fn of(flavour: MedusaFlavour) -> &'static dyn Flavour {
    match flavour {
        MedusaFlavour::Marqasouq => &marqasouq::Marqasouq,
        MedusaFlavour::AdminApi => &admin_api::AdminApi,
    }
}
