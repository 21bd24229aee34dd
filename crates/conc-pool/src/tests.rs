//! Unit tests of the pieces behind the public API; the behaviour of the
//! pools end to end is tested in the workspace's `tests/pool_*.rs`.

use conc_core::Token;

use crate::error::{JobError, SubmitError};
use crate::group::{GroupError, GroupResults};
use crate::job::{Completion, JobHandle, JobId, Outcome, Shared};

#[test]
fn a_cancel_before_the_start_keeps_the_job_from_running() {
    let shared = Shared::<(), ()>::new(JobId(0), ());
    shared.cancel();
    let token = Token::new();
    assert!(shared.start(&token).is_none());
    assert!(!token.is_cancelled(), "a job that never starts has no token to cancel");
}

#[test]
fn a_cancel_after_the_start_cancels_the_jobs_token() {
    let shared = Shared::<(), ()>::new(JobId(0), ());
    let token = Token::new();
    assert!(shared.start(&token).is_some());
    assert!(!token.is_cancelled());
    shared.cancel();
    assert!(token.is_cancelled());
}

#[test]
fn a_cancel_after_the_outcome_leaves_the_token_alone() {
    let (handle, shared) = JobHandle::<u32, ()>::new(JobId(0), ());
    let token = Token::new();
    assert!(shared.start(&token).is_some());
    let (outcome, leftover) = Completion::new(shared).deliver(Ok(5));
    assert!(outcome == Outcome::Completed && leftover.is_none());
    assert!(handle.is_finished());
    handle.cancel();
    assert!(!token.is_cancelled(), "a finished job's cancel must not reach a token");
    assert_eq!(handle.wait_blocking().unwrap(), 5);
}

#[test]
fn an_unrun_job_whose_handle_is_gone_comes_back_for_the_report() {
    let (handle, shared) = JobHandle::<u32, u8>::new(JobId(3), 9);
    drop(handle);
    let job = shared.take_unrun().unwrap();
    let (outcome, leftover) = Completion::new(shared).deliver(Err(JobError::NotRun(job)));
    assert_eq!(outcome, Outcome::NotRun);
    let (id, job) = leftover.expect("the input comes back");
    assert_eq!(id, JobId(3));
    assert_eq!(*job.downcast::<u8>().unwrap(), 9);
}

#[test]
fn errors_hand_the_job_back_and_print_without_it() {
    let error = SubmitError::Full(|x: u32| x + 1);
    assert_eq!(format!("{error:?}"), "Full(..)");
    assert_eq!(error.to_string(), "the pool's queue is full");
    assert_eq!(error.into_inner()(1), 2);
    assert_eq!(SubmitError::Closed(3).into_inner(), 3);
    assert_eq!(SubmitError::Cancelled(4).to_string(), "cancelled while waiting for room in the queue");

    let panicked: JobError<()> = JobError::Panicked(Box::new("boom"));
    assert_eq!(format!("{panicked:?}"), "Panicked(\"boom\")");
    assert!(panicked.is_panic() && !panicked.is_cancelled());
    assert_eq!(JobError::NotRun(5).into_not_run(), Some(5));
    assert_eq!(JobError::<u8>::Cancelled.into_not_run(), None);
    assert_eq!(format!("{:?}", JobError::<u8>::NotRun(1)), "NotRun(..)");
}

#[test]
fn group_results_report_the_earliest_failure_over_cancellations() {
    let results: GroupResults<u32, &str> = GroupResults {
        results: vec![
            (JobId(3), Err(GroupError::Failed("late"))),
            (JobId(0), Err(GroupError::Cancelled)),
            (JobId(1), Ok(10)),
            (JobId(2), Err(GroupError::Failed("early"))),
        ],
    };
    assert_eq!(results.values().copied().collect::<Vec<_>>(), vec![10]);
    assert!(matches!(results.into_result(), Err(GroupError::Failed("early"))));

    let cancelled: GroupResults<u32, &str> =
        GroupResults { results: vec![(JobId(1), Ok(1)), (JobId(0), Err(GroupError::Cancelled))] };
    assert!(matches!(cancelled.into_result(), Err(GroupError::Cancelled)));

    let fine: GroupResults<u32, &str> = GroupResults { results: vec![(JobId(1), Ok(2)), (JobId(0), Ok(1))] };
    assert_eq!(fine.into_result().unwrap(), vec![1, 2], "values come in job id order");
}

#[test]
fn job_ids_show_their_number() {
    assert_eq!(JobId(7).to_string(), "job-7");
    assert_eq!(JobId(7).get(), 7);
}
