//! Odoo search domains built as values, never by string concatenation.

use super::value::Value;

/// A domain: a list of leaves and prefix operators, as Odoo reads it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Domain(Vec<Value>);

impl Domain {
    /// The empty domain: every record.
    pub fn all() -> Domain {
        Domain(Vec::new())
    }

    /// Adds `(field, op, value)`; consecutive leaves are ANDed, as Odoo does implicitly.
    pub fn and(mut self, field: &str, op: &str, value: impl Into<Value>) -> Domain {
        self.0
            .push(Value::Array(vec![field.into(), op.into(), value.into()]));
        self
    }

    /// `(a OR b)` of two leaves, ANDed with the rest.
    pub fn or_leaves(mut self, a: (&str, &str, Value), b: (&str, &str, Value)) -> Domain {
        self.0.push("|".into());
        for (f, op, v) in [a, b] {
            self.0.push(Value::Array(vec![f.into(), op.into(), v]));
        }
        self
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn to_value(&self) -> Value {
        Value::Array(self.0.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_never_interpolated() {
        let d = Domain::all().and("client_order_ref", "=", "CARTONA-1' or 1=1 --");
        assert_eq!(
            serde_json::Value::from(d.to_value()).to_string(),
            r#"[["client_order_ref","=","CARTONA-1' or 1=1 --"]]"#
        );
    }
}
