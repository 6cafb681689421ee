//! The XML-RPC codec: method calls and responses, faults included, over the whole value set
//! Odoo uses. Written on quick-xml (see README, "Dependencies") so the client and the Odoo
//! simulator share one faithful implementation.

use super::value::Value;
use base64::Engine;
use quick_xml::events::Event;
use quick_xml::Reader;
use std::fmt::Write as _;

/// An XML-RPC fault as sent by the server.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    /// An int on `/xmlrpc/2/*`; the legacy `/xmlrpc/*` sends strings, kept as `Value::String`.
    pub code: Value,
    pub string: String,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("malformed XML-RPC: {0}")]
pub struct CodecError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, CodecError> {
    Err(CodecError(msg.into()))
}

// ------------------------------------------------------------------------------------------
// Encoding
// ------------------------------------------------------------------------------------------

fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            // XML 1.0 cannot carry most control characters; keep the ones it can.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {
                let _ = write!(out, "&#{};", c as u32);
            }
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
}

fn encode_value(out: &mut String, v: &Value) {
    out.push_str("<value>");
    match v {
        Value::Nil => out.push_str("<nil/>"),
        Value::Bool(b) => {
            let _ = write!(out, "<boolean>{}</boolean>", u8::from(*b));
        }
        Value::Int(i) if i32::try_from(*i).is_ok() => {
            let _ = write!(out, "<int>{i}</int>");
        }
        Value::Int(i) => {
            let _ = write!(out, "<i8>{i}</i8>");
        }
        Value::Double(d) => {
            let _ = write!(out, "<double>{d:?}</double>");
        }
        Value::String(s) => {
            out.push_str("<string>");
            escape_into(out, s);
            out.push_str("</string>");
        }
        Value::DateTime(s) => {
            out.push_str("<dateTime.iso8601>");
            escape_into(out, s);
            out.push_str("</dateTime.iso8601>");
        }
        Value::Base64(b) => {
            out.push_str("<base64>");
            out.push_str(&base64::engine::general_purpose::STANDARD.encode(b));
            out.push_str("</base64>");
        }
        Value::Array(items) => {
            out.push_str("<array><data>\n");
            for item in items {
                encode_value(out, item);
                out.push('\n');
            }
            out.push_str("</data></array>");
        }
        Value::Struct(members) => {
            out.push_str("<struct>\n");
            for (name, value) in members {
                out.push_str("<member>\n<name>");
                escape_into(out, name);
                out.push_str("</name>\n");
                encode_value(out, value);
                out.push_str("\n</member>\n");
            }
            out.push_str("</struct>");
        }
    }
    out.push_str("</value>");
}

/// Encodes a `methodCall`.
pub fn encode_call(method: &str, params: &[Value]) -> String {
    let mut out = String::with_capacity(256);
    out.push_str("<?xml version='1.0'?>\n<methodCall>\n<methodName>");
    escape_into(&mut out, method);
    out.push_str("</methodName>\n<params>\n");
    for p in params {
        out.push_str("<param>\n");
        encode_value(&mut out, p);
        out.push_str("\n</param>\n");
    }
    out.push_str("</params>\n</methodCall>\n");
    out
}

/// Encodes a `methodResponse`: a value, or a fault.
pub fn encode_response(result: &Result<Value, Fault>) -> String {
    let mut out = String::with_capacity(256);
    out.push_str("<?xml version='1.0'?>\n<methodResponse>\n");
    match result {
        Ok(v) => {
            out.push_str("<params>\n<param>\n");
            encode_value(&mut out, v);
            out.push_str("\n</param>\n</params>\n");
        }
        Err(f) => {
            out.push_str("<fault>\n");
            encode_value(
                &mut out,
                &Value::record([
                    ("faultCode", f.code.clone()),
                    ("faultString", Value::String(f.string.clone())),
                ]),
            );
            out.push_str("\n</fault>\n");
        }
    }
    out.push_str("</methodResponse>\n");
    out
}

// ------------------------------------------------------------------------------------------
// Decoding
// ------------------------------------------------------------------------------------------

/// A tag name: XML-RPC's own names are not allocated (a page of 1,000 products has ~50,000 tags).
type Name = std::borrow::Cow<'static, str>;

fn intern(raw: &[u8]) -> Name {
    const KNOWN: &[&str] = &[
        "value",
        "string",
        "int",
        "i4",
        "i8",
        "double",
        "boolean",
        "struct",
        "member",
        "name",
        "array",
        "data",
        "nil",
        "dateTime.iso8601",
        "base64",
        "params",
        "param",
        "methodResponse",
        "methodCall",
        "methodName",
        "fault",
    ];
    match KNOWN.iter().find(|k| k.as_bytes() == raw) {
        Some(k) => Name::Borrowed(k),
        None => Name::Owned(String::from_utf8_lossy(raw).into_owned()),
    }
}

