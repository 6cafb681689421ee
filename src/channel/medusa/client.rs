//! Medusa's client: the flavour's auth, and the healthchecks `check` runs.

use super::*;

/// The HTTP client with the flavour's auth: `x-odoo-api-key`, or `Authorization: Basic
/// base64("sk_…:")` (a secret key sent as Bearer is refused by Medusa).
pub fn client(cfg: &ChannelConfig) -> Result<HttpClient, crate::error::Error> {
    let (token, base) = crate::channel::kit::token_and_base(cfg)?;
    let settings = cfg
        .medusa()
        .ok_or_else(|| crate::error::Error::invalid("channels.medusa has no Medusa settings"))?;
    let header = flavour::of(settings.flavour).auth(token);
    Ok(HttpClient::new("Medusa", base, cfg.timeout, vec![header]))
}

/// The cheapest call that shows the store answers and takes the key: one order read.
pub(super) async fn probe(api: &HttpClient, flavour: MedusaFlavour) -> Result<(), ChannelError> {
    let query = [("limit", "1".into())];
    api.get(flavour::of(flavour).check_path(), &query)
        .await
        .map(drop)
}

/// Reaches the store with the key (one order read): (answered and accepted, what was seen).
pub async fn check(cfg: &ChannelConfig) -> (bool, String) {
    let flavour = cfg.medusa().map(|m| m.flavour).unwrap_or_default();
    let probe = |api: HttpClient| async move { probe(&api, flavour).await };
    crate::channel::kit::check_with(cfg, client(cfg), probe, |base| {
        format!("Medusa ({flavour} flavour) at {base}: key accepted")
    })
    .await
}

/// What `check` says beside reaching the store: whether `lang` is installed in Odoo (without
/// it the translation is left out).
pub async fn findings(cfg: &ChannelConfig, odoo: &OdooClient) -> Vec<crate::channel::Finding> {
    use crate::channel::Finding;
    let Some(lang) = cfg.medusa().map(|m| m.lang.clone()) else {
        return Vec::new();
    };
    vec![match language_left_out(odoo, &lang).await {
        Ok(None) => Finding::new(
            "medusa.lang",
            true,
            format!("language {lang} is installed in Odoo"),
        ),
        Ok(Some(why)) => Finding::warn("medusa.lang", why),
        Err(e) => Finding::warn(
            "medusa.lang",
            format!("cannot read Odoo's installed languages ({e}); the {lang} translation may be left out"),
        ),
    }]
}
