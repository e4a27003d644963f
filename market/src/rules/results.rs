//! Leases, results and failures: everything a worker does to its
//! assignment, each in one transaction that then lets the vote run
//! ([`crate::decide`]). Paying, failing and closing live in
//! [`crate::payment`], expiry in [`crate::sweep`], the task row and its
//! state changes in [`crate::task`].

use std::sync::atomic::Ordering;

use tally_protocol::signing::SignedHeaders;
use tally_protocol::wire::{AssignmentOutcome, Lease, ResultRequest, TaskState};
use tally_protocol::{AccountId, AssignmentId, Detection, TaskId};

use crate::db::{int, query, WriteTx};
use crate::decide::{decide, decide_loaded};
use crate::error::{MarketError, Result};
use crate::lifecycle::AssignmentState;
use crate::nonces::begin_signed;
use crate::payment::fail_task;
use crate::task::{
    load_assignment, load_task, lock_and_load, lock_task, release_slot, set_assignment,
    AssignmentRow, TaskRow,
};
use crate::{now_ms, to_time, Market};

/// Load an assignment the caller holds under a live lease, with its task locked.
async fn load_leased(
    tx: &mut WriteTx<'_>,
    id: AssignmentId,
    worker: &AccountId,
) -> Result<AssignmentRow> {
    let mut a = load_assignment(tx, id).await?;
    if tx.is_postgres() {
        lock_task(tx, a.task).await?;
        // Read again under the lock: a concurrent sweep may have moved it.
        a = load_assignment(tx, id).await?;
    }
    if &a.worker != worker {
        return Err(MarketError::Forbidden(format!(
            "assignment {id} belongs to another worker"
        )));
    }
    match a.state {
        AssignmentState::Leased => Ok(a),
        AssignmentState::Expired => Err(MarketError::conflict(
            "lease_expired",
            format!("the lease on assignment {id} expired"),
        )),
        AssignmentState::Cancelled => Err(MarketError::conflict(
            "cancelled",
            format!("assignment {id} was cancelled: its bid's deadline passed"),
        )),
        other => Err(MarketError::conflict(
            "already_finished",
            format!("assignment {id} is already {}", other.as_str()),
        )),
    }
}

/// Extend a lease.
pub async fn heartbeat(m: &Market, signed: &SignedHeaders, id: AssignmentId) -> Result<Lease> {
    m.db.retrying("heartbeat", || heartbeat_once(m, signed, id))
        .await
}

async fn heartbeat_once(m: &Market, signed: &SignedHeaders, id: AssignmentId) -> Result<Lease> {
    let mut tx = begin_signed(m, signed).await?;
    load_leased(&mut tx, id, &signed.account).await?;
    let expires = now_ms() + m.config.lease.as_millis() as i64;
    query("UPDATE assignments SET lease_expires_at = $1 WHERE id = $2 AND status = 'leased'")
        .bind(expires)
        .bind(id.0)
        .execute(&mut tx)
        .await?;
    tx.commit().await?;
    Ok(Lease {
        assignment: id,
        lease_expires_at: to_time(expires),
    })
}

/// Check a result body before anything is written.
pub fn validate_result(m: &Market, req: &ResultRequest) -> Result<()> {
    validate_detections(m, &req.detections, "bad_result")?;
    if !req.elapsed_ms.is_finite() || req.elapsed_ms < 0.0 {
        return Err(MarketError::bad(
            "bad_result",
            "elapsed_ms must be a non-negative number",
        ));
    }
    Ok(())
}

/// Check reported detections (a result's or a review's): `code` names
/// which in the error.
pub fn validate_detections(m: &Market, detections: &[Detection], code: &'static str) -> Result<()> {
    if detections.len() > m.config.limits.max_detections {
        return Err(MarketError::bad(
            code,
            format!(
                "at most {} detections per answer",
                m.config.limits.max_detections
            ),
        ));
    }
    for (i, d) in detections.iter().enumerate() {
        if !d.is_well_formed()
            || !(0.0..=1.0).contains(&d.score)
            || d.class_id >= 100_000
            || d.label.len() > 64
        {
            return Err(MarketError::bad(
                code,
                format!("detection {i} is malformed: scores lie in [0, 1] and boxes are [x1, y1, x2, y2] with x1 <= x2, y1 <= y2"),
            ));
        }
    }
    Ok(())
}

/// Store a signed result and let the vote run. On PostgreSQL decisions run
/// side by side, their row locks taken in one order (see
/// [`crate::task::lock_task`]); should the server still pick this
/// transaction as a deadlock or serialisation victim, it is run again from
/// the start ([`crate::db::Db::retrying`]).
#[tracing::instrument(level = "debug", skip_all)]
pub async fn submit_result(
    m: &Market,
    signed: &SignedHeaders,
    id: AssignmentId,
    body: &[u8],
    req: &ResultRequest,
) -> Result<AssignmentOutcome> {
    validate_result(m, req)?;
    let submission = Submission {
        signed,
        id,
        body,
        req,
    };
    m.db.retrying("result", || submit_once(m, &submission))
        .await
}

/// A signed result as it arrived: its headers, its assignment, the body as
/// signed and as read.
struct Submission<'a> {
    signed: &'a SignedHeaders,
    id: AssignmentId,
    body: &'a [u8],
    req: &'a ResultRequest,
}

