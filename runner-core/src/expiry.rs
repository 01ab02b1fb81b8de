//! Warnings ahead of a token's expiry. `AUTH_TOKEN` (the platform's ingestion-bot JWT) and
//! `ARGO_TOKEN` (a Kubernetes service-account token, a JWT too) carry an `exp` claim; the runner
//! reads it (without verifying the signature: only the issuer can), exports it as the gauge
//! `ingestion_runner_token_expiry_timestamp_seconds{token}`, and logs a warning 7 days, 1 day and
//! 1 hour before, and once expired. Never the token itself.
//!
//! The decisions are pure functions of "now" ([`ExpiryWatch::observe`]); [`watch`] is the loop
//! that reads the tokens again every interval (so a rotated token file resets the warnings).

use std::time::Duration;

use base64::Engine as _;
use tokio_util::sync::CancellationToken;

/// The `exp` claim (seconds since the epoch) of a JWT, and its `iat` when present. `None` when
/// the token is not a JWT or has no `exp`. The signature is not checked.
pub fn jwt_times(token: &str) -> Option<(i64, Option<i64>)> {
    let token = token.trim();
    let token = token.strip_prefix("Bearer ").unwrap_or(token);
    let mut parts = token.split('.');
    let (_, payload, _, None) = (parts.next()?, parts.next()?, parts.next()?, parts.next()) else {
        return None;
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let num = |k: &str| {
        claims
            .get(k)
            .and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)))
    };
    Some((num("exp")?, num("iat")))
}

/// How close a token is to its expiry, in increasing urgency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// More than 7 days left.
    Fine,
    Within7Days,
    Within1Day,
    Within1Hour,
    Expired,
}

const HOUR: i64 = 3_600;
const DAY: i64 = 24 * HOUR;

impl Stage {
    fn threshold(self) -> i64 {
        match self {
            Stage::Fine => i64::MAX,
            Stage::Within7Days => 7 * DAY,
            Stage::Within1Day => DAY,
            Stage::Within1Hour => HOUR,
            Stage::Expired => 0,
        }
    }
}

/// The stage of a token expiring at `exp` at time `now`. A token that lives shorter than twice a
/// warning's lead time (a projected service-account token lives an hour and is refreshed by the
/// kubelet) skips that warning: it would fire at every rotation. Expiry always counts.
pub fn stage(exp: i64, iat: Option<i64>, now: i64) -> Stage {
    let left = exp - now;
    if left <= 0 {
        return Stage::Expired;
    }
    let lifetime = iat.map(|iat| exp - iat);
    [Stage::Within1Hour, Stage::Within1Day, Stage::Within7Days]
        .into_iter()
        .find(|s| left <= s.threshold() && lifetime.is_none_or(|l| l > 2 * s.threshold()))
        .unwrap_or(Stage::Fine)
}

/// `2026-01-31 12:00:00 UTC`.
pub fn utc(ts: i64) -> String {
    chrono::DateTime::from_timestamp(ts, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| format!("{ts} (seconds since the epoch)"))
}

fn human(secs: i64) -> String {
    match secs {
        s if s >= 2 * DAY => format!("{} days", (s + DAY / 2) / DAY),
        s if s >= 2 * HOUR => format!("{} hours", (s + HOUR / 2) / HOUR),
        s if s >= 120 => format!("{} minutes", (s + 30) / 60),
        s => format!("{s} seconds"),
    }
}

/// The warnings of one token: remembers the last stage warned about, per expiry, so that each
/// warning is logged once (and again for a new token).
#[derive(Debug)]
pub struct ExpiryWatch {
    /// `AUTH_TOKEN` or `ARGO_TOKEN`: the label and the name in messages.
    name: &'static str,
    /// How to rotate it, for the message.
    fix: &'static str,
    last: Option<(i64, Stage)>,
}

impl ExpiryWatch {
    pub fn new(name: &'static str, fix: &'static str) -> ExpiryWatch {
        ExpiryWatch {
            name,
            fix,
            last: None,
        }
    }

