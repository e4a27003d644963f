//! Leases, results and failures: everything a worker does to its
//! assignment, each in one transaction that then lets the vote run
//! ([`crate::decide`]). Paying, failing and closing live in
//! [`crate::payment`], expiry in [`crate::sweep`].

use std::sync::atomic::Ordering;

use tally_protocol::signing::SignedHeaders;
use tally_protocol::vote::{Verdict, VoteParams};
use tally_protocol::wire::{AssignmentOutcome, Lease, ResultRequest, TaskState};
use tally_protocol::{AccountId, AssignmentId, BidId, Sha256Hex, Stroops, TaskId};

use crate::auth::begin_signed;
use crate::db::{int, json, parse, text};
use crate::db::{query, WriteTx};
use crate::decide::decide;
use crate::error::{MarketError, Result};
use crate::lifecycle::{assignment_transition, parse_task_state, AssignmentState};
use crate::payment::fail_task;
use crate::wake::Work;
use crate::{now_ms, to_time, Market};

/// The verdict as stored: the public one plus which results formed it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StoredVerdict {
    #[serde(flatten)]
    pub verdict: Verdict,
    /// The results the consensus was voted from; later ones were judged against it.
    pub voted: Vec<AssignmentId>,
}

pub(crate) struct AssignmentRow {
    pub task: TaskId,
    pub worker: AccountId,
    pub state: AssignmentState,
}

pub(crate) async fn load_assignment(
    tx: &mut WriteTx<'_>,
    id: AssignmentId,
) -> Result<AssignmentRow> {
    let r = query("SELECT task_id, worker, status FROM assignments WHERE id = $1")
        .bind(id.0)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| MarketError::NotFound(format!("no assignment {id}")))?;
    Ok(AssignmentRow {
        task: TaskId(int(&r, "task_id")?),
        worker: parse(&text(&r, "worker")?, "worker")?,
        state: AssignmentState::parse(&text(&r, "status")?)?,
    })
}

