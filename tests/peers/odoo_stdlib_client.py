"""Drives the Odoo simulator with Python's standard library only, as a third-party peer would:
xmlrpc.client for XML-RPC, urllib + json for JSON-RPC and JSON-2. Prints one JSON object of
observations; the Rust test asserts on it. Usage: odoo_stdlib_client.py URL"""
import json
import sys
import urllib.error
import urllib.request
import xmlrpc.client

url = sys.argv[1]
out = {}

common = xmlrpc.client.ServerProxy(url + "/xmlrpc/2/common")
out["version"] = common.version()
uid = common.authenticate("odoo", "admin", "admin", {})
out["uid"] = uid
out["bad_login"] = common.authenticate("odoo", "admin", "wrong", {})

obj = xmlrpc.client.ServerProxy(url + "/xmlrpc/2/object")
out["products"] = obj.execute_kw("odoo", uid, "admin", "product.product", "search_read",
                                 [[["id", ">", 0]]], {"fields": ["default_code", "barcode", "list_price", "categ_id", "description_sale", "write_date"], "limit": 3, "order": "id"})
out["arabic_name"] = obj.execute_kw("odoo", uid, "admin", "product.product", "read", [[1]], {"fields": ["name"], "context": {"lang": "ar_001"}})[0]["name"]
partner = obj.execute_kw("odoo", uid, "admin", "res.partner", "create", [{"name": "حياه ماركت & <co>"}])
out["partner_id"] = partner
out["partner_written"] = obj.execute_kw("odoo", uid, "admin", "res.partner", "write", [[partner], {"phone": "+201066313459"}])
out["partner"] = obj.execute_kw("odoo", uid, "admin", "res.partner", "read", [[partner]], {"fields": ["name", "phone", "email", "parent_id"]})[0]
order = obj.execute_kw("odoo", uid, "admin", "sale.order", "create",
                       [{"partner_id": partner, "client_order_ref": "CARTONA-632717520571",
                         "order_line": [[0, 0, {"product_id": 1, "product_uom_qty": 2, "price_unit": 200.0}]]}])
out["confirm"] = obj.execute_kw("odoo", uid, "admin", "sale.order", "action_confirm", [[order]])
out["order"] = obj.execute_kw("odoo", uid, "admin", "sale.order", "read", [[order]], {"fields": ["name", "state", "amount_total", "picking_ids"]})[0]
try:
    obj.execute_kw("odoo", uid, "admin", "sale.order", "action_confirm", [[order]])
except xmlrpc.client.Fault as f:
    out["fault_confirm_again"] = [f.faultCode, f.faultString]
try:
    obj.execute_kw("odoo", uid, "admin", "no.such.model", "search", [[]])
except xmlrpc.client.Fault as f:
    out["fault_bad_model"] = [f.faultCode, f.faultString]
try:
    obj.execute_kw("odoo", uid, "wrong", "res.partner", "search", [[]])
except xmlrpc.client.Fault as f:
    out["fault_wrong_password"] = [f.faultCode, f.faultString]


def post(path, body, headers):
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


status, reply = post("/jsonrpc", {"jsonrpc": "2.0", "method": "call", "id": 7, "params": {
    "service": "object", "method": "execute_kw",
    "args": ["odoo", uid, "admin", "res.partner", "search_read", [[["id", "=", partner]]], {"fields": ["name"]}]}},
    {"Content-Type": "application/json"})
out["jsonrpc"] = [status, reply]
status, reply = post("/jsonrpc", {"jsonrpc": "2.0", "method": "call", "id": 8, "params": {
    "service": "object", "method": "execute_kw", "args": ["odoo", uid, "admin", "no.such.model", "search", [[]]]}},
    {"Content-Type": "application/json"})
out["jsonrpc_fault"] = [status, reply["error"]["code"], reply["error"]["message"], reply["error"]["data"]["name"]]
if len(sys.argv) > 2 and sys.argv[2] == "json2":
    status, reply = post("/json/2/res.partner/search_read", {"domain": [["id", "=", partner]], "fields": ["name"]},
                         {"Content-Type": "application/json", "Authorization": "bearer admin", "X-Odoo-Database": "odoo"})
    out["json2"] = [status, reply]
    status, reply = post("/json/2/res.partner/search_read", {}, {"Content-Type": "application/json", "Authorization": "bearer nope"})
    out["json2_bad_key"] = [status, reply["name"], reply["message"]]
print(json.dumps(out, ensure_ascii=False))
