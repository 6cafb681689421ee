//! A message sent: the order's planned messages, each with its customer's consent, number and
//! language read from Odoo, through the template fallback chain, recorded at every step so
//! that nothing is sent twice and nothing that should go is lost.

use super::config::ParamSource;
use super::wire::{self, Failure, Param};
use super::*;
use crate::daemon::scheduler::{StreamOutcome, StreamSpec, StreamTask};
use crate::odoo::Value;
use crate::store::synclog::Level;
use rust_decimal::Decimal;

/// The partner fields this Odoo has, of those the settings name.
#[derive(Debug, Clone, Default)]
pub struct PartnerFields {
    pub phones: Vec<String>,
    /// The consent field, if this Odoo has it.
    pub opt_in: Option<String>,
}

impl PartnerFields {
    /// Which of the settings' phone fields and consent field this Odoo's partners have (Odoo
    /// 19 has no `mobile`; the consent field is the supplier's own).
    pub async fn read(
        odoo: &OdooClient,
        s: &super::config::WhatsappSettings,
    ) -> Result<PartnerFields, crate::odoo::OdooError> {
        let all = odoo.fields_get("res.partner", &["type"]).await?;
        let has = |f: &str| all.get(f).is_some();
        Ok(PartnerFields {
            phones: s.phone_fields.iter().filter(|f| has(f)).cloned().collect(),
            opt_in: Some(s.opt_in_field.clone()).filter(|f| has(f)),
        })
    }
}

/// What Odoo says of the order's customer.
struct Customer {
    name: String,
    lang: Option<String>,
    phone: Option<String>,
    agreed: bool,
    total: Decimal,
    currency: String,
}

fn odoo_err(e: crate::odoo::OdooError) -> JobError {
    let class = crate::retry::Classify::retry_class(&e);
    JobError::new(class, e.to_string())
}

impl Whatsapp {
    /// Sends the order's planned messages, oldest step first.
    pub(super) async fn notify_order(
        &self,
        channel: &str,
        external_id: &str,
    ) -> Result<(), JobError> {
        let store_err = crate::sync::order_import::store_err;
        let Some(order) =
            crate::store::orders::get(&self.store, channel, external_id).map_err(store_err)?
        else {
            return Err(JobError::new(
                RetryClass::Permanent,
                format!("{channel} order {external_id} is not known"),
            ));
        };
        let filter = messages::Filter {
            channel: Some(channel.into()),
            external_id: Some(external_id.into()),
            ..Default::default()
        };
        let mut list = messages::list(&self.store, &filter).map_err(store_err)?;
        list.reverse();
        // Read once for all of the order's messages.
        let mut customer = None;
        let mut events = Vec::new();
        for m in list {
            match m.state.as_str() {
                "planned" => {}
                // A send cut short by a crash: it may have left. WhatsApp's status webhook
                // says (the confirm stream sends it again if WhatsApp shows it did not).
                // Another worker's send under way (its answer not due yet): later.
                "sending" if crate::store::now_ms() - m.updated_at < self.send_window_ms() => {
                    let left = self.send_window_ms() - (crate::store::now_ms() - m.updated_at);
                    return Err(JobError::new(
                        RetryClass::Throttled {
                            after: std::time::Duration::from_millis(left.max(100) as u64),
                        },
                        format!(
                            "the {} message of order {} is being sent",
                            m.step, order.reference
                        ),
                    ));
                }
                "sending" => {
                    messages::settle_from(&self.store, m.id, "sending", "unconfirmed", Some("the daemon stopped while it was being sent; waiting for WhatsApp's status webhook"), None).map_err(store_err)?;
                    continue;
                }
                _ => continue,
            }
            if customer.is_none() {
                customer = Some(self.customer(&order).await?);
                events = crate::store::order_events::of_order(&self.store, channel, external_id)
                    .map_err(store_err)?;
            }
            self.send(&order, &m, customer.as_ref().expect("read"), &events)
                .await?;
        }
        Ok(())
    }

    /// How long a send may take: a message `sending` for longer was cut off (a kill).
    fn send_window_ms(&self) -> i64 {
        (self.send_timeout * 2 + std::time::Duration::from_secs(5)).as_millis() as i64
    }

    async fn fields(&self) -> Result<&PartnerFields, JobError> {
        self.partner_fields
            .get_or_try_init(|| async {
                PartnerFields::read(&self.odoo, &self.settings)
                    .await
                    .map_err(odoo_err)
            })
            .await
    }

