//! Shipments out: which Odoo deliveries Sha6er ships, what a shipment says (addresses,
//! packages, declared value, cash on delivery), one per delivery however often it is tried,
//! its tracking on the picking, and its cancellation when Odoo cancels the delivery.

use super::*;
use crate::error::Context as _;
use crate::odoo::{Domain, SearchOpts, Value};
use crate::store::shipments::{Planned, ShipmentRow};
use crate::sync::order_import::{odoo_job_error, store_err};
use rust_decimal::Decimal;

/// The optional fields this Odoo has.
#[derive(Debug, Clone)]
pub(super) struct Fields {
    /// `stock.picking.carrier_id` (the delivery module).
    pub carrier: bool,
    /// The package model of `stock.move.line.result_package_id`, with `quantity` on the line
    /// (Odoo 17 and later): `stock.quant.package` up to 18, `stock.package` on 19
    /// (`fixtures/odoo19/sha6er-delivery.json`).
    pub packages: Option<String>,
    /// The package model's `shipping_weight` (the delivery module).
    pub package_weight: bool,
}

/// The pickup warehouse.
pub struct Warehouse {
    pub id: i64,
    pub name: String,
    pub address: wire::Address,
}

/// An item of a package as kept in the state: the wire's, with the Odoo product.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct KeptItem {
    pub product_id: i64,
    #[serde(default)]
    pub sku: Option<String>,
    pub name: String,
    pub quantity: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct KeptPackage {
    pub reference: String,
    pub weight_kg: f64,
    pub items: Vec<KeptItem>,
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_opt_str).map(str::to_string)
}

fn id_of(v: &Value, key: &str) -> Option<i64> {
    v.get(key).and_then(Value::as_id)
}

fn num(v: &Value, key: &str) -> f64 {
    v.get(key).and_then(Value::as_f64).unwrap_or(0.0)
}

fn permanent(msg: String) -> JobError {
    JobError::new(RetryClass::Permanent, msg)
}

/// The warehouse of this code, and its address (the warehouse's partner).
/// `mobile`: whether Odoo's partners have `mobile` (Odoo 19 has only `phone`).
pub async fn warehouse(odoo: &OdooClient, code: &str, mobile: bool) -> Result<Warehouse, JobError> {
    let rows = odoo
        .search_read(
            "stock.warehouse",
            &Domain::all().and("code", "=", code),
            &["name", "partner_id"],
            SearchOpts::default(),
        )
        .await
        .map_err(|e| odoo_job_error(&e))?;
    let w = rows.first().ok_or_else(|| {
        permanent(format!(
            "Odoo has no warehouse with the short name {code:?} (channels.sha6er.warehouse): give one of Inventory > Configuration > Warehouses"
        ))
    })?;
    let partner = id_of(w, "partner_id").ok_or_else(|| {
        permanent(format!(
            "Odoo's warehouse {code:?} has no address: set its Address in Inventory > Configuration > Warehouses (couriers pick up there)"
        ))
    })?;
    Ok(Warehouse {
        id: id_of(w, "id").unwrap_or_default(),
        name: text(w, "name").unwrap_or_default(),
        address: address(odoo, partner, &[], mobile).await?,
    })
}

/// A partner as Sha6er takes an address; its phone, else the first of `fallback`'s.
async fn address(
    odoo: &OdooClient,
    partner: i64,
    fallback: &[i64],
    mobile: bool,
) -> Result<wire::Address, JobError> {
    let mut ids = vec![partner];
    ids.extend_from_slice(fallback);
    let mut wanted = vec![
        "name",
        "street",
        "street2",
        "city",
        "zip",
        "country_id",
        "phone",
    ];
    if mobile {
        wanted.push("mobile");
    }
    let rows = odoo
        .read("res.partner", &ids, &wanted)
        .await
        .map_err(|e| odoo_job_error(&e))?;
    let by_id = |id: i64| rows.iter().find(|r| id_of(r, "id") == Some(id));
    let p =
        by_id(partner).ok_or_else(|| permanent(format!("Odoo has no res.partner {partner}")))?;
    let phone_of = |r: &Value| text(r, "mobile").or_else(|| text(r, "phone"));
    let phone =
        phone_of(p).or_else(|| fallback.iter().filter_map(|f| by_id(*f)).find_map(phone_of));
    let country = match p.get("country_id").and_then(Value::as_id) {
        Some(c) => odoo
            .read("res.country", &[c], &["code"])
            .await
            .map_err(|e| odoo_job_error(&e))?
            .first()
            .and_then(|r| text(r, "code")),
        None => None,
    };
    Ok(wire::Address {
        name: text(p, "name").unwrap_or_default(),
        phone,
        street: text(p, "street"),
        street2: text(p, "street2"),
        city: text(p, "city"),
        zip: text(p, "zip"),
        country,
    })
}

