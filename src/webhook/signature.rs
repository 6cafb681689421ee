//! Webhook signatures, over the raw bytes and compared in constant time:
//! - marketsync's `X-Marketsync-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
//!   "<t>.<raw body>">`, within a tolerance window against replays. Several `v1=` may be given
//!   (secret rotation); one must match.
//! - Meta's `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`, keyed with the
//!   app secret ([`verify_hub`]).

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

pub const HEADER: &str = "x-marketsync-signature";

/// Why a signature was refused (the message goes back in the 401 body; it never holds the secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing X-Marketsync-Signature header")]
    Missing,
    #[error("malformed X-Marketsync-Signature header: expected t=<unix seconds>,v1=<hex>")]
    Malformed,
    #[error("signature timestamp is {0}s away from now, outside the tolerance window (replayed or clock skew)")]
    Stale(i64),
    #[error("signature does not match the body")]
    Mismatch,
}

/// The header value for `body` signed at `t` (what a store sends; used by the simulator and tests).
pub fn sign(secret: &[u8], t: i64, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Checks a signature header against the raw body.
pub fn verify(
    secret: &[u8],
    header: Option<&str>,
    body: &[u8],
    now: i64,
    tolerance_s: i64,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut t = None;
    let mut sigs = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = Some(v.parse::<i64>().map_err(|_| SignatureError::Malformed)?),
            Some(("v1", v)) => sigs.push(hex::decode(v).map_err(|_| SignatureError::Malformed)?),
            _ => {}
        }
    }
    let t = t.ok_or(SignatureError::Malformed)?;
    if sigs.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if (now - t).abs() > tolerance_s {
        return Err(SignatureError::Stale(now - t));
    }
    for sig in sigs {
        let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
        mac.update(format!("{t}.").as_bytes());
        mac.update(body);
        if mac.verify_slice(&sig).is_ok() {
            return Ok(());
        }
    }
    Err(SignatureError::Mismatch)
}

pub const HUB_HEADER: &str = "x-hub-signature-256";

/// Why Meta's signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HubSignatureError {
    #[error("missing X-Hub-Signature-256 header")]
    Missing,
    #[error("malformed X-Hub-Signature-256 header: expected sha256=<hex>")]
    Malformed,
    #[error("X-Hub-Signature-256 does not match the body")]
    Mismatch,
}

/// Meta's header value for `body` (what Meta sends; used by the simulators and tests).
pub fn sign_hub(app_secret: &[u8], body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(app_secret).expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Checks Meta's `X-Hub-Signature-256` against the raw body (Meta signs no time: replays of a
/// signed body are harmless, as the inbox keeps each event once).
pub fn verify_hub(
    app_secret: &[u8],
    header: Option<&str>,
    body: &[u8],
) -> Result<(), HubSignatureError> {
    let header = header.ok_or(HubSignatureError::Missing)?;
    let hex_sig = header
        .trim()
        .strip_prefix("sha256=")
        .ok_or(HubSignatureError::Malformed)?;
    let sig = hex::decode(hex_sig).map_err(|_| HubSignatureError::Malformed)?;
    let mut mac = HmacSha256::new_from_slice(app_secret).expect("HMAC takes any key length");
    mac.update(body);
    mac.verify_slice(&sig)
        .map_err(|_| HubSignatureError::Mismatch)
}

/// Constant-time comparison of a static shared secret (stores that cannot sign).
pub fn same_secret(expected: &[u8], given: Option<&str>) -> bool {
    let Some(given) = given else { return false };
    // HMAC both sides with a fixed key, then compare in constant time: lengths leak nothing.
    let tag = |v: &[u8]| {
        let mut mac = HmacSha256::new_from_slice(b"marketsync-compare").expect("fixed key");
        mac.update(v);
        mac.finalize().into_bytes()
    };
    let mut mac = HmacSha256::new_from_slice(b"marketsync-compare").expect("fixed key");
    mac.update(given.as_bytes());
    mac.verify_slice(&tag(expected)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn signatures_verify_and_fail_as_they_should() {
        let body = br#"{"event":"order.created"}"#;
        let h = sign(b"s3cret", 1_700_000_000, body);
        assert_eq!(
            verify(b"s3cret", Some(&h), body, 1_700_000_010, 300),
            Ok(())
        );
        assert_eq!(
            verify(b"other", Some(&h), body, 1_700_000_010, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"s3cret", Some(&h), b"{}", 1_700_000_010, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"s3cret", Some(&h), body, 1_700_000_400, 300),
            Err(SignatureError::Stale(400))
        );
        assert_eq!(
            verify(b"s3cret", None, body, 0, 300),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify(b"s3cret", Some("v1=zz"), body, 0, 300),
            Err(SignatureError::Malformed)
        );
        let rotated = format!("{},v1={}", h, "00".repeat(32));
        assert_eq!(
            verify(b"s3cret", Some(&rotated), body, 1_700_000_000, 300),
            Ok(())
        );
        assert!(
            same_secret(b"abc", Some("abc"))
                && !same_secret(b"abc", Some("abd"))
                && !same_secret(b"abc", None)
        );
    }

    #[test]
    fn meta_signatures_verify_over_the_raw_body() {
        let body = br#"{"object":"page","entry":[]}"#;
        let h = sign_hub(b"app-secret", body);
        assert!(h.starts_with("sha256=") && h.len() == 7 + 64);
        assert_eq!(verify_hub(b"app-secret", Some(&h), body), Ok(()));
        assert_eq!(
            verify_hub(b"other", Some(&h), body),
            Err(HubSignatureError::Mismatch)
        );
        assert_eq!(
            verify_hub(b"app-secret", Some(&h), br#"{"object":"page","entry":[] }"#),
            Err(HubSignatureError::Mismatch),
            "a body re-serialised is not the body signed"
        );
        assert_eq!(
            verify_hub(b"app-secret", None, body),
            Err(HubSignatureError::Missing)
        );
        assert_eq!(
            verify_hub(b"app-secret", Some("sha1=abcd"), body),
            Err(HubSignatureError::Malformed)
        );
        assert_eq!(
            verify_hub(b"app-secret", Some("sha256=zz"), body),
            Err(HubSignatureError::Malformed)
        );
    }

    proptest! {
        #[test]
        fn arbitrary_headers_never_panic(h in "\\PC{0,200}", body in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = verify(b"k", Some(&h), &body, 0, 300);
            let _ = verify_hub(b"k", Some(&h), &body);
        }
    }
}
