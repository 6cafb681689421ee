//! `marketsync check`: logs in to Odoo and reaches every enabled channel, one line each (and
//! one for a channel's pricelist, which must hold only rules marketsync can apply); the exit
//! status is non-zero if any of them fails.

use super::render::{paint, print_json, Tone};
use crate::config::Config;
use crate::odoo::OdooClient;

use crate::channel::Finding as Line;

pub async fn run(config: &Config, json: bool) -> anyhow::Result<i32> {
    run_with(config, json, false).await
}

/// `check`, and with `estimate` the first push's figures per channel.
pub async fn run_with(config: &Config, json: bool, estimate: bool) -> anyhow::Result<i32> {
    let mut lines = Vec::new();
    let mut connected = None;
    match OdooClient::connect(&config.odoo).await {
        Ok(odoo) => {
            let detail = match odoo.whoami().await {
                Ok((name, login)) => format!(
                    "Odoo {} at {}: logged in as {} ({}), uid {}, database {:?}, protocol {}",
                    odoo.version().version,
                    config.odoo.url,
                    name,
                    login,
                    odoo.uid(),
                    odoo.database(),
                    config.odoo.protocol.as_str()
                ),
                Err(e) => format!(
                    "Odoo {} logged in as uid {}, but reading the user failed: {e}",
                    odoo.version().version,
                    odoo.uid()
                ),
            };
            lines.push(Line::new("odoo", true, detail));
            if let Some(company) = odoo.company() {
                lines.push(company_line(&odoo, company).await);
            }
            // Before Odoo stops answering: an expiring key, a deprecated protocol.
            for notice in
                crate::odoo::notices::ahead(&odoo, config.odoo.protocol, chrono::Utc::now()).await
            {
                lines.push(Line::warn("odoo", notice));
            }
            connected = Some(odoo);
        }
        Err(e) => lines.push(Line::new(
            "odoo",
            false,
            crate::secret::scrub(&e.to_string()),
        )),
    }
    for ch in config.enabled_channels() {
        let reached = std::time::Instant::now();
        let (ok, detail) = crate::channel::reach(ch).await;
        let round_trip = reached.elapsed();
        lines.push(Line::new(ch.kind.name(), ok, detail));
        let (pricelist, currency) = crate::channel::pricing(ch);
        if let Some(odoo) = &connected {
            lines.extend(crate::channel::findings(ch, odoo).await);
        }
        if let (true, true, Some(odoo)) = (estimate, ok, &connected) {
            lines.push(estimate_line(ch, odoo, round_trip).await);
        }
        if let Some(reader) = connected
            .as_ref()
            .and_then(|o| crate::channel::catalog_reader(ch, o))
        {
            use crate::sync::currency::Guard;
            let target = format!("{}.currency", ch.kind.name());
            let sells = currency.as_deref().unwrap_or("").to_ascii_uppercase();
            lines.push(match reader.currency_guard().await {
                Ok(Guard::Priced) => Line::new(
                    target,
                    true,
                    format!("Odoo's prices are in {sells}, the currency the channel sells in"),
                ),
                Ok(Guard::NoPrices(why)) => Line::new(
                    target,
                    false,
                    format!("no price goes out (stock still does where the channel takes it alone): {why}"),
                ),
                Ok(Guard::RulesOnly(why)) => Line::new(target, true, why),
                Err(e) => Line::new(
                    target,
                    false,
                    format!("reading the company's and pricelist's currency failed: {e}"),
                ),
            });
        }
        if let (Some(odoo), Some(pricelist)) = (&connected, pricelist) {
            let inspected =
                crate::sync::pricelist::inspect(odoo, pricelist, currency.as_deref()).await;
            let (ok, detail) = match inspected {
                Ok(d) => (true, d),
                Err(e) => (false, e.to_string()),
            };
            lines.push(Line::new(
                format!("{}.pricelist", ch.kind.name()),
                ok,
                detail,
            ));
        }
    }
    let failed = lines.iter().any(|l| !l.ok);
    if json {
        print_json(&lines)?;
    } else {
        let width = lines
            .iter()
            .map(|l| l.target.len())
            .max()
            .unwrap_or(0)
            .max(8);
        for l in &lines {
            let mark = if l.warning {
                paint("WARN", Tone::Warn)
            } else if l.ok {
                paint("ok  ", Tone::Good)
            } else {
                paint("FAIL", Tone::Bad)
            };
            println!("{mark}  {:<width$} {}", l.target, l.detail);
        }
    }
    Ok(if failed { 1 } else { 0 })
}