/// What a shipment is made of, read from Odoo.
struct Plan {
    request: wire::CreateShipment,
    kept: Vec<KeptPackage>,
    channel: String,
    external_id: String,
}

impl Sha6er {
    pub(super) async fn fields(&self) -> Result<Fields, JobError> {
        let f = self
            .fields
            .get_or_try_init(|| async {
                let picking = self.odoo.fields_get("stock.picking", &["type"]).await?;
                let line = self
                    .odoo
                    .fields_get("stock.move.line", &["type", "relation"])
                    .await?;
                let packages = line
                    .get("result_package_id")
                    .and_then(|f| f.get("relation"))
                    .and_then(Value::as_opt_str)
                    .filter(|_| line.get("quantity").is_some())
                    .map(str::to_string);
                let package_weight = match &packages {
                    Some(m) => self
                        .odoo
                        .fields_get(m, &["type"])
                        .await?
                        .get("shipping_weight")
                        .is_some(),
                    None => false,
                };
                Ok::<_, crate::odoo::OdooError>(Fields {
                    carrier: picking.get("carrier_id").is_some(),
                    packages,
                    package_weight,
                })
            })
            .await
            .map_err(|e| odoo_job_error(&e))?;
        Ok(f.clone())
    }

    /// Whether Sha6er ships this marketplace order's deliveries (`ship_for`).
    fn ships(&self, o: &crate::store::orders::ChannelOrder) -> bool {
        if !self.settings.ship_for.contains(&o.channel) {
            return false;
        }
        o.channel != crate::channel::cartona::CHANNEL
            || crate::channel::cartona::OrderData::read(o)
                .delivered_by
                .as_deref()
                == Some("delivered_by_supplier")
    }

    /// The ready deliveries, from the pickup warehouse, of the orders Sha6er ships, that have
    /// no shipment yet.
    pub(super) async fn ready(&self) -> Result<Vec<i64>, crate::error::Error> {
        let err = |e: JobError| crate::error::Error::invalid(e.message);
        let fields = self.fields().await.map_err(err)?;
        let wh = *self
            .warehouse_id
            .get_or_try_init(|| async {
                warehouse(
                    &self.odoo,
                    &self.settings.warehouse,
                    self.profile.partner_mobile,
                )
                .await
                .map(|w| w.id)
            })
            .await
            .map_err(err)?;
        let open = crate::store::order_events::open_orders(&self.store, 90)?;
        let known = crate::store::orders::by_odoo_ids(&self.store, &open)?;
        let mut orders: Vec<i64> = known
            .values()
            .filter(|o| self.ships(o))
            .filter_map(|o| o.odoo_id)
            .collect();
        orders.sort_unstable();
        let base = Domain::all()
            .and("picking_type_code", "=", "outgoing")
            .and("state", "=", "assigned")
            .and("picking_type_id.warehouse_id", "=", wh);
        let mut found = Vec::new();
        if !orders.is_empty() {
            found.extend(
                self.odoo
                    .search(
                        "stock.picking",
                        &base.clone().and("sale_id", "in", orders),
                        None,
                    )
                    .await
                    .context("reading the ready deliveries from Odoo")?,
            );
        }
        if let (Some(c), true) = (&self.settings.carrier, fields.carrier) {
            found.extend(
                self.odoo
                    .search(
                        "stock.picking",
                        &base.and("carrier_id.name", "=", c.as_str()),
                        None,
                    )
                    .await
                    .context("reading the ready deliveries of the Sha6er carrier from Odoo")?,
            );
        }
        found.sort_unstable();
        found.dedup();
        let have = shipments::known(&self.store, &found)?;
        found.retain(|p| !have.contains(p));
        Ok(found)
    }

