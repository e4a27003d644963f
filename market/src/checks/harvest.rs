//! Known answers harvested from client work: a client task verified at a
//! credibility of at least [`HARVEST_CREDIBILITY`] joins the pool of spot
//! checks for its model, beside the operator's golden set.
//!
//! - While it may be used (fewer than [`MAX_USES`] checks made from it and
//!   younger than [`MAX_AGE_MS`]) its evidence is withheld like a check's,
//!   so no one can look its answer up; afterwards it is published.
//! - A harvested image never goes back, as a check, to a worker that had a
//!   replica of the task it came from (it would know the answer).
//! - Should backtracking undo the verdict it came from, it leaves the pool,
//!   and a worker it caught is cleared of that failure: a wrong known answer
//!   must not stand as proof of lying.

use tally_protocol::{AccountId, Detection, Sha256Hex, TaskId};

use super::GoldenItem;
use crate::db::{int, json, query, text, WriteTx};
use crate::error::Result;
use crate::now_ms;

/// The credibility a verdict needs to become a known answer.
pub const HARVEST_CREDIBILITY: f64 = 0.999_999;
/// Checks one harvested answer may make before it retires.
pub const MAX_USES: i64 = 16;
/// How long a harvested answer may be used (a week).
pub const MAX_AGE_MS: i64 = 7 * 24 * 3600 * 1000;
/// Harvested answers in use per model, at most.
const POOL: i64 = 256;

/// The check-item name of the answer harvested from `task`.
fn item_name(task: TaskId) -> String {
    format!("harvest:{}", task.0)
}

/// Keep the answer of a client task just verified at `credibility`, when it
/// is high enough and its model's pool has room.
pub(crate) async fn keep(
    tx: &mut WriteTx<'_>,
    task: TaskId,
    model: &Sha256Hex,
    credibility: Option<f64>,
    consensus: &[Detection],
) -> Result<()> {
    if !credibility.is_some_and(|c| c >= HARVEST_CREDIBILITY) {
        return Ok(());
    }
    let now = now_ms();
    let in_pool = query(
        "SELECT COUNT(*) AS n FROM harvest WHERE model = $1 AND uses < $2 AND created_at > $3",
    )
    .bind(model.as_str())
    .bind(MAX_USES)
    .bind(now - MAX_AGE_MS)
    .fetch_one(&mut *tx)
    .await?;
    if int(&in_pool, "n")? >= POOL {
        return Ok(());
    }
    query(
        "INSERT INTO harvest (task_id, model, input, reference, created_at)
         SELECT id, model, input, $1, $2 FROM tasks WHERE id = $3",
    )
    .bind(serde_json::to_string(consensus).expect("detections serialize"))
    .bind(now)
    .bind(task.0)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Whether `task`'s answer may still be used as a check (its evidence is
/// withheld meanwhile).
pub(crate) async fn in_use<'c>(exec: impl crate::db::Executor<'c>, task: TaskId) -> Result<bool> {
    let row =
        query("SELECT 1 AS one FROM harvest WHERE task_id = $1 AND uses < $2 AND created_at > $3")
            .bind(task.0)
            .bind(MAX_USES)
            .bind(now_ms() - MAX_AGE_MS)
            .fetch_optional(exec)
            .await?;
    Ok(row.is_some())
}

/// How many harvested answers of `model` could check `worker` now.
pub(crate) async fn available(
    tx: &mut WriteTx<'_>,
    model: &Sha256Hex,
    worker: &AccountId,
) -> Result<i64> {
    let r = query(format!(
        "SELECT COUNT(*) AS n FROM harvest h WHERE {USABLE}"
    ))
    .bind(model.as_str())
    .bind(MAX_USES)
    .bind(now_ms() - MAX_AGE_MS)
    .bind(worker.as_str())
    .fetch_one(&mut *tx)
    .await?;
    int(&r, "n")
}

/// Harvested answers `$1` (model) may check worker `$4` with.
const USABLE: &str = "h.model = $1 AND h.uses < $2 AND h.created_at > $3
    AND NOT EXISTS (SELECT 1 FROM assignments a WHERE a.task_id = h.task_id AND a.worker = $4)";

/// One harvested answer of `model` for `worker`, at random, counted as used.
pub(crate) async fn take(
    tx: &mut WriteTx<'_>,
    model: &Sha256Hex,
    worker: &AccountId,
) -> Result<Option<GoldenItem>> {
    let row = query(format!(
        "SELECT h.task_id, h.reference, i.bytes, i.width, i.height
         FROM harvest h JOIN inputs i ON i.hash = h.input
         WHERE {USABLE} ORDER BY random() LIMIT 1"
    ))
    .bind(model.as_str())
    .bind(MAX_USES)
    .bind(now_ms() - MAX_AGE_MS)
    .bind(worker.as_str())
    .fetch_optional(&mut *tx)
    .await?;
    let Some(r) = row else { return Ok(None) };
    let task = TaskId(int(&r, "task_id")?);
    query("UPDATE harvest SET uses = uses + 1 WHERE task_id = $1")
        .bind(task.0)
        .execute(&mut *tx)
        .await?;
    Ok(Some(GoldenItem {
        model: model.clone(),
        name: item_name(task),
        bytes: r.try_get("bytes")?,
        width: int(&r, "width")? as u32,
        height: int(&r, "height")? as u32,
        reference: json(&text(&r, "reference")?, "harvested answer")?,
    }))
}

/// `task`'s verdict was undone: its answer leaves the pool, and workers
/// caught by a check made from it are cleared of that failure.
pub(crate) async fn withdraw(tx: &mut WriteTx<'_>, task: TaskId) -> Result<()> {
    let removed = query("DELETE FROM harvest WHERE task_id = $1")
        .bind(task.0)
        .execute(&mut *tx)
        .await?;
    if removed == 0 {
        return Ok(());
    }
    let failed = query(
        "SELECT a.worker FROM checks c JOIN assignments a ON a.task_id = c.task_id
         WHERE c.item = $1 AND a.status = 'disagreed'",
    )
    .bind(item_name(task).as_str())
    .fetch_all(&mut *tx)
    .await?;
    for r in failed {
        let worker = text(&r, "worker")?;
        tracing::warn!(%worker, task = task.0, "a check from an undone answer is void: failure cleared");
        query(
            "UPDATE workers SET checks_failed = checks_failed - 1,
               caught_at = CASE WHEN checks_failed - 1 > 0 THEN caught_at ELSE NULL END
             WHERE account = $1 AND checks_failed > 0",
        )
        .bind(worker.as_str())
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}
