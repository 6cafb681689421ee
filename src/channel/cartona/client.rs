//! Cartona's client: its auth, and the healthcheck `check` runs.

use super::*;

/// The Cartona API client: `AuthorizationToken: <token>` (no "Bearer"), JSON both ways.
pub fn client(cfg: &ChannelConfig) -> Result<HttpClient, String> {
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
    let api = match client(cfg) {
        Ok(api) => api,
        Err(e) => return (false, e),
    };
    match api
        .get(
            "supplier-product",
            &[("page", "1".into()), ("per_page", "1".into())],
        )
        .await
    {
        Ok(_) => (
            true,
            format!(
                "Cartona at {}: token accepted",
                cfg.base_url.as_ref().map(|u| u.as_str()).unwrap_or("")
            ),
        ),
        Err(e) => (false, e.message),
    }
}
