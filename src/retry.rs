//! What to do after a failure: every error that can stop a job carries a [`RetryClass`], and the
//! durable queue turns it into a next attempt time with [`backoff_delay`] or a dead letter.

use rand::Rng;
use std::time::Duration;

/// How a failure should be treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryClass {
    /// Timeouts, refused or dropped connections, 5xx: try again later.
    Transient,
    /// 429 or the peer's own throttle signal; `after` is its Retry-After if it gave one.
    RateLimited { after: Option<Duration> },
    /// Other 4xx, validation errors, bad data: retrying cannot help.
    Permanent,
    /// 401/403, rejected logins: retrying cannot help until the operator fixes a credential.
    Auth,
    /// A system the job needs (Odoo) cannot be reached: wait for it without spending attempts,
    /// so an outage, however long, dead-letters nothing.
    Unavailable,
    /// The channel's own peer cannot be reached (connection refused or reset, DNS, TLS, a
    /// connect timeout, or 502/503/504 from a proxy in front of it): the channel is marked
    /// unreachable and the job waits for it, without spending attempts, until its probe
    /// answers.
    Unreachable,
    /// The peer said it is over its quota and how long until it takes calls again (Meta's
    /// `estimated_time_to_regain_access`): the job waits exactly that long, past the policy's
    /// longest wait if need be, without spending an attempt (the job is not at fault).
    Throttled { after: Duration },
}

impl RetryClass {
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            RetryClass::Transient
                | RetryClass::RateLimited { .. }
                | RetryClass::Unavailable
                | RetryClass::Unreachable
                | RetryClass::Throttled { .. }
        )
    }

    /// True when the failure is a peer that cannot be reached or asked for a pause, not the
    /// job's own: it waits without spending an attempt.
    pub fn is_waiting(self) -> bool {
        matches!(
            self,
            RetryClass::Unavailable | RetryClass::Unreachable | RetryClass::Throttled { .. }
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RetryClass::Transient => "transient",
            RetryClass::RateLimited { .. } => "rate-limited",
            RetryClass::Permanent => "permanent",
            RetryClass::Auth => "auth",
            RetryClass::Unavailable => "unavailable",
            RetryClass::Unreachable => "unreachable",
            RetryClass::Throttled { .. } => "throttled",
        }
    }

    /// The class an HTTP status implies (`None` for success codes).
    pub fn from_status(status: u16, retry_after: Option<Duration>) -> Option<RetryClass> {
        match status {
            200..=399 => None,
            401 | 403 => Some(RetryClass::Auth),
            408 => Some(RetryClass::Transient),
            429 => Some(RetryClass::RateLimited { after: retry_after }),
            400..=499 => Some(RetryClass::Permanent),
            _ => Some(RetryClass::Transient),
        }
    }
}

/// Something that knows its retry class.
pub trait Classify {
    fn retry_class(&self) -> RetryClass;
}

impl Classify for reqwest::Error {
    fn retry_class(&self) -> RetryClass {
        if let Some(status) = self.status() {
            return RetryClass::from_status(status.as_u16(), None).unwrap_or(RetryClass::Transient);
        }
        if self.is_builder() {
            RetryClass::Permanent
        } else {
            // timeouts, connect errors, bodies cut short
            RetryClass::Transient
        }
    }
}

/// Parses a `Retry-After` header: delta-seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    (when.to_utc() - now).to_std().ok().or(Some(Duration::ZERO))
}

/// Exponential backoff with full jitter: a random wait in `[0, min(max, base * 2^(attempt-1))]`.
/// `attempt` counts from 1 (the wait after the first failure). A rate limit's `Retry-After` is a
/// floor: the wait is never shorter than what the peer asked for (but still capped at `max`).
pub fn backoff_delay(
    attempt: u32,
    base: Duration,
    max: Duration,
    class: RetryClass,
    rng: &mut impl Rng,
) -> Duration {
    let exp = attempt.saturating_sub(1).min(31);
    let ceiling = base.saturating_mul(1u32 << exp).min(max);
    let jittered = Duration::from_millis(rng.random_range(0..=ceiling.as_millis() as u64));
    match class {
        RetryClass::RateLimited { after: Some(after) } => jittered.max(after).min(max),
        _ => jittered,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;

    #[test]
    fn statuses_classify() {
        assert_eq!(RetryClass::from_status(200, None), None);
        assert_eq!(RetryClass::from_status(401, None), Some(RetryClass::Auth));
        assert_eq!(RetryClass::from_status(403, None), Some(RetryClass::Auth));
        assert_eq!(
            RetryClass::from_status(400, None),
            Some(RetryClass::Permanent)
        );
        assert_eq!(
            RetryClass::from_status(404, None),
            Some(RetryClass::Permanent)
        );
        assert_eq!(
            RetryClass::from_status(502, None),
            Some(RetryClass::Transient)
        );
        assert_eq!(
            RetryClass::from_status(429, Some(Duration::from_secs(7))),
            Some(RetryClass::RateLimited {
                after: Some(Duration::from_secs(7))
            })
        );
    }

    #[test]
    fn retry_after_in_seconds_and_dates() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-21T10:00:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(parse_retry_after("12", now), Some(Duration::from_secs(12)));
        assert_eq!(
            parse_retry_after("Sat, 21 Nov 2026 10:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    proptest! {
        #[test]
        fn backoff_stays_within_bounds(attempt in 1u32..200, base_ms in 1u64..10_000, max_ms in 10_000u64..3_600_000, seed: u64) {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let base = Duration::from_millis(base_ms);
            let max = Duration::from_millis(max_ms);
            let d = backoff_delay(attempt, base, max, RetryClass::Transient, &mut rng);
            let ceiling = base.saturating_mul(1u32 << (attempt - 1).min(31)).min(max);
            prop_assert!(d <= ceiling);
            prop_assert!(d <= max);
        }

        #[test]
        fn rate_limit_waits_at_least_retry_after(attempt in 1u32..20, after_s in 0u64..500, seed: u64) {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let max = Duration::from_secs(600);
            let after = Duration::from_secs(after_s);
            let d = backoff_delay(attempt, Duration::from_secs(1), max, RetryClass::RateLimited { after: Some(after) }, &mut rng);
            prop_assert!(d >= after && d <= max);
        }
    }
}
