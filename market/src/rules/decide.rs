//! The decision on a task, a pipeline run inside the transaction that
//! stored the result (or the failure, or the expiry) that made it due:
//!
//! 1. **load** ([`case`]): the task row under its lock, its results with
//!    their workers' standing, the replicas still out — one [`Case`];
//! 2. **vote** ([`voting`]): the results' vote, weighed by credibility;
//! 3. **judge and pay** ([`judge`]): the verdict stored, results judged
//!    against it, agreeing ones paid through the ledger;
//! 4. **announce**: the [`Decision`] carries the work for waiting claims
//!    and the events listeners hear once the transaction commits.
//!
//! Which vote applies depends on the task's state: a running client task
//! ([`open`]), a spot check ([`check`]), late results on a decided task
//! ([`late`]), a task under human review ([`review`]). When a check catches
//! a worker, every task it helped verify is decided again ([`backtrack`]);
//! credible votes count as checks ([`vote_checks`]).
//!
//! Results of workers caught by a spot check never vote and are never
//! paid: they are listed as excluded in the evidence.

use std::sync::atomic::Ordering;

use tally_protocol::wire::{MarketEvent, TaskState};
use tally_protocol::{AccountId, AssignmentId, TaskId};

use crate::db::WriteTx;
use crate::error::Result;
use crate::payment::close_bid_if_done;
use crate::task::{load_task, StoredVerdict, TaskRow};
use crate::wake::Work;
use crate::Market;

mod backtrack;
mod case;
mod check;
mod judge;
mod late;
mod open;
mod outcome;
mod review;
mod vote_checks;
mod voting;

#[cfg(test)]
mod tests;

pub(crate) use backtrack::backtrack;
use case::{Case, Submitted};
pub use outcome::{outcome, Outcome, Replicas};
use vote_checks::{checks_voters, count_votes};

/// What a decision did.
pub struct Decision {
    pub task_state: TaskState,
    /// Work for waiting claims (replicas added or re-opened).
    pub wake: Vec<Work>,
    /// The results judged now, and whether each agreed.
    pub judged: Vec<(AssignmentId, bool)>,
    /// What to tell listeners once the transaction commits.
    pub events: Vec<MarketEvent>,
}

impl Decision {
    /// The task moved to `state`, which listeners hear of; `judged`: the
    /// results judged now.
    fn moved(task: &TaskRow, state: TaskState, judged: Vec<(AssignmentId, bool)>) -> Decision {
        Decision {
            task_state: state,
            wake: vec![],
            judged,
            events: vec![MarketEvent::TaskDecided {
                bid: task.bid,
                task: task.id,
                status: state,
            }],
        }
    }

    fn unchanged(task: &TaskRow) -> Decision {
        Decision {
            task_state: task.state,
            wake: vec![],
            judged: vec![],
            events: vec![],
        }
    }
}

/// Run the vote on a task if it can be decided, and act on the outcome.
#[tracing::instrument(level = "debug", skip_all, fields(task = %task_id))]
pub async fn decide(m: &Market, tx: &mut WriteTx<'_>, task_id: TaskId) -> Result<Decision> {
    let task = load_task(tx, task_id).await?;
    decide_loaded(m, tx, task).await
}

/// [`decide`] on a task row read in this transaction under its lock.
pub(crate) async fn decide_loaded(
    m: &Market,
    tx: &mut WriteTx<'_>,
    task: TaskRow,
) -> Result<Decision> {
    let case = Case::load(tx, task).await?;
    match case.task.state {
        TaskState::Verified => late::judge_late(m, tx, &case).await,
        TaskState::Failed => late::reject_late(m, tx, &case).await,
        TaskState::Review => review::decide_review(m, tx, &case).await,
        _ if case.task.is_check => check::decide_check(m, tx, &case).await,
        _ => open::decide_open(m, tx, &case).await,
    }
}

/// Close the task's bid if it is done. A replica of this task still out
/// means it is not: the bid is looked at again when that replica ends
/// (result, failure, expiry or cancellation all come back here or to
/// [`crate::payment::fail_task`]), which spares the bid-wide query on most
/// decisions.
async fn close_bid_unless_out(m: &Market, tx: &mut WriteTx<'_>, case: &Case) -> Result<()> {
    if case.outstanding > 0 {
        return Ok(());
    }
    close_bid_if_done(m, tx, case.task.bid).await
}

/// What a vote (of workers, or of reviewers) verified a task with, carried
/// through the rest of the decision: save, judge and pay, close, count the
/// votes as checks, announce.
struct Verified<'r> {
    /// The verdict as it is stored and published.
    stored: StoredVerdict,
    /// The results that voted (judged against the verdict: agreeing ones
    /// are those its `agree` lists).
    voters: Vec<&'r Submitted>,
    /// Caught workers' results, which count for nothing.
    caught: Vec<&'r Submitted>,
}

/// Verify the task: the verdict saved, the caught workers' results
/// rejected, the voters' judged (and paid where they agree), the bid
/// closed if this was its last task out, the votes counted as checks.
async fn verify(
    m: &Market,
    tx: &mut WriteTx<'_>,
    case: &Case,
    v: Verified<'_>,
) -> Result<Decision> {
    let task = &case.task;
    let Verified {
        stored,
        voters,
        caught,
    } = v;
    let agrees = |s: &Submitted| stored.verdict.agree.contains(&s.id);
    let judged: Vec<(AssignmentId, bool)> = voters.iter().map(|s| (s.id, agrees(s))).collect();
    judge::mark_verified(tx, task, &stored).await?;
    judge::reject(tx, &caught).await?;
    judge::judge(m, tx, task, &voters, &judged).await?;
    m.metrics.verified.fetch_add(1, Ordering::Relaxed);
    close_bid_unless_out(m, tx, case).await?;
    let mut decision = Decision::moved(task, TaskState::Verified, judged);
    if checks_voters(m, task, &stored) {
        let of = |agreed: bool| -> Vec<&AccountId> {
            voters
                .iter()
                .filter(|s| agrees(s) == agreed)
                .map(|s| &s.worker)
                .collect()
        };
        let (wake, events) = count_votes(m, tx, task, &of(true), &of(false)).await?;
        decision.wake.extend(wake);
        decision.events.extend(events);
    }
    Ok(decision)
}
