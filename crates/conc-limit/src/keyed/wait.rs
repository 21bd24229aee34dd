//! Waiting for a key's turn in a [`Keyed`] GCRA: async, cancellable and
//! blocking forms.

use std::borrow::Borrow;
use std::hash::Hash;

use conc_core::task::block_on;
use conc_core::{Clock, Token};

use super::{Keyed, KeyedError};
use crate::waiters::{retry_at, retry_until_admitted};
use crate::{Gcra, Limiter, WaitError};

/// Why a keyed wait ended without admission.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyedWaitError {
    /// The wait itself failed, as a single limiter's would (see
    /// [`WaitError`]).
    #[error(transparent)]
    Wait(#[from] WaitError),
    /// The key is new, `max_keys` keys are stored and none is idle (see
    /// [`KeyedError::TooManyKeys`]): waiting would not make room, so it
    /// fails at once.
    #[error("too many keys (at most {max}) and none idle to evict")]
    TooManyKeys {
        /// The configured `max_keys`.
        max: usize,
    },
}

impl<K, C> Keyed<K, Gcra<C>>
where
    K: Hash + Eq,
    C: Clock + Clone,
{
    /// Waits until one event for `key` is admitted, sleeping on the
    /// template's clock.
    ///
    /// Like [`Gcra::until_ready`], a waiter reserves nothing: it checks
    /// again when it wakes and may wait again if others took the key's room
    /// meanwhile. The template's [`max_waiters`](Gcra::set_max_waiters)
    /// caps the waiters of all keys together (set it on the template
    /// before building, or through [`reconfigure`](Keyed::reconfigure)).
    ///
    /// # Errors
    ///
    /// [`KeyedWaitError::TooManyKeys`] if the key is new and cannot be
    /// stored; [`WaitError::TooManyWaiters`] (inside
    /// [`KeyedWaitError::Wait`]) if the cap on waiters is reached.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future loses nothing and admits nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// use conc_limit::{Gcra, Keyed, Rate};
    ///
    /// # conc_core::task::block_on(async {
    /// let per_client: Keyed<String, _> = Keyed::new(Gcra::new(Rate::per_second(1000.0)?, 1)?);
    /// per_client.until_ready("alice").await?;
    /// per_client.until_ready("alice").await?; // about a millisecond later
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn until_ready<Q>(&self, key: &Q) -> Result<(), KeyedWaitError>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq + ToOwned<Owned = K>,
    {
        self.wait(key, 1, None).await
    }

    /// Waits until `n` events for `key` are admitted at once.
    ///
    /// # Errors
    ///
    /// As [`until_ready`](Keyed::until_ready), and at once
    /// [`WaitError::ExceedsBurst`] if `n` is more than the burst.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future loses nothing and admits nothing.
    pub async fn until_n_ready<Q>(&self, key: &Q, n: u32) -> Result<(), KeyedWaitError>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq + ToOwned<Owned = K>,
    {
        self.wait(key, n, None).await
    }

    /// [`until_n_ready`](Keyed::until_n_ready) that ends when `token` is
    /// cancelled, and fails at once when the token's deadline comes before
    /// the events would be admitted, as [`Gcra::until_n_ready_until`] does.
    ///
    /// # Errors
    ///
    /// As [`until_n_ready`](Keyed::until_n_ready), and
    /// [`WaitError::Cancelled`] or [`WaitError::DeadlineTooSoon`].
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future loses nothing and admits nothing.
    pub async fn until_n_ready_until<Q>(&self, key: &Q, n: u32, token: &Token) -> Result<(), KeyedWaitError>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq + ToOwned<Owned = K>,
    {
        self.wait(key, n, Some(token)).await
    }

    /// [`until_n_ready`](Keyed::until_n_ready) for plain threads.
    ///
    /// # Errors
    ///
    /// As [`until_n_ready`](Keyed::until_n_ready).
    pub fn until_n_ready_blocking<Q>(&self, key: &Q, n: u32) -> Result<(), KeyedWaitError>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq + ToOwned<Owned = K>,
    {
        block_on(self.wait(key, n, None))
    }

    /// [`until_n_ready_until`](Keyed::until_n_ready_until) for plain
    /// threads.
    ///
    /// # Errors
    ///
    /// As [`until_n_ready_until`](Keyed::until_n_ready_until).
    pub fn until_n_ready_until_blocking<Q>(&self, key: &Q, n: u32, token: &Token) -> Result<(), KeyedWaitError>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq + ToOwned<Owned = K>,
    {
        block_on(self.wait(key, n, Some(token)))
    }

    async fn wait<Q>(&self, key: &Q, n: u32, token: Option<&Token>) -> Result<(), KeyedWaitError>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq + ToOwned<Owned = K>,
    {
        let template = self.template();
        // Go's order: more than the burst fails before a cancelled token.
        if template.interval().is_some() && n > template.burst() {
            return Err(WaitError::ExceedsBurst { requested: n, burst: template.burst() }.into());
        }
        retry_until_admitted(template.clock(), template.waiter_cap(), token, || {
            match self.check_n_at(key, template.now(), n) {
                Ok(()) => Ok(None),
                Err(KeyedError::TooManyKeys { max }) => Err(KeyedWaitError::TooManyKeys { max }),
                Err(KeyedError::Denied(denied)) => Ok(Some(retry_at(denied, token)?)),
            }
        })
        .await
    }
}
