//! Cartona orders in: pulled pages to the inbox, imported in batches, acknowledged with `synced`.

use super::*;

/// What a status does: the operator's override (`channels.cartona.status_actions`), or the default.
pub fn action_for(
    status: &str,
    overrides: &std::collections::BTreeMap<String, String>,
) -> StatusAction {
    match overrides.get(status).map(String::as_str) {
        Some("nothing") => StatusAction::Nothing,
        Some("confirm") => StatusAction::Confirm,
        Some("confirm_and_reserve") => StatusAction::ConfirmAndReserve,
        Some("deliver") => StatusAction::Deliver,
        Some("cancel") => StatusAction::Cancel,
        Some("flag") => StatusAction::Flag,
        _ => status_action(status),
    }
}

/// The default action for each Cartona status (seed 002, API notes).
pub fn status_action(status: &str) -> StatusAction {
    match status {
        "approved" => StatusAction::Confirm,
        "assigned_to_salesman" => StatusAction::ConfirmAndReserve,
        "delivered" => StatusAction::Deliver,
        "cancelled_by_retailer" | "cancelled_by_supplier" | "cancelled" => StatusAction::Cancel,
        "returned" => StatusAction::Flag,
        _ => StatusAction::Nothing,
    }
}

/// How far along a status is, so we never send Cartona something behind what it knows.
pub(super) fn rank(status: &str) -> u8 {
    match status {
        "pending" | "editing" => 0,
        "approved" => 1,
        "assigned_to_salesman" => 2,
        "delivered" => 3,
        "returned" | "cancelled_by_retailer" | "cancelled_by_supplier" | "cancelled" => 4,
        _ => 0,
    }
}

/// The next status to send on the way to `target`: `approved` before `delivered` when Cartona
/// has not heard it yet (it refuses to deliver a pending order), else the target; `None` once
/// the order stands at or past the target, by what we sent or what Cartona reported.
pub(super) fn next_step<'a>(known: &order_state::ChannelOrder, target: &'a str) -> Option<&'a str> {
    let reached = rank(known.marketplace_status.as_deref().unwrap_or("pending"))
        .max(rank(known.sent_status.as_deref().unwrap_or("pending")));
    if rank(target) <= reached {
        return None;
    }
    if target == "delivered" && reached < rank("approved") {
        return Some("approved");
    }
    Some(target)
}

pub fn reference(hashed_id: &str) -> String {
    format!("CARTONA-{hashed_id}")
}

pub(super) fn inbound(order: &Order, terms: &crate::sync::order_money::Terms) -> InboundOrder {
    let r = &order.retailer;
    InboundOrder {
        channel: CHANNEL,
        external_id: order.hashed_id.clone(),
        reference: reference(&order.hashed_id),
        origin: format!(
            "Cartona {}",
            order.receipt_id.as_deref().unwrap_or(&order.hashed_id)
        ),
        customer: Customer {
            key: r.retailer_code.clone(),
            name: r.retailer_name.clone(),
            phone: r.retailer_number.clone(),
            mobile: r.retailer_number2.clone(),
            email: None,
            street: r.retailer_address.clone(),
            notes: r.address_notes.clone(),
            shipping: None,
        },
        lines: order
            .order_details
            .iter()
            .map(|d| {
                // `selling_price` is the price per piece after Cartona's discounts, and
                // `total_price` the sum of price times amount (API-NOTES).
                InboundLine::plain(
                    d.supplier_product_id
                        .clone()
                        .or_else(|| d.internal_product_id.clone())
                        .unwrap_or_default(),
                    d.product_name.clone().unwrap_or_default(),
                    d.amount,
                    d.selling_price,
                )
            })
            .collect(),
        charges: Vec::new(),
        total: order.total_price,
        currency: super::CURRENCY.to_string(),
        note: order.note_message.clone(),
        terms: terms.clone(),
    }
}