    async fn customer(&self, order: &ChannelOrder) -> Result<Customer, JobError> {
        let odoo_id = order.odoo_id.ok_or_else(|| {
            JobError::new(
                RetryClass::Transient,
                format!("order {} is not in Odoo yet", order.reference),
            )
        })?;
        let rows = self
            .odoo
            .read(
                "sale.order",
                &[odoo_id],
                &["partner_id", "amount_total", "currency_id"],
            )
            .await
            .map_err(odoo_err)?;
        let so = rows.first().ok_or_else(|| {
            JobError::new(
                RetryClass::Permanent,
                format!("Odoo order {odoo_id} of {} is gone", order.reference),
            )
        })?;
        let partner = so.get("partner_id").and_then(Value::as_id).ok_or_else(|| {
            JobError::new(
                RetryClass::Permanent,
                format!("Odoo order {odoo_id} has no customer"),
            )
        })?;
        let fields = self.fields().await?.clone();
        let mut names: Vec<&str> = vec!["name", "lang"];
        names.extend(fields.phones.iter().map(String::as_str));
        if let Some(f) = &fields.opt_in {
            names.push(f);
        }
        let p = self
            .odoo
            .read("res.partner", &[partner], &names)
            .await
            .map_err(odoo_err)?;
        let p = p.first().ok_or_else(|| {
            JobError::new(
                RetryClass::Permanent,
                format!("customer {partner} of {} is gone", order.reference),
            )
        })?;
        let text = |k: &str| p.get(k).and_then(Value::as_opt_str).map(str::to_string);
        let currency = so
            .get("currency_id")
            .and_then(|v| match v {
                Value::Array(pair) => pair.get(1).and_then(Value::as_opt_str).map(str::to_string),
                _ => None,
            })
            .unwrap_or_default();
        Ok(Customer {
            name: text("name").unwrap_or_default(),
            lang: text("lang"),
            phone: fields
                .phones
                .iter()
                .find_map(|f| text(f).filter(|v| !v.trim().is_empty())),
            agreed: match &fields.opt_in {
                Some(f) => p.get(f).and_then(Value::as_bool).unwrap_or(false),
                None => false,
            },
            total: so
                .get("amount_total")
                .and_then(Value::as_decimal)
                .unwrap_or_default(),
            currency,
        })
    }

    fn note(&self, order: &ChannelOrder, step: &str, level: Level, what: &str) {
        crate::internal_events::emit(
            &self.store,
            &crate::internal_events::MessageNoted {
                reference: &order.reference,
                step,
                level,
                what,
            },
        );
    }

    /// Ends a message without sending it (no consent, no usable number).
    fn skip(&self, order: &ChannelOrder, m: &messages::Message, why: &str) -> Result<(), JobError> {
        messages::settle(&self.store, m.id, "skipped", Some(why), None)
            .map_err(crate::sync::order_import::store_err)?;
        self.note(order, &m.step, Level::Info, &format!("not sent: {why}"));
        Ok(())
    }

    fn params(
        &self,
        order: &ChannelOrder,
        c: &Customer,
        event: Option<&OrderEvent>,
        sources: &[ParamSource],
    ) -> Vec<Param> {
        let data = |k: &str| event.and_then(|e| e.text(k)).map(str::to_string);
        let tracking = data("tracking");
        sources
            .iter()
            .map(|s| match s {
                ParamSource::CustomerName => Param::Text(c.name.clone()),
                ParamSource::OrderReference => Param::Text(
                    order
                        .reference
                        .split_once('-')
                        .map_or(order.reference.clone(), |(_, r)| r.to_string()),
                ),
                ParamSource::Total => Param::Currency {
                    amount: c.total,
                    code: c.currency.clone(),
                },
                ParamSource::Carrier => Param::Text(data("carrier").unwrap_or_else(|| "-".into())),
                ParamSource::TrackingNumber => {
                    Param::Text(tracking.clone().unwrap_or_else(|| "-".into()))
                }
                ParamSource::TrackingUrl => Param::Text(
                    self.settings
                        .tracking_url
                        .as_deref()
                        .unwrap_or("{tracking}")
                        .replace("{tracking}", tracking.as_deref().unwrap_or("")),
                ),
                ParamSource::DeliveryDate => Param::Text(
                    data("date")
                        .map(|d| d.chars().take(10).collect())
                        .unwrap_or_else(|| chrono::Utc::now().format("%Y-%m-%d").to_string()),
                ),
            })
            .collect()
    }

