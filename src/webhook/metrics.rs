//! `/metrics`: Prometheus text. Gauges are read from the state on each scrape (the state is the
//! truth and survives restarts): jobs by channel and state, dead jobs, inbox by source and state,
//! last success and error per stream, Odoo reachability. Counters since the process started come
//! from [`crate::telemetry::counters`] and the Odoo client: sends, job outcomes, retries,
//! webhooks, Odoo calls and call latency; and whether the daemon is paused.

use super::App;
use crate::store::queue::JobState;
use crate::store::{facts, inbox, queue, streams};
use std::fmt::Write as _;

fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

pub fn render(app: &App) -> Result<String, crate::error::Error> {
    let store = &app.store;
    let mut out = String::new();
    let _ = writeln!(out, "# HELP marketsync_jobs Jobs in the durable queue, by channel and state.\n# TYPE marketsync_jobs gauge");
    let counts = queue::counts(store)?;
    let mut channels: Vec<&str> = counts.iter().map(|(c, _, _)| c.as_str()).collect();
    channels.dedup();
    for ch in &channels {
        for st in JobState::ALL {
            let n = counts
                .iter()
                .filter(|(c, s, _)| c == ch && *s == st)
                .map(|(_, _, n)| *n)
                .sum::<i64>();
            let _ = writeln!(
                out,
                "marketsync_jobs{{channel=\"{}\",state=\"{}\"}} {n}",
                esc(ch),
                st.as_str()
            );
        }
    }
    let _ = writeln!(out, "# HELP marketsync_dead_jobs Jobs that will not be retried without the operator.\n# TYPE marketsync_dead_jobs gauge");
    for ch in &channels {
        let n = counts
            .iter()
            .filter(|(c, s, _)| c == ch && *s == JobState::Dead)
            .map(|(_, _, n)| *n)
            .sum::<i64>();
        let _ = writeln!(out, "marketsync_dead_jobs{{channel=\"{}\"}} {n}", esc(ch));
    }
    let _ = writeln!(out, "# HELP marketsync_messages Customers' WhatsApp messages, by step and state (see `marketsync messages`).\n# TYPE marketsync_messages gauge");
    for (step, state, n) in crate::store::messages::counts(store)? {
        let _ = writeln!(
            out,
            "marketsync_messages{{step=\"{}\",state=\"{}\"}} {n}",
            esc(&step),
            esc(&state)
        );
    }
    let _ = writeln!(out, "# HELP marketsync_shipments Sha6er shipments, by state (failed and returned need the operator: see `marketsync shipments`).\n# TYPE marketsync_shipments gauge");
    for (state, n) in crate::store::shipments::counts(store)? {
        let _ = writeln!(out, "marketsync_shipments{{state=\"{state}\"}} {n}");
    }
    let _ = writeln!(out, "# HELP marketsync_orders_totals_differ Imported orders whose Odoo total differs from what the marketplace says the customer pays (see `marketsync order list`).\n# TYPE marketsync_orders_totals_differ gauge");
    let differ = crate::store::orders::totals_differ_counts(store)?;
    let mut named: Vec<&str> = channels.clone();
    named.extend(differ.iter().map(|(c, _)| c.as_str()));
    named.sort_unstable();
    named.dedup();
    for ch in &named {
        let n = differ.iter().find(|(c, _)| c == ch).map_or(0, |(_, n)| *n);
        let _ = writeln!(
            out,
            "marketsync_orders_totals_differ{{channel=\"{}\"}} {n}",
            esc(ch)
        );
    }
    let _ = writeln!(out, "# HELP marketsync_inbox Received events, by source and state (received = not yet processed).\n# TYPE marketsync_inbox gauge");
    for (source, state, n) in inbox::counts(store)? {
        let _ = writeln!(
            out,
            "marketsync_inbox{{source=\"{}\",state=\"{}\"}} {n}",
            esc(&source),
            esc(&state)
        );
    }
    let _ = writeln!(out, "# HELP marketsync_stream_last_success_timestamp_seconds Last successful run of each stream.\n# TYPE marketsync_stream_last_success_timestamp_seconds gauge");
    let all = streams::list(store)?;
    for s in &all {
        if let Some(at) = s.last_success_at {
            let _ = writeln!(
                out,
                "marketsync_stream_last_success_timestamp_seconds{{stream=\"{}\"}} {}",
                esc(&s.name),
                at / 1000
            );
        }
    }
    let _ = writeln!(out, "# HELP marketsync_stream_failing Whether the stream's last run failed.\n# TYPE marketsync_stream_failing gauge");
    for s in &all {
        let failing = s.last_error_at.unwrap_or(0) > s.last_success_at.unwrap_or(0);
        let _ = writeln!(
            out,
            "marketsync_stream_failing{{stream=\"{}\"}} {}",
            esc(&s.name),
            u8::from(failing)
        );
    }
    use crate::telemetry::counters;
    for (metric, help) in [
        (counters::SENDS, "Requests to marketplaces, by channel and outcome (ok, rejected, auth, rate_limited, server_error, bad_response, transport_error)."),
        (counters::JOB_OUTCOMES, "Job attempts, by channel, kind and outcome (done, retry, dead, superseded)."),
        (counters::RETRIES, "Failed job attempts that will be tried again, by channel and kind."),
        (counters::EVENTS, "Things that happened (the sync log's lines), by operation and level."),
        (counters::WEBHOOKS, "Webhook requests, by source and outcome (accepted, duplicate, unauthorized, malformed, invalid, too_large, too_slow, unavailable)."),
    ] {
        let _ = writeln!(out, "# HELP {metric} {help}\n# TYPE {metric} counter");
        for (labels, n) in counters::snapshot(metric) {
            let _ = writeln!(out, "{metric}{{{labels}}} {n}");
        }
    }
    let paused = app.health.progress.storage.is_paused();
    let _ = writeln!(out, "# HELP marketsync_paused Whether the daemon stopped taking work because its state cannot be written.\n# TYPE marketsync_paused gauge\nmarketsync_paused {}", u8::from(paused));
    let unreachable = crate::store::reach::all(store)?;
    let _ = writeln!(out, "# HELP marketsync_channel_unreachable_since_seconds When the channel's peer stopped answering (absent while it answers); its jobs wait without spending attempts.\n# TYPE marketsync_channel_unreachable_since_seconds gauge");
    for u in &unreachable {
        let _ = writeln!(
            out,
            "marketsync_channel_unreachable_since_seconds{{channel=\"{}\"}} {}",
            esc(&u.channel),
            u.since / 1000
        );
    }
    let _ = writeln!(out, "# HELP marketsync_channel_up Whether the channel's peer answers (0 while it is marked unreachable).\n# TYPE marketsync_channel_up gauge");
    for name in all.iter().filter_map(|s| s.name.strip_suffix(".reach")) {
        let up = !unreachable.iter().any(|u| u.channel == name);
        let _ = writeln!(
            out,
            "marketsync_channel_up{{channel=\"{}\"}} {}",
            esc(name),
            u8::from(up)
        );
    }
    let down = facts::get(store, facts::ODOO_DOWN_SINCE)?.is_some();
    let _ = writeln!(out, "# HELP marketsync_odoo_up Whether Odoo answered the last call.\n# TYPE marketsync_odoo_up gauge\nmarketsync_odoo_up {}", u8::from(!down));
    if let Some(odoo) = app.health.odoo.get() {
        let _ = writeln!(out, "# HELP marketsync_odoo_calls_total Odoo calls made.\n# TYPE marketsync_odoo_calls_total counter\nmarketsync_odoo_calls_total {}", odoo.calls_made());
        let (buckets, sum, count) = odoo.latency().snapshot();
        let _ = writeln!(out, "# HELP marketsync_odoo_call_seconds Odoo call latency.\n# TYPE marketsync_odoo_call_seconds histogram");
        for (bound, n) in crate::odoo::LATENCY_BUCKETS.iter().zip(buckets) {
            let _ = writeln!(
                out,
                "marketsync_odoo_call_seconds_bucket{{le=\"{bound}\"}} {n}"
            );
        }
        let _ = writeln!(out, "marketsync_odoo_call_seconds_bucket{{le=\"+Inf\"}} {count}\nmarketsync_odoo_call_seconds_sum {sum}\nmarketsync_odoo_call_seconds_count {count}");
    }
    Ok(out)
}
