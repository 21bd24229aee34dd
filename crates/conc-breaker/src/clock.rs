//! The breaker's clock: the system clock called directly, any other
//! through a trait object.

use std::any::TypeId;
use std::sync::Arc;
use std::time::{Duration, Instant};

use conc_core::{Clock, Sleep, SystemClock};

/// A [`Clock`] without a type parameter on the breaker. The system clock,
/// the production default, gets its own variant so its `now_nanos` (a
/// time-stamp-counter read) is inlined instead of called through a vtable.
#[derive(Clone, Debug)]
pub(crate) enum BreakerClock {
    System,
    Other(Arc<dyn Clock>),
}

impl BreakerClock {
    pub(crate) fn of<C: Clock>(clock: C) -> BreakerClock {
        if TypeId::of::<C>() == TypeId::of::<SystemClock>() {
            BreakerClock::System
        } else {
            BreakerClock::Other(Arc::new(clock))
        }
    }

    /// The instant `now_nanos` counts from.
    pub(crate) fn epoch(&self) -> Instant {
        match self {
            BreakerClock::System => SystemClock.epoch(),
            BreakerClock::Other(clock) => clock.epoch(),
        }
    }

    #[inline]
    pub(crate) fn now_nanos(&self) -> u64 {
        match self {
            BreakerClock::System => SystemClock.now_nanos(),
            BreakerClock::Other(clock) => clock.now_nanos(),
        }
    }

    pub(crate) fn sleep_until(&self, deadline: Instant) -> Sleep {
        match self {
            BreakerClock::System => SystemClock.sleep_until(deadline),
            BreakerClock::Other(clock) => clock.sleep_until(deadline),
        }
    }

    pub(crate) fn sleep(&self, duration: Duration) -> Sleep {
        match self {
            BreakerClock::System => SystemClock.sleep(duration),
            BreakerClock::Other(clock) => clock.sleep(duration),
        }
    }
}
