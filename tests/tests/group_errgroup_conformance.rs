//! Conformance with Go's `golang.org/x/sync/errgroup`, porting the meaning
//! of `errgroup/errgroup_test.go` (TestZeroGroup, TestWithContext,
//! TestCancelCause, TestGoLimit, TestTryGo, TestWithContextTryGo /
//! TestWithContextGo, and the panic tests of the 2025 release that was
//! reverted) to `conc_group::Group`.
//!
//! Where conc deliberately differs, the test says so: `wait` consumes the
//! group (Go's `Wait` can be called again), tasks are handed back once the
//! group is cancelled (Go still starts them), and a panic is returned, not
//! re-raised, unless asked for.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use conc_core::Token;
use conc_group::{Group, GroupError, LimitError, SpawnError, TaskFailure};
use tokio::sync::{Barrier, oneshot};

/// Go's `errDoom`: a plain error value.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Doom(&'static str);

impl std::fmt::Display for Doom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Doom {}

// TestZeroGroup: a group made without a context returns the first non-nil
// error its functions returned, whatever came after it.
#[tokio::test]
async fn zero_group_returns_the_first_error() {
    let err1 = Doom("errgroup_test: 1");
    let err2 = Doom("errgroup_test: 2");
    let cases: [&[Option<Doom>]; 5] =
        [&[], &[None], &[Some(err1.clone())], &[Some(err1.clone()), None], &[Some(err1.clone()), None, Some(err2)]];
    for errs in cases {
        // Go calls Wait after every Go on the same group; ours consumes the
        // group, so each prefix gets a group of its own. Each task runs to
        // its end before the next is spawned, so "first" is well defined.
        for prefix in 0..=errs.len() {
            let mut group = Group::new();
            let mut first = None;
            for err in &errs[..prefix] {
                let returned = err.clone();
                let (done, finished) = oneshot::channel();
                group
                    .spawn(move |_| async move {
                        let result = returned.map_or(Ok(()), Err);
                        done.send(()).unwrap();
                        result
                    })
                    .await
                    .ok();
                finished.await.ok();
                if first.is_none() {
                    first.clone_from(err);
                }
            }
            let got = group.wait().await.err().and_then(GroupError::into_failed);
            assert_eq!(got, first, "errs[..{prefix}] of {errs:?}");
        }
    }
}

// TestWithContext: a failing function cancels the group's context, and
// Wait returns its error; a group whose functions all succeed leaves the
// parent alone.
#[tokio::test]
async fn with_context_cancels_on_error() {
    let err_doom = Doom("group_test: doomed");
    let cases: [&[Option<Doom>]; 4] = [&[], &[None], &[Some(err_doom.clone())], &[Some(err_doom.clone()), None]];
    for errs in cases {
        let parent = Token::new();
        let mut group = Group::with_token(&parent);
        let token = group.token().clone();
        for err in errs {
            let err = err.clone();
            group.spawn(move |_| async move { err.map_or(Ok(()), Err) }).await.ok();
        }
        let got = group.wait().await.err().and_then(GroupError::into_failed);
        let want = errs.iter().flatten().next().cloned();
        assert_eq!(got, want, "{errs:?}");
        // Go: ctx.Done() is closed after Wait in every case.
        assert!(token.is_cancelled(), "the group's token is cancelled after wait");
        assert!(!parent.is_cancelled(), "a child never cancels its parent");
    }
}

// TestCancelCause: context.Cause(ctx) is the error that cancelled the group.
#[tokio::test]
async fn the_cause_is_the_first_error() {
    let mut group = Group::new();
    let token = group.token().clone();
    group.spawn(|_| async { Err(Doom("doomed")) }).await.unwrap();
    let seen = token.clone();
    // A sibling sees the cause while the group is still running.
    let sibling_saw = Arc::new(std::sync::Mutex::new(None));
    let saw = sibling_saw.clone();
    group
        .spawn(move |token| async move {
            token.cancelled().await;
            *saw.lock().unwrap() = token.cause().map(|cause| cause.to_string());
            Ok(())
        })
        .await
        .ok();
    assert_eq!(group.wait().await.unwrap_err().into_failed(), Some(Doom("doomed")));
    assert_eq!(sibling_saw.lock().unwrap().as_deref(), Some("doomed"));
    let cause = seen.cause().unwrap();
    assert_eq!(cause.downcast_ref::<TaskFailure>().unwrap().message(), "doomed");
}

