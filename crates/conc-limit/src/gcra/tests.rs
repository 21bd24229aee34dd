//! Unit tests of the TAT arithmetic; behaviour is tested in the `tests`
//! crate (`limit_gcra.rs`).

use std::time::Duration;

use conc_core::{Clock, ManualClock};

use super::*;

const MS: Duration = Duration::from_millis(1);

fn manual(per_second: f64, burst: u32) -> (ManualClock, Gcra<ManualClock>) {
    let clock = ManualClock::new();
    let gcra = Gcra::with_clock(Rate::per_second(per_second).unwrap(), burst, clock.clone()).unwrap();
    (clock, gcra)
}

fn tat(gcra: &Gcra<ManualClock>) -> u64 {
    gcra.tat.load(Ordering::Relaxed)
}

#[test]
fn an_admission_moves_the_tat_by_its_cost_from_now_or_from_the_tat() {
    let (clock, gcra) = manual(1000.0, 4); // T = 1 ms
    let start = clock.now();
    gcra.check_n_at(start, 3).unwrap();
    assert_eq!(tat(&gcra), 3_000_000, "from now (the origin)");
    gcra.check_at(start).unwrap();
    assert_eq!(tat(&gcra), 4_000_000, "from the TAT, which is later");
    assert!(gcra.check_at(start).is_err());
    assert_eq!(tat(&gcra), 4_000_000, "a denied check writes nothing");
    gcra.check_at(start + 10 * MS).unwrap();
    assert_eq!(tat(&gcra), 11_000_000, "from now again, once the TAT is past");
}

#[test]
fn instants_before_the_origin_count_as_the_origin() {
    let (clock, gcra) = manual(1000.0, 1);
    let origin = clock.now();
    let before = origin.checked_sub(Duration::from_secs(1)).unwrap_or(origin);
    gcra.check_at(before).unwrap();
    assert_eq!(gcra.check_at(before), Err(Denied::NotUntil(origin + MS)));
    assert_eq!(gcra.available_at(before), 0);
    assert!(!gcra.is_idle_at(before));
}

#[test]
fn extreme_settings_neither_overflow_nor_panic() {
    let clock = ManualClock::new();
    let slowest = Rate::per_second(1e-300).unwrap(); // an interval of Duration::MAX
    let gcra = Gcra::with_clock(slowest, u32::MAX, clock.clone()).unwrap();
    let now = clock.now();
    assert!(gcra.check_n_at(now, u32::MAX).is_ok());
    clock.advance(Duration::from_secs(100 * 365 * 24 * 3600));
    let _ = gcra.check_n_at(clock.now(), u32::MAX);
    assert!(tat(&gcra) <= 3 * HORIZON);
    gcra.set_burst_at(clock.now(), 1).unwrap(); // the events available, capped to 1
    assert!(gcra.check_n_at(clock.now(), 1).is_ok());
    let denied = gcra.check_n_at(clock.now(), 1);
    assert!(
        matches!(denied, Err(Denied::NotUntil(at)) if at > clock.now() + Duration::from_secs(100 * 365 * 24 * 3600))
    );
    gcra.set_rate_at(clock.now(), Rate::per_second(1e9).unwrap());
    assert!(tat(&gcra) <= 3 * HORIZON);

    // The fastest rate: one event a nanosecond.
    let fastest = Gcra::with_clock(Rate::per_second(1e12).unwrap(), 1, clock.clone()).unwrap();
    assert_eq!(fastest.interval(), Some(Duration::from_nanos(1)));
    let now = clock.now();
    fastest.check_at(now).unwrap();
    assert_eq!(fastest.check_at(now), Err(Denied::NotUntil(now + Duration::from_nanos(1))));
}

#[test]
fn a_long_burst_is_exact_below_the_horizon() {
    // One event a day, a burst of 10,000 (27 years of tolerance).
    let clock = ManualClock::new();
    let gcra = Gcra::with_clock(Rate::every(Duration::from_secs(86_400)).unwrap(), 10_000, clock.clone()).unwrap();
    let now = clock.now();
    assert!(gcra.check_n_at(now, 10_000).is_ok());
    assert_eq!(gcra.check_at(now), Err(Denied::NotUntil(now + Duration::from_secs(86_400))));
}