/// The lines of an order, for telling a real edit from a status change.
pub(super) fn lines_hash(order: &Order) -> String {
    let lines: Vec<String> = order
        .order_details
        .iter()
        .map(|d| {
            format!(
                "{:?}|{:?}|{}|{}",
                d.supplier_product_id,
                d.internal_product_id,
                d.amount.normalize(),
                d.selling_price.normalize()
            )
        })
        .collect();
    fnv(&lines.join(";"))
}

impl Cartona {
    /// Commits one pulled order to the inbox; true when it is new or changed.
    pub(super) fn receive_order(
        &self,
        raw: &serde_json::Value,
    ) -> Result<bool, crate::error::Error> {
        let payload_hash = fnv(&raw.to_string());
        let head = OrderHead::of(raw);
        let hashed_id = match head.id() {
            Some(id) => id,
            None => {
                // Kept for the operator, set aside with the reason; the other orders go on.
                let id = format!("malformed:{payload_hash}");
                if let inbox::Received::New(event) =
                    inbox::receive(&self.store, CHANNEL, &id, "order", None, raw)?
                {
                    let reason =
                        "a Cartona order without a hashed_id was received; it cannot be imported";
                    inbox::park(&self.store, event, reason)?;
                    events::emit(
                        &self.store,
                        &events::OrderRefused {
                            channel: CHANNEL,
                            pulling: true,
                            reason,
                        },
                    );
                }
                return Ok(false);
            }
        };
        let status = head.status();
        let event_id = format!("{hashed_id}:{status}:{payload_hash}");
        let job = NewJob {
            channel: CHANNEL.into(),
            kind: jobs::Kind::Order.as_str().into(),
            key: format!("{CHANNEL}:order:{hashed_id}"),
            payload: Payload::of(&jobs::ImportOrder {
                hashed_id: hashed_id.clone(),
            }),
            correlation_id: Some(reference(&hashed_id)),
        };
        // The event and its job are committed together: a crash between them would strand it.
        let received = inbox::receive_with_job(
            &self.store,
            CHANNEL,
            &event_id,
            "order",
            Some(&hashed_id),
            raw,
            &job,
        )?;
        Ok(matches!(received, inbox::Received::New(_)))
    }

    /// Brings the newest received version of one order into Odoo.
    /// Imports a batch of orders: the new ones are created together and every order's state
    /// and total read in one call (`order_import::import_many`), then each goes through the
    /// rest of its flow alone.
    pub(super) async fn import_orders(&self, jobs: &[Job]) -> Vec<Result<(), JobError>> {
        if let [job] = jobs {
            return vec![self.import_order(job).await];
        }
        let loaded: Vec<Result<Option<Loaded>, JobError>> =
            jobs.iter().map(|j| self.load(j)).collect();
        let refs: Vec<&InboundOrder> = loaded
            .iter()
            .filter_map(|l| match l {
                Ok(Some(Loaded {
                    order: Ok((order, inbound)),
                    ..
                })) if order.status != "editing" => Some(inbound),
                _ => None,
            })
            .collect();
        let mut pre = Prefetched::default();
        let mut ids = Vec::new();
        for r in order_import::import_many(&self.odoo, &self.store, &refs).await {
            match r {
                Ok(Imported::Created(id)) => {
                    pre.created.insert(id);
                    ids.push(id);
                }
                Ok(Imported::Existing(id)) => ids.push(id),
                // Parked or failed: the order's own pass finds out again and says why.
                _ => {}
            }
        }
        // If this read fails, each order reads its own.
        pre.read = order_import::read_orders(&self.odoo, &ids)
            .await
            .unwrap_or_default();
        let mut done = Vec::with_capacity(jobs.len());
        for (job, loaded) in jobs.iter().zip(loaded) {
            done.push(match loaded {
                Ok(loaded) => self.import_order_with(job, loaded, &pre).await,
                Err(e) => Err(e),
            });
        }
        // One acknowledgement for the batch's imported orders.
        let ready: Vec<&AwaitingAck> = done
            .iter()
            .filter_map(|r| r.as_ref().ok().and_then(Option::as_ref))
            .collect();
        let acked = self.acknowledge(&ready).await;
        done.into_iter()
            .map(|r| match r {
                Ok(Some(_)) => acked.clone(),
                Ok(None) => Ok(()),
                Err(e) => Err(e),
            })
            .collect()
    }

