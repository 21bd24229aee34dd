//! [`Classify`]: which responses count as failures.

/// Decides from a call's result whether the breaker counts it as a
/// failure.
///
/// Implemented by [`DefaultClassifier`] (every `Err` is a failure) and by
/// every closure `Fn(&Result<T, E>) -> bool`, so an HTTP `5xx` response can
/// count as a failure while a `404` does not:
///
/// ```
/// use conc_breaker::tower::Classify;
///
/// // Responses are status codes here; a real service would read `status()`.
/// let server_error = |result: &Result<u16, std::io::Error>| result.as_ref().map_or(true, |status| *status >= 500);
/// assert!(server_error.is_failure(&Ok(503)));
/// assert!(!server_error.is_failure(&Ok(404)));
/// ```
pub trait Classify<T, E> {
    /// `true` if `result` counts as a failure of the downstream.
    fn is_failure(&self, result: &Result<T, E>) -> bool;
}

impl<T, E, F> Classify<T, E> for F
where
    F: Fn(&Result<T, E>) -> bool,
{
    fn is_failure(&self, result: &Result<T, E>) -> bool {
        self(result)
    }
}

/// The classifier of [`BreakerLayer::new`](super::BreakerLayer::new): an
/// `Err` is a failure, an `Ok` a success (as [`Breaker::call`](crate::Breaker::call)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DefaultClassifier;

impl<T, E> Classify<T, E> for DefaultClassifier {
    fn is_failure(&self, result: &Result<T, E>) -> bool {
        result.is_err()
    }
}
