//! The simulated world behind the gateway: a flaky downstream service whose
//! latency and error rate change at run time, and a few backends for the
//! fan-out and "fastest replica" routes.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

/// Parts per million: the error rate as an integer, so that it fits one
/// atomic word.
const PPM: f64 = 1_000_000.0;

/// A downstream service that answers after `latency` and fails with
/// probability `error_rate`. Every setting is an atomic, so requests read
/// it without a lock while the admin endpoint changes it.
#[derive(Debug)]
pub(crate) struct Downstream {
    latency_ms: AtomicU64,
    error_ppm: AtomicU32,
    dice: Dice,
}

/// What a call to the downstream gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reply {
    Ok,
    Failed,
}

impl Downstream {
    pub(crate) fn new(latency: Duration, error_rate: f64) -> Downstream {
        let downstream = Downstream { latency_ms: AtomicU64::new(0), error_ppm: AtomicU32::new(0), dice: Dice::new() };
        downstream.set_latency(latency);
        downstream.set_error_rate(error_rate);
        downstream
    }

    pub(crate) fn latency(&self) -> Duration {
        Duration::from_millis(self.latency_ms.load(Ordering::Relaxed))
    }

    pub(crate) fn error_rate(&self) -> f64 {
        f64::from(self.error_ppm.load(Ordering::Relaxed)) / PPM
    }

    pub(crate) fn set_latency(&self, latency: Duration) {
        self.latency_ms.store(u64::try_from(latency.as_millis()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Sets the share of calls that fail; `error_rate` was checked to be in
    /// `0.0..=1.0`.
    #[expect(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "0..=1_000_000 fits a u32")]
    pub(crate) fn set_error_rate(&self, error_rate: f64) {
        self.error_ppm.store((error_rate.clamp(0.0, 1.0) * PPM).round() as u32, Ordering::Relaxed);
    }

    /// One call: waits the latency, then fails or not.
    pub(crate) async fn call(&self) -> Reply {
        tokio::time::sleep(self.latency()).await;
        if self.dice.below_ppm(self.error_ppm.load(Ordering::Relaxed)) { Reply::Failed } else { Reply::Ok }
    }

    /// True with probability `p` (0.0..=1.0), for the simulated replicas.
    #[expect(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "0..=1_000_000 fits a u32")]
    pub(crate) fn chance(&self, p: f64) -> bool {
        self.dice.below_ppm((p.clamp(0.0, 1.0) * PPM).round() as u32)
    }

    /// A latency drawn between `min` and `max`, for the simulated replicas.
    pub(crate) fn jitter(&self, min: Duration, max: Duration) -> Duration {
        let spread = u64::try_from((max - min).as_millis()).unwrap_or(u64::MAX).max(1);
        min + Duration::from_millis(self.dice.roll() % spread)
    }
}

/// A lock-free pseudo-random source (splitmix64 over an atomic counter):
/// good enough to simulate failures, shared by every request.
#[derive(Debug)]
struct Dice(AtomicU64);

impl Dice {
    fn new() -> Dice {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| u64::try_from(since.as_nanos() & u128::from(u64::MAX)).unwrap_or(0));
        Dice(AtomicU64::new(seed))
    }

    fn roll(&self) -> u64 {
        let mut z = self.0.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed).wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// True with probability `ppm` in a million.
    fn below_ppm(&self, ppm: u32) -> bool {
        match ppm {
            0 => false,
            1_000_000.. => true,
            _ => self.roll() % 1_000_000 < u64::from(ppm),
        }
    }
}

/// One of the backends the fan-out route calls.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Backend {
    pub(crate) name: &'static str,
    pub(crate) latency: Duration,
}

/// The three backends `/api/fanout` asks at once.
pub(crate) const BACKENDS: [Backend; 3] = [
    Backend { name: "users", latency: Duration::from_millis(15) },
    Backend { name: "orders", latency: Duration::from_millis(30) },
    Backend { name: "inventory", latency: Duration::from_millis(45) },
];

/// The replicas `/api/fastest` races.
pub(crate) const REPLICAS: [&str; 3] = ["replica-a", "replica-b", "replica-c"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_rate_extremes_are_exact() {
        let downstream = Downstream::new(Duration::ZERO, 1.0);
        assert!((0..1000).all(|_| downstream.dice.below_ppm(downstream.error_ppm.load(Ordering::Relaxed))));
        downstream.set_error_rate(0.0);
        assert!((0..1000).all(|_| !downstream.dice.below_ppm(downstream.error_ppm.load(Ordering::Relaxed))));
        assert!((downstream.error_rate() - 0.0).abs() < f64::EPSILON);
    }

    #[test]
    fn half_the_calls_fail_at_half() {
        let dice = Dice::new();
        let failed = (0..10_000).filter(|_| dice.below_ppm(500_000)).count();
        assert!((4_000..6_000).contains(&failed), "{failed}");
    }

    #[test]
    fn jitter_stays_in_range() {
        let downstream = Downstream::new(Duration::ZERO, 0.0);
        for _ in 0..1000 {
            let latency = downstream.jitter(Duration::from_millis(5), Duration::from_millis(50));
            assert!(latency >= Duration::from_millis(5) && latency < Duration::from_millis(50));
        }
    }
}
