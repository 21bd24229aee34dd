//! OS signals as shutdown triggers.

use std::fmt;

use crate::BuildError;

/// An OS signal that can trigger a shutdown.
///
/// Only [`Interrupt`](Signal::Interrupt) (ctrl-c) exists outside unix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Signal {
    /// `SIGINT`, or ctrl-c outside unix.
    Interrupt,
    /// `SIGTERM`: what service managers and Kubernetes send.
    Terminate,
    /// `SIGHUP` (unix).
    Hangup,
    /// `SIGQUIT` (unix).
    Quit,
}

impl Signal {
    /// The signals listened for unless configured otherwise: `SIGINT` and
    /// `SIGTERM` on unix, ctrl-c elsewhere, none without the `signals`
    /// feature.
    pub(crate) fn defaults() -> Vec<Signal> {
        if cfg!(not(feature = "signals")) {
            Vec::new()
        } else if cfg!(unix) {
            vec![Signal::Interrupt, Signal::Terminate]
        } else {
            vec![Signal::Interrupt]
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
            Signal::Hangup => "SIGHUP",
            Signal::Quit => "SIGQUIT",
        })
    }
}

/// The installed signal handlers; polled by the shutdown's `wait`.
pub(crate) struct Listener {
    #[cfg(all(feature = "signals", unix))]
    streams: Vec<(Signal, tokio::signal::unix::Signal)>,
    #[cfg(all(feature = "signals", windows))]
    ctrl_c: Option<tokio::signal::windows::CtrlC>,
}

impl fmt::Debug for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Listener").finish_non_exhaustive()
    }
}

impl Listener {
    /// Installs a handler for each of `signals` now, so a signal that comes
    /// before `wait` is polled is kept rather than killing the process.
    pub(crate) fn install(signals: &[Signal]) -> Result<Listener, BuildError> {
        #[cfg(all(feature = "signals", unix))]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let mut streams = Vec::with_capacity(signals.len());
            for &sig in signals {
                let kind = match sig {
                    Signal::Interrupt => SignalKind::interrupt(),
                    Signal::Terminate => SignalKind::terminate(),
                    Signal::Hangup => SignalKind::hangup(),
                    Signal::Quit => SignalKind::quit(),
                };
                let stream = signal(kind).map_err(|source| BuildError::Signal { signal: sig, source })?;
                streams.push((sig, stream));
            }
            Ok(Listener { streams })
        }
        #[cfg(all(feature = "signals", windows))]
        {
            let mut ctrl_c = None;
            for &sig in signals {
                if sig != Signal::Interrupt {
                    return Err(BuildError::SignalUnavailable(sig));
                }
                ctrl_c = Some(
                    tokio::signal::windows::ctrl_c().map_err(|source| BuildError::Signal { signal: sig, source })?,
                );
            }
            Ok(Listener { ctrl_c })
        }
        #[cfg(not(all(feature = "signals", any(unix, windows))))]
        {
            match signals.first() {
                Some(&sig) => Err(BuildError::SignalUnavailable(sig)),
                None => Ok(Listener {}),
            }
        }
    }

    /// The next signal received; pending forever when none is listened for.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a signal is only taken from its stream when returned.
    pub(crate) async fn recv(&mut self) -> Signal {
        #[cfg(all(feature = "signals", unix))]
        {
            std::future::poll_fn(|cx| {
                for (sig, stream) in &mut self.streams {
                    // `None` means the runtime's signal driver is gone; such a
                    // stream never yields again, so it is just skipped.
                    if let std::task::Poll::Ready(Some(())) = stream.poll_recv(cx) {
                        return std::task::Poll::Ready(*sig);
                    }
                }
                std::task::Poll::Pending
            })
            .await
        }
        #[cfg(all(feature = "signals", windows))]
        {
            if let Some(ctrl_c) = &mut self.ctrl_c {
                if ctrl_c.recv().await.is_some() {
                    return Signal::Interrupt;
                }
            }
            std::future::pending().await
        }
        #[cfg(not(all(feature = "signals", any(unix, windows))))]
        {
            std::future::pending().await
        }
    }
}