/// Reads the catalog as the channel's first push does (nothing is sent) and estimates the push:
/// Odoo's read time, plus one bulk request per batch at the round trip just measured.
/// `odoo.company_id`: the user may work in it (Odoo refuses every call otherwise), and which
/// company it is.
async fn company_line(odoo: &OdooClient, company: i64) -> Line {
    use crate::odoo::Value;
    let user = odoo
        .read("res.users", &[odoo.uid()], &["company_ids"])
        .await;
    match user {
        Err(e) if e.to_string().contains("unauthorized or invalid companies") => Line::new(
            "odoo.company",
            false,
            format!("Odoo refuses company {company} for this user (\"Access to unauthorized or invalid companies\"): set odoo.company_id to one of the user's companies, or allow the user in it (Settings > Users > Allowed Companies)"),
        ),
        Err(e) => Line::new("odoo.company", false, format!("reading the user's companies failed: {e}")),
        Ok(rows) => {
            let allowed: Vec<i64> = rows
                .first()
                .and_then(|r| r.get("company_ids"))
                .map(Value::as_ids)
                .unwrap_or_default();
            if !allowed.contains(&company) {
                return Line::new(
                    "odoo.company",
                    false,
                    format!("the user is not allowed in company {company} (its companies: {allowed:?}); set odoo.company_id to one of them"),
                );
            }
            let name = odoo
                .read("res.company", &[company], &["name"])
                .await
                .ok()
                .and_then(|r| r.first().and_then(|c| c.get("name")).and_then(Value::as_str).map(str::to_string))
                .unwrap_or_default();
            Line::new(
                "odoo.company",
                true,
                format!("company {company} {name:?}: orders, customers and delivery contacts are created in it, stock is its warehouses'"),
            )
        }
    }
}

async fn estimate_line(
    ch: &crate::config::ChannelConfig,
    odoo: &OdooClient,
    round_trip: std::time::Duration,
) -> Line {
    let Some(reader) = crate::channel::catalog_reader(ch, odoo) else {
        return Line::new(
            format!("{}.estimate", ch.kind.name()),
            false,
            "no estimate for this channel: it pushes no catalog",
        );
    };
    let progress =
        super::render::Progress::new(&format!("reading the catalog for {}", ch.kind.name()));
    let started = std::time::Instant::now();
    let calls_before = odoo.calls_made();
    let mut products = 0usize;
    let read = reader
        .read_all(|page| {
            products += page.len();
            progress.show(products);
        })
        .await;
    let took = started.elapsed();
    progress.done();
    let target = format!("{}.estimate", ch.kind.name());
    match read {
        Err(e) => Line::new(target, false, format!("reading the catalog from Odoo: {e}")),
        Ok(_) => {
            let batch = ch.batch_size.max(1) as usize;
            let batches = products.div_ceil(batch);
            let rate = products as f64 / took.as_secs_f64().max(1e-6);
            let push = took + round_trip * batches as u32 / ch.concurrency.max(1) as u32;
            Line::new(
                target,
                true,
                format!(
                    "{} products read from Odoo in {:.1} s ({} a second, {} Odoo calls); the first push: {} bulk request(s) of up to {batch}, about {:.1} s in all (the read, plus {} ms a request as just measured, {} at a time); nothing was sent",
                    super::render::thousands(products as i64),
                    took.as_secs_f64(),
                    super::render::thousands(rate as i64),
                    odoo.calls_made() - calls_before,
                    super::render::thousands(batches as i64),
                    push.as_secs_f64(),
                    round_trip.as_millis(),
                    ch.concurrency.max(1)
                ),
            )
        }
    }
}
