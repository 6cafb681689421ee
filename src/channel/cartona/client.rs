//! Cartona's client: its auth, and the healthcheck `check` runs.

use super::*;

/// The Cartona API client: `AuthorizationToken: <token>` (no "Bearer"), JSON both ways.
pub fn client(cfg: &ChannelConfig) -> Result<HttpClient, crate::error::Error> {
    let (token, base) = crate::channel::kit::token_and_base(cfg)?;
    Ok(HttpClient::new(
        "Cartona",
        base,
        cfg.timeout,
        vec![("AuthorizationToken", token)],
    ))
}

/// Reaches Cartona with the token (one product read): (answered and accepted, what was seen).
pub async fn check(cfg: &ChannelConfig) -> (bool, String) {
    let query = [("page", "1".into()), ("per_page", "1".into())];
    crate::channel::kit::reach_with_get(cfg, client(cfg), "supplier-product", &query, |base| {
        format!("Cartona at {base}: token accepted")
    })
    .await
}
