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

    /// This domain AND `other` (prefix expressions side by side are ANDed, as Odoo reads them).
    pub fn and_domain(mut self, other: &Domain) -> Domain {
        self.0.extend(other.0.iter().cloned());
        self
    }

    /// A domain written by hand (a config's `products`): a list of `[field, operator, value]`
    /// leaves and the prefix operators `"&"`, `"|"`, `"!"`, each with its operands. `Err` says
    /// what is wrong and where, in the operator's terms.
    pub fn parse(raw: &serde_json::Value) -> Result<Domain, String> {
        const OPERATORS: &[&str] = &[
            "=",
            "!=",
            ">",
            ">=",
            "<",
            "<=",
            "=?",
            "=like",
            "like",
            "not like",
            "ilike",
            "not ilike",
            "=ilike",
            "in",
            "not in",
            "child_of",
            "parent_of",
            "any",
            "not any",
        ];
        let items = raw
            .as_array()
            .ok_or("expected a list of conditions such as [[\"categ_id\", \"child_of\", 12]]")?;
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let n = i + 1;
            match item {
                serde_json::Value::String(op) if matches!(op.as_str(), "&" | "|" | "!") => {
                    out.push(Value::from(op.as_str()))
                }
                serde_json::Value::String(other) => {
                    return Err(format!(
                        "item {n} is {other:?}; between conditions only \"&\", \"|\" and \"!\" may stand"
                    ))
                }
                serde_json::Value::Array(leaf) => {
                    let [field, op, value] = leaf.as_slice() else {
                        return Err(format!(
                            "item {n} has {} parts; a condition is [field, operator, value]",
                            leaf.len()
                        ));
                    };
                    let field = field
                        .as_str()
                        .filter(|f| {
                            !f.is_empty()
                                && f.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
                        })
                        .ok_or_else(|| {
                            format!("item {n}: {field} is not a field name such as \"categ_id\"")
                        })?;
                    let op = op.as_str().filter(|o| OPERATORS.contains(o)).ok_or_else(|| {
                        format!("item {n}: {op} is not an Odoo operator (one of {})", OPERATORS.join(" "))
                    })?;
                    if value.is_object() {
                        return Err(format!("item {n}: the value of {field:?} cannot be a table"));
                    }
                    out.push(Value::Array(vec![field.into(), op.into(), Value::from(value.clone())]));
                }
                other => {
                    return Err(format!(
                        "item {n} is {other}; a condition is [field, operator, value]"
                    ))
                }
            }
        }
        // Prefix operators need their operands: read from the end, as Odoo does.
        let mut operands: usize = 0;
        for v in out.iter().rev() {
            match v.as_str() {
                Some("!") if operands >= 1 => {}
                Some("&" | "|") if operands >= 2 => operands -= 1,
                Some(op) => {
                    return Err(format!("{op:?} lacks the conditions it joins"));
                }
                None => operands += 1,
            }
        }
        Ok(Domain(out))
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

    #[test]
    fn a_hand_written_domain_is_checked_for_shape() {
        let ok = serde_json::json!([
            ["categ_id", "child_of", 12],
            "|",
            ["website_published", "=", true],
            ["x_featured", "!=", false]
        ]);
        let d = Domain::parse(&ok).unwrap();
        assert_eq!(serde_json::Value::from(d.to_value()), ok);
        let err = |j: serde_json::Value| Domain::parse(&j).unwrap_err();
        assert!(err(serde_json::json!({"a": 1})).contains("list of conditions"));
        assert!(err(serde_json::json!([["categ_id", "child_of"]])).contains("2 parts"));
        assert!(
            err(serde_json::json!([["categ_id", "under", 12]])).contains("not an Odoo operator")
        );
        assert!(err(serde_json::json!([["categ id; drop", "=", 1]])).contains("not a field name"));
        assert!(err(serde_json::json!(["|", ["a", "=", 1]])).contains("lacks"));
        assert!(err(serde_json::json!(["and", ["a", "=", 1]])).contains("only"));
        let both = Domain::all().and("sale_ok", "=", true).and_domain(&d);
        assert_eq!(both.0.len(), 5);
    }
}
