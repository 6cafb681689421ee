//! The values Odoo exchanges, whatever the protocol: XML-RPC's full set (int, double, boolean,
//! string, array, struct, nil, dateTime.iso8601, base64) and the readers for Odoo's habits:
//! `false` for an empty field, many2one as `[id, "name"]`, datetimes as UTC strings.

use rust_decimal::Decimal;
use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Nil,
    Bool(bool),
    Int(i64),
    Double(f64),
    String(String),
    /// `dateTime.iso8601`, kept as its text (`20261121T22:31:45`). Odoo itself sends strings.
    DateTime(String),
    Base64(Vec<u8>),
    Array(Vec<Value>),
    /// Members in their order on the wire.
    Struct(Vec<(String, Value)>),
}

impl Value {
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Struct(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Double(d) if d.fract() == 0.0 => Some(*d as i64),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Double(d) => Some(*d),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) | Value::DateTime(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// A char/text/date field: Odoo's `false` (and an empty string) become `None`.
    pub fn as_opt_str(&self) -> Option<&str> {
        match self {
            Value::String(s) if !s.is_empty() => Some(s),
            Value::DateTime(s) => Some(s),
            _ => None,
        }
    }

    /// A many2one: `[id, "display name"]`, or `false` when empty.
    pub fn as_many2one(&self) -> Option<(i64, &str)> {
        match self.as_array()? {
            [id, name] => Some((id.as_i64()?, name.as_str().unwrap_or(""))),
            [id] => Some((id.as_i64()?, "")),
            _ => None,
        }
    }

    /// The id of a many2one (or a bare integer, as `write` accepts).
    pub fn as_id(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => self.as_many2one().map(|(id, _)| id),
        }
    }

    /// A one2many/many2many: a list of ids.
    pub fn as_ids(&self) -> Vec<i64> {
        self.as_array()
            .map(|a| a.iter().filter_map(Value::as_i64).collect())
            .unwrap_or_default()
    }

    /// A money or quantity field as a decimal. Odoo sends floats; the shortest decimal that
    /// reads back as the same float is used, so `12.9` stays `12.9`, never `12.8999999`.
    pub fn as_decimal(&self) -> Option<Decimal> {
        match self {
            Value::Int(i) => Some(Decimal::from(*i)),
            Value::Double(d) => float_to_decimal(*d),
            Value::String(s) => s.parse().ok(),
            _ => None,
        }
    }

    /// An Odoo datetime string (`YYYY-MM-DD HH:MM:SS`, UTC).
    pub fn as_datetime(&self) -> Option<chrono::NaiveDateTime> {
        let s = self.as_opt_str()?;
        chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").ok()
    }

    /// A struct's member list, for building calls.
    pub fn record(pairs: impl IntoIterator<Item = (impl Into<String>, Value)>) -> Value {
        Value::Struct(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "nil",
            Value::Bool(_) => "boolean",
            Value::Int(_) => "int",
            Value::Double(_) => "double",
            Value::String(_) => "string",
            Value::DateTime(_) => "dateTime",
            Value::Base64(_) => "base64",
            Value::Array(_) => "array",
            Value::Struct(_) => "struct",
        }
    }
}

/// Converts a float to the shortest decimal with the same value (Rust's `{}` of f64 is that).
pub fn float_to_decimal(d: f64) -> Option<Decimal> {
    if !d.is_finite() {
        return None;
    }
    let text = format!("{d}");
    text.parse::<Decimal>()
        .ok()
        .or_else(|| Decimal::from_scientific(&format!("{d:e}")).ok())
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", serde_json::Value::from(self.clone()))
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<i32> for Value {
    fn from(v: i32) -> Self {
        Value::Int(v as i64)
    }
}
impl From<u32> for Value {
    fn from(v: u32) -> Self {
        Value::Int(v as i64)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Double(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::String(v.to_string())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::String(v)
    }
}
impl From<Decimal> for Value {
    /// Odoo's float fields take doubles; the decimal is rendered exactly, then read as f64.
    fn from(v: Decimal) -> Self {
        Value::Double(v.to_string().parse().unwrap_or(0.0))
    }
}
impl<T: Into<Value>> From<Vec<T>> for Value {
    fn from(v: Vec<T>) -> Self {
        Value::Array(v.into_iter().map(Into::into).collect())
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    /// `None` is Odoo's `false`, as Odoo itself writes empty fields.
    fn from(v: Option<T>) -> Self {
        v.map(Into::into).unwrap_or(Value::Bool(false))
    }
}

impl From<serde_json::Value> for Value {
    fn from(v: serde_json::Value) -> Self {
        match v {
            serde_json::Value::Null => Value::Nil,
            serde_json::Value::Bool(b) => Value::Bool(b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Double(n.as_f64().unwrap_or(0.0)),
            },
            serde_json::Value::String(s) => Value::String(s),
            serde_json::Value::Array(a) => Value::Array(a.into_iter().map(Value::from).collect()),
            serde_json::Value::Object(o) => {
                Value::Struct(o.into_iter().map(|(k, v)| (k, Value::from(v))).collect())
            }
        }
    }
}

impl From<Value> for serde_json::Value {
    fn from(v: Value) -> Self {
        use base64::Engine;
        match v {
            Value::Nil => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(b),
            Value::Int(i) => serde_json::Value::from(i),
            Value::Double(d) => serde_json::Number::from_f64(d)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::String(s) | Value::DateTime(s) => serde_json::Value::String(s),
            Value::Base64(b) => {
                serde_json::Value::String(base64::engine::general_purpose::STANDARD.encode(b))
            }
            Value::Array(a) => serde_json::Value::Array(a.into_iter().map(Into::into).collect()),
            Value::Struct(m) => {
                serde_json::Value::Object(m.into_iter().map(|(k, v)| (k, v.into())).collect())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odoo_habits_are_read_as_meant() {
        assert_eq!(Value::Bool(false).as_opt_str(), None);
        assert_eq!(
            Value::String("DESK0005".into()).as_opt_str(),
            Some("DESK0005")
        );
        let m2o = Value::Array(vec![Value::Int(1), Value::String("Units".into())]);
        assert_eq!(m2o.as_many2one(), Some((1, "Units")));
        assert_eq!(Value::Bool(false).as_many2one(), None);
        assert_eq!(
            Value::Double(12.9).as_decimal().unwrap().to_string(),
            "12.9"
        );
        assert_eq!(
            Value::Double(0.1 + 0.2).as_decimal().unwrap().to_string(),
            "0.30000000000000004"
        );
        assert_eq!(
            Value::String("2026-11-21 22:31:45".into())
                .as_datetime()
                .unwrap()
                .to_string(),
            "2026-11-21 22:31:45"
        );
    }
}