    /// Sends one planned message, recording it before the request goes out.
    async fn send(
        &self,
        order: &ChannelOrder,
        m: &messages::Message,
        c: &Customer,
        events: &[OrderEvent],
    ) -> Result<(), JobError> {
        let store_err = crate::sync::order_import::store_err;
        let Some(kind) = crate::store::order_events::EventKind::parse(&m.step) else {
            return Ok(());
        };
        let Some(step) = self.settings.notify.get(&kind) else {
            return self.skip(
                order,
                m,
                "the step is no longer told (no notify table for it)",
            );
        };
        if self.settings.require_opt_in && !c.agreed {
            let why = match self.fields().await?.opt_in {
                Some(_) => format!("the customer has not agreed ({} is not set on the Odoo partner)", self.settings.opt_in_field),
                None => format!("Odoo has no partner field {}, which records consent: add it (a boolean), or set require_opt_in = false", self.settings.opt_in_field),
            };
            return self.skip(order, m, &why);
        }
        let Some(raw) = c.phone.as_deref() else {
            return self.skip(order, m, "the customer has no phone number in Odoo");
        };
        let phone = match wire::e164(raw, &self.settings.default_country) {
            Ok(p) => p,
            Err(why) => {
                return self.skip(
                    order,
                    m,
                    &format!("the customer's number cannot be used: {why}"),
                )
            }
        };
        if let Some(why) = messages::number_unreachable(&self.store, &phone).map_err(store_err)? {
            return self.skip(
                order,
                m,
                &format!("{} is not on WhatsApp ({why})", super::masked(&phone)),
            );
        }
        let event = events.iter().find(|e| e.id == m.event_id);
        let body = self.params(order, c, event, &step.body);
        let button = self.params(order, c, event, &step.button);
        let first = self.settings.language_for(step, c.lang.as_deref());
        let chain = self.settings.chain(step, &first);
        let mut missing: Vec<String> = Vec::new();
        // A send that may have left: its status webhook says (never sent again blindly).
        let unconfirmed = |why: String| -> Result<(), JobError> {
            messages::settle_from(
                &self.store,
                m.id,
                "sending",
                "unconfirmed",
                Some(&why),
                None,
            )
            .map_err(store_err)?;
            self.note(
                order,
                &m.step,
                Level::Warn,
                &format!("to {}: {why}", super::masked(&phone)),
            );
            Ok(())
        };
        for (at, (template, language)) in chain.iter().enumerate() {
            let from = if at == 0 { "planned" } else { "sending" };
            if !messages::claim(
                &self.store,
                m.id,
                from,
                "sending",
                &phone,
                template,
                language,
            )
            .map_err(store_err)?
            {
                return Ok(());
            }
            let message = wire::template_message(
                &phone,
                template,
                language,
                &body,
                &button,
                &format!("ms:{}", m.id),
            );
            let path = format!("{}/messages", self.settings.phone_number_id);
            let answer = self
                .api
                .post_raw(&path, serde_json::to_vec(&message).unwrap_or_default())
                .await;
            let a = match answer {
                Err(e) if e.unsent => {
                    messages::settle(&self.store, m.id, "planned", None, None)
                        .map_err(store_err)?;
                    return Err(e.into());
                }
                Err(e) => {
                    return unconfirmed(format!("the answer was lost after the request went out ({}); waiting for WhatsApp's status webhook", e.message));
                }
                Ok(a) => a,
            };
            if a.status < 300 {
                let v: serde_json::Value = serde_json::from_slice(&a.body).unwrap_or_default();
                return match wire::accepted_id(&v) {
                    Some(wamid) => {
                        messages::settle_from(
                            &self.store,
                            m.id,
                            "sending",
                            "accepted",
                            None,
                            Some(&wamid),
                        )
                        .map_err(store_err)?;
                        self.note(
                            order,
                            &m.step,
                            Level::Info,
                            &format!("sent to {} ({template}, {language})", super::masked(&phone)),
                        );
                        Ok(())
                    }
                    None => unconfirmed(format!(
                        "WhatsApp answered HTTP {} without a message id; waiting for its status webhook",
                        a.status
                    )),
                };
            }
            let e = crate::channel::meta::wire::GraphError::of(&a.body);
            let (code, text) = e.as_ref().map_or((0, format!("HTTP {}", a.status)), |e| {
                (e.code, e.message.clone())
            });
            let dead = |why: String| -> Result<(), JobError> {
                messages::settle(&self.store, m.id, "dead", Some(&why), None).map_err(store_err)?;
                self.note(order, &m.step, Level::Error, &format!("refused: {why}"));
                Ok(())
            };
            let back =
                || messages::settle(&self.store, m.id, "planned", None, None).map_err(store_err);
            match wire::failure(code) {
                Failure::TemplateMissing => {
                    missing.push(format!("{template} in {language}"));
                    continue;
                }
                Failure::Params => {
                    return dead(format!("template {template} ({language}) does not take these parameters (code 132000: {text}); fix channels.whatsapp.notify.{}", m.step));
                }
                Failure::Undeliverable => {
                    let why = format!("code 131026: {text}");
                    self.store
                        .write(|tx| messages::mark_number_unreachable_in(tx, &phone, &why))
                        .map_err(store_err)?;
                    return dead(format!("{} is not on WhatsApp or cannot get messages ({why}); later steps are not sent to it", super::masked(&phone)));
                }
                Failure::RateLimited => {
                    back()?;
                    return Err(JobError::new(
                        RetryClass::Throttled {
                            after: self.settings.rate_limit_wait,
                        },
                        format!("WhatsApp is limiting messages (code {code}: {text})"),
                    ));
                }
                Failure::Token => {
                    back()?;
                    let why = format!("WhatsApp refused the token (code 190: {text}); give channels.whatsapp a new system-user token");
                    let _ = crate::store::reach::stop(&self.store, CHANNEL, &why);
                    return Err(JobError::new(RetryClass::Unreachable, why));
                }
                Failure::Other => {
                    let class = crate::channel::http::status_class(a.status, None)
                        .unwrap_or(RetryClass::Permanent);
                    if class == RetryClass::Permanent {
                        return dead(format!(
                            "WhatsApp answered HTTP {} (code {code}: {text})",
                            a.status
                        ));
                    }
                    back()?;
                    return Err(JobError::new(
                        class,
                        format!("WhatsApp answered HTTP {} (code {code}: {text})", a.status),
                    ));
                }
            }
        }
        let why = format!(
            "no template in a language WhatsApp has (code 132001 for {}); create it in WhatsApp Manager or set fallback_template",
            missing.join(", then ")
        );
        messages::settle(&self.store, m.id, "dead", Some(&why), None).map_err(store_err)?;
        self.note(order, &m.step, Level::Error, &format!("refused: {why}"));
        Ok(())
    }
}

