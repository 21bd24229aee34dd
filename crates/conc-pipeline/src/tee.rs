//! `tee`: one pipeline's items copied to several branches.

use std::sync::{Arc, Mutex};

use conc_core::Token;

use crate::error::BuildError;
use crate::link::{DEFAULT_CAPACITY, LinkRx, LinkTx, link};
use crate::pipeline::{Pipeline, StartFn};
use crate::run::{RunShared, StageCtx};
use crate::sync::lock_std as lock;

enum Slot<T> {
    /// Not started yet.
    Waiting,
    /// Upstream runs; this branch's receiver waits for its run.
    Ready(LinkRx<T>),
    /// The branch's run, to cancel if the upstream stops early.
    Running(Token),
    /// Dropped without running.
    Gone,
}

/// Shared by the branches; locked when a branch starts or is dropped, and
/// when the upstream stops early: cold.
struct TeeState<T> {
    upstream: Option<(StartFn<T>, usize)>,
    slots: Vec<Slot<T>>,
    aborted: bool,
}

/// Marks a branch gone if it is dropped before it runs.
struct Branch<T> {
    state: Arc<Mutex<TeeState<T>>>,
    index: usize,
}

impl<T> Drop for Branch<T> {
    fn drop(&mut self) {
        let mut state = lock(&self.state);
        if matches!(state.slots[self.index], Slot::Waiting | Slot::Ready(_)) {
            // Dropping a ready receiver closes that link; the tee task then
            // stops copying to it.
            state.slots[self.index] = Slot::Gone;
        }
    }
}

impl<T: Clone + Send + 'static> Branch<T> {
    fn start(self, run: &Arc<RunShared>, stats_ctx: &dyn Fn(&Arc<RunShared>) -> StageCtx) -> LinkRx<T> {
        let mut state = lock(&self.state);
        if let Some((upstream, capacity)) = state.upstream.take() {
            let input = upstream(run, capacity);
            let mut outs = Vec::new();
            for (index, slot) in state.slots.iter_mut().enumerate() {
                if matches!(slot, Slot::Waiting) {
                    let (tx, rx) = link(run, DEFAULT_CAPACITY);
                    *slot = Slot::Ready(rx);
                    outs.push((index, tx));
                }
            }
            let ctx = stats_ctx(run);
            let stats = Arc::clone(&ctx.stats);
            run.spawn(&stats, copy(ctx, input, outs, Arc::clone(&self.state)));
        }
        let slot = std::mem::replace(&mut state.slots[self.index], Slot::Running(run.token.clone()));
        if state.aborted {
            run.token.cancel();
        }
        drop(state);
        match slot {
            Slot::Ready(rx) => rx,
            // The upstream already stopped: an empty, closed link.
            _ => {
                run.stopped_early();
                let (_, rx) = link(run, 1);
                rx
            }
        }
    }
}

/// Cancels every branch run (and the ones still to start): the upstream
/// stopped before its end, so no branch may report a complete run.
fn abort<T>(state: &Mutex<TeeState<T>>) {
    let mut state = lock(state);
    state.aborted = true;
    for slot in &state.slots {
        if let Slot::Running(token) = slot {
            token.cancel();
        }
    }
}

/// The tee task: copies every chunk to every live branch.
async fn copy<T: Clone>(
    ctx: StageCtx,
    input: LinkRx<T>,
    mut outs: Vec<(usize, LinkTx<T>)>,
    state: Arc<Mutex<TeeState<T>>>,
) {
    let run = &ctx.run;
    loop {
        let Ok(chunk) = input.rx.recv().await else {
            if run.is_cancelled() {
                run.stopped_early();
                abort(&state);
            }
            return;
        };
        if run.is_cancelled() {
            run.drop_items(chunk.len());
            run.abandon_chunks(&input.rx);
            abort(&state);
            return;
        }
        ctx.stats.add_in(chunk.len());
        let mut index = 0;
        while index < outs.len() {
            if outs[index].1.send(chunk.clone(), &ctx.stats).await.is_ok() {
                index += 1;
                continue;
            }
            if run.is_cancelled() {
                run.drop_items(chunk.len());
                run.abandon_chunks(&input.rx);
                abort(&state);
                return;
            }
            // That branch stopped consuming (its run ended early): copy on
            // to the others.
            outs.remove(index);
        }
        if outs.is_empty() {
            run.abandon_chunks(&input.rx);
            return;
        }
    }
}

impl<T: Clone + Send + 'static> Pipeline<T> {
    /// Fan-out to several consumers: returns `branches` pipelines that each
    /// get a clone of every item. The slowest branch sets the pace
    /// (backpressure); a branch that stops early is left out from then on.
    ///
    /// Run the branches concurrently (spawned, or joined with
    /// `tokio::join!`): the first branch to start runs the shared upstream
    /// and waits for the others before its sink returns. A branch dropped
    /// without running gets nothing. The branch channels have the default
    /// capacity; add [`buffer`](Pipeline::buffer) to a branch for more room. If the upstream is cancelled or fails,
    /// every branch ends with an error.
    ///
    /// # Errors
    ///
    /// [`BuildError::ZeroBranches`] for 0 branches.
    pub fn tee(self, branches: usize) -> Result<Vec<Pipeline<T>>, BuildError> {
        if branches == 0 {
            return Err(BuildError::ZeroBranches);
        }
        let shared = Arc::clone(&self.shared);
        let capacity = self.capacity;
        let tee = self.add_stage_meta("tee");
        let state = Arc::new(Mutex::new(TeeState {
            upstream: Some((self.start, capacity)),
            slots: (0..branches).map(|_| Slot::Waiting).collect(),
            aborted: false,
        }));
        Ok((0..branches)
            .map(|index| {
                let branch = Branch { state: Arc::clone(&state), index };
                let stats = Arc::clone(&tee.stats);
                let start: StartFn<T> =
                    Box::new(move |run, _capacity| branch.start(run, &|run| StageCtx::new(run, &stats)));
                Pipeline::from_parts(Arc::clone(&shared), start, Arc::clone(&tee))
            })
            .collect())
    }
}
