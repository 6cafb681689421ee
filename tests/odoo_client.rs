//! The Odoo client against the simulator, over XML-RPC, JSON-RPC and JSON-2: the same suite
//! for each protocol.

mod common;

use common::{odoo_config, odoo_sim, PROTOCOLS};
use marketsync::odoo::profile::{MoveQuantity, Profile, StorableField};
use marketsync::odoo::{Domain, OdooClient, OdooError, SearchOpts, Value};
use marketsync::retry::{Classify, RetryClass};
use marketsync::sim::faults::Fault;
use rust_decimal::Decimal;
use std::str::FromStr;
use std::time::Duration;

#[tokio::test]
async fn logs_in_and_reads_version_and_user_over_every_protocol() {
    let sim = odoo_sim(19, 10).await;
    for protocol in PROTOCOLS {
        let odoo = OdooClient::connect(&odoo_config(&sim.url(), protocol))
            .await
            .unwrap();
        assert_eq!(odoo.version().version, "19.0", "{protocol:?}");
        assert_eq!((odoo.version().major, odoo.uid()), (19, 2));
        assert_eq!(
            odoo.whoami().await.unwrap(),
            ("Mitchell Admin".to_string(), "admin".to_string())
        );
    }
}

#[tokio::test]
async fn a_wrong_key_is_a_clear_login_error_over_every_protocol() {
    let sim = odoo_sim(19, 1).await;
    for protocol in PROTOCOLS {
        let mut cfg = odoo_config(&sim.url(), protocol);
        cfg.api_key = marketsync::secret::Secret::new("not-the-key-42");
        let err = OdooClient::connect(&cfg)
            .await
            .err()
            .expect("login must fail");
        assert!(
            matches!(err, OdooError::LoginRejected { .. }),
            "{protocol:?}: {err:?}"
        );
        assert_eq!(err.to_string(), "Odoo rejected the login for user \"admin\" on database \"odoo\": check odoo.username and odoo.api_key");
        assert_eq!(err.retry_class(), RetryClass::Auth);
        assert!(!err.to_string().contains("not-the-key-42"));
    }
}