// TestGoLimit: with SetLimit(3), no more than 3 functions are ever active,
// across many rounds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_limit_is_never_exceeded() {
    const LIMIT: usize = 3;
    let rounds = if cfg!(miri) { 2 } else { 10 };
    let mut group = Group::<Doom>::new();
    group.limit(LIMIT).unwrap();
    let active = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    for _ in 0..rounds * LIMIT * 3 {
        let (active, most) = (active.clone(), most.clone());
        group
            .spawn(move |_| async move {
                let now = active.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::task::yield_now().await;
                active.fetch_sub(1, Ordering::SeqCst);
                Ok(())
            })
            .await
            .unwrap();
    }
    group.wait().await.unwrap();
    assert!(most.load(Ordering::SeqCst) <= LIMIT, "{} functions were active at once", most.load(Ordering::SeqCst));
}

// TestTryGo: TryGo starts functions while under the limit and refuses once
// it is reached; after Wait, a new limit applies.
#[tokio::test]
async fn try_go_respects_the_limit() {
    const LIMIT: usize = 42;
    let mut group = Group::<Doom>::new();
    group.limit(LIMIT).unwrap();
    let release = Arc::new(Barrier::new(LIMIT + 1));
    for i in 0..LIMIT {
        let release = release.clone();
        let started = group.try_spawn(move |_| async move {
            release.wait().await;
            Ok(())
        });
        assert!(started.is_ok(), "TryGo {i} should start under the limit");
    }
    let refused = group.try_spawn(|_| async { Err(Doom("should not run")) });
    assert!(matches!(refused, Err(SpawnError::Full(_))), "TryGo past the limit must be refused");
    assert_eq!(group.limit(1), Err(LimitError::TasksRunning { running: LIMIT }), "Go panics here");
    release.wait().await;
    group.wait().await.unwrap();

    // A fresh group with limit 1: one TryGo starts, the second is refused.
    let mut group = Group::<Doom>::new();
    group.limit(1).unwrap();
    let (unblock, blocked) = oneshot::channel::<()>();
    assert!(
        group
            .try_spawn(|_| async move {
                blocked.await.ok();
                Ok(())
            })
            .is_ok()
    );
    assert!(matches!(group.try_spawn(|_| async { Ok(()) }), Err(SpawnError::Full(_))));
    unblock.send(()).unwrap();
    group.wait().await.unwrap();
}

// TestWithContextTryGo / TestWithContextGo: with a limit of 1, a function
// that fails returns its error from Wait and the context is cancelled.
#[tokio::test]
async fn with_context_and_a_limit_of_one() {
    let mut group = Group::new();
    group.limit(1).unwrap();
    let token = group.token().clone();
    assert!(group.try_spawn(|_| async { Err(Doom("EOF")) }).is_ok());
    assert_eq!(group.wait().await.unwrap_err().into_failed(), Some(Doom("EOF")));
    assert!(token.is_cancelled());

    let mut group = Group::new();
    group.limit(1).unwrap();
    let token = group.token().clone();
    group.spawn(|_| async { Err(Doom("EOF")) }).await.unwrap();
    assert_eq!(group.wait().await.unwrap_err().into_failed(), Some(Doom("EOF")));
    assert!(token.is_cancelled());
}

// The panic tests of the reverted 2025 change (TestPanic*): a panic in a
// function surfaces from Wait with its value. conc returns it as an error
// and re-raises it only on request, which keeps the task's stack printed
// by the panic hook at the panic site.
#[tokio::test]
async fn a_panic_surfaces_from_wait_with_its_value() {
    #[derive(Debug, PartialEq)]
    struct Payload(u32);

    let mut group = Group::<Doom>::new();
    group.spawn(|_| async { std::panic::panic_any(Payload(42)) }).await.unwrap();
    let error = group.wait().await.unwrap_err();
    let GroupError::Panicked(panic) = error else { panic!("expected a panic, got {error:?}") };
    assert_eq!(panic.message(), None, "not a string payload");
    let resumed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| panic.resume()));
    assert_eq!(resumed.unwrap_err().downcast_ref::<Payload>(), Some(&Payload(42)));
}
