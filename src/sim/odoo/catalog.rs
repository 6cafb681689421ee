//! The simulated Odoo's deterministic starting data: the admin user, partners, countries,
//! currencies, a warehouse, and a generated catalog of products with SKUs, barcodes, English
//! and Arabic names, categories, prices and stock. Same seed, same data.

use super::world::{World, LOC_CUSTOMERS, LOC_INVENTORY, LOC_STOCK};
use crate::odoo::Value;
use rand::{Rng, SeedableRng};

const EN_ADJ: &[&str] = &[
    "Classic", "Fresh", "Premium", "Golden", "Family", "Light", "Spicy", "Crispy", "Royal",
    "Natural",
];
const EN_NOUN: &[(&str, &str)] = &[
    ("Cola 330ml", "كولا ٣٣٠ مل"),
    ("Orange Juice 1L", "عصير برتقال ١ لتر"),
    ("Rice 5kg", "أرز ٥ كجم"),
    ("Sunflower Oil 1.5L", "زيت عباد الشمس ١٫٥ لتر"),
    ("Sugar 1kg", "سكر ١ كجم"),
    ("Black Tea 100 bags", "شاي أسود ١٠٠ كيس"),
    ("Pasta 400g", "مكرونة ٤٠٠ جم"),
    ("Cheese 500g", "جبنة ٥٠٠ جم"),
    ("Biscuits 12 pack", "بسكويت ١٢ قطعة"),
    ("Mineral Water 1.5L", "مياه معدنية ١٫٥ لتر"),
    ("Coffee 250g", "قهوة ٢٥٠ جم"),
    ("Dates 1kg", "تمر ١ كجم"),
];
const AR_ADJ: &[&str] = &[
    "كلاسيك",
    "طازج",
    "ممتاز",
    "ذهبي",
    "عائلي",
    "لايت",
    "حار",
    "مقرمش",
    "ملكي",
    "طبيعي",
];
const CATEGORIES: &[&str] = &["Beverages", "Grocery", "Dairy", "Snacks", "Household"];

/// EAN-13 check digit over 12 digits.
fn ean13(body: u64) -> String {
    let digits: Vec<u32> = format!("{body:012}")
        .chars()
        .map(|c| c.to_digit(10).unwrap_or(0))
        .collect();
    let sum: u32 = digits
        .iter()
        .enumerate()
        .map(|(i, d)| if i % 2 == 0 { *d } else { d * 3 })
        .sum();
    format!("{body:012}{}", (10 - sum % 10) % 10)
}