    /// Takes the token's current times (from [`jwt_times`]) at `now`: updates the gauge, and
    /// returns the warning to log, if one is due.
    pub fn observe(&mut self, times: Option<(i64, Option<i64>)>, now: i64) -> Option<String> {
        let metrics = crate::metrics::metrics();
        let Some((exp, iat)) = times else {
            metrics.token_expiry(self.name, None);
            self.last = None;
            return None;
        };
        metrics.token_expiry(self.name, Some(exp));
        let stage = stage(exp, iat, now);
        let warned = match self.last {
            Some((e, s)) if e == exp => s,
            _ => Stage::Fine,
        };
        self.last = Some((exp, stage.max(warned)));
        if stage <= warned {
            return None;
        }
        let (name, at, fix) = (self.name, utc(exp), self.fix);
        Some(if stage == Stage::Expired {
            format!(
                "{name} expired at {at} ({} ago); it is refused from now on; rotate it: {fix}",
                human(now - exp)
            )
        } else {
            format!(
                "{name} expires at {at} (in {}); rotate it before then: {fix}",
                human(exp - now)
            )
        })
    }
}

/// How to rotate `AUTH_TOKEN`.
pub const AUTH_TOKEN_FIX: &str = "generate a new ingestion-bot token in the platform (Settings > Bots > ingestion-bot) and update the Secret behind AUTH_TOKEN; with AUTH_TOKEN_FILE the new token is used at the next reconnect, with AUTH_TOKEN restart the runner";

/// How to rotate `ARGO_TOKEN`.
pub const ARGO_TOKEN_FIX: &str = "recreate the service-account token Secret behind ARGO_TOKEN and restart the runner, or mount a token file and set ARGO_TOKEN_FILE (re-read when it changes)";