/// The stream that sends again a message whose answer was lost when WhatsApp has since shown,
/// by reporting a later message and not it, that it never left.
pub fn confirm_stream(w: Arc<Whatsapp>, wiring: &crate::channel::Wiring<'_>) -> StreamSpec {
    StreamSpec {
        name: format!("{CHANNEL}.confirm"),
        channel: Some(CHANNEL.into()),
        schedule: wiring.config.schedule.status_poll.clone(),
        run_at_start: false,
        task: Arc::new(Confirm(w)),
    }
}

struct Confirm(Arc<Whatsapp>);

impl StreamTask for Confirm {
    fn run(&self) -> BoxFuture<'_, Result<StreamOutcome, crate::error::Error>> {
        Box::pin(async move {
            let older = crate::store::now_ms() - self.0.settings.confirm_after.as_millis() as i64;
            let again = messages::resend_unconfirmed(&self.0.store, older)?;
            // The safety net: a message still to send (or cut off while sending) whose job is
            // gone (dead, dropped) gets its order's job again.
            let stuck = messages::stuck(
                &self.0.store,
                crate::store::now_ms() - self.0.send_window_ms(),
            )?;
            let jobs: Vec<NewJob> = again
                .iter()
                .chain(&stuck)
                .map(|m| notify_job(&m.channel, &m.external_id))
                .collect();
            crate::store::queue::enqueue_missing(&self.0.store, jobs)?;
            if again.is_empty() {
                return Ok(StreamOutcome::default());
            }
            Ok(StreamOutcome {
                cursor: None,
                note: Some((
                    format!(
                        "{} unconfirmed WhatsApp message(s) sent again: WhatsApp reported later messages and never these",
                        again.len()
                    ),
                    again.len() as i64,
                )),
            })
        })
    }
}