#[derive(Debug)]
enum Tok {
    Open(Name),
    Close(Name),
    Text(String),
}

/// Flattens the XML into open/close/text tokens, with entity references resolved and
/// adjacent text merged, so the grammar below stays simple.
fn tokenize(xml: &str) -> Result<Vec<Tok>, CodecError> {
    let mut reader = Reader::from_str(xml);
    let mut toks = Vec::new();
    let mut text = String::new();
    let mut depth: usize = 0;
    loop {
        let ev = reader
            .read_event()
            .map_err(|e| CodecError(format!("at byte {}: {e}", reader.buffer_position())))?;
        match ev {
            Event::Start(e) => {
                // Text before an opening tag is layout (a value's own text ends at a close).
                flush_unless_blank(&mut toks, &mut text);
                depth += 1;
                if depth > 512 {
                    return err("nesting deeper than 512 levels");
                }
                toks.push(Tok::Open(intern(e.name().as_ref())));
            }
            Event::End(e) => {
                flush(&mut toks, &mut text);
                depth = depth.saturating_sub(1);
                toks.push(Tok::Close(intern(e.name().as_ref())));
            }
            Event::Empty(e) => {
                flush_unless_blank(&mut toks, &mut text);
                let name = intern(e.name().as_ref());
                toks.push(Tok::Open(name.clone()));
                toks.push(Tok::Close(name));
            }
            Event::Text(t) => {
                let s = t.decode().map_err(|e| CodecError(e.to_string()))?;
                text.push_str(&s);
            }
            Event::CData(t) => {
                let s = t.decode().map_err(|e| CodecError(e.to_string()))?;
                text.push_str(&s);
            }
            Event::GeneralRef(r) => {
                if r.is_char_ref() {
                    match r
                        .resolve_char_ref()
                        .map_err(|e| CodecError(e.to_string()))?
                    {
                        Some(c) => text.push(c),
                        None => return err("invalid character reference"),
                    }
                } else {
                    let name = r.decode().map_err(|e| CodecError(e.to_string()))?;
                    text.push(match name.as_ref() {
                        "amp" => '&',
                        "lt" => '<',
                        "gt" => '>',
                        "quot" => '"',
                        "apos" => '\'',
                        other => return err(format!("unknown entity &{other};")),
                    });
                }
            }
            Event::Eof => break,
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) | Event::DocType(_) => {}
        }
    }
    flush(&mut toks, &mut text);
    if depth != 0 {
        return err("document ends inside an element");
    }
    Ok(toks)
}

fn flush(toks: &mut Vec<Tok>, text: &mut String) {
    if !text.is_empty() {
        toks.push(Tok::Text(std::mem::take(text)));
    }
}

