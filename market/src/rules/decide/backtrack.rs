//! Backtracking: a worker a spot check has caught may have lied on client
//! work too, so every client task whose agreeing group it was in is
//! decided again without it.
//!
//! - The vote of the remaining results still verifies the task, with the
//!   same answer: the verdict stands, stored again as voted without the
//!   caught worker (its result judged against it like a late one) and
//!   with the new weights.
//! - Otherwise the verdict is undone: it is kept as a revision (public in
//!   the evidence, counted in the client's bid status), the task runs again
//!   with one more replica asked for and two more allowed, and the bid
//!   reserves their price again from the client's available balance (where
//!   the caught worker's forfeited earnings have just gone). A client that
//!   cannot cover it gets its task failed instead: what the undone verdict
//!   paid goes back, as for any failed task.
//! - A verdict human reviewers gave stands: the caught worker did not make it.

use std::sync::atomic::Ordering;

use tally_protocol::vote;
use tally_protocol::wire::TaskState;
use tally_protocol::{AccountId, TaskId};

use super::case::Case;
use super::decide;
use super::judge::{judge, reject, save_verdict};
use super::voting::{run_vote, Vote};
use crate::db::{int, query, WriteTx};
use crate::error::{MarketError, Result};
use crate::lifecycle::{task_transition, AssignmentState};
use crate::payment::reserve_again;
use crate::task::{load_task, lock_task, StoredVerdict};
use crate::wake::Work;
use crate::{now_ms, Market};

/// Replicas a re-opened task may add beyond those it had.
const REOPEN_HEADROOM: i64 = 2;

/// Decide again every verified client task `caught` agreed on; the work
/// this re-opens, for waiting claims, and the tasks whose verdict was undone.
#[tracing::instrument(level = "debug", skip_all, fields(worker = %caught))]
pub(crate) async fn backtrack(
    m: &Market,
    tx: &mut WriteTx<'_>,
    caught: &AccountId,
) -> Result<(Vec<Work>, Vec<TaskId>)> {
    let rows = query(
        "SELECT DISTINCT a.task_id FROM assignments a JOIN tasks t ON t.id = a.task_id
           JOIN bids b ON b.id = t.bid_id
         WHERE a.worker = $1 AND a.kind = 'result' AND a.status = 'agreed' AND t.status = 'verified' AND b.kind = 'client'
         ORDER BY a.task_id",
    )
    .bind(caught.as_str())
    .fetch_all(&mut *tx)
    .await?;
    let mut wake = Vec::new();
    let mut revised = Vec::new();
    let (mut stood, mut undone) = (0, 0);
    for r in &rows {
        let task = TaskId(int(r, "task_id")?);
        lock_task(tx, task).await?;
        match revise(m, tx, task, caught).await? {
            Some(work) => {
                undone += 1;
                wake.extend(work);
                revised.push(task);
            }
            None => stood += 1,
        }
    }
    if !rows.is_empty() {
        tracing::warn!(worker = %caught, stood, undone, "tasks a caught worker helped verify, decided again");
    }
    Ok((wake, revised))
}

/// Decide one task again without `caught`'s result: `None` when the
/// verdict stands, else the work its re-opening asks for.
async fn revise(
    m: &Market,
    tx: &mut WriteTx<'_>,
    id: TaskId,
    caught: &AccountId,
) -> Result<Option<Vec<Work>>> {
    let task = load_task(tx, id).await?;
    if task.state != TaskState::Verified {
        return Ok(None);
    }
    let old = task
        .verdict
        .clone()
        .ok_or_else(|| MarketError::Corrupt(format!("verified task {id} has no verdict")))?;
    if old.review.is_some() {
        // Reviewers decided it; the caught worker's result only agreed with
        // their answer (what it earned is forfeited already).
        return Ok(None);
    }
    let case = Case::load(tx, task).await?;
    let again = run_vote(&case.task, &case.voters())?;
    let stands = again.verified
        && again
            .verdict
            .as_ref()
            .is_some_and(|v| vote::agrees(&case.task.params, &old.verdict.consensus, &v.consensus));
    if stands {
        stand(m, tx, &case, &old, again).await?;
        return Ok(None);
    }
    undo(m, tx, &case, &old, caught).await.map(Some)
}

