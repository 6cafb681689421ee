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

/// The cheapest call that shows Cartona answers and takes the token: one product read.
pub(super) async fn probe(api: &HttpClient) -> Result<(), ChannelError> {
    let query = [("page", "1".into()), ("per_page", "1".into())];
    api.get("supplier-product", &query).await.map(drop)
}

/// Reaches Cartona with the token (one product read): (answered and accepted, what was seen).
pub async fn check(cfg: &ChannelConfig) -> (bool, String) {
    let probe = |api: HttpClient| async move { probe(&api).await };
    crate::channel::kit::check_with(cfg, client(cfg), probe, |base| {
        format!("Cartona at {base}: token accepted")
    })
    .await
}
