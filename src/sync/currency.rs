//! The currency guard: no amount leaves labelled with a currency it is not in. A channel sells
//! in one currency (Cartona EGP, a Medusa store its `currency`); Odoo's sales prices are in the
//! company's currency, a pricelist's in the pricelist's. When they differ from the channel's,
//! the prices they give are held back (stock still goes out where the channel takes it alone),
//! and `marketsync check` fails naming both currencies and the fix.

use crate::odoo::{Domain, OdooClient, OdooError, SearchOpts, Value};

/// A currency as Odoo names it (`USD`), and whose it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub code: String,
    /// e.g. `company "My Company"` or `pricelist 3 ("Kuwait")`.
    pub whose: String,
}

/// What may go out, for a channel selling in one currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Guard {
    /// Every price Odoo gives is in the channel's currency.
    Priced,
    /// No price may go out: the reason names both currencies and the fix.
    NoPrices(String),
    /// The pricelist is in the channel's currency, the company's sales prices in another:
    /// prices computed from them are converted at Odoo's rate, as Odoo does (this says so).
    RulesOnly(String),
}

impl Guard {
    /// The guard for a channel selling in `channel` (ISO 4217, any case), whose config key is
    /// `key` (e.g. `channels.medusa`), given the company's currency and the pricelist's.
    pub fn of(channel: &str, key: &str, company: &Held, pricelist: Option<&Held>) -> Guard {
        let ours = channel.to_ascii_uppercase();
        let same = |h: &Held| h.code.eq_ignore_ascii_case(&ours);
        match pricelist {
            Some(p) if !same(p) => Guard::NoPrices(format!(
                "{} is in {} and the channel sells in {ours}: set {key}.pricelist_id to a pricelist in {ours}",
                p.whose, p.code
            )),
            Some(p) if !same(company) => Guard::RulesOnly(format!(
                "{} is in {ours} and Odoo's sales prices in {} ({}'s currency): a price computed from them is converted at Odoo's rate today, as Odoo does (a currency without a rate holds its products back, named)",
                p.whose, company.code, company.whose
            )),
            Some(_) => Guard::Priced,
            None if !same(company) => Guard::NoPrices(format!(
                "Odoo's sales prices are in {} ({}'s currency) and the channel sells in {ours}: set {key}.pricelist_id to a pricelist in {ours}",
                company.code, company.whose
            )),
            None => Guard::Priced,
        }
    }

    /// The reason every price is held back, if it is.
    pub fn refusal(&self) -> Option<&str> {
        match self {
            Guard::NoPrices(why) => Some(why),
            _ => None,
        }
    }
}

/// The currency of the company (`odoo.company_id`, or the integration user's: two reads) and
/// of the pricelist (one), as Odoo names them.
pub async fn read(
    odoo: &OdooClient,
    pricelist: Option<i64>,
) -> Result<(Held, Option<Held>), OdooError> {
    // `odoo.company_id` when set, else the integration user's company.
    let company = match odoo.company() {
        Some(id) => one(odoo, "res.company", id, &["name"]).await?.map(|c| {
            let name = c
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            (id, name)
        }),
        None => one(odoo, "res.users", odoo.uid(), &["company_id"])
            .await?
            .as_ref()
            .and_then(|u| u.get("company_id"))
            .and_then(Value::as_many2one)
            .map(|(id, name)| (id, name.to_string())),
    };
    let company = match company {
        Some((id, name)) => Held {
            code: currency_of(
                one(odoo, "res.company", id, &["currency_id"])
                    .await?
                    .as_ref(),
            )
            .unwrap_or_else(|| "an unknown currency".into()),
            whose: format!("company {name:?}"),
        },
        None => Held {
            code: "an unknown currency".into(),
            whose: "the integration user's company".into(),
        },
    };
    let pricelist = match pricelist {
        Some(id) => {
            let row = one(odoo, "product.pricelist", id, &["name", "currency_id"]).await?;
            let name = row
                .as_ref()
                .and_then(|r| r.get("name"))
                .and_then(Value::as_opt_str)
                .map(|n| format!(" ({n:?})"))
                .unwrap_or_default();
            currency_of(row.as_ref()).map(|code| Held {
                code,
                whose: format!("pricelist {id}{name}"),
            })
        }
        None => None,
    };
    Ok((company, pricelist))
}

/// One record's fields, if it exists.
async fn one(
    odoo: &OdooClient,
    model: &str,
    id: i64,
    fields: &[&str],
) -> Result<Option<Value>, OdooError> {
    let rows = odoo
        .search_read(
            model,
            &Domain::all().and("id", "=", id),
            fields,
            SearchOpts::default(),
        )
        .await?;
    Ok(rows.into_iter().next())
}

fn currency_of(row: Option<&Value>) -> Option<String> {
    row.and_then(|r| r.get("currency_id"))
        .and_then(Value::as_many2one)
        .map(|(_, code)| code.to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(code: &str, whose: &str) -> Held {
        Held {
            code: code.into(),
            whose: whose.into(),
        }
    }

    #[test]
    fn prices_go_out_only_in_the_channel_s_currency() {
        let usd = held("USD", "company \"My Company\"");
        let kwd = held("KWD", "company \"Kuwait\"");
        let key = "channels.medusa";
        assert_eq!(Guard::of("kwd", key, &kwd, None), Guard::Priced);
        let g = Guard::of("kwd", key, &usd, None);
        assert_eq!(
            g.refusal(),
            Some("Odoo's sales prices are in USD (company \"My Company\"'s currency) and the channel sells in KWD: set channels.medusa.pricelist_id to a pricelist in KWD")
        );
        let in_kwd = held("KWD", "pricelist 3 (\"Kuwait\")");
        match Guard::of("kwd", key, &usd, Some(&in_kwd)) {
            Guard::RulesOnly(why) => assert!(why.contains("in USD"), "{why}"),
            g => panic!("{g:?}"),
        }
        assert_eq!(Guard::of("KWD", key, &kwd, Some(&in_kwd)), Guard::Priced);
        let in_usd = held("USD", "pricelist 2 (\"Public\")");
        let g = Guard::of("kwd", key, &kwd, Some(&in_usd));
        assert!(
            g.refusal().is_some_and(|w| w
                .starts_with("pricelist 2 (\"Public\") is in USD and the channel sells in KWD")),
            "{g:?}"
        );
    }
}
