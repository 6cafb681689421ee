//! Statuses in: `/webhooks/whatsapp`, Meta's subscription handshake and `X-Hub-Signature-256`
//! (checked by the intake before anything is read), each message status kept once in the
//! inbox and applied by a job to its message; inbound customer messages counted and logged.

use super::*;
use crate::store::synclog::Level;
use crate::webhook::intake::{Inbound, ReceiveError, Verification, WebhookSpec};

/// A status webhook's news of one message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusJob {
    pub wamid: String,
    pub status: String,
    #[serde(default)]
    pub callback: Option<String>,
    #[serde(default)]
    pub error: Option<(i64, String)>,
}

/// A webhook's inbound customer messages: how many, and from whom (masked).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InboundJob {
    pub count: usize,
    pub from: Vec<String>,
    /// Its inbox event (closed once logged).
    pub event_id: String,
}

pub fn spec(cfg: &ChannelConfig) -> Option<WebhookSpec> {
    let s = cfg.whatsapp()?;
    Some(WebhookSpec {
        source: CHANNEL,
        paths: vec!["/webhooks/whatsapp"],
        verification: Verification::Hub {
            app_secret: s.app_secret.clone()?,
            verify_token: s.verify_token.clone()?,
        },
        prepare: Arc::new(prepare),
    })
}

fn job(kind: &str, key: String, payload: Payload) -> NewJob {
    NewJob {
        channel: CHANNEL.into(),
        kind: kind.into(),
        key,
        payload,
        correlation_id: None,
    }
}

/// A verified body's statuses (one inbox event and job each) and its inbound messages.
pub fn prepare(body: &serde_json::Value) -> Result<Vec<Inbound>, ReceiveError> {
    let (statuses, inbound) = wire::webhook_entries(body).map_err(ReceiveError::Invalid)?;
    let mut out = Vec::new();
    for s in statuses {
        if s.wamid.is_empty() || s.wamid.len() > 256 || s.wamid.chars().any(char::is_control) {
            return Err(ReceiveError::Invalid(
                "a status id must be 1 to 256 characters, no control characters".into(),
            ));
        }
        let event_id = format!("status:{}:{}", s.wamid, s.status);
        out.push(Inbound {
            source: CHANNEL,
            event_id: event_id.clone(),
            kind: format!("message.{}", s.status),
            subject: Some(s.wamid.clone()),
            body: serde_json::json!({"id": s.wamid, "status": s.status, "at": s.at}).to_string(),
            job: job(
                STATUS,
                format!("{CHANNEL}:{event_id}"),
                Payload::of(&StatusJob {
                    wamid: s.wamid,
                    status: s.status,
                    callback: s.callback,
                    error: s.error,
                }),
            ),
        });
    }
    if !inbound.is_empty() {
        let from: Vec<String> = inbound
            .iter()
            .map(|m| masked(&format!("+{}", m.from)))
            .collect();
        let ids: Vec<&str> = inbound.iter().map(|m| m.id.as_str()).collect();
        let event_id = format!("inbound:{}", crate::channel::kit::fnv(&ids.join(",")));
        out.push(Inbound {
            source: CHANNEL,
            event_id: event_id.clone(),
            kind: "message.inbound".into(),
            subject: Some(event_id.clone()),
            // Customers' own words are not kept: only that they wrote.
            body: serde_json::json!({"messages": inbound.len()}).to_string(),
            job: job(
                INBOUND,
                format!("{CHANNEL}:{event_id}"),
                Payload::of(&InboundJob {
                    count: inbound.len(),
                    from,
                    event_id: event_id.clone(),
                }),
            ),
        });
    }
    Ok(out)
}

/// Applies a status to its message (found by wamid, else by the id it was sent with).
pub fn apply(store: &Store, s: &StatusJob) -> Result<(), JobError> {
    let store_err = crate::sync::order_import::store_err;
    let callback = s
        .callback
        .as_deref()
        .and_then(|c| c.strip_prefix("ms:"))
        .and_then(|id| id.parse::<i64>().ok());
    let reason = s
        .error
        .as_ref()
        .map(|(code, title)| format!("WhatsApp: {title} (code {code})"));
    let changed = store
        .write(|tx| {
            let Some(m) = messages::find_in(tx, &s.wamid, callback)? else {
                return Ok(None);
            };
            if !messages::report_in(tx, &m, &s.wamid, &s.status, reason.as_deref())? {
                return Ok(None);
            }
            if s.status == "failed"
                && s.error
                    .as_ref()
                    .is_some_and(|(c, _)| *c == wire::UNDELIVERABLE)
            {
                if let Some(phone) = &m.phone {
                    messages::mark_number_unreachable_in(
                        tx,
                        phone,
                        reason.as_deref().unwrap_or("undeliverable"),
                    )?;
                }
            }
            Ok(Some(m))
        })
        .map_err(store_err)?;
    crate::store::inbox::close_subject(store, CHANNEL, &s.wamid, i64::MAX).map_err(store_err)?;
    if let Some(m) = changed {
        let reference = crate::store::orders::get(store, &m.channel, &m.external_id)
            .ok()
            .flatten()
            .map(|o| o.reference);
        let failed = s.status == "failed";
        let what = match &reason {
            Some(r) if failed => format!("failed, says WhatsApp: {r}"),
            _ => format!("{}, says WhatsApp", s.status),
        };
        crate::internal_events::emit(
            store,
            &crate::internal_events::MessageNoted {
                reference: reference.as_deref().unwrap_or(&m.external_id),
                step: &m.step,
                level: if failed { Level::Warn } else { Level::Debug },
                what: &what,
            },
        );
    }
    Ok(())
}

/// Inbound customer messages: counted and logged, not answered.
pub fn inbound(store: &Store, s: &InboundJob) {
    let _ = crate::store::inbox::close_subject(store, CHANNEL, &s.event_id, i64::MAX);
    crate::telemetry::counters::add(
        crate::telemetry::counters::WEBHOOKS,
        &[("source", CHANNEL), ("outcome", "inbound_message")],
        s.count as u64,
    );
    crate::internal_events::emit(
        store,
        &crate::internal_events::MessageNoted {
            reference: "",
            step: "customer reply",
            level: Level::Info,
            what: &format!(
                "{} message(s) from customers ({}), not answered by marketsync: reply from WhatsApp Business",
                s.count,
                s.from.join(", ")
            ),
        },
    );
}
