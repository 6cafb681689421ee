//! Version differences, handled in one place and looked up with `fields_get` rather than
//! guessed from the version number: which field says a product is storable, which fields carry
//! a stock move's done quantity, whether delivery modules add a tracking reference, what an
//! order line calls its taxes.

use super::{OdooClient, OdooError, Value};

/// How a product says it is stocked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorableField {
    /// Odoo 18+: `type = 'consu'` and `is_storable = True`.
    IsStorable,
    /// Odoo 15-17: `detailed_type = 'product'`.
    DetailedType,
    /// Older: `type = 'product'`.
    Type,
}

/// How a stock move carries the quantity done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoveQuantity {
    /// Up to 16: `quantity_done`.
    QuantityDone,
    /// 17+: `quantity` plus the `picked` flag.
    QuantityPicked,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub storable: StorableField,
    pub move_quantity: MoveQuantity,
    /// `stock.picking.carrier_tracking_ref` exists (a delivery module is installed).
    pub tracking_ref: bool,
    /// The order line's taxes: `tax_id` up to 17, `tax_ids` from 18.
    pub line_taxes: &'static str,
    /// `sale.order.line.is_delivery` exists (the delivery module is installed).
    pub is_delivery: bool,
    /// `res.partner.mobile` exists (Odoo 19 has only `phone`: fixtures/odoo19/partner-phone.json).
    pub partner_mobile: bool,
}

fn has(fields: &Value, name: &str) -> bool {
    fields.get(name).is_some()
}

impl Profile {
    pub async fn detect(odoo: &OdooClient) -> Result<Profile, OdooError> {
        let product = odoo.fields_get("product.product", &["type"]).await?;
        let storable = if has(&product, "is_storable") {
            StorableField::IsStorable
        } else if has(&product, "detailed_type") {
            StorableField::DetailedType
        } else {
            StorableField::Type
        };
        let moves = odoo.fields_get("stock.move", &["type"]).await?;
        let move_quantity = if has(&moves, "quantity_done") {
            MoveQuantity::QuantityDone
        } else {
            MoveQuantity::QuantityPicked
        };
        let picking = odoo.fields_get("stock.picking", &["type"]).await?;
        let line = odoo.fields_get("sale.order.line", &["type"]).await?;
        let partner = odoo.fields_get("res.partner", &["type"]).await?;
        Ok(Profile {
            storable,
            move_quantity,
            tracking_ref: has(&picking, "carrier_tracking_ref"),
            line_taxes: if has(&line, "tax_ids") {
                "tax_ids"
            } else {
                "tax_id"
            },
            is_delivery: has(&line, "is_delivery"),
            partner_mobile: has(&partner, "mobile"),
        })
    }
}