    pub(super) async fn import_order(&self, job: &Job) -> Result<(), JobError> {
        let loaded = self.load(job)?;
        match self
            .import_order_with(job, loaded, &Prefetched::default())
            .await?
        {
            Some(imported) => self.acknowledge(&[&imported]).await,
            None => Ok(()),
        }
    }

    /// Tells Cartona these orders are in Odoo (`synced`: it stops offering them), then closes
    /// their events. Only orders whose Odoo order exists get here.
    pub(super) async fn acknowledge(&self, orders: &[&AwaitingAck]) -> Result<(), JobError> {
        if orders.is_empty() {
            return Ok(());
        }
        let acks: Vec<StatusUpdate> = orders
            .iter()
            .map(|o| StatusUpdate {
                hashed_id: o.hashed_id.clone(),
                status: "synced".into(),
                cancellation_reason: None,
                retailer_otp: None,
            })
            .collect();
        self.api
            .post("order/update-order-status", &acks)
            .await
            .map_err(job_err)?;
        for o in orders {
            inbox::close_subject(&self.store, CHANNEL, &o.hashed_id, o.event_id)
                .map_err(store_err)?;
            events::emit(&self.store, &o.imported);
        }
        Ok(())
    }

    /// The job's order as the inbox holds it now (`None`: already processed), parsed.
    pub(super) fn load(&self, job: &Job) -> Result<Option<Loaded>, JobError> {
        let jobs::ImportOrder { hashed_id } = jobs::parse(job)?;
        Ok(inbox::latest_open(&self.store, CHANNEL, &hashed_id)
            .map_err(store_err)?
            .map(|event| Loaded {
                order: Order::parse(&event.payload).map(|o| {
                    let i = inbound(&o, &self.terms());
                    (o, i)
                }),
                event,
            }))
    }

    /// Everything of an order's import but the acknowledgement; `None` when there is nothing to
    /// acknowledge (already processed, or left alone while the retailer edits it).
    pub(super) async fn import_order_with(
        &self,
        job: &Job,
        loaded: Option<Loaded>,
        pre: &Prefetched,
    ) -> Result<Option<AwaitingAck>, JobError> {
        let jobs::ImportOrder { hashed_id } = jobs::parse(job)?;
        let Some(Loaded { event, order }) = loaded else {
            return Ok(None); // already processed
        };
        let (order, inbound) = match order {
            Ok(o) => o,
            Err(reason) => return self.park(event.id, &reason.to_string()).map(|_| None),
        };
        let reference = reference(&order.hashed_id);
        order_state::seen(
            &self.store,
            CHANNEL,
            &order.hashed_id,
            &reference,
            &order.status,
            Some(&OrderData::of(&order).patch()),
        )
        .map_err(store_err)?;
        if order.status == "editing" {
            inbox::close_subject(&self.store, CHANNEL, &hashed_id, event.id).map_err(store_err)?;
            self.noted(&hashed_id, events::OrderNote::BeingEdited);
            return Ok(None);
        }
        let known = order_state::get(&self.store, CHANNEL, &order.hashed_id).map_err(store_err)?;
        let lines = lines_hash(&order);
        let (id, created) = match order_import::import(&self.odoo, &self.store, &inbound).await? {
            Imported::Parked(reason) => {
                return self.park(event.id, &reason.to_string()).map(|_| None)
            }
            Imported::Created(id) => (id, true),
            Imported::Existing(id) => (id, pre.created.contains(&id)),
        };
        let (state, total) = match pre.read.get(&id) {
            Some(known) => known.clone(),
            None => order_import::read_order(&self.odoo, id).await?,
        };
        if created {
            order_import::check_totals(&self.store, &inbound, total)?;
        } else if known
            .as_ref()
            .and_then(|k| k.payload_hash.as_deref())
            .is_some_and(|h| h != lines)
        {
            if matches!(state.as_str(), "draft" | "sent") {
                if let Some(problem) =
                    order_import::replace_lines(&self.odoo, &self.store, id, &inbound).await?
                {
                    return self
                        .park(
                            event.id,
                            &format!("order {hashed_id} was edited on Cartona, but {problem}"),
                        )
                        .map(|_| None);
                }
                self.noted(&hashed_id, events::OrderNote::LinesUpdated);
            } else {
                let why = "edited on Cartona after it was confirmed in Odoo: compare the lines and adjust the Odoo order";
                order_state::set_attention(&self.store, CHANNEL, &hashed_id, Some(why))
                    .map_err(store_err)?;
                self.noted(&hashed_id, events::OrderNote::Check(why));
            }
        }
        let action = action_for(&order.status, &self.settings.status_actions);
        order_import::apply_status(&self.odoo, &self.profile, id, &state, action).await?;
        if action == StatusAction::Flag {
            let why = format!(
                "Cartona reports the order {}: handle it in Odoo",
                order.status
            );
            order_state::set_attention(&self.store, CHANNEL, &hashed_id, Some(&why))
                .map_err(store_err)?;
            self.noted(&hashed_id, events::OrderNote::Check(&why));
        }
        order_state::set_odoo(&self.store, CHANNEL, &hashed_id, id, &lines).map_err(store_err)?;
        // Acknowledged by the caller, only now that the Odoo order exists.
        Ok(Some(AwaitingAck {
            hashed_id: hashed_id.clone(),
            event_id: event.id,
            imported: events::OrderImported {
                channel: CHANNEL,
                reference: hashed_id.clone(),
                created,
                odoo_id: id,
                detail: Some(format!("Cartona status {}", order.status)),
            },
        }))
    }