#[tokio::test]
async fn records_decode_as_odoo_means_them() {
    let sim = odoo_sim(19, 12).await;
    for protocol in PROTOCOLS {
        let odoo = OdooClient::connect(&odoo_config(&sim.url(), protocol))
            .await
            .unwrap();
        let rows = odoo
            .search_read(
                "product.product",
                &Domain::all().and("default_code", "in", vec!["SKU-00003", "SKU-00004"]),
                &[
                    "default_code",
                    "barcode",
                    "list_price",
                    "categ_id",
                    "description_sale",
                    "write_date",
                    "qty_available",
                ],
                SearchOpts {
                    order: Some("id".into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(rows.len(), 2, "{protocol:?}");
        let p3 = &rows[0];
        assert_eq!(
            p3.get("default_code").unwrap().as_opt_str(),
            Some("SKU-00003")
        );
        // Every third generated product has no sales description: Odoo's `false`, read as None.
        assert_eq!(p3.get("description_sale"), Some(&Value::Bool(false)));
        assert_eq!(p3.get("description_sale").unwrap().as_opt_str(), None);
        let (categ_id, categ_name) = p3.get("categ_id").unwrap().as_many2one().unwrap();
        assert!(
            categ_id > 1 && categ_name.starts_with("All / "),
            "{categ_name}"
        );
        assert!(p3.get("write_date").unwrap().as_datetime().is_some());
        let price = p3.get("list_price").unwrap().as_decimal().unwrap();
        let expected = sim.sim.world().get("product.product", 3).unwrap()["list_price"]
            .as_decimal()
            .unwrap();
        assert_eq!(price, expected);
        assert!(price.scale() <= 2, "{price}");
        assert!(
            matches!(p3.get("qty_available"), Some(Value::Double(_))),
            "floats stay floats"
        );
    }
}

#[tokio::test]
async fn arabic_names_come_through_the_lang_context() {
    let sim = odoo_sim(19, 3).await;
    for protocol in PROTOCOLS {
        let odoo = OdooClient::connect(&odoo_config(&sim.url(), protocol))
            .await
            .unwrap();
        let opts = SearchOpts {
            context: vec![("lang".into(), "ar_001".into())],
            ..Default::default()
        };
        let rows = odoo
            .search_read(
                "product.product",
                &Domain::all().and("id", "=", 1),
                &["name"],
                opts,
            )
            .await
            .unwrap();
        let name = rows[0].get("name").unwrap().as_str().unwrap();
        assert!(
            name.chars().any(|c| ('\u{0600}'..='\u{06FF}').contains(&c)),
            "{protocol:?}: {name}"
        );
    }
}

#[tokio::test]
async fn create_many_write_read_count_unlink_and_fields_get() {
    let sim = odoo_sim(19, 3).await;
    for protocol in PROTOCOLS {
        let odoo = OdooClient::connect(&odoo_config(&sim.url(), protocol))
            .await
            .unwrap();
        let tag = format!("test:{}", protocol.as_str());
        let ids = odoo
            .create(
                "res.partner",
                vec![
                    Value::record([
                        ("name", Value::from("بقالة & <شركاه>")),
                        ("ref", Value::from(tag.as_str())),
                    ]),
                    Value::record([
                        ("name", Value::from("Retailer Two")),
                        ("ref", Value::from(tag.as_str())),
                    ]),
                ],
            )
            .await
            .unwrap();
        assert_eq!(ids.len(), 2);
        assert_eq!(
            odoo.search_count("res.partner", &Domain::all().and("ref", "=", tag.as_str()))
                .await
                .unwrap(),
            2
        );
        odoo.write(
            "res.partner",
            &ids[..1],
            Value::record([("phone", Value::from("+201066313459"))]),
        )
        .await
        .unwrap();
        let rows = odoo
            .read("res.partner", &ids, &["name", "phone", "email"])
            .await
            .unwrap();
        assert_eq!(
            rows[0].get("name").unwrap().as_str(),
            Some("بقالة & <شركاه>")
        );
        assert_eq!(
            rows[0].get("phone").unwrap().as_opt_str(),
            Some("+201066313459")
        );
        assert_eq!(rows[1].get("email").unwrap().as_opt_str(), None);
        odoo.unlink("res.partner", &ids[1..]).await.unwrap();
        assert_eq!(
            odoo.search(
                "res.partner",
                &Domain::all().and("ref", "=", tag.as_str()),
                None
            )
            .await
            .unwrap(),
            ids[..1].to_vec()
        );
        let fields = odoo
            .fields_get("sale.order", &["type", "relation"])
            .await
            .unwrap();
        assert_eq!(
            fields
                .get("partner_id")
                .unwrap()
                .get("relation")
                .unwrap()
                .as_str(),
            Some("res.partner")
        );
    }
}

#[tokio::test]
async fn order_flow_and_typed_faults_over_every_protocol() {
    let sim = odoo_sim(19, 5).await;
    for protocol in PROTOCOLS {
        let odoo = OdooClient::connect(&odoo_config(&sim.url(), protocol))
            .await
            .unwrap();
        let order = odoo
            .create(
                "sale.order",
                vec![Value::from(serde_json::json!({
                    "partner_id": 10,
                    "client_order_ref": format!("CARTONA-{}", protocol.as_str()),
                    "order_line": [[0, 0, {"product_id": 1, "product_uom_qty": 1, "price_unit": 10.5}]]
                }))],
            )
            .await
            .unwrap()[0];
        assert_eq!(
            odoo.call_method("sale.order", "action_confirm", &[order])
                .await
                .unwrap(),
            Value::Bool(true)
        );
        let again = odoo
            .call_method("sale.order", "action_confirm", &[order])
            .await
            .unwrap_err();
        assert!(
            matches!(&again, OdooError::Validation(m) if m.contains("not in a state requiring confirmation")),
            "{protocol:?}: {again:?}"
        );
        assert_eq!(again.retry_class(), RetryClass::Permanent);

        // A method that returns None: a fault over XML-RPC, no result over JSON-RPC; success all the same.
        let partner = odoo
            .create(
                "res.partner",
                vec![Value::record([("name", Value::from("to archive"))])],
            )
            .await
            .unwrap()[0];
        assert_eq!(
            odoo.call_method("res.partner", "action_archive", &[partner])
                .await
                .unwrap(),
            Value::Nil,
            "{protocol:?}"
        );
        assert!(
            odoo.search("res.partner", &Domain::all().and("id", "=", partner), None)
                .await
                .unwrap()
                .is_empty(),
            "archived records leave default searches"
        );

        let e = odoo
            .search_read("no.such.model", &Domain::all(), &[], SearchOpts::default())
            .await
            .unwrap_err();
        assert!(
            matches!(e, OdooError::UnknownModel(_)),
            "{protocol:?}: {e:?}"
        );
        let e = odoo
            .call_method("res.partner", "no_such_method", &[partner])
            .await
            .unwrap_err();
        assert!(
            matches!(e, OdooError::UnknownMethod(_)),
            "{protocol:?}: {e:?}"
        );
        let e = odoo
            .search_read(
                "product.product",
                &Domain::all().and("nofield", "=", 1),
                &[],
                SearchOpts::default(),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(e, OdooError::UnknownField(_)),
            "{protocol:?}: {e:?}"
        );
        let e = odoo
            .write(
                "res.partner",
                &[999_999],
                Value::record([("name", Value::from("x"))]),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(e, OdooError::MissingRecord(_)),
            "{protocol:?}: {e:?}"
        );
        let e = odoo
            .create(
                "sale.order",
                vec![Value::record([("client_order_ref", Value::from("x"))])],
            )
            .await
            .unwrap_err();
        assert!(
            matches!(&e, OdooError::Validation(m) if m.contains("partner_id")),
            "{protocol:?}: {e:?}"
        );
    }
}

#[tokio::test]
async fn large_reads_page_by_id_keyset() {
    let sim = odoo_sim(19, 2_500).await;
    for protocol in PROTOCOLS {
        let mut cfg = odoo_config(&sim.url(), protocol);
        cfg.page_size = 1000;
        let odoo = OdooClient::connect(&cfg).await.unwrap();
        let before = sim
            .sim
            .calls()
            .get("product.product.search_read")
            .copied()
            .unwrap_or(0);
        let mut pages = Vec::new();
        let mut last = 0;
        let total = odoo
            .search_read_pages(
                "product.product",
                &Domain::all(),
                &["default_code"],
                vec![],
                |page| {
                    let first = page[0].get("id").unwrap().as_i64().unwrap();
                    assert!(first > last, "pages come in id order without overlap");
                    last = page.last().unwrap().get("id").unwrap().as_i64().unwrap();
                    pages.push(page.len());
                    Ok(())
                },
            )
            .await
            .unwrap();
        assert_eq!(total, 2_500);
        assert_eq!(pages, vec![1000, 1000, 500]);
        let after = sim.sim.calls()["product.product.search_read"];
        assert_eq!(after - before, 3, "one call per page");
    }
}

#[tokio::test]
async fn calls_in_flight_never_exceed_the_limit() {
    let sim = odoo_sim(17, 3).await;
    let mut cfg = odoo_config(&sim.url(), marketsync::config::OdooProtocol::Xmlrpc);
    cfg.max_concurrent_calls = 2;
    let odoo = OdooClient::connect(&cfg).await.unwrap();
    sim.sim.faults.set_latency(Duration::from_millis(50));
    let calls: Vec<_> = (0..10)
        .map(|_| {
            let odoo = odoo.clone();
            tokio::spawn(async move { odoo.search_count("product.product", &Domain::all()).await })
        })
        .collect();
    for c in calls {
        assert_eq!(c.await.unwrap().unwrap(), 3);
    }
    assert_eq!(sim.sim.max_in_flight(), 2);
}

#[tokio::test]
async fn timeouts_drops_refusals_and_proxy_errors_are_transient() {
    let mut sim = odoo_sim(17, 3).await;
    let mut cfg = odoo_config(&sim.url(), marketsync::config::OdooProtocol::Xmlrpc);
    cfg.timeout = Duration::from_millis(300);
    let odoo = OdooClient::connect(&cfg).await.unwrap();
    let all = Domain::all();
    let probe = || odoo.search_count("res.partner", &all);

    sim.sim.faults.push([Fault::Delay(Duration::from_secs(2))]);
    let e = probe().await.unwrap_err();
    assert!(
        matches!(e, OdooError::Timeout(d) if d == Duration::from_millis(300)),
        "{e:?}"
    );
    assert_eq!(e.retry_class(), RetryClass::Transient);

    sim.sim.faults.push([Fault::Drop]);
    let e = probe().await.unwrap_err();
    assert!(matches!(e, OdooError::Connection { .. }), "{e:?}");
    assert!(e.is_unreachable());

    sim.sim.faults.push([Fault::BadGateway]);
    let e = probe().await.unwrap_err();
    assert!(matches!(e, OdooError::Http { status: 502, .. }), "{e:?}");
    assert_eq!(e.retry_class(), RetryClass::Transient);

    sim.stop().await;
    let e = probe().await.unwrap_err();
    assert!(
        matches!(e, OdooError::Connection { .. }) && e.retry_class() == RetryClass::Transient,
        "{e:?}"
    );
    sim.restart().await.unwrap();
    assert!(probe().await.unwrap() > 0, "works again once Odoo is back");
}

#[tokio::test]
async fn version_differences_are_looked_up_with_fields_get() {
    for (major, storable, moves) in [
        (16, StorableField::DetailedType, MoveQuantity::QuantityDone),
        (
            17,
            StorableField::DetailedType,
            MoveQuantity::QuantityPicked,
        ),
        (19, StorableField::IsStorable, MoveQuantity::QuantityPicked),
    ] {
        let sim = odoo_sim(major, 1).await;
        let odoo = OdooClient::connect(&odoo_config(
            &sim.url(),
            marketsync::config::OdooProtocol::Jsonrpc,
        ))
        .await
        .unwrap();
        let profile = Profile::detect(&odoo).await.unwrap();
        assert_eq!(
            (profile.storable, profile.move_quantity),
            (storable, moves),
            "Odoo {major}"
        );
    }
}

#[test]
fn prices_read_as_exact_decimals() {
    assert_eq!(
        Value::Double(3900.0).as_decimal().unwrap(),
        Decimal::from(3900)
    );
    assert_eq!(
        Value::Double(12.9).as_decimal().unwrap(),
        Decimal::from_str("12.9").unwrap()
    );
}

/// A full catalog read as the channels do it, `reads_in_flight` pages at a time.
fn catalog_reader(odoo: OdooClient) -> marketsync::sync::catalog::CatalogReader {
    marketsync::sync::catalog::CatalogReader {
        odoo,
        stock_field: "free_qty".into(),
        warehouse_id: None,
        pricelist_id: None,
        currency: None,
        extra_fields: Vec::new(),
        filter: None,
        known_rules: Default::default(),
        currency_guard: Default::default(),
        company_currency: Default::default(),
        config_key: "channels.cartona",
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_read_asks_for_the_next_page_before_handling_this_one_and_no_more() {
    let sim = odoo_sim(17, 45).await;
    for in_flight in [1, 2] {
        let mut cfg = odoo_config(&sim.url(), marketsync::config::OdooProtocol::Xmlrpc);
        cfg.page_size = 10;
        cfg.max_concurrent_calls = 4;
        cfg.reads_in_flight = in_flight;
        let odoo = OdooClient::connect(&cfg).await.unwrap();
        let reader = catalog_reader(odoo);
        sim.sim.faults.set_latency(Duration::from_millis(20));
        let before = sim.sim.max_in_flight();
        assert!(before <= 1, "only sequential calls so far");
        let mut pages = Vec::new();
        let total = reader
            .read_all(|page| {
                // Every page but the last: the next one's request is already at Odoo while
                // this one is handled.
                if page.last().map(|p| p.id) != Some(45) {
                    let end = std::time::Instant::now() + Duration::from_secs(10);
                    while sim.sim.in_flight() == 0 {
                        assert!(
                            std::time::Instant::now() < end,
                            "the next page was not asked for while page {} was handled",
                            pages.len() + 1
                        );
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
                pages.push(page.len());
            })
            .await
            .unwrap();
        sim.sim.faults.set_latency(Duration::ZERO);
        assert_eq!(total, 45);
        assert_eq!(pages, vec![10, 10, 10, 10, 5]);
        assert_eq!(
            sim.sim.max_in_flight(),
            in_flight,
            "at most reads_in_flight pages at Odoo at once"
        );
    }
}

/// The variant reads of the Meta channel, held to real servers (`fixtures/odoo17/variants.json`,
/// `fixtures/odoo19/variants.json`): the attribute values' fields as Odoo 17 and 19 define them
/// (labels, types, relations), and a variant's values read as `[id, "Attribute"]` pairs.
#[tokio::test]
async fn attribute_values_read_as_a_real_odoo_17_and_19_define_them() {
    for (major, dir) in [(17, "odoo17"), (19, "odoo19")] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures")
            .join(dir)
            .join("variants.json");
        let recorded: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let sim = odoo_sim(major, 2).await;
        sim.sim
            .world()
            .set_variant_values(1, &[("Color", "White", None), ("Legs", "Steel", None)])
            .unwrap();
        let odoo = OdooClient::connect(&odoo_config(
            &sim.url(),
            marketsync::config::OdooProtocol::Jsonrpc,
        ))
        .await
        .unwrap();
        for (model, key) in [
            (
                "product.template.attribute.value",
                "fields_get product.template.attribute.value",
            ),
            ("product.product", "fields_get product.product"),
        ] {
            let ours = serde_json::Value::from(
                odoo.fields_get(model, &["type", "relation", "string"])
                    .await
                    .unwrap(),
            );
            let fields = [
                "name",
                "attribute_id",
                "price_extra",
                "product_template_attribute_value_ids",
            ];
            for (field, theirs) in recorded[key].as_object().unwrap() {
                if !fields.contains(&field.as_str()) {
                    continue;
                }
                for attr in ["type", "relation", "string"] {
                    assert_eq!(
                        ours[field][attr], theirs[attr],
                        "Odoo {major} {model}.{field} {attr}"
                    );
                }
            }
        }
        let read = |model: &'static str, domain: Domain, fields: &'static [&'static str]| {
            let odoo = odoo.clone();
            async move {
                let rows = odoo
                    .search_read(model, &domain, fields, SearchOpts::default())
                    .await
                    .unwrap();
                serde_json::Value::from(Value::Array(rows))
            }
        };
        let variant = read(
            "product.product",
            Domain::all().and("id", "=", 1),
            &["product_template_attribute_value_ids"],
        )
        .await;
        let ids: Vec<Value> = variant[0]["product_template_attribute_value_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| Value::Int(v.as_i64().unwrap()))
            .collect();
        assert_eq!(ids.len(), 2, "Odoo {major}");
        let values = read(
            "product.template.attribute.value",
            Domain::all().and("id", "in", Value::Array(ids)),
            &["name", "attribute_id"],
        )
        .await;
        let real = &recorded["search_read product.template.attribute.value"]["answer"][0];
        for v in values.as_array().unwrap() {
            assert!(v["name"].is_string(), "{v}");
            assert!(
                v["attribute_id"][0].is_i64() && v["attribute_id"][1].is_string(),
                "a [id, name] pair as recorded ({}): {v}",
                real["attribute_id"]
            );
        }
        assert_eq!(values.as_array().unwrap().len(), 2, "Odoo {major}");
    }
}