#[test]
fn set_rate_rescales_the_debt_so_the_available_events_stay() {
    let (clock, gcra) = manual(1000.0, 10);
    let now = clock.now();
    gcra.check_n_at(now, 10).unwrap(); // drained: a debt of 10 ms
    gcra.set_rate_at(now, Rate::per_second(100.0).unwrap()); // T = 10 ms
    assert_eq!(tat(&gcra), 100_000_000, "10 events owed, now at 10 ms each");
    assert_eq!(gcra.check_at(now), Err(Denied::NotUntil(now + 10 * MS)));
    gcra.set_rate_at(now, Rate::per_second(2000.0).unwrap());
    assert_eq!(tat(&gcra), 5_000_000);
    assert_eq!(gcra.available_at(now), 0);

    gcra.set_rate_at(now, Rate::INFINITE);
    assert!(gcra.is_idle_at(now));
    assert!(gcra.check_n_at(now, 1000).is_ok(), "infinite admits more than the burst");
    assert_eq!(tat(&gcra), 0, "and touches nothing");
    gcra.set_rate_at(now, Rate::per_second(1000.0).unwrap());
    assert_eq!(gcra.available_at(now), 10, "leaving INFINITE leaves the limiter full");
}

#[test]
fn set_burst_keeps_the_available_events_capped_to_the_new_burst() {
    let (clock, gcra) = manual(1000.0, 4);
    let now = clock.now();
    gcra.check_at(now).unwrap(); // 3 available
    gcra.set_burst_at(now, 8).unwrap();
    assert_eq!(gcra.available_at(now), 3, "a larger burst refills at the rate");
    assert_eq!(gcra.available_at(now + 5 * MS), 8);
    gcra.set_burst_at(now, 2).unwrap();
    assert_eq!(gcra.available_at(now), 2, "capped to a smaller burst");
    gcra.set_burst_at(now, 1).unwrap();
    assert_eq!(gcra.available_at(now), 1);
    assert_eq!(gcra.set_burst_at(now, 0), Err(ConfigError::ZeroBurst));
    assert_eq!(gcra.burst(), 1);
}

#[test]
fn fresh_at_copies_the_settings_not_the_state() {
    let (clock, gcra) = manual(10.0, 3);
    gcra.set_max_waiters(Some(7));
    let now = clock.now();
    gcra.check_n_at(now, 3).unwrap();
    let fresh = gcra.fresh_at(now + MS);
    assert_eq!((fresh.burst(), fresh.interval(), fresh.max_waiters()), (3, gcra.interval(), Some(7)));
    assert!(fresh.is_idle_at(now + MS));
    assert!(fresh.check_n_at(now + MS, 3).is_ok());
    assert!(!gcra.is_idle_at(now + 299 * MS));
    assert!(gcra.is_idle_at(now + 300 * MS));
}

#[test]
fn debug_shows_the_settings() {
    let (_clock, gcra) = manual(10.0, 3);
    let debug = format!("{gcra:?}");
    assert!(debug.contains("Gcra") && debug.contains("burst: 3") && debug.contains("10/s"), "{debug}");
}

#[test]
fn at_rates_too_slow_for_the_horizon_a_full_limiter_admits_what_fits_in_it() {
    // One event every ~31.7 years: 146 years hold 4.6 intervals, so the
    // documented clamp admits 5 of a burst of 10 (the fifth starts within
    // the span), then none.
    let (clock, gcra) = manual(1e-9, 10);
    let now = clock.now();
    let admitted = (0..10).filter(|_| gcra.check_at(now).is_ok()).count();
    assert_eq!(admitted, 5);
    // A rate whose whole burst fits is not clamped.
    let (clock, gcra) = manual(1e-6, 10);
    let now = clock.now();
    assert_eq!((0..11).filter(|_| gcra.check_at(now).is_ok()).count(), 10);
}