    pub(super) fn park(&self, event: i64, reason: &str) -> Result<(), JobError> {
        crate::channel::kit::park(&self.store, CHANNEL, event, reason)
    }

    fn noted(&self, reference: &str, note: events::OrderNote<'_>) {
        events::emit(
            &self.store,
            &events::OrderNoted {
                channel: CHANNEL,
                reference,
                note,
            },
        );
    }
}

impl crate::channel::Orders for Cartona {
    /// Pulls orders page by page into the inbox, one `order` job per changed order.
    async fn orders(&self) -> Result<StreamOutcome, crate::error::Error> {
        let now = chrono::Utc::now();
        let from = now - chrono::Duration::from_std(self.settings.pull_window).unwrap_or_default();
        let per_page = self.settings.page_size as usize;
        let fetch = |page: usize| {
            let query = [
                ("page", (page + 1).to_string()),
                ("per_page", per_page.to_string()),
                ("from", from.format("%Y-%m-%dT%H:%M:%S").to_string()),
                ("to", now.format("%Y-%m-%dT%H:%M:%S").to_string()),
            ];
            async move {
                let body = self.api.get("order/pull-orders", &query).await?;
                match body {
                    serde_json::Value::Array(rows) => Ok(rows),
                    other => Err(crate::error::Error::unreadable(
                        "Cartona",
                        format!(
                            "Cartona's order/pull-orders answered something other than a list: {}",
                            crate::odoo::transport::summarize_body_from(
                                &other.to_string(),
                                "Cartona"
                            )
                        ),
                    )),
                }
            }
        };
        let got =
            crate::channel::kit::pull_pages(per_page, 1000, fetch, |raw| self.receive_order(raw))
                .await?;
        if got.repeated {
            events::emit(
                &self.store,
                &events::OrdersPulled {
                    channel: CHANNEL,
                    found: events::PullFound::SamePageTwice,
                },
            );
        }
        let (pulled, new) = (got.rows, got.new);
        Ok(StreamOutcome {
            cursor: None,
            note: (new > 0).then(|| {
                (
                    format!("pulled {pulled} order(s), {new} new or changed"),
                    new as i64,
                )
            }),
        })
    }
}