    /// The deliveries cancelled in Odoo whose shipment is not cancelled (nor flagged).
    pub(super) async fn cancelled(&self) -> Result<Vec<i64>, crate::error::Error> {
        let rows = shipments::list(
            &self.store,
            &[
                "creating",
                "pending",
                "accepted",
                "assigned",
                "picked_up",
                "in_transit",
            ],
            10_000,
        )?;
        let ids: Vec<i64> = rows
            .iter()
            .filter(|r| r.reason.as_deref() != Some(CANCELLED_AFTER_PICKUP))
            .map(|r| r.picking_id)
            .collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.odoo
            .search(
                "stock.picking",
                &Domain::all()
                    .and("id", "in", ids)
                    .and("state", "=", "cancel"),
                None,
            )
            .await
            .context("reading cancelled deliveries from Odoo")
    }

    /// Reads the delivery and its order from Odoo: `None` when it is not ready (a job waits
    /// for the stream to find it ready).
    async fn plan(&self, picking_id: i64, by_hand: bool) -> Result<Option<Plan>, JobError> {
        let odoo = &self.odoo;
        let oe = |e: crate::odoo::OdooError| odoo_job_error(&e);
        let fields = self.fields().await?;
        let p = odoo
            .read(
                "stock.picking",
                &[picking_id],
                &[
                    "name",
                    "state",
                    "partner_id",
                    "sale_id",
                    "picking_type_code",
                ],
            )
            .await
            .map_err(oe)?
            .into_iter()
            .next()
            .ok_or_else(|| {
                permanent(format!("Odoo has no delivery (stock.picking) {picking_id}"))
            })?;
        let name = text(&p, "name").unwrap_or_else(|| picking_id.to_string());
        if text(&p, "picking_type_code").as_deref() != Some("outgoing") {
            return Err(permanent(format!(
                "{name} is not a delivery (an outgoing transfer): Sha6er ships deliveries only"
            )));
        }
        match text(&p, "state").as_deref().unwrap_or("") {
            "assigned" => {}
            s @ ("done" | "cancel") => {
                return Err(permanent(format!("delivery {name} is {s} in Odoo: there is nothing to ship")))
            }
            s if by_hand => {
                return Err(permanent(format!(
                    "delivery {name} is not ready in Odoo (state {s}): reserve its products first (Check Availability), then ship it"
                )))
            }
            _ => return Ok(None),
        }
        let order_id = id_of(&p, "sale_id");
        let order = match order_id {
            Some(o) => odoo
                .read(
                    "sale.order",
                    &[o],
                    &["name", "partner_id", "partner_shipping_id", "currency_id"],
                )
                .await
                .map_err(oe)?
                .into_iter()
                .next(),
            None => None,
        };
        let known = match order_id {
            Some(o) => crate::store::orders::by_odoo_ids(&self.store, &[o])
                .map_err(store_err)?
                .remove(&o),
            None => None,
        };
        let currency = order
            .as_ref()
            .and_then(|o| o.get("currency_id").and_then(Value::as_many2one))
            .map(|(_, n)| n.to_string())
            .ok_or_else(|| permanent(format!("delivery {name} has no sales order with a currency: Sha6er needs the declared value")))?;
        let moves = odoo
            .search_read(
                "stock.move",
                &Domain::all().and("picking_id", "=", picking_id),
                &["product_id", "product_uom_qty", "sale_line_id", "state"],
                SearchOpts::default(),
            )
            .await
            .map_err(oe)?;
        let moves: Vec<Value> = moves
            .into_iter()
            .filter(|m| !matches!(text(m, "state").as_deref(), Some("done" | "cancel")))
            .collect();
        let products: Vec<i64> = {
            let mut v: Vec<i64> = moves
                .iter()
                .filter_map(|m| id_of(m, "product_id"))
                .collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        let prows = odoo
            .read(
                "product.product",
                &products,
                &["default_code", "name", "weight"],
            )
            .await
            .map_err(oe)?;
        let product = |id: i64| prows.iter().find(|r| id_of(r, "id") == Some(id));
        let item = |id: i64, quantity: f64| KeptItem {
            product_id: id,
            sku: product(id).and_then(|r| text(r, "default_code")),
            name: product(id)
                .and_then(|r| text(r, "name"))
                .unwrap_or_else(|| format!("product {id}")),
            quantity,
        };
        let weight = |items: &[KeptItem]| -> f64 {
            items
                .iter()
                .map(|i| {
                    i.quantity
                        * product(i.product_id)
                            .map(|r| num(r, "weight"))
                            .unwrap_or(0.0)
                })
                .sum()
        };
        // Packages: the Odoo packages on the move lines; what is in none, one more package.
        let mut kept: Vec<KeptPackage> = Vec::new();
        let mut loose: Vec<KeptItem> = Vec::new();
        if let Some(package_model) = &fields.packages {
            let lines = odoo
                .search_read(
                    "stock.move.line",
                    &Domain::all().and("picking_id", "=", picking_id),
                    &["product_id", "quantity", "result_package_id"],
                    SearchOpts::default(),
                )
                .await
                .map_err(oe)?;
            let mut packs: Vec<(i64, String, Vec<KeptItem>)> = Vec::new();
            for l in &lines {
                let (Some(prod), q) = (id_of(l, "product_id"), num(l, "quantity")) else {
                    continue;
                };
                if let Some((pid, pname)) = l.get("result_package_id").and_then(Value::as_many2one)
                {
                    match packs.iter_mut().find(|(i, _, _)| *i == pid) {
                        Some((_, _, items)) => items.push(item(prod, q)),
                        None => packs.push((pid, pname.to_string(), vec![item(prod, q)])),
                    }
                }
            }
            if !packs.is_empty() {
                let ids: Vec<i64> = packs.iter().map(|(i, _, _)| *i).collect();
                let pw = if fields.package_weight {
                    odoo.read(package_model, &ids, &["name", "shipping_weight"])
                        .await
                        .map_err(oe)?
                } else {
                    Vec::new()
                };
                for (pid, pname, items) in packs {
                    let given = pw
                        .iter()
                        .find(|r| id_of(r, "id") == Some(pid))
                        .map(|r| num(r, "shipping_weight"))
                        .filter(|w| *w > 0.0);
                    kept.push(KeptPackage {
                        reference: pname,
                        weight_kg: given.unwrap_or_else(|| weight(&items)),
                        items,
                    });
                }
                // What the packages do not hold of each move goes loose.
                for m in &moves {
                    let Some(prod) = id_of(m, "product_id") else {
                        continue;
                    };
                    let packed: f64 = kept
                        .iter()
                        .flat_map(|k| &k.items)
                        .filter(|i| i.product_id == prod)
                        .map(|i| i.quantity)
                        .sum();
                    let demand: f64 = moves
                        .iter()
                        .filter(|x| id_of(x, "product_id") == Some(prod))
                        .map(|x| num(x, "product_uom_qty"))
                        .sum();
                    if demand - packed > 1e-9 && !loose.iter().any(|i| i.product_id == prod) {
                        loose.push(item(prod, demand - packed));
                    }
                }
            }
        }
        if kept.is_empty() {
            loose = moves
                .iter()
                .filter_map(|m| Some(item(id_of(m, "product_id")?, num(m, "product_uom_qty"))))
                .collect();
        }
        if !loose.is_empty() {
            kept.push(KeptPackage {
                reference: name.clone(),
                weight_kg: weight(&loose),
                items: loose,
            });
        }
        // The declared value: what the customer pays for these goods, taxes included.
        let line_ids: Vec<i64> = moves
            .iter()
            .filter_map(|m| id_of(m, "sale_line_id"))
            .collect();
        let slines = if line_ids.is_empty() {
            Vec::new()
        } else {
            odoo.read(
                "sale.order.line",
                &line_ids,
                &["product_id", "price_total", "product_uom_qty"],
            )
            .await
            .map_err(oe)?
        };
        let unit = |prod: i64| -> Decimal {
            slines
                .iter()
                .find(|l| id_of(l, "product_id") == Some(prod))
                .and_then(|l| {
                    let total = l.get("price_total")?.as_decimal()?;
                    let qty = l.get("product_uom_qty")?.as_decimal()?;
                    (!qty.is_zero()).then(|| total / qty)
                })
                .unwrap_or_default()
        };
        let package_value = |k: &KeptPackage| -> Decimal {
            let v: Decimal = k
                .items
                .iter()
                .map(|i| {
                    crate::odoo::value::float_to_decimal(i.quantity).unwrap_or_default()
                        * unit(i.product_id)
                })
                .sum();
            crate::sync::money::round(v, &currency)
        };
        let values: Vec<Decimal> = kept.iter().map(package_value).collect();
        let value: Decimal = values.iter().copied().sum();
        let money = wire::Money {
            amount: value.to_string(),
            currency: currency.clone(),
        };
        // Cash on delivery: whose orders, and not paid in Odoo.
        let channel = known
            .as_ref()
            .map(|k| k.channel.clone())
            .unwrap_or_default();
        let whose = if channel.is_empty() {
            config::ODOO_ORDERS
        } else {
            channel.as_str()
        };
        let financed = known.as_ref().is_some_and(|k| {
            k.channel == crate::channel::cartona::CHANNEL
                && crate::channel::cartona::OrderData::read(k).needs_otp
        });
        let order_name = order.as_ref().and_then(|o| text(o, "name"));
        let cod = if self.settings.cod(whose) && !financed {
            match &order_name {
                Some(n) if self.paid(n).await? => None,
                _ => Some(money.clone()),
            }
        } else {
            None
        };
        let customer: Vec<i64> = order
            .as_ref()
            .map(|o| {
                ["partner_shipping_id", "partner_id"]
                    .iter()
                    .filter_map(|k| id_of(o, k))
                    .collect()
            })
            .unwrap_or_default();
        let to = id_of(&p, "partner_id")
            .or_else(|| customer.first().copied())
            .ok_or_else(|| {
                permanent(format!(
                    "delivery {name} has no delivery address: set its contact in Odoo"
                ))
            })?;
        let delivery = address(odoo, to, &customer, self.profile.partner_mobile).await?;
        if delivery.phone.is_none() {
            return Err(permanent(format!(
                "the delivery address of {name} ({}) has no phone, and Sha6er's courier needs one: add it to the contact in Odoo",
                delivery.name
            )));
        }
        let pickup = warehouse(odoo, &self.settings.warehouse, self.profile.partner_mobile)
            .await?
            .address;
        let order_reference = known
            .as_ref()
            .map(|k| k.reference.clone())
            .or(order_name)
            .unwrap_or_else(|| name.clone());
        Ok(Some(Plan {
            request: wire::CreateShipment {
                reference: name,
                order_reference,
                pickup,
                delivery,
                packages: kept
                    .iter()
                    .zip(&values)
                    .map(|(k, v)| wire::Package {
                        reference: k.reference.clone(),
                        weight_kg: (k.weight_kg * 1000.0).round() / 1000.0,
                        value: v.to_string(),
                        items: k
                            .items
                            .iter()
                            .map(|i| wire::Item {
                                sku: i.sku.clone(),
                                name: i.name.clone(),
                                quantity: i.quantity,
                            })
                            .collect(),
                    })
                    .collect(),
                declared_value: money,
                cod,
            },
            kept,
            channel,
            external_id: known.map(|k| k.external_id).unwrap_or_default(),
        }))
    }

    /// Odoo shows the order paid: a posted customer invoice, every one paid.
    async fn paid(&self, order_name: &str) -> Result<bool, JobError> {
        let inv = self
            .odoo
            .search_read(
                "account.move",
                &Domain::all()
                    .and("invoice_origin", "=", order_name)
                    .and("move_type", "=", "out_invoice")
                    .and("state", "=", "posted"),
                &["payment_state"],
                SearchOpts::default(),
            )
            .await
            .map_err(|e| odoo_job_error(&e))?;
        Ok(!inv.is_empty()
            && inv.iter().all(|i| {
                matches!(
                    text(i, "payment_state").as_deref(),
                    Some("paid" | "in_payment")
                )
            }))
    }

    /// The shipment Sha6er made with this reference, if any.
    async fn lookup(&self, reference: &str) -> Result<Option<wire::Created>, JobError> {
        let v = self
            .api
            .get(
                wire::SHIPMENTS,
                &[(wire::REFERENCE_QUERY, reference.to_string())],
            )
            .await
            .map_err(job_err)?;
        let found: wire::Found = serde_json::from_value(v).map_err(|e| {
            JobError::new(
                RetryClass::Transient,
                format!("Sha6er's answer to the look-up of {reference} is not as documented: {e}"),
            )
        })?;
        Ok(found.shipments.into_iter().next())
    }

    /// Makes sure the delivery has its one shipment: returns it (`None`: not ready yet).
    pub(super) async fn ship(
        &self,
        picking_id: i64,
        by_hand: bool,
    ) -> Result<Option<ShipmentRow>, JobError> {
        let row = shipments::get(&self.store, picking_id).map_err(store_err)?;
        if let Some(r) = &row {
            if r.shipment_id.is_some() {
                self.tell(r).await?;
                return Ok(Some(r.clone()));
            }
            match r.state.as_str() {
                "creating" => {
                    // A create was cut off: Sha6er may have it.
                    if let Some(c) = self.lookup(&r.picking).await? {
                        return self.took(r, &c, true).await.map(Some);
                    }
                }
                "refused" if by_hand => {}
                _ => return Ok(Some(r.clone())),
            }
        }
        let Some(plan) = self.plan(picking_id, by_hand).await? else {
            return Ok(row);
        };
        let packages = serde_json::to_value(&plan.kept).unwrap_or_default();
        let cod = plan
            .request
            .cod
            .as_ref()
            .map(|m| format!("{} {}", m.amount, m.currency));
        let fresh = row.as_ref().is_none_or(|r| r.state == "refused");
        if fresh
            && !shipments::begin(
                &self.store,
                &Planned {
                    picking_id,
                    picking: &plan.request.reference,
                    channel: &plan.channel,
                    external_id: &plan.external_id,
                    order_ref: &plan.request.order_reference,
                    packages: &packages,
                    cod: cod.as_deref(),
                },
            )
            .map_err(store_err)?
        {
            // Another worker (or `marketsync ship`) is asking for it.
            return shipments::get(&self.store, picking_id).map_err(store_err);
        }
        match self.api.post(wire::CREATE_SHIPMENT, &plan.request).await {
            Ok(v) => {
                let c: wire::Created = serde_json::from_value(v).map_err(|e| {
                    JobError::new(
                        RetryClass::Transient,
                        format!("Sha6er's answer to create_shipment for {} is not as documented: {e}; it is looked up before any new try", plan.request.reference),
                    )
                })?;
                let r = shipments::get(&self.store, picking_id)
                    .map_err(store_err)?
                    .ok_or_else(|| {
                        permanent(format!("the shipment row of {picking_id} is gone"))
                    })?;
                self.took(&r, &c, false).await.map(Some)
            }
            Err(e) if matches!(e.class, RetryClass::Permanent) && e.status.is_some() => {
                shipments::refused(&self.store, picking_id, &e.message).map_err(store_err)?;
                self.note(
                    &plan.request.order_reference,
                    &plan.request.reference,
                    Level::Error,
                    &format!(
                        "refused by Sha6er: {}; fix it in Odoo, then run `marketsync ship {}`",
                        e.message, plan.request.reference
                    ),
                );
                Err(job_err(e))
            }
            // The create may or may not have arrived: the row stays `creating`, and the next
            // attempt looks it up first.
            Err(e) => Err(job_err(e)),
        }
    }

    /// Sha6er has the shipment: record it, put its tracking on the picking.
    async fn took(
        &self,
        r: &ShipmentRow,
        c: &wire::Created,
        found: bool,
    ) -> Result<ShipmentRow, JobError> {
        let state = c
            .status
            .as_deref()
            .and_then(wire::Status::parse)
            .unwrap_or(wire::Status::Pending);
        shipments::created(
            &self.store,
            r.picking_id,
            &c.shipment_id,
            &c.tracking_number,
            state.as_str(),
        )
        .map_err(store_err)?;
        let n = r.packages.as_array().map(Vec::len).unwrap_or(0);
        self.note(
            &r.order_ref,
            &r.picking,
            Level::Info,
            &format!(
                "{}: shipment {}, tracking {}, {n} package(s){}",
                if found {
                    "found after a cut-off create"
                } else {
                    "requested"
                },
                c.shipment_id,
                c.tracking_number,
                r.cod
                    .as_ref()
                    .map(|c| format!(", cash on delivery {c}"))
                    .unwrap_or_default()
            ),
        );
        let r = shipments::get(&self.store, r.picking_id)
            .map_err(store_err)?
            .ok_or_else(|| permanent(format!("the shipment row of {} is gone", r.picking)))?;
        self.tell(&r).await?;
        Ok(r)
    }

    /// The tracking number on the picking (`carrier_tracking_ref` where Odoo has it) and in its
    /// chatter, once.
    async fn tell(&self, r: &ShipmentRow) -> Result<(), JobError> {
        if r.told {
            return Ok(());
        }
        let tracking = r.tracking.clone().unwrap_or_default();
        if self.profile.tracking_ref {
            self.odoo
                .write(
                    "stock.picking",
                    &[r.picking_id],
                    Value::record([("carrier_tracking_ref", Value::String(tracking.clone()))]),
                )
                .await
                .map_err(|e| odoo_job_error(&e))?;
        }
        let n = r.packages.as_array().map(Vec::len).unwrap_or(0);
        self.post_note(
            r.picking_id,
            &format!(
                "Sha6er shipment {} requested: tracking number {tracking}, {n} package(s){}.",
                r.shipment_id.as_deref().unwrap_or("?"),
                r.cod
                    .as_ref()
                    .map(|c| format!(", cash on delivery {c}"))
                    .unwrap_or_default()
            ),
        )
        .await?;
        shipments::told(&self.store, r.picking_id).map_err(store_err)
    }

    /// A note in the picking's chatter.
    pub(super) async fn post_note(&self, picking_id: i64, body: &str) -> Result<(), JobError> {
        self.odoo
            .call(
                crate::odoo::Call::new("stock.picking", "message_post")
                    .ids(&[picking_id])
                    .kwarg("body", body)
                    .kwarg("message_type", "comment")
                    .kwarg("subtype_xmlid", "mail.mt_note"),
            )
            .await
            .map_err(|e| odoo_job_error(&e))?;
        Ok(())
    }

    /// The delivery was cancelled in Odoo: its shipment is cancelled if the courier has not
    /// picked it up; if the courier has, the order is flagged (Sha6er must bring it back).
    pub(super) async fn cancel(&self, picking_id: i64) -> Result<(), JobError> {
        let Some(mut r) = shipments::get(&self.store, picking_id).map_err(store_err)? else {
            return Ok(());
        };
        if r.shipment_id.is_none() && r.state == "creating" {
            match self.lookup(&r.picking).await? {
                Some(c) => {
                    shipments::created(
                        &self.store,
                        picking_id,
                        &c.shipment_id,
                        &c.tracking_number,
                        "pending",
                    )
                    .map_err(store_err)?;
                    r = shipments::get(&self.store, picking_id)
                        .map_err(store_err)?
                        .unwrap_or(r);
                }
                None => {
                    return shipments::news(
                        &self.store,
                        picking_id,
                        "cancelled",
                        None,
                        None,
                        r.steps,
                    )
                    .map_err(store_err);
                }
            }
        }
        let Some(id) = r.shipment_id.clone() else {
            return Ok(());
        };
        let status = wire::Status::parse(&r.state).unwrap_or(wire::Status::Pending);
        if status.before_pickup() {
            self.api
                .post(&wire::cancel_path(&id), &serde_json::json!({}))
                .await
                .map_err(job_err)?;
            shipments::news(
                &self.store,
                picking_id,
                "cancelled",
                None,
                Some("the delivery was cancelled in Odoo"),
                r.steps,
            )
            .map_err(store_err)?;
            self.post_note(
                picking_id,
                &format!("Sha6er shipment {id} cancelled: the delivery was cancelled in Odoo."),
            )
            .await?;
            self.note(
                &r.order_ref,
                &r.picking,
                Level::Info,
                &format!("cancelled (shipment {id}): the delivery was cancelled in Odoo"),
            );
            return Ok(());
        }
        if status.is_final() {
            return Ok(());
        }
        shipments::news(
            &self.store,
            picking_id,
            &r.state,
            None,
            Some(CANCELLED_AFTER_PICKUP),
            r.steps,
        )
        .map_err(store_err)?;
        let why = format!(
            "{FLAG_PREFIX}delivery {} was cancelled in Odoo after the courier picked it up (shipment {id}): ask Sha6er to bring it back",
            r.picking
        );
        self.flag(
            &r,
            &why,
            "cancelled in Odoo after pickup: ask Sha6er to bring it back",
        )?;
        Ok(())
    }

    /// The order (if a marketplace's) needs the operator: its attention line, the sync log.
    /// `why` is the order's attention line; `short` what the sync log says of the shipment.
    pub(super) fn flag(&self, r: &ShipmentRow, why: &str, short: &str) -> Result<(), JobError> {
        if !r.channel.is_empty() {
            crate::store::orders::set_attention(&self.store, &r.channel, &r.external_id, Some(why))
                .map_err(store_err)?;
        }
        self.note(
            &r.order_ref,
            &r.picking,
            Level::Warn,
            &format!("{short} (flagged for the operator: `marketsync order list`)"),
        );
        Ok(())
    }

    /// A flag this channel raised on the order is lowered (the delivery was made after all).
    pub(super) fn unflag(&self, r: &ShipmentRow) -> Result<(), JobError> {
        if r.channel.is_empty() {
            return Ok(());
        }
        let known = crate::store::orders::get(&self.store, &r.channel, &r.external_id)
            .map_err(store_err)?;
        if known
            .and_then(|o| o.attention)
            .is_some_and(|a| a.starts_with(FLAG_PREFIX))
        {
            crate::store::orders::set_attention(&self.store, &r.channel, &r.external_id, None)
                .map_err(store_err)?;
        }
        Ok(())
    }
}

pub(super) const CANCELLED_AFTER_PICKUP: &str = "cancelled in Odoo after pickup";
/// How every attention line of this channel starts (so a later delivery can lower it).
pub(super) const FLAG_PREFIX: &str = "Sha6er: ";

/// `marketsync ship <picking>`: the delivery of this name gets its shipment now (whatever
/// `ship_for` says), or the one it has is shown.
pub async fn ship_by_hand(
    cfg: &ChannelConfig,
    odoo: OdooClient,
    store: Store,
    picking: &str,
) -> anyhow::Result<ShipmentRow> {
    let profile = crate::odoo::profile::Profile::detect(&odoo).await?;
    let s = Sha6er::new(cfg, odoo, store, profile)?;
    let ids = s
        .odoo
        .search(
            "stock.picking",
            &Domain::all().and("name", "=", picking),
            None,
        )
        .await?;
    let id = match ids.as_slice() {
        [id] => *id,
        [] => anyhow::bail!("Odoo has no transfer named {picking:?}: give a delivery's reference, e.g. WH/OUT/00012"),
        _ => anyhow::bail!("Odoo has {} transfers named {picking:?}", ids.len()),
    };
    match s.ship(id, true).await {
        Ok(Some(r)) => Ok(r),
        Ok(None) => anyhow::bail!("delivery {picking} is not ready in Odoo"),
        Err(e) => anyhow::bail!("{}", e.message),
    }
}
