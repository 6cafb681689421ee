//! The Odoo simulator is a peer, not a mirror of our client: Python's standard library
//! (`xmlrpc.client`, `urllib`) drives it as any third-party integration would.

mod common;

use std::process::Command;

#[tokio::test]
async fn python_standard_clients_work_against_the_simulator() {
    let sim = common::odoo_sim(19, 10).await;
    let url = sim.url();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/peers/odoo_stdlib_client.py"
    );
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .args([script, &url, "json2"])
            .output()
    })
    .await
    .unwrap()
    .expect("python3 runs (it is on every machine this project builds on)");
    assert!(
        out.status.success(),
        "python client failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    assert_eq!(v["version"]["server_version"], "19.0");
    assert_eq!(
        v["version"]["server_version_info"],
        serde_json::json!([19, 0, 0, "final", 0, ""])
    );
    assert_eq!(
        (v["uid"].clone(), v["bad_login"].clone()),
        (serde_json::json!(2), serde_json::json!(false))
    );
    let p = &v["products"][0];
    assert_eq!(p["default_code"], "SKU-00001");
    assert!(p["list_price"].is_f64() && p["categ_id"][1].as_str().unwrap().starts_with("All / "));
    assert!(v["arabic_name"]
        .as_str()
        .unwrap()
        .chars()
        .any(|c| ('\u{0600}'..='\u{06FF}').contains(&c)));
    assert_eq!(v["partner"]["name"], "حياه ماركت & <co>");
    assert_eq!(v["partner"]["phone"], "+201066313459");
    assert_eq!(
        (
            v["partner"]["email"].clone(),
            v["partner"]["parent_id"].clone()
        ),
        (serde_json::json!(false), serde_json::json!(false))
    );
    assert_eq!(v["confirm"], true);
    assert_eq!(v["order"]["name"], "S00001");
    assert_eq!(v["order"]["state"], "sale");
    assert_eq!(v["order"]["picking_ids"].as_array().unwrap().len(), 1);
    assert_eq!(
        v["fault_confirm_again"],
        serde_json::json!([2, "Some orders are not in a state requiring confirmation."])
    );
    assert_eq!(
        v["fault_bad_model"],
        serde_json::json!([2, "Object no.such.model doesn't exist"])
    );
    assert_eq!(
        v["fault_wrong_password"],
        serde_json::json!([3, "Access Denied"])
    );
    assert_eq!(v["jsonrpc"][0], 200);
    assert_eq!(v["jsonrpc"][1]["result"][0]["name"], "حياه ماركت & <co>");
    assert_eq!(
        v["jsonrpc_fault"],
        serde_json::json!([200, 0, "Odoo Server Error", "odoo.exceptions.UserError"])
    );
    assert_eq!(v["json2"][0], 200);
    assert_eq!(v["json2"][1][0]["name"], "حياه ماركت & <co>");
    assert_eq!(
        v["json2_bad_key"],
        serde_json::json!([401, "werkzeug.exceptions.Unauthorized", "Invalid apikey"])
    );
}
