//! Property tests standing in for fuzz targets (they run in `cargo test`, on stable, with no
//! extra tooling): the parsers that read what strangers send — the XML-RPC decoder, the Medusa
//! webhook parser and signature check, Cartona's order parser — take arbitrary and mangled
//! input without panicking, and refuse what they cannot use with a reason.

use marketsync::channel::cartona::wire::Order;
use marketsync::channel::medusa::{receive_event, ReceiveError};
use marketsync::odoo::value::Value;
use marketsync::odoo::xmlrpc_codec::{decode_call, decode_response, encode_response};
use marketsync::store::{inbox, Store};
use proptest::prelude::*;

/// Any JSON value, nested a few levels, with keys that the parsers look for mixed in.
fn arb_json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(|n| serde_json::json!(n)),
        any::<f64>().prop_map(|f| serde_json::json!(f)),
        "\\PC{0,24}".prop_map(serde_json::Value::String),
        Just(serde_json::json!("")),
    ];
    let key = prop_oneof![
        Just("id".to_string()),
        Just("order".to_string()),
        Just("order_id".to_string()),
        Just("customer".to_string()),
        Just("new_status".to_string()),
        Just("hashed_id".to_string()),
        Just("status".to_string()),
        Just("order_details".to_string()),
        Just("total_price".to_string()),
        Just("amount".to_string()),
        "[a-z_]{1,12}",
    ];
    leaf.prop_recursive(5, 64, 6, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(serde_json::Value::Array),
            proptest::collection::btree_map(key.clone(), inner, 0..6)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn event_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("order.created".to_string()),
        Just("order.placed".to_string()),
        Just("order.status_updated".to_string()),
        Just("customer.created".to_string()),
        Just("customer.updated".to_string()),
        "\\PC{0,40}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn xmlrpc_decoder_takes_arbitrary_text(text in "\\PC{0,400}") {
        let _ = decode_response(&text);
        let _ = decode_call(&text);
    }

    #[test]
    fn xmlrpc_decoder_takes_mangled_answers(
        n in any::<i64>(),
        s in "\\PC{0,30}",
        cut in any::<prop::sample::Index>(),
        flip in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let value = Value::Array(vec![Value::Int(n), Value::String(s), Value::Struct(vec![("k".into(), Value::Bool(true))])]);
        let xml = encode_response(&Ok(value));
        // Truncated anywhere.
        let at = cut.index(xml.len());
        let truncated = String::from_utf8_lossy(&xml.as_bytes()[..at]).into_owned();
        let _ = decode_response(&truncated);
        // One byte changed anywhere.
        let mut bytes = xml.into_bytes();
        let i = flip.index(bytes.len());
        bytes[i] = byte;
        let _ = decode_response(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn medusa_webhooks_of_any_shape_are_stored_or_refused_with_a_reason(
        event in event_name(),
        body in arb_json(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        match receive_event(&store, &event, &body) {
            Ok(_) => {
                let stored = inbox::list(&store, None, 10).unwrap();
                prop_assert_eq!(stored.len(), 1);
                prop_assert!(event.starts_with("order.") || event.starts_with("customer."));
            }
            Err(ReceiveError::Invalid(why)) => {
                prop_assert!(!why.is_empty());
                prop_assert!(why.len() < 400, "the reason stays short: {}", why);
                prop_assert!(inbox::list(&store, None, 10).unwrap().is_empty());
            }
            Err(ReceiveError::Storage(e)) => prop_assert!(false, "storage error on a fresh state: {e}"),
        }
    }

    #[test]
    fn cartona_orders_of_any_shape_parse_or_give_a_reason(raw in arb_json()) {
        if let Err(why) = Order::parse(&raw) {
            prop_assert!(!why.to_string().is_empty());
        }
    }

    #[test]
    fn signature_headers_of_any_shape_are_refused_without_panicking(
        header in "\\PC{0,200}",
        body in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let verdict = marketsync::webhook::signature::verify(b"secret-0123456789", Some(&header), &body, 1_700_000_000, 300);
        prop_assert!(verdict.is_err());
    }
}

#[test]
fn deeply_nested_xmlrpc_is_refused_not_a_stack_overflow() {
    let depth = 100_000;
    let xml = format!(
        "<?xml version=\"1.0\"?><methodResponse><params><param>{}{}</param></params></methodResponse>",
        "<value><array><data>".repeat(depth),
        "</data></array></value>".repeat(depth)
    );
    assert!(decode_response(&xml).is_err());
}
