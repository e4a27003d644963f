//! Deciding a running client task: verify it when its vote does, ask for
//! another replica, wait, or fail it (or send it to review).

use tally_protocol::wire::TaskState;

use super::case::{Case, Submitted};
use super::judge::reject;
use super::outcome::{outcome, Outcome, Replicas};
use super::vote_checks::rerun_due;
use super::voting::run_vote;
use super::{review, verify, Decision, Verified};
use crate::db::{query, WriteTx};
use crate::error::Result;
use crate::ledger::Posting;
use crate::lifecycle::AssignmentState;
use crate::payment::{fail_task, give_back};
use crate::task::TaskRow;
use crate::wake::Work;
use crate::Market;

pub(super) async fn decide_open(m: &Market, tx: &mut WriteTx<'_>, case: &Case) -> Result<Decision> {
    let task = &case.task;
    let voters = case.voters();
    let replicas = Replicas {
        out: case.outstanding as u64,
        unclaimed: (task.wanted - task.taken).max(0) as u64,
        wanted: task.wanted.max(0) as u64,
        max: task.max_replicas.max(0) as u64,
    };
    let vote = run_vote(task, &voters)?;
    match outcome(vote.verified, replicas) {
        // Voting as spot-checking: one more ordinary replica before a
        // lone trusted result decides; the two are judged together.
        Outcome::Verify if rerun_due(m, task, &vote, replicas) => another_replica(tx, task).await,
        Outcome::Verify => {
            let caught = case.caught();
            let stored = vote.into_stored(caught.iter().map(|s| s.id).collect());
            let verified = Verified {
                stored,
                voters,
                caught,
            };
            verify(m, tx, case, verified).await
        }
        Outcome::Wait => Ok(Decision::unchanged(task)),
        Outcome::AddReplica => another_replica(tx, task).await,
        Outcome::Fail => fail(m, tx, case, &voters).await,
    }
}

/// One more replica asked for.
async fn another_replica(tx: &mut WriteTx<'_>, task: &TaskRow) -> Result<Decision> {
    Ok(Decision {
        wake: vec![add_replica(tx, task).await?],
        ..Decision::unchanged(task)
    })
}

/// Ask for one more replica of `task`: the work it makes for waiting claims.
pub(super) async fn add_replica(tx: &mut WriteTx<'_>, task: &TaskRow) -> Result<Work> {
    query("UPDATE tasks SET wanted = wanted + 1 WHERE id = $1")
        .bind(task.id.0)
        .execute(&mut *tx)
        .await?;
    Ok(task.one_slot())
}

/// The vote cannot decide and no replica may be added: the task goes to
/// review where its bid pays for one, else fails. A task re-opened by
/// backtracking that fails pays nothing either: what its earlier verdict
/// paid goes back.
async fn fail(
    m: &Market,
    tx: &mut WriteTx<'_>,
    case: &Case,
    voters: &[&Submitted],
) -> Result<Decision> {
    let task = &case.task;
    let caught = case.caught();
    let paid: Vec<&Submitted> = voters
        .iter()
        .copied()
        .filter(|s| s.state == AssignmentState::Agreed)
        .collect();
    if review::goes_to_review(task, paid.len()) {
        reject(tx, &caught).await?;
        return review::send_to_review(m, tx, task).await;
    }
    for s in &paid {
        give_back(tx, Posting::Revise, &s.worker, Some(&[s.id])).await?;
    }
    reject(tx, &paid).await?;
    reject(tx, &caught).await?;
    fail_task(m, tx, task).await?;
    Ok(Decision::moved(task, TaskState::Failed, vec![]))
}
