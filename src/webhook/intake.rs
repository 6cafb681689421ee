//! The generic webhook intake: each channel that takes webhooks declares a [`WebhookSpec`]
//! (where they arrive, how they prove their sender, how a body becomes inbox events), and the
//! listener mounts it. A webhook is answered 2xx only once its events and their jobs are
//! committed, by one inbox writer that commits concurrent webhooks in groups.

use crate::secret::Secret;
use crate::store::inbox::{self, Received};
use crate::store::queue::NewJob;
use std::sync::Arc;
use std::time::Duration;

/// How a channel's webhooks prove where they come from.
#[derive(Clone)]
pub enum Verification {
    /// `t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">` in `header` (marketsync's
    /// `X-Marketsync-Signature`, Sha6er's `X-Sha6er-Signature`), within `tolerance` of now.
    Hmac {
        secret: Secret,
        tolerance: Duration,
        header: &'static str,
    },
    /// A static shared secret in `header`, for senders that cannot sign.
    Header { secret: Secret, header: String },
    /// Meta's `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>` keyed with the app
    /// secret, and the subscription handshake `GET ?hub.mode=subscribe&hub.verify_token=..
    /// &hub.challenge=..`, answered with the challenge when the token is ours.
    Hub {
        app_secret: Secret,
        verify_token: Secret,
    },
}

impl Verification {
    /// `Ok` when the raw body comes from the sender, else why not (the 401's text; it never
    /// holds a secret).
    pub fn check(
        &self,
        header: impl Fn(&str) -> Option<String>,
        body: &[u8],
        now: i64,
    ) -> Result<(), Refused> {
        use super::signature;
        match self {
            Verification::Hmac {
                secret,
                tolerance,
                header: name,
            } => signature::verify(
                secret.expose().as_bytes(),
                header(name).as_deref(),
                body,
                now,
                tolerance.as_secs() as i64,
            )
            .map_err(Refused::Signature),
            Verification::Header {
                secret,
                header: name,
            } => {
                if signature::same_secret(secret.expose().as_bytes(), header(name).as_deref()) {
                    Ok(())
                } else {
                    Err(Refused::Header(name.clone()))
                }
            }
            Verification::Hub { app_secret, .. } => signature::verify_hub(
                app_secret.expose().as_bytes(),
                header(signature::HUB_HEADER).as_deref(),
                body,
            )
            .map_err(Refused::Hub),
        }
    }

    /// The answer to a subscription handshake (`GET` with `hub.*` parameters): the challenge
    /// to echo, or why it is refused. Only Meta's scheme has one.
    pub fn handshake(
        &self,
        mode: Option<&str>,
        token: Option<&str>,
        challenge: Option<&str>,
    ) -> Result<String, Refused> {
        let Verification::Hub { verify_token, .. } = self else {
            return Err(Refused::Handshake(
                "this webhook has no subscription handshake",
            ));
        };
        if mode != Some("subscribe") {
            return Err(Refused::Handshake("hub.mode must be \"subscribe\""));
        }
        if !super::signature::same_secret(verify_token.expose().as_bytes(), token) {
            return Err(Refused::Handshake(
                "hub.verify_token is not the configured verify token",
            ));
        }
        match challenge {
            Some(c) if !c.is_empty() && c.len() <= 256 => Ok(c.to_string()),
            _ => Err(Refused::Handshake(
                "hub.challenge is missing or longer than 256 characters",
            )),
        }
    }
}

/// Why a request was not let in: its signature, its secret header, or its subscription
/// handshake (the 401's or 403's text; it never holds a secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error(transparent)]
    Signature(super::signature::SignatureError),
    #[error(transparent)]
    Hub(super::signature::HubSignatureError),
    #[error("missing or wrong {0} header")]
    Header(String),
    #[error("{0}")]
    Handshake(&'static str),
}

/// Why a webhook's event was not taken.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ReceiveError {
    /// The event is not one we handle, or lacks what identifies it: the sender's problem (400).
    #[error("{0}")]
    Invalid(String),
    /// The state could not record it: ours, and the sender should retry (503).
    #[error("{0}")]
    Storage(#[source] Arc<crate::store::StoreError>),
}