/// A token to watch: its watch state and how to read its current value (`None`: unset or
/// unreadable, which other parts of the runner report).
pub struct Watched {
    pub watch: ExpiryWatch,
    pub read: Box<dyn Fn() -> Option<String> + Send>,
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Reads each token every `every` (at once first), updates the gauge and logs the warnings due,
/// until `shutdown`.
pub async fn watch(mut tokens: Vec<Watched>, every: Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        let now = unix_now();
        for t in &mut tokens {
            let times = (t.read)().as_deref().and_then(jwt_times);
            if let Some(message) = t.watch.observe(times, now) {
                tracing::warn!(token = t.watch.name, expires_at = %times.map(|(e, _)| utc(e)).unwrap_or_default(), "{message}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: serde_json::Value) -> String {
        let b = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.c2ln",
            b.encode(br#"{"alg":"RS256"}"#),
            b.encode(claims.to_string())
        )
    }

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn reads_exp_and_iat_only_from_jwts() {
        let t = jwt(serde_json::json!({"exp": NOW + 10, "iat": NOW - 10, "sub": "bot"}));
        assert_eq!(jwt_times(&t), Some((NOW + 10, Some(NOW - 10))));
        assert_eq!(
            jwt_times(&format!("Bearer {t}\n")),
            Some((NOW + 10, Some(NOW - 10)))
        );
        assert_eq!(jwt_times(&jwt(serde_json::json!({"sub": "bot"}))), None);
        assert_eq!(jwt_times("opaque-token"), None);
        assert_eq!(jwt_times("a.b.c.d"), None);
        assert_eq!(jwt_times("a.%%%.c"), None);
    }

    #[test]
    fn warns_once_per_stage_ahead_of_time_and_when_expired() {
        let exp = NOW + 30 * DAY;
        let token = jwt(serde_json::json!({"exp": exp, "iat": NOW - 60 * DAY}));
        let times = jwt_times(&token);
        let mut w = ExpiryWatch::new("AUTH_TOKEN", AUTH_TOKEN_FIX);
        let mut fired = Vec::new();
        // Walk time in 10-minute steps from 30 days before expiry to 2 hours after.
        let mut now = NOW;
        while now <= exp + 2 * HOUR {
            if let Some(m) = w.observe(times, now) {
                fired.push((exp - now, m));
            }
            now += 600;
        }
        let lead: Vec<i64> = fired.iter().map(|(l, _)| *l).collect();
        assert_eq!(lead.len(), 4, "{fired:#?}");
        assert!(lead[0] <= 7 * DAY && lead[0] > 7 * DAY - 600, "{lead:?}");
        assert!(lead[1] <= DAY && lead[1] > DAY - 600, "{lead:?}");
        assert!(lead[2] <= HOUR && lead[2] > HOUR - 600, "{lead:?}");
        assert!(lead[3] <= 0 && lead[3] > -600, "{lead:?}");
        assert!(
            fired[0].1.starts_with("AUTH_TOKEN expires at 2027-02-14 ")
                && fired[0].1.contains("(in 7 days)")
                && fired[0].1.contains("rotate it"),
            "{}",
            fired[0].1
        );
        assert!(
            fired[3].1.starts_with("AUTH_TOKEN expired at")
                && fired[3].1.contains("Settings > Bots"),
            "{}",
            fired[3].1
        );
        for (_, m) in &fired {
            assert!(!m.contains(&token) && !m.contains(token.split('.').nth(1).unwrap()));
        }
    }

    #[test]
    fn a_new_token_resets_and_an_old_one_warns_at_once() {
        let mut w = ExpiryWatch::new("ARGO_TOKEN", ARGO_TOKEN_FIX);
        // Already within a day at start: one warning at once, then silence.
        let m = w.observe(Some((NOW + 5 * HOUR, None)), NOW).unwrap();
        assert!(
            m.contains("in 5 hours") && m.contains("ARGO_TOKEN_FILE"),
            "{m}"
        );
        assert_eq!(w.observe(Some((NOW + 5 * HOUR, None)), NOW + 60), None);
        // Rotated to a fresh token: nothing; no token: nothing.
        assert_eq!(w.observe(Some((NOW + 90 * DAY, None)), NOW + 120), None);
        assert_eq!(w.observe(None, NOW + 180), None);
        // Already expired at start.
        let mut w = ExpiryWatch::new("AUTH_TOKEN", AUTH_TOKEN_FIX);
        let m = w.observe(Some((NOW - 3 * DAY, None)), NOW).unwrap();
        assert!(m.contains("expired") && m.contains("3 days ago"), "{m}");
    }

    #[test]
    fn short_lived_rotated_tokens_only_warn_when_expired() {
        // A projected service-account token: 1 hour of life, refreshed by the kubelet.
        assert_eq!(stage(NOW + 1_800, Some(NOW - 1_807), NOW), Stage::Fine);
        assert_eq!(stage(NOW - 1, Some(NOW - 3_608), NOW), Stage::Expired);
        // A 30-day token: every warning.
        assert_eq!(
            stage(NOW + 1_800, Some(NOW - 30 * DAY), NOW),
            Stage::Within1Hour
        );
        // A 36-hour token: the 1-hour warning only.
        assert_eq!(
            stage(NOW + 20 * HOUR, Some(NOW - 16 * HOUR), NOW),
            Stage::Fine
        );
        assert_eq!(
            stage(NOW + HOUR, Some(NOW - 35 * HOUR), NOW),
            Stage::Within1Hour
        );
    }

    #[test]
    fn the_gauge_holds_the_expiry() {
        // Its own label: the registry is process-wide and the other tests run in parallel.
        let mut w = ExpiryWatch::new("GAUGE_TEST_TOKEN", ARGO_TOKEN_FIX);
        w.observe(Some((NOW + 99, None)), NOW);
        let text = crate::metrics::metrics().encode();
        assert!(
            text.contains(&format!(
                "ingestion_runner_token_expiry_timestamp_seconds{{token=\"GAUGE_TEST_TOKEN\"}} {}",
                NOW + 99
            )),
            "{text}"
        );
    }
}