/// Lock a task's row for the rest of the transaction. Every write path that
/// changes a task's assignments takes this lock first (claims take it with
/// their slot update), so decisions on one task are serialised and locks are
/// always taken task first, then assignments: no two votes on one task, no
/// deadlock. On SQLite the write lock already serialises everything.
pub(crate) async fn lock_task(tx: &mut WriteTx<'_>, task: TaskId) -> Result<()> {
    if !tx.is_postgres() {
        return Ok(());
    }
    tx.serialize_decisions().await?;
    query("UPDATE tasks SET wanted = wanted WHERE id = $1")
        .bind(task.0)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

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

pub(crate) async fn set_assignment(
    tx: &mut WriteTx<'_>,
    id: AssignmentId,
    from: AssignmentState,
    to: AssignmentState,
) -> Result<()> {
    assignment_transition(from, to)?;
    let n = query("UPDATE assignments SET status = $1, finished_at = COALESCE(finished_at, $2) WHERE id = $3 AND status = $4")
        .bind(to.as_str())
        .bind(now_ms())
        .bind(id.0)
        .bind(from.as_str())
        .execute(&mut *tx)
        .await?
        ;
    if n == 1 {
        Ok(())
    } else {
        Err(MarketError::conflict(
            "state_changed",
            format!("assignment {id} changed state meanwhile"),
        ))
    }
}

/// Extend a lease.
pub async fn heartbeat(m: &Market, signed: &SignedHeaders, id: AssignmentId) -> Result<Lease> {
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
    if req.detections.len() > m.config.limits.max_detections {
        return Err(MarketError::bad(
            "bad_result",
            format!(
                "at most {} detections per result",
                m.config.limits.max_detections
            ),
        ));
    }
    for (i, d) in req.detections.iter().enumerate() {
        if !d.is_well_formed()
            || !(0.0..=1.0).contains(&d.score)
            || d.class_id >= 100_000
            || d.label.len() > 64
        {
            return Err(MarketError::bad(
                "bad_result",
                format!("detection {i} is malformed: scores lie in [0, 1] and boxes are [x1, y1, x2, y2] with x1 <= x2, y1 <= y2"),
            ));
        }
    }
    if !req.elapsed_ms.is_finite() || req.elapsed_ms < 0.0 {
        return Err(MarketError::bad(
            "bad_result",
            "elapsed_ms must be a non-negative number",
        ));
    }
    Ok(())
}

/// Store a signed result and let the vote run. On PostgreSQL decisions
/// queue on one lock ([`WriteTx::serialize_decisions`]); should the server
/// still pick this transaction as a deadlock or serialisation victim, it is
/// run again from the start.
pub async fn submit_result(
    m: &Market,
    signed: &SignedHeaders,
    id: AssignmentId,
    body: &[u8],
    req: &ResultRequest,
) -> Result<AssignmentOutcome> {
    validate_result(m, req)?;
    let mut attempt = 0;
    loop {
        match submit_once(m, signed, id, body, req).await {
            Err(e) if e.is_retryable() && attempt < 8 => attempt += 1,
            other => return other,
        }
    }
}

async fn submit_once(
    m: &Market,
    signed: &SignedHeaders,
    id: AssignmentId,
    body: &[u8],
    req: &ResultRequest,
) -> Result<AssignmentOutcome> {
    let mut tx = begin_signed(m, signed).await?;
    let task = store_result(&mut tx, signed, id, body, req).await?;
    m.metrics.results.fetch_add(1, Ordering::Relaxed);
    let outcome = decide(m, &mut tx, task).await?;
    let status = match outcome.judged.iter().find(|(a, _)| *a == id) {
        Some((_, true)) => AssignmentState::Agreed,
        Some((_, false)) => AssignmentState::Disagreed,
        // A failed task rejects every submitted result.
        None if outcome.task_state == TaskState::Failed => AssignmentState::Rejected,
        None => AssignmentState::Submitted,
    };
    tx.commit().await?;
    if let Some(work) = outcome.wake {
        m.work_arrived(work).await;
    }
    Ok(AssignmentOutcome {
        assignment: id,
        task,
        status: status.as_str().to_string(),
        task_status: outcome.task_state,
    })
}

/// Store a result on an assignment the signer holds under a live lease; the
/// task it belongs to.
async fn store_result(
    tx: &mut WriteTx<'_>,
    signed: &SignedHeaders,
    id: AssignmentId,
    body: &[u8],
    req: &ResultRequest,
) -> Result<TaskId> {
    if tx.is_postgres() {
        // The task's lock comes before any assignment's.
        load_leased(tx, id, &signed.account).await?;
    }
    let stored = query(
        "UPDATE assignments SET status = 'submitted', body = $1, signed_at = $2, nonce = $3, signature = $4,
         elapsed_ms = $5, finished_at = $6 WHERE id = $7 AND status = 'leased' AND worker = $8
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
        Some(r) => Ok(TaskId(int(&r, "task_id")?)),
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

pub(crate) async fn release_slot(tx: &mut WriteTx<'_>, task: TaskId) -> Result<()> {
    query(
        "UPDATE tasks SET taken = taken - 1,
         status = CASE WHEN status = 'running' AND taken - 1 = 0 THEN 'open' ELSE status END
         WHERE id = $1",
    )
    .bind(task.0)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

pub struct TaskRow {
    pub id: TaskId,
    pub model: Sha256Hex,
    pub bid: BidId,
    pub client: AccountId,
    pub state: TaskState,
    pub price: Stroops,
    pub fee_bps: u32,
    pub wanted: i64,
    pub max_replicas: i64,
    pub params: VoteParams,
    pub verdict: Option<StoredVerdict>,
}

pub async fn load_task(tx: &mut WriteTx<'_>, id: TaskId) -> Result<TaskRow> {
    let r = query(
        "SELECT t.id, t.model, t.bid_id, t.status, t.price, t.wanted, t.max_replicas, t.verdict, b.params, b.fee_bps, b.client
         FROM tasks t JOIN bids b ON b.id = t.bid_id WHERE t.id = $1",
    )
    .bind(id.0)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| MarketError::NotFound(format!("no task {id}")))?;
    let verdict: Option<String> = r.try_get("verdict")?;
    Ok(TaskRow {
        id,
        model: parse(&text(&r, "model")?, "model hash")?,
        bid: BidId(int(&r, "bid_id")?),
        client: parse(&text(&r, "client")?, "client")?,
        state: parse_task_state(&text(&r, "status")?)?,
        price: Stroops(int(&r, "price")?),
        fee_bps: int(&r, "fee_bps")? as u32,
        wanted: int(&r, "wanted")?,
        max_replicas: int(&r, "max_replicas")?,
        params: json(&text(&r, "params")?, "bid params")?,
        verdict: verdict.map(|v| json(&v, "verdict")).transpose()?,
    })
}

impl TaskRow {
    /// One more replica of this task, for waiting claims.
    pub fn one_slot(&self) -> Work {
        Work {
            model: self.model.clone(),
            price: self.price.0,
            slots: 1,
        }
    }
}