/// One event a webhook (or a pull) brings, checked: what goes into the inbox, and the job that
/// handles it, committed together.
#[derive(Debug, Clone)]
pub struct Inbound {
    pub source: &'static str,
    /// The sender's id of the event: the same event twice is kept once.
    pub event_id: String,
    pub kind: String,
    /// The record it is about (an order id).
    pub subject: Option<String>,
    pub body: String,
    pub job: NewJob,
}

impl Inbound {
    /// Stores the event and queues its job in the caller's transaction.
    pub fn commit_in(
        &self,
        tx: &rusqlite::Transaction<'_>,
        now: i64,
    ) -> crate::store::Result<Received> {
        inbox::receive_with_job_in(
            tx,
            self.source,
            &self.event_id,
            &self.kind,
            self.subject.as_deref(),
            &self.body,
            &self.job,
            now,
        )
    }

    /// Commits it on its own (a pull's event). True when it was new.
    pub fn commit(&self, store: &crate::store::Store) -> Result<bool, ReceiveError> {
        let received = store
            .write(|tx| self.commit_in(tx, crate::store::now_ms()))
            .map_err(|e| ReceiveError::Storage(Arc::new(e)))?;
        Ok(matches!(received, Received::New(_)))
    }
}

/// Turns a verified JSON body into the events it brings.
pub type Prepare =
    Arc<dyn Fn(&serde_json::Value) -> Result<Vec<Inbound>, ReceiveError> + Send + Sync>;

/// A channel's webhooks.
#[derive(Clone)]
pub struct WebhookSpec {
    /// The channel: the inbox source and the label of the listener's counters.
    pub source: &'static str,
    /// Where they arrive (`/webhooks/medusa`).
    pub paths: Vec<&'static str>,
    pub verification: Verification,
    pub prepare: Prepare,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hub_handshake_echoes_the_challenge_only_for_our_token() {
        let hub = Verification::Hub {
            app_secret: Secret::new("app-secret-1"),
            verify_token: Secret::new("verify-me-42"),
        };
        assert_eq!(
            hub.handshake(Some("subscribe"), Some("verify-me-42"), Some("1158201444")),
            Ok("1158201444".into())
        );
        for (mode, token, challenge) in [
            (Some("subscribe"), Some("wrong"), Some("1")),
            (Some("unsubscribe"), Some("verify-me-42"), Some("1")),
            (None, Some("verify-me-42"), Some("1")),
            (Some("subscribe"), None, Some("1")),
            (Some("subscribe"), Some("verify-me-42"), None),
        ] {
            let refused = hub
                .handshake(mode, token, challenge)
                .unwrap_err()
                .to_string();
            assert!(!refused.contains("verify-me-42"), "{refused}");
        }
        let hmac = Verification::Hmac {
            secret: Secret::new("s"),
            tolerance: Duration::from_secs(300),
            header: crate::webhook::signature::HEADER,
        };
        assert!(hmac
            .handshake(Some("subscribe"), Some("s"), Some("1"))
            .is_err());
    }

    #[test]
    fn each_scheme_checks_its_own_header() {
        let body = br#"{"a":1}"#;
        let hub = Verification::Hub {
            app_secret: Secret::new("app-secret-1"),
            verify_token: Secret::new("t"),
        };
        let signed = crate::webhook::signature::sign_hub(b"app-secret-1", body);
        let with =
            |name: &'static str, value: String| move |h: &str| (h == name).then(|| value.clone());
        assert_eq!(
            hub.check(with("x-hub-signature-256", signed.clone()), body, 0),
            Ok(())
        );
        assert!(hub
            .check(with("x-marketsync-signature", signed), body, 0)
            .is_err());
        let header = Verification::Header {
            secret: Secret::new("static-1"),
            header: "x-webhook-secret".into(),
        };
        assert_eq!(
            header.check(with("x-webhook-secret", "static-1".into()), body, 0),
            Ok(())
        );
        assert!(header
            .check(with("x-webhook-secret", "static-2".into()), body, 0)
            .is_err());
    }
}