/// The verdict stands: stored again as voted without the caught worker,
/// whose results are judged against the standing consensus like late ones
/// (what it earned is forfeited already).
async fn stand(
    m: &Market,
    tx: &mut WriteTx<'_>,
    case: &Case,
    old: &StoredVerdict,
    mut again: Vote,
) -> Result<()> {
    let task = &case.task;
    let voters = case.voters();
    let mut verdict = again.verdict.take().expect("a verified vote has a verdict");
    let judged: Vec<_> = voters
        .iter()
        .map(|s| (s.id, verdict.agree.contains(&s.id)))
        .collect();
    for s in case
        .results
        .iter()
        .filter(|s| s.caught && !old.excluded.contains(&s.id))
    {
        if vote::agrees(&task.params, &verdict.consensus, &s.parse()?.detections) {
            verdict.agree.push(s.id);
        } else {
            verdict.disagree.push(s.id);
        }
    }
    verdict.agree.sort();
    verdict.disagree.sort();
    let stored = again.stored(verdict, old.excluded.clone());
    save_verdict(tx, task.id, &stored).await?;
    judge(m, tx, task, &voters, &judged).await
}

/// The verdict is undone: kept as a revision, the caught results rejected,
/// the task running again with the replicas the client can still fund,
/// and decided at once with what it has.
async fn undo(
    m: &Market,
    tx: &mut WriteTx<'_>,
    case: &Case,
    old: &StoredVerdict,
    caught: &AccountId,
) -> Result<Vec<Work>> {
    let task = &case.task;
    let revision = keep_revision(tx, task.id, old, caught).await?;
    reject(tx, &case.caught()).await?;
    // Results judged against the undone verdict that may agree with the
    // next one are paid then: reserve for them, and for the new replicas.
    let disagreed = case
        .voters()
        .iter()
        .filter(|s| s.state == AssignmentState::Disagreed)
        .count() as i64;
    let funded = reserve_again(
        tx,
        task.bid,
        &task.client,
        task.price.0 * (REOPEN_HEADROOM + disagreed),
    )
    .await?;
    let (more_max, more_wanted) = if funded { (REOPEN_HEADROOM, 1) } else { (0, 0) };
    task_transition(TaskState::Verified, TaskState::Running)?;
    query(
        "UPDATE tasks SET status = 'running', verdict = NULL, finished_at = NULL,
           revisions = $1,
           wanted = taken + $2,
           max_replicas = CASE WHEN $3 > 0 THEN max_replicas + $3 ELSE taken END
         WHERE id = $4",
    )
    .bind(revision)
    .bind(more_wanted)
    .bind(more_max)
    .bind(task.id.0)
    .execute(&mut *tx)
    .await?;
    m.metrics.revised.fetch_add(1, Ordering::Relaxed);
    // The remaining results may decide it at once (or fail it, unfunded).
    let mut wake = Box::pin(decide(m, tx, task.id)).await?.wake;
    if funded {
        wake.push(task.one_slot());
    }
    Ok(wake)
}

/// Keep the undone verdict as the task's next revision, naming the worker
/// whose catch undid it; the revision's number.
async fn keep_revision(
    tx: &mut WriteTx<'_>,
    id: TaskId,
    old: &StoredVerdict,
    caught: &AccountId,
) -> Result<i64> {
    let revision = query("SELECT revisions FROM tasks WHERE id = $1")
        .bind(id.0)
        .fetch_one(&mut *tx)
        .await
        .and_then(|r| int(&r, "revisions"))?
        + 1;
    query(
        "INSERT INTO task_revisions (task_id, revision, verdict, caught, revised_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id.0)
    .bind(revision)
    .bind(serde_json::to_string(old).expect("verdict serializes"))
    .bind(caught.as_str())
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    Ok(revision)
}