fn rec(pairs: &[(&str, Value)]) -> super::world::Rec {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

/// Fills an empty world with `products` products from `seed`.
pub fn populate(w: &mut World, products: usize, seed: u64) {
    let s = |v: &str| Value::String(v.to_string());
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    // Countries and currencies (EGP is the company currency, as for a Cartona supplier).
    for (id, name, code) in [
        (65, "Egypt", "EG"),
        (121, "Kuwait", "KW"),
        (192, "Saudi Arabia", "SA"),
        (2, "United Arab Emirates", "AE"),
    ] {
        w.insert(
            "res.country",
            id,
            rec(&[("name", s(name)), ("code", s(code))]),
        );
    }
    for (id, name, symbol, places, active) in [
        (1, "EGP", "LE", 2, true),
        (2, "USD", "$", 2, false),
        (3, "KWD", "KD", 3, false),
        (4, "EUR", "€", 2, false),
    ] {
        w.insert(
            "res.currency",
            id,
            rec(&[
                ("name", s(name)),
                ("symbol", s(symbol)),
                ("decimal_places", Value::Int(places)),
                ("rounding", Value::Double(10f64.powi(-(places as i32)))),
                ("active", Value::Bool(active)),
            ]),
        );
    }
    for (id, name, code) in [(1, "English (US)", "en_US"), (2, "Arabic", "ar_001")] {
        w.insert(
            "res.lang",
            id,
            rec(&[
                ("name", s(name)),
                ("code", s(code)),
                ("active", Value::Bool(true)),
            ]),
        );
    }
    w.insert(
        "res.partner",
        1,
        rec(&[
            ("name", s("My Company")),
            ("is_company", Value::Bool(true)),
            ("active", Value::Bool(true)),
            ("country_id", Value::Int(65)),
            ("street", s("12 Industrial Zone")),
            ("city", s("Cairo")),
            ("phone", s("+20221234567")),
        ]),
    );
    w.insert(
        "res.partner",
        2,
        rec(&[("name", s("OdooBot")), ("active", Value::Bool(false))]),
    );
    w.insert(
        "res.partner",
        3,
        rec(&[
            ("name", s("Mitchell Admin")),
            ("email", s("admin@yourcompany.example.com")),
            ("active", Value::Bool(true)),
            ("parent_id", Value::Int(1)),
        ]),
    );
    w.insert(
        "res.users",
        1,
        rec(&[
            ("name", s("OdooBot")),
            ("login", s("__system__")),
            ("partner_id", Value::Int(2)),
            ("active", Value::Bool(false)),
        ]),
    );
    w.insert(
        "res.users",
        2,
        rec(&[
            ("name", s("Mitchell Admin")),
            ("login", s("admin")),
            ("partner_id", Value::Int(3)),
            ("active", Value::Bool(true)),
            ("lang", s("en_US")),
            ("tz", s("Africa/Cairo")),
            ("company_id", Value::Int(1)),
            (
                "company_ids",
                Value::Array(vec![Value::Int(1), Value::Int(2)]),
            ),
        ]),
    );
    // Its books are in EGP, the currency Cartona sells in.
    w.insert(
        "res.company",
        1,
        rec(&[("name", s("My Company")), ("currency_id", Value::Int(1))]),
    );
    // A second company, as Odoo's demo data has (fixtures/odoo17/companies.json).
    w.insert(
        "res.company",
        2,
        rec(&[
            ("name", s("My Company (Chicago)")),
            ("currency_id", Value::Int(1)),
        ]),
    );
    // The key the integration uses, made without a duration (as the real setups make it).
    w.add_api_key("sync-daemon", None);
    let retailers = [
        ("سوبر ماركت الأمل", "Cairo"),
        ("بقالة النور", "Giza"),
        ("ماركت السلام", "Alexandria"),
        ("حياه ماركت", "Cairo"),
        ("Fresh Corner Market", "Mansoura"),
    ];
    for (i, (name, city)) in retailers.iter().enumerate() {
        w.insert(
            "res.partner",
            10 + i as i64,
            rec(&[
                ("name", s(name)),
                ("city", s(city)),
                ("country_id", Value::Int(65)),
                ("phone", s(&format!("+2010{:08}", 1000 + i))),
                ("active", Value::Bool(true)),
                ("customer_rank", Value::Int(1)),
            ]),
        );
    }
    w.insert("uom.uom", 1, rec(&[("name", s("Units"))]));
    w.insert(
        "product.pricelist",
        1,
        rec(&[
            ("name", s("Default")),
            ("currency_id", Value::Int(1)),
            ("active", Value::Bool(true)),
        ]),
    );
    for (id, name, usage, parent) in [
        (1, "Physical Locations", "view", 0),
        (2, "Partners", "view", 0),
        (3, "Virtual Locations", "view", 0),
        (7, "WH", "view", 1),
        (LOC_STOCK, "Stock", "internal", 7),
        (LOC_CUSTOMERS, "Customers", "customer", 2),
        (LOC_INVENTORY, "Inventory adjustment", "inventory", 3),
    ] {
        let mut r = rec(&[
            ("name", s(name)),
            ("usage", s(usage)),
            ("active", Value::Bool(true)),
        ]);
        if parent > 0 {
            r.insert("location_parent".into(), Value::Int(parent));
        }
        w.insert("stock.location", id, r);
    }
    w.insert(
        "stock.warehouse",
        1,
        rec(&[
            ("name", s("Main Warehouse")),
            ("code", s("WH")),
            ("lot_stock_id", Value::Int(LOC_STOCK)),
            ("active", Value::Bool(true)),
            ("partner_id", Value::Int(1)),
        ]),
    );
    for (id, name, code) in [
        (1, "Receipts", "incoming"),
        (2, "Delivery Orders", "outgoing"),
    ] {
        w.insert(
            "stock.picking.type",
            id,
            rec(&[
                ("name", s(name)),
                ("code", s(code)),
                ("warehouse_id", Value::Int(1)),
            ]),
        );
    }
    w.insert("product.category", 1, rec(&[("name", s("All"))]));
    for (i, name) in CATEGORIES.iter().enumerate() {
        w.insert(
            "product.category",
            2 + i as i64,
            rec(&[("name", s(name)), ("parent_id", Value::Int(1))]),
        );
    }
    let storable = |w: &World, r: &mut super::world::Rec| {
        if w.major >= 18 {
            r.insert("type".into(), s("consu"));
            r.insert("is_storable".into(), Value::Bool(true));
        } else {
            r.insert("type".into(), s("product"));
            r.insert("detailed_type".into(), s("product"));
        }
    };
    for n in 1..=products {
        let id = n as i64;
        let adj = rng.random_range(0..EN_ADJ.len());
        let (noun_en, noun_ar) = EN_NOUN[rng.random_range(0..EN_NOUN.len())];
        let cents: i64 = rng.random_range(500..50_000);
        let price = cents as f64 / 100.0;
        let cost = ((cents * 6 / 10) as f64) / 100.0;
        let mut r = rec(&[
            ("name", s(&format!("{} {noun_en}", EN_ADJ[adj]))),
            ("name@ar", s(&format!("{noun_ar} {}", AR_ADJ[adj]))),
            ("default_code", s(&format!("SKU-{n:05}"))),
            ("barcode", s(&ean13(622_000_000_000 + n as u64))),
            ("list_price", Value::Double(price)),
            ("standard_price", Value::Double(cost)),
            ("active", Value::Bool(true)),
            ("sale_ok", Value::Bool(true)),
            ("product_tmpl_id", Value::Int(id)),
            (
                "categ_id",
                Value::Int(2 + rng.random_range(0..CATEGORIES.len() as i64)),
            ),
            ("uom_id", Value::Int(1)),
            (
                "weight",
                Value::Double(rng.random_range(1..50) as f64 / 10.0),
            ),
            (
                "description_sale",
                if n % 3 == 0 {
                    Value::Bool(false)
                } else {
                    s(&format!("{} {noun_en}, sold by the unit.", EN_ADJ[adj]))
                },
            ),
            ("currency_id", Value::Int(1)),
        ]);
        storable(w, &mut r);
        w.insert(
            "product.template",
            id,
            rec(&[
                ("name", r["name"].clone()),
                ("active", Value::Bool(true)),
                ("list_price", Value::Double(price)),
            ]),
        );
        w.insert("product.product", id, r);
        let qty = if n % 10 == 0 {
            0.0
        } else {
            rng.random_range(1..200) as f64
        };
        w.insert(
            "stock.quant",
            id,
            rec(&[
                ("product_id", Value::Int(id)),
                ("location_id", Value::Int(LOC_STOCK)),
                ("quantity", Value::Double(qty)),
                ("reserved_quantity", Value::Double(0.0)),
            ]),
        );
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn barcodes_carry_a_valid_check_digit() {
        assert_eq!(super::ean13(400_638_133_393), "4006381333931");
    }
}