async fn submit_once(m: &Market, s: &Submission<'_>) -> Result<AssignmentOutcome> {
    let id = s.id;
    let mut tx = begin_signed(m, s.signed).await?;
    let (task, locked) = store_result(&mut tx, s).await?;
    m.metrics.results.fetch_add(1, Ordering::Relaxed);
    let outcome = match locked {
        Some(row) => decide_loaded(m, &mut tx, row).await?,
        None => decide(m, &mut tx, task).await?,
    };
    let status = match outcome.judged.iter().find(|(a, _)| *a == id) {
        Some((_, true)) => AssignmentState::Agreed,
        Some((_, false)) => AssignmentState::Disagreed,
        // A failed task rejects every submitted result.
        None if outcome.task_state == TaskState::Failed => AssignmentState::Rejected,
        None => AssignmentState::Submitted,
    };
    tx.commit().await?;
    for work in outcome.wake {
        m.work_arrived(work).await;
    }
    // A replica that ends after its task was decided changes no answer but
    // may close the bid: its client's long poll hears that it is done.
    let late = outcome.events.is_empty() && outcome.task_state.is_final();
    crate::events::announce(m, outcome.events).await;
    if late {
        crate::events::bid_done_by_late_replica(m, task).await;
    }
    // Where spot checks run, the answer never says how the result was
    // judged: a check is decided at once, client work usually is not, and
    // the difference would tell a worker which was which. The decision is
    // public with the task's evidence, in the batch after it.
    let (status, task_status) = if m.config.golden.items.is_empty() {
        (status, outcome.task_state)
    } else {
        (AssignmentState::Submitted, TaskState::Running)
    };
    Ok(AssignmentOutcome {
        assignment: id,
        task,
        status: status.as_str().to_string(),
        task_status,
    })
}

/// Store a result on an assignment the signer holds under a live lease; the
/// task it belongs to, and on PostgreSQL that task's row as read under its
/// lock (which every write to its assignments takes first).
async fn store_result(
    tx: &mut WriteTx<'_>,
    s: &Submission<'_>,
) -> Result<(TaskId, Option<TaskRow>)> {
    let Submission {
        signed,
        id,
        body,
        req,
    } = *s;
    let locked = if tx.is_postgres() {
        // The update below re-checks the lease under the lock; a stale
        // first read costs only the explanation at the end.
        let a = load_assignment(tx, id).await?;
        Some(lock_and_load(tx, a.task).await?)
    } else {
        None
    };
    // The worker's check record as it stands now is what its result weighs
    // for good: credibility it earns later never upgrades this result.
    let stored = query(
        "UPDATE assignments SET status = 'submitted', body = $1, signed_at = $2, nonce = $3, signature = $4,
         elapsed_ms = $5, finished_at = $6,
         checks_at_submit = COALESCE((SELECT w.checks_passed FROM workers w WHERE w.account = $8), 0)
         WHERE id = $7 AND status = 'leased' AND worker = $8
         RETURNING task_id",
    )
    .bind(body)
    .bind(signed.timestamp_ms)
    .bind(&signed.nonce)
    .bind(&signed.signature)
    .bind(req.elapsed_ms)
    .bind(now_ms())
    .bind(id.0)
    .bind(signed.account.as_str())
    .fetch_optional(&mut *tx)
    .await?;
    match stored {
        Some(r) => Ok((TaskId(int(&r, "task_id")?), locked)),
        None => {
            // Say why: not found, someone else's, or no longer leased.
            load_leased(tx, id, &signed.account).await?;
            Err(MarketError::conflict(
                "state_changed",
                format!("assignment {id} changed state meanwhile"),
            ))
        }
    }
}

/// A worker could not run its assignment: the slot goes back to the pool.
pub async fn report_failure(
    m: &Market,
    signed: &SignedHeaders,
    id: AssignmentId,
    reason: &str,
) -> Result<AssignmentOutcome> {
    if reason.trim().is_empty() || reason.len() > 1000 {
        return Err(MarketError::bad(
            "bad_failure",
            "reason must be 1 to 1000 characters",
        ));
    }
    m.db.retrying("failure", || failure_once(m, signed, id, reason))
        .await
}

async fn failure_once(
    m: &Market,
    signed: &SignedHeaders,
    id: AssignmentId,
    reason: &str,
) -> Result<AssignmentOutcome> {
    let mut tx = begin_signed(m, signed).await?;
    let a = load_leased(&mut tx, id, &signed.account).await?;
    set_assignment(
        &mut tx,
        id,
        AssignmentState::Leased,
        AssignmentState::Failed,
    )
    .await?;
    query("UPDATE assignments SET reason = $1 WHERE id = $2")
        .bind(reason)
        .bind(id.0)
        .execute(&mut tx)
        .await?;
    release_slot(&mut tx, a.task).await?;
    // An input no worker can run must not circulate for ever.
    let task = load_task(&mut tx, a.task).await?;
    let failures: i64 =
        query("SELECT COUNT(*) AS n FROM assignments WHERE task_id = $1 AND status = 'failed'")
            .bind(a.task.0)
            .fetch_one(&mut tx)
            .await?
            .try_get("n")?;
    let mut task_state = task.state;
    if !task.state.is_final() && failures >= task.max_replicas {
        fail_task(m, &mut tx, &task).await?;
        task_state = TaskState::Failed;
    } else {
        // Also on a verified task: this may have been its last replica out,
        // and the decision is what closes the bid.
        decide(m, &mut tx, a.task).await?;
    }
    tx.commit().await?;
    m.metrics.failures.fetch_add(1, Ordering::Relaxed);
    if !task_state.is_final() {
        m.work_arrived(task.one_slot()).await;
    }
    Ok(AssignmentOutcome {
        assignment: id,
        task: a.task,
        status: AssignmentState::Failed.as_str().to_string(),
        task_status: task_state,
    })
}
