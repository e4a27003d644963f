//! Expiry: leases past their time return their slots, bids past their
//! deadline fail their unfinished tasks (those under review included).
//! Run by the market's sweep job. A review's lease is not swept: once it
//! runs out the task may go to another reviewer, and a late answer still
//! counts while the task is undecided.

use std::sync::atomic::Ordering;

use tally_protocol::{AssignmentId, TaskId};

use crate::db::int;
use crate::db::query;
use crate::decide::decide;
use crate::error::Result;
use crate::payment::fail_task;
use crate::task::{load_assignment, load_task, lock_task, release_slot};
use crate::{now_ms, Market};

/// Expire leases past their time: each returns its slot, and its worker's
/// reputation counts a timeout. Returns how many expired.
pub async fn expire_leases(m: &Market) -> Result<usize> {
    let now = now_ms();
    let due = due_ids(m, "SELECT id FROM assignments WHERE status = 'leased' AND lease_expires_at < $1 AND kind = 'result' ORDER BY id LIMIT 500", now).await?;
    let mut n = 0;
    for id in due.into_iter().map(AssignmentId) {
        if m.db
            .retrying("lease expiry", || expire_lease(m, id, now))
            .await?
        {
            n += 1;
        }
    }
    m.metrics.expired.fetch_add(n as u64, Ordering::Relaxed);
    if n > 0 {
        m.wake_all().await;
    }
    Ok(n)
}

/// The ids `sql` (with the time as `$1`) finds due for the sweep.
async fn due_ids(m: &Market, sql: &'static str, now: i64) -> Result<Vec<i64>> {
    query(sql)
        .bind(now)
        .fetch_all(&m.db)
        .await?
        .iter()
        .map(|r| int(r, "id"))
        .collect()
}

/// Expire one lease unless a heartbeat or result won meanwhile: one
/// transaction per lease, so the sweep never holds one task's lock (and the
/// balances its decision touched) while it waits for another's.
async fn expire_lease(m: &Market, id: AssignmentId, now: i64) -> Result<bool> {
    let mut tx = m.db.begin().await?;
    let a = load_assignment(&mut tx, id).await?;
    lock_task(&mut tx, a.task).await?;
    // Re-check under the transaction: a heartbeat or result may have won.
    let still = query("UPDATE assignments SET status = 'expired', finished_at = $1 WHERE id = $2 AND status = 'leased' AND lease_expires_at < $1")
        .bind(now)
        .bind(id.0)
        .execute(&mut tx)
        .await?;
    if still == 0 {
        return Ok(false);
    }
    release_slot(&mut tx, a.task).await?;
    decide(m, &mut tx, a.task).await?;
    // The worker's row after the decision's balances, as decisions do
    // (see `decide::judge`).
    query("UPDATE workers SET timed_out = timed_out + 1 WHERE account = $1")
        .bind(a.worker.as_str())
        .execute(&mut tx)
        .await?;
    tx.commit().await?;
    Ok(true)
}

/// Fail the unfinished tasks of bids past their deadline. Returns how many.
pub async fn expire_deadlines(m: &Market) -> Result<usize> {
    let now = now_ms();
    let due = due_ids(
        m,
        "SELECT t.id FROM tasks t JOIN bids b ON b.id = t.bid_id
         WHERE b.status = 'open' AND b.deadline_at < $1 AND t.status IN ('open', 'running', 'review') LIMIT 500",
        now,
    )
    .await?;
    let mut n = 0;
    for id in due.into_iter().map(TaskId) {
        if m.db.retrying("deadline", || expire_deadline(m, id)).await? {
            n += 1;
        }
    }
    Ok(n)
}

/// Fail one task past its bid's deadline, in a transaction of its own (see
/// [`expire_lease`]); false when it was final already.
async fn expire_deadline(m: &Market, id: TaskId) -> Result<bool> {
    let mut tx = m.db.begin().await?;
    lock_task(&mut tx, id).await?;
    let task = load_task(&mut tx, id).await?;
    if task.state.is_final() {
        return Ok(false);
    }
    fail_task(m, &mut tx, &task).await?;
    tx.commit().await?;
    Ok(true)
}
