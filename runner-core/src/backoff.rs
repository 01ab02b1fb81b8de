//! Reconnect delays: capped exponential backoff with full jitter, and a slow lane for rejected
//! credentials so that a bad token is not hammered against the server.

use std::time::Duration;

use rand::Rng;

/// Backoff settings (from `RECONNECT_DELAY_SECONDS` and friends).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffConfig {
    /// First delay ceiling; doubles with each failed attempt.
    pub base: Duration,
    /// Largest delay ceiling.
    pub max: Duration,
    /// Delay after the control plane rejected the token: the token will not fix itself quickly.
    pub auth_retry: Duration,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            base: Duration::from_secs(5),
            max: Duration::from_secs(300),
            auth_retry: Duration::from_secs(300),
        }
    }
}

/// Tracks consecutive failures.
#[derive(Debug, Clone)]
pub struct Backoff {
    config: BackoffConfig,
    attempt: u32,
}

impl Backoff {
    pub fn new(config: BackoffConfig) -> Backoff {
        Backoff { config, attempt: 0 }
    }

    /// The ceiling of the next delay: `min(max, base * 2^attempt)`.
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(20)).unwrap_or(u32::MAX);
        self.config.base.saturating_mul(factor).min(self.config.max)
    }

    /// The next delay after a failure: uniform in `[0, ceiling]` ("full jitter"), so that many
    /// runners reconnecting after an outage spread out instead of arriving together.
    pub fn next_delay(&mut self, rng: &mut impl Rng) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        jitter(ceiling, 0.0, rng)
    }

    /// The delay after a credential rejection: between half and all of `auth_retry`.
    pub fn auth_delay(&mut self, rng: &mut impl Rng) -> Duration {
        self.attempt = self.attempt.saturating_add(1);
        jitter(self.config.auth_retry, 0.5, rng)
    }

    /// Called once a session was established and stable: the next failure starts from `base`.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    pub fn attempt(&self) -> u32 {
        self.attempt
    }
}

fn jitter(ceiling: Duration, floor_fraction: f64, rng: &mut impl Rng) -> Duration {
    let fraction = rng.random_range(floor_fraction..=1.0);
    ceiling.mul_f64(fraction)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn ceiling_doubles_and_caps() {
        let mut b = Backoff::new(BackoffConfig {
            base: Duration::from_secs(1),
            max: Duration::from_secs(10),
            auth_retry: Duration::from_secs(60),
        });
        let mut rng = StdRng::seed_from_u64(7);
        let mut ceilings = vec![];
        for _ in 0..6 {
            ceilings.push(b.ceiling().as_secs());
            let d = b.next_delay(&mut rng);
            assert!(d <= Duration::from_secs(10));
        }
        assert_eq!(ceilings, vec![1, 2, 4, 8, 10, 10]);
        b.reset();
        assert_eq!(b.ceiling(), Duration::from_secs(1));
    }

    #[test]
    fn full_jitter_spreads_delays() {
        let mut rng = StdRng::seed_from_u64(1);
        let cfg = BackoffConfig {
            base: Duration::from_secs(8),
            ..Default::default()
        };
        let delays: Vec<_> = (0..1000)
            .map(|_| Backoff::new(cfg).next_delay(&mut rng).as_millis())
            .collect();
        let below_half = delays.iter().filter(|d| **d < 4000).count();
        assert!((350..650).contains(&below_half), "{below_half}");
        assert!(delays.iter().all(|d| *d <= 8000));
    }

    #[test]
    fn auth_rejections_wait_long() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut b = Backoff::new(BackoffConfig::default());
        for _ in 0..100 {
            let d = b.auth_delay(&mut rng);
            assert!(d >= Duration::from_secs(150) && d <= Duration::from_secs(300));
        }
    }
}
