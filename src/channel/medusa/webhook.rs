//! Medusa's webhooks: `POST /webhooks/medusa` (and seed 004's `/api/medusa/order-created`),
//! signed with marketsync's HMAC or, for stores that cannot sign, a static secret header. Each
//! event is kept in the inbox with the job that handles it: `order.created`, `order.placed` and
//! `order.status_updated` import the order, `customer.created` and `customer.updated` the
//! customer.

use super::*;
pub use crate::webhook::intake::ReceiveError;
use crate::webhook::intake::{Inbound, Verification, WebhookSpec};

/// The channel's webhooks, when it is enabled with a webhook secret.
pub fn spec(cfg: &ChannelConfig) -> Option<WebhookSpec> {
    let settings = cfg.medusa()?;
    let secret = cfg.webhook_secret.clone()?;
    let verification = match settings.webhook_auth {
        WebhookAuth::Hmac => Verification::Hmac {
            secret,
            tolerance: settings.webhook_tolerance,
            header: crate::webhook::signature::HEADER,
        },
        WebhookAuth::Header => Verification::Header {
            secret,
            header: settings.webhook_header.clone(),
        },
    };
    Some(WebhookSpec {
        source: CHANNEL,
        paths: vec!["/webhooks/medusa", "/api/medusa/order-created"],
        verification,
        prepare: std::sync::Arc::new(|body| {
            let envelope = wire::Envelope::of(body);
            let event = envelope.name().ok_or_else(|| {
                ReceiveError::Invalid("the body has no \"event\" name (a string)".into())
            })?;
            Ok(vec![prepare_with(event, &envelope, body)?])
        }),
    })
}

/// Commits one Medusa event (webhook or pull) to the inbox and queues its job. True when new.
pub fn receive_event(
    store: &Store,
    event: &str,
    body: &serde_json::Value,
) -> Result<bool, ReceiveError> {
    prepare_event(event, body)?.commit(store)
}

/// Checks a webhook event and says what to store, or why it is refused.
pub fn prepare_event(event: &str, body: &serde_json::Value) -> Result<Inbound, ReceiveError> {
    prepare_with(event, &wire::Envelope::of(body), body)
}

fn prepare_with(
    event: &str,
    envelope: &wire::Envelope,
    body: &serde_json::Value,
) -> Result<Inbound, ReceiveError> {
    let invalid = |m: &str| ReceiveError::Invalid(m.to_string());
    let data = &envelope.data;
    // Ids go into keys, logs and URLs: refuse what no Medusa id looks like.
    let id_of = |v: &Option<serde_json::Value>, what: &str| -> Result<String, ReceiveError> {
        let id = v
            .as_ref()
            .and_then(|v| v.as_str())
            .ok_or_else(|| ReceiveError::Invalid(format!("{event} without {what} (a string)")))?;
        if id.is_empty() || id.len() > 128 || id.chars().any(|c| c.is_control() || c == '/') {
            return Err(ReceiveError::Invalid(format!(
                "{event} has an unusable {what}: it must be 1 to 128 characters, no slashes or control characters"
            )));
        }
        Ok(id.to_string())
    };
    let (event_id, subject, kind, key) = match event {
        "order.created" | "order.placed" => {
            let id = id_of(&data.order.id, "data.order.id")?;
            (
                format!("order:{id}"),
                id.to_string(),
                jobs::Kind::Order.as_str(),
                format!("{CHANNEL}:order:{id}"),
            )
        }
        "order.status_updated" => {
            let id = id_of(&data.order_id, "data.order_id")?;
            let status = data
                .new_status
                .as_ref()
                .and_then(|s| s.as_str())
                .unwrap_or("?");
            if status.len() > 64 {
                return Err(invalid(
                    "order.status_updated has a data.new_status longer than 64 characters",
                ));
            }
            (
                format!("status:{id}:{status}"),
                id.to_string(),
                jobs::Kind::Order.as_str(),
                format!("{CHANNEL}:order:{id}"),
            )
        }
        "customer.created" | "customer.updated" => {
            let id = id_of(&data.customer.id, "data.customer.id")?;
            (
                format!("customer:{id}:{}", fnv(&body.to_string())),
                id.to_string(),
                jobs::Kind::Customer.as_str(),
                format!("{CHANNEL}:customer:{id}"),
            )
        }
        other => {
            let other: String = other.chars().take(64).collect();
            return Err(ReceiveError::Invalid(format!(
                "unknown event {other:?}; expected order.created, order.status_updated, customer.created or customer.updated"
            )));
        }
    };
    let job = NewJob {
        channel: CHANNEL.into(),
        kind: kind.into(),
        key,
        payload: Payload::of(&jobs::ImportSubject {
            subject: subject.clone(),
        }),
        correlation_id: None,
    };
    Ok(Inbound {
        source: CHANNEL,
        event_id,
        kind: event.to_string(),
        subject: Some(subject),
        body: body.to_string(),
        job,
    })
}
