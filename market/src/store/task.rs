//! A task as the decision path sees it: its row (with its slots and its
//! stored verdict), its lock, its assignments' state changes.
//!
//! Results, decisions, payment and the sweeper all read tasks through here,
//! so the decision path's modules depend one way: `results` and `sweep` call
//! `decide`, which calls `payment`; all of them use `task`.

use tally_protocol::vote::{Verdict, VoteParams};
use tally_protocol::wire::TaskState;
use tally_protocol::{AccountId, AssignmentId, BidId, Sha256Hex, Stroops, TaskId};

use crate::db::{int, json, parse, query, text, WriteTx, DECISIONS_LOCK};
use crate::error::{MarketError, Result};
use crate::lifecycle::{assignment_transition, parse_task_state, AssignmentState};
use crate::now_ms;
use crate::wake::Work;

/// The verdict as stored: the public one plus which results formed it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StoredVerdict {
    #[serde(flatten)]
    pub verdict: Verdict,
    /// The results the consensus was voted from; later ones were judged against it.
    pub voted: Vec<AssignmentId>,
    /// Each voted result's weight, where the bid buys a confidence.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weights: Vec<tally_protocol::trust::Weight>,
    /// The agreeing group's credibility when it was verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credibility: Option<f64>,
    /// Results of workers caught before the decision: neither voted nor judged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded: Vec<AssignmentId>,
    /// How reviews decided the task, when they did: `verdict` then judges
    /// the results against the reviews' consensus.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<tally_protocol::wire::ReviewVerdict>,
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
    let r =
        query("SELECT task_id, worker, status FROM assignments WHERE id = $1 AND kind = 'result'")
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
/// always taken task first, then assignments, then balances in (book, owner)
/// order: no two votes on one task, no deadlock. In the same statement it
/// takes the shared side of the lock settlement takes exclusively
/// ([`WriteTx::serialize_decisions`]); decisions on different tasks run side
/// by side. On SQLite the write lock already serialises everything.
pub(crate) async fn lock_task(tx: &mut WriteTx<'_>, task: TaskId) -> Result<()> {
    if !tx.is_postgres() {
        return Ok(());
    }
    query(format!(
        "SELECT pg_advisory_xact_lock_shared({DECISIONS_LOCK}) AS shared FROM tasks t WHERE t.id = $1{ROW_LOCK}"
    ))
    .bind(task.0)
    .fetch_optional(&mut *tx)
    .await?;
    Ok(())
}

/// The row lock [`lock_task`] takes: the one an UPDATE takes, so claims'
/// foreign-key checks (FOR KEY SHARE) on the task do not wait for it.
const ROW_LOCK: &str = " FOR NO KEY UPDATE OF t";

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
    /// Replicas asked for, and replicas claimed now (leased or finished).
    pub wanted: i64,
    pub taken: i64,
    pub max_replicas: i64,
    pub params: VoteParams,
    pub verdict: Option<StoredVerdict>,
    /// A spot check: judged against its known answer, not by a vote.
    pub is_check: bool,
    /// Stroops per review, where the bid pays for human review.
    pub review_price: Option<Stroops>,
}

pub async fn load_task(tx: &mut WriteTx<'_>, id: TaskId) -> Result<TaskRow> {
    read_task(tx, id, false).await
}

/// [`lock_task`] and [`load_task`] in one statement: the row as it stands
/// under the lock.
pub(crate) async fn lock_and_load(tx: &mut WriteTx<'_>, id: TaskId) -> Result<TaskRow> {
    let locking = tx.is_postgres();
    read_task(tx, id, locking).await
}

async fn read_task(tx: &mut WriteTx<'_>, id: TaskId, lock: bool) -> Result<TaskRow> {
    let (share, rows) = if lock {
        (
            format!("pg_advisory_xact_lock_shared({DECISIONS_LOCK}) AS shared, "),
            ROW_LOCK,
        )
    } else {
        (String::new(), "")
    };
    let r = query(format!(
        "SELECT {share}t.id, t.model, t.bid_id, t.status, t.price, t.wanted, t.taken, t.max_replicas, t.verdict, b.params, b.fee_bps, b.client, b.kind, b.review_price
         FROM tasks t JOIN bids b ON b.id = t.bid_id WHERE t.id = $1{rows}"
    ))
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
        taken: int(&r, "taken")?,
        max_replicas: int(&r, "max_replicas")?,
        params: json(&text(&r, "params")?, "bid params")?,
        verdict: verdict.map(|v| json(&v, "verdict")).transpose()?,
        is_check: text(&r, "kind")? == "check",
        review_price: r.try_get::<Option<i64>>("review_price")?.map(Stroops),
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