fn flush_unless_blank(toks: &mut Vec<Tok>, text: &mut String) {
    if text.trim().is_empty() {
        text.clear();
    } else {
        flush(toks, text);
    }
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    /// Skips whitespace-only text between elements.
    fn skip_ws(&mut self) {
        while let Some(Tok::Text(t)) = self.peek() {
            if t.trim().is_empty() {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    fn open(&mut self, name: &str) -> Result<(), CodecError> {
        self.skip_ws();
        match self.toks.get(self.pos) {
            Some(Tok::Open(n)) if n == name => {
                self.pos += 1;
                Ok(())
            }
            other => err(format!("expected <{name}>, found {}", describe(other))),
        }
    }

    fn close(&mut self, name: &str) -> Result<(), CodecError> {
        self.skip_ws();
        match self.toks.get(self.pos) {
            Some(Tok::Close(n)) if n == name => {
                self.pos += 1;
                Ok(())
            }
            other => err(format!("expected </{name}>, found {}", describe(other))),
        }
    }

    fn at_open(&mut self, name: &str) -> bool {
        self.skip_ws();
        matches!(self.peek(), Some(Tok::Open(n)) if n == name)
    }

    /// Text up to the closing tag (possibly none); each token is read once, so it is taken.
    fn text(&mut self) -> String {
        match self.toks.get_mut(self.pos) {
            Some(Tok::Text(t)) => {
                let t = std::mem::take(t);
                self.pos += 1;
                t
            }
            _ => String::new(),
        }
    }

    fn value(&mut self) -> Result<Value, CodecError> {
        self.open("value")?;
        // `<value>text</value>` (no type tag) is a string, whitespace included.
        match self.peek() {
            Some(Tok::Text(_)) if matches!(self.toks.get(self.pos + 1), Some(Tok::Close(n)) if n == "value") =>
            {
                let t = self.text();
                self.pos += 1;
                return Ok(Value::String(t));
            }
            Some(Tok::Close(n)) if n == "value" => {
                self.pos += 1;
                return Ok(Value::String(String::new()));
            }
            _ => {}
        }
        self.skip_ws();
        let tag = match self.peek() {
            Some(Tok::Open(n)) => n.clone(),
            other => return err(format!("expected a value type, found {}", describe(other))),
        };
        self.pos += 1;
        let v = match tag.as_ref() {
            "int" | "i4" | "i8" => {
                let t = self.text();
                Value::Int(
                    t.trim()
                        .parse()
                        .map_err(|_| CodecError(format!("bad <{tag}> {t:?}")))?,
                )
            }
            "double" => {
                let t = self.text();
                Value::Double(
                    t.trim()
                        .parse()
                        .map_err(|_| CodecError(format!("bad <double> {t:?}")))?,
                )
            }
            "boolean" => match self.text().trim() {
                "1" => Value::Bool(true),
                "0" => Value::Bool(false),
                other => return err(format!("bad <boolean> {other:?}")),
            },
            "string" => Value::String(self.text()),
            "nil" => Value::Nil,
            "dateTime.iso8601" => Value::DateTime(self.text().trim().to_string()),
            "base64" => {
                let t: String = self.text().chars().filter(|c| !c.is_whitespace()).collect();
                Value::Base64(
                    base64::engine::general_purpose::STANDARD
                        .decode(t.as_bytes())
                        .map_err(|e| CodecError(format!("bad <base64>: {e}")))?,
                )
            }
            "array" => {
                self.open("data")?;
                let mut items = Vec::new();
                while self.at_open("value") {
                    items.push(self.value()?);
                }
                self.close("data")?;
                Value::Array(items)
            }
            "struct" => {
                let mut members = Vec::new();
                while self.at_open("member") {
                    self.pos += 1;
                    self.open("name")?;
                    let name = self.text();
                    self.close("name")?;
                    let v = self.value()?;
                    self.close("member")?;
                    members.push((name, v));
                }
                Value::Struct(members)
            }
            other => return err(format!("unknown value type <{other}>")),
        };
        self.close(&tag)?;
        self.close("value")?;
        Ok(v)
    }

    fn params(&mut self) -> Result<Vec<Value>, CodecError> {
        let mut out = Vec::new();
        if !self.at_open("params") {
            return Ok(out);
        }
        self.open("params")?;
        while self.at_open("param") {
            self.pos += 1;
            out.push(self.value()?);
            self.close("param")?;
        }
        self.close("params")?;
        Ok(out)
    }

    fn end(&mut self) -> Result<(), CodecError> {
        self.skip_ws();
        match self.peek() {
            None => Ok(()),
            other => err(format!("unexpected {} after the document", describe(other))),
        }
    }
}

fn describe(t: Option<&Tok>) -> String {
    match t {
        None => "end of document".into(),
        Some(Tok::Open(n)) => format!("<{n}>"),
        Some(Tok::Close(n)) => format!("</{n}>"),
        Some(Tok::Text(t)) => format!("text {:?}", t.chars().take(40).collect::<String>()),
    }
}

/// Decodes a `methodCall` into its method name and parameters.
pub fn decode_call(xml: &str) -> Result<(String, Vec<Value>), CodecError> {
    let mut p = Parser {
        toks: tokenize(xml)?,
        pos: 0,
    };
    p.open("methodCall")?;
    p.open("methodName")?;
    let name = p.text().trim().to_string();
    p.close("methodName")?;
    let params = p.params()?;
    p.close("methodCall")?;
    p.end()?;
    Ok((name, params))
}

/// Decodes a `methodResponse` into its value or its fault.
pub fn decode_response(xml: &str) -> Result<Result<Value, Fault>, CodecError> {
    let mut p = Parser {
        toks: tokenize(xml)?,
        pos: 0,
    };
    p.open("methodResponse")?;
    let out = if p.at_open("fault") {
        p.open("fault")?;
        let v = p.value()?;
        p.close("fault")?;
        let code = v.get("faultCode").cloned().unwrap_or(Value::Int(0));
        let string = v
            .get("faultString")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        Err(Fault { code, string })
    } else {
        let mut params = p.params()?;
        if params.len() != 1 {
            return err(format!(
                "a response carries one value, found {}",
                params.len()
            ));
        }
        Ok(params.remove(0))
    };
    p.close("methodResponse")?;
    p.end()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn layout_whitespace_is_dropped_but_a_value_s_own_whitespace_is_kept() {
        let xml = "<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n<value><array><data>\n\
                   <value>   </value>\n<value>\n  <string> a b </string>\n</value>\n<value><string></string></value>\n\
                   <value><struct>\n<member>\n<name> k </name>\n<value><int> 7 </int></value>\n</member>\n</struct></value>\n\
                   </data></array></value>\n</param>\n</params>\n</methodResponse>\n";
        let v = decode_response(xml).unwrap().unwrap();
        assert_eq!(
            v,
            Value::Array(vec![
                Value::String("   ".into()),
                Value::String(" a b ".into()),
                Value::String(String::new()),
                Value::Struct(vec![(" k ".into(), Value::Int(7))]),
            ])
        );
    }

    #[test]
    fn decodes_a_recorded_odoo_response() {
        let xml = "<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n<value><array><data>\n\
            <value><struct>\n<member>\n<name>id</name>\n<value><int>37</int></value>\n</member>\n\
            <member>\n<name>barcode</name>\n<value><boolean>0</boolean></value>\n</member>\n\
            <member>\n<name>name</name>\n<value><string>بيبسي &amp; &lt;كولا&gt;</string></value>\n</member>\n\
            <member>\n<name>list_price</name>\n<value><double>750.0</double></value>\n</member>\n\
            <member>\n<name>plain</name>\n<value> untyped </value>\n</member>\n\
            <member>\n<name>empty</name>\n<value><string/></value>\n</member>\n\
            </struct></value>\n</data></array></value>\n</param>\n</params>\n</methodResponse>\n";
        let v = decode_response(xml).unwrap().unwrap();
        let rec = &v.as_array().unwrap()[0];
        assert_eq!(rec.get("id"), Some(&Value::Int(37)));
        assert_eq!(rec.get("barcode"), Some(&Value::Bool(false)));
        assert_eq!(rec.get("name").unwrap().as_str(), Some("بيبسي & <كولا>"));
        assert_eq!(rec.get("list_price"), Some(&Value::Double(750.0)));
        assert_eq!(rec.get("plain").unwrap().as_str(), Some(" untyped "));
        assert_eq!(rec.get("empty").unwrap().as_str(), Some(""));
    }

    #[test]
    fn decodes_a_fault() {
        let xml = "<?xml version='1.0'?>\n<methodResponse>\n<fault>\n<value><struct>\n<member>\n<name>faultCode</name>\n\
            <value><int>3</int></value>\n</member>\n<member>\n<name>faultString</name>\n\
            <value><string>Access Denied</string></value>\n</member>\n</struct></value>\n</fault>\n</methodResponse>\n";
        let f = decode_response(xml).unwrap().unwrap_err();
        assert_eq!(f.code, Value::Int(3));
        assert_eq!(f.string, "Access Denied");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in ["", "<", "<methodResponse>", "not xml", "<methodResponse><params><param><value><int>x</int></value></param></params></methodResponse>"] {
            assert!(decode_response(bad).is_err(), "{bad}");
        }
    }

    fn arb_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Nil),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::Int),
            any::<f64>()
                .prop_filter("finite", |d| d.is_finite())
                .prop_map(Value::Double),
            "\\PC*".prop_map(Value::String),
            "[ -~\u{0600}-\u{06FF}\t\n]*".prop_map(Value::String),
            "[0-9]{8}T[0-9]{2}:[0-9]{2}:[0-9]{2}".prop_map(Value::DateTime),
            proptest::collection::vec(any::<u8>(), 0..40).prop_map(Value::Base64),
        ];
        leaf.prop_recursive(6, 64, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::vec(("[a-z_&<>]{1,10}", inner), 0..6).prop_map(Value::Struct),
            ]
        })
    }

    proptest! {
        #[test]
        fn encode_then_decode_gives_the_value_back(params in proptest::collection::vec(arb_value(), 0..4), method in "[a-z_.]{1,20}") {
            let xml = encode_call(&method, &params);
            let (m, p) = decode_call(&xml).unwrap();
            prop_assert_eq!(m, method);
            prop_assert_eq!(p, params);
        }

        #[test]
        fn responses_round_trip(v in arb_value()) {
            let xml = encode_response(&Ok(v.clone()));
            prop_assert_eq!(decode_response(&xml).unwrap(), Ok(v));
        }
    }
}
