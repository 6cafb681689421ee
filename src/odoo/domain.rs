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

    /// `(b1 OR b2 OR ...)` ANDed with the rest, each branch the AND of its own leaves (written
    /// in prefix form, with the explicit `&` that a branch of several leaves needs).
    pub fn any_of(mut self, branches: Vec<Domain>) -> Domain {
        let branches: Vec<Domain> = branches.into_iter().filter(|b| !b.is_empty()).collect();
        for _ in 1..branches.len() {
            self.0.push("|".into());
        }
        for b in branches {
            for _ in 1..b.0.len() {
                self.0.push("&".into());
            }
            self.0.extend(b.0);
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
    fn branches_are_written_in_prefix_form() {
        let d = Domain::all().and("a", "=", 1).any_of(vec![
            Domain::all().and("b", "=", 2),
            Domain::all().and("c", ">=", 3).and("c", "<=", 4),
            Domain::all(),
        ]);
        assert_eq!(
            serde_json::Value::from(d.to_value()).to_string(),
            r#"[["a","=",1],"|",["b","=",2],"&",["c",">=",3],["c","<=",4]]"#
        );
    }

    #[test]
    fn values_are_never_interpolated() {
        let d = Domain::all().and("client_order_ref", "=", "CARTONA-1' or 1=1 --");
        assert_eq!(
            serde_json::Value::from(d.to_value()).to_string(),
            r#"[["client_order_ref","=","CARTONA-1' or 1=1 --"]]"#
        );
    }
}
