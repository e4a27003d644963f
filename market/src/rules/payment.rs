//! Money and endings: paying an agreeing result, failing a task without a
//! verdict, and closing a bid with the refund of what it did not spend.

use std::sync::atomic::Ordering;

use tally_protocol::wire::TaskState;
use tally_protocol::{AccountId, AssignmentId, BidId, Stroops};

use crate::db::{int, text};
use crate::db::{query, WriteTx};
use crate::error::{MarketError, Result};
use crate::ledger::{self, Book, Cause, Leg};
use crate::lifecycle::task_transition;
use crate::task::TaskRow;
use crate::{now_ms, Market};

/// Pay a task's agreeing results: for each, the price leaves the bid's
/// reservation, the fee goes to the operator, the rest to the worker's
/// unpaid earnings. One posting; every entry names the assignment it pays.
pub(crate) async fn pay(
    m: &Market,
    tx: &mut WriteTx<'_>,
    task: &TaskRow,
    agreed: &[(AssignmentId, &AccountId)],
) -> Result<()> {
    pay_at(m, tx, task, task.price, agreed).await
}

/// [`pay`] at another price than the task's: agreeing reviews earn the
/// bid's review price.
pub(crate) async fn pay_at(
    m: &Market,
    tx: &mut WriteTx<'_>,
    task: &TaskRow,
    price: Stroops,
    agreed: &[(AssignmentId, &AccountId)],
) -> Result<()> {
    if agreed.is_empty() {
        return Ok(());
    }
    let fee = price
        .fee_bps(task.fee_bps)
        .ok_or_else(|| MarketError::Corrupt("fee overflows".into()))?;
    let total = price
        .0
        .checked_mul(agreed.len() as i64)
        .ok_or_else(|| MarketError::Corrupt("payment overflows".into()))?;
    let spent = query(
        "UPDATE bids SET spent = spent + $1 WHERE id = $2 AND spent + $1 <= reserved - refunded",
    )
    .bind(total)
    .bind(task.bid.0)
    .execute(&mut *tx)
    .await?;
    if spent != 1 {
        return Err(MarketError::Corrupt(format!(
            "bid {} cannot cover {} results of task {}",
            task.bid,
            agreed.len(),
            task.id
        )));
    }
    let operator = m.config.operator.account().clone();
    let legs: Vec<(Cause, [Leg<'_>; 3])> = agreed
        .iter()
        .map(|(id, worker)| {
            let cause = Cause {
                bid: Some(task.bid),
                task: Some(task.id),
                assignment: Some(*id),
                settlement: None,
            };
            let legs = [
                Leg {
                    book: Book::Reserved,
                    owner: task.client.as_str(),
                    amount: -price.0,
                },
                Leg {
                    book: Book::Earned,
                    owner: worker.as_str(),
                    amount: price.0 - fee.0,
                },
                Leg {
                    book: Book::Fees,
                    owner: operator.as_str(),
                    amount: fee.0,
                },
            ];
            (cause, legs)
        })
        .collect();
    let entries: Vec<(Cause, &Leg<'_>)> = legs
        .iter()
        .flat_map(|(cause, legs)| legs.iter().map(move |l| (*cause, l)))
        .collect();
    ledger::post_entries(tx, ledger::Posting::Earn, &entries).await?;
    m.metrics
        .paid_results
        .fetch_add(agreed.len() as u64, Ordering::Relaxed);
    Ok(())
}

/// The task ends without a verdict: nothing is paid, outstanding leases are cancelled.
pub(crate) async fn fail_task(m: &Market, tx: &mut WriteTx<'_>, task: &TaskRow) -> Result<()> {
    task_transition(task.state, TaskState::Failed)?;
    query("UPDATE tasks SET status = 'failed', finished_at = $1, decided_at = COALESCE(decided_at, $1) WHERE id = $2")
        .bind(now_ms())
        .bind(task.id.0)
        .execute(&mut *tx)
        .await?;
    query("UPDATE assignments SET status = 'rejected', finished_at = $1 WHERE task_id = $2 AND status = 'submitted'")
        .bind(now_ms())
        .bind(task.id.0)
        .execute(&mut *tx)
        .await?;
    query("UPDATE assignments SET status = 'cancelled', finished_at = $1 WHERE task_id = $2 AND status = 'leased'")
        .bind(now_ms())
        .bind(task.id.0)
        .execute(&mut *tx)
        .await?;
    m.metrics.failed.fetch_add(1, Ordering::Relaxed);
    close_bid_if_done(m, tx, task.bid).await
}

/// When every task of a bid is final and no replica is still out, close the
/// bid and refund what its reservation did not spend.
pub async fn close_bid_if_done(_m: &Market, tx: &mut WriteTx<'_>, bid: BidId) -> Result<()> {
    if tx.is_postgres() {
        // Lock the bid's row first, so two decisions ending its last tasks
        // at once take turns: the second looks (in a statement of its own,
        // so with a fresh snapshot) only once the first has committed, and
        // sees its task final. Without the lock each would see the other's
        // task still running, and neither would close the bid.
        query("SELECT 1 AS one FROM bids WHERE id = $1 FOR NO KEY UPDATE")
            .bind(bid.0)
            .fetch_one(&mut *tx)
            .await?;
    }
    // One look at the bid and whether any of its tasks is still open: most
    // calls come while other tasks are.
    let r = query(
        "SELECT client, reserved, spent, refunded, status,
           CAST(CASE WHEN EXISTS (SELECT 1 FROM tasks WHERE bid_id = $1 AND status IN ('open', 'running', 'review'))
             THEN 1 ELSE 0 END AS BIGINT) AS pending
         FROM bids WHERE id = $1",
    )
    .bind(bid.0)
    .fetch_one(&mut *tx)
    .await?;
    if text(&r, "status")? != "open" || int(&r, "pending")? != 0 {
        return Ok(());
    }
    let out = query(
        "SELECT 1 AS one FROM assignments a JOIN tasks t ON t.id = a.task_id
         WHERE t.bid_id = $1 AND a.status IN ('leased', 'submitted') LIMIT 1",
    )
    .bind(bid.0)
    .fetch_optional(&mut *tx)
    .await?;
    if out.is_some() {
        return Ok(());
    }
    let client = text(&r, "client")?;
    // A bid re-opened by backtracking closes again: only what it reserved
    // since is refunded.
    let refund = int(&r, "reserved")? - int(&r, "spent")? - int(&r, "refunded")?;
    let closed = query(
        "UPDATE bids SET status = 'done', closed_at = $1, refunded = refunded + $2
         WHERE id = $3 AND status = 'open'",
    )
    .bind(now_ms())
    .bind(refund)
    .bind(bid.0)
    .execute(&mut *tx)
    .await?;
    if closed != 1 {
        return Ok(());
    }
    ledger::transfer(
        tx,
        ledger::Posting::Refund,
        Cause::of_bid(bid),
        (Book::Reserved, &client),
        (Book::Available, &client),
        refund,
    )
    .await
}

/// Give a worker's unsettled earnings back to those that paid them (the
/// client of each task; the operator for spot checks), one entry pair per assignment in one posting of `kind`
/// (the market keeps its fee: it did the matching and the vote). `only`
/// limits it to those assignments; how many were given back.
pub(crate) async fn give_back(
    tx: &mut WriteTx<'_>,
    kind: ledger::Posting,
    worker: &AccountId,
    only: Option<&[AssignmentId]>,
) -> Result<usize> {
    let rows = query(
        "SELECT a.id, a.task_id, t.bid_id, b.client,
           (SELECT CAST(COALESCE(SUM(e.amount), 0) AS BIGINT) FROM ledger_entries e
             WHERE e.assignment_id = a.id AND e.book = 'earned') AS earned
         FROM assignments a JOIN tasks t ON t.id = a.task_id JOIN bids b ON b.id = t.bid_id
         WHERE a.worker = $1 AND a.payout_seq IS NULL
           AND a.status IN ('agreed', 'disagreed')
         ORDER BY a.id",
    )
    .bind(worker.as_str())
    .fetch_all(&mut *tx)
    .await?;
    let mut owed = Vec::new();
    for r in rows {
        let id = AssignmentId(int(&r, "id")?);
        if only.is_some_and(|ids| !ids.contains(&id)) {
            continue;
        }
        let earned = int(&r, "earned")?;
        if earned <= 0 {
            continue;
        }
        let cause = Cause {
            bid: Some(BidId(int(&r, "bid_id")?)),
            task: Some(tally_protocol::TaskId(int(&r, "task_id")?)),
            assignment: Some(id),
            settlement: None,
        };
        owed.push((cause, text(&r, "client")?, earned));
    }
    if owed.is_empty() {
        return Ok(0);
    }
    let legs: Vec<(Cause, [Leg<'_>; 2])> = owed
        .iter()
        .map(|(cause, client, earned)| {
            (
                *cause,
                [
                    Leg {
                        book: Book::Earned,
                        owner: worker.as_str(),
                        amount: -earned,
                    },
                    Leg {
                        book: Book::Available,
                        owner: client.as_str(),
                        amount: *earned,
                    },
                ],
            )
        })
        .collect();
    let entries: Vec<(Cause, &Leg<'_>)> = legs
        .iter()
        .flat_map(|(cause, legs)| legs.iter().map(move |l| (*cause, l)))
        .collect();
    ledger::post_entries(tx, kind, &entries).await?;
    Ok(owed.len())
}

/// Reserve `amount` more for a task of `bid` that backtracking re-opened
/// (the bid opens again if it had closed); false, with nothing moved, when
/// the client's available balance cannot cover it.
pub(crate) async fn reserve_again(
    tx: &mut WriteTx<'_>,
    bid: BidId,
    client: &AccountId,
    amount: i64,
) -> Result<bool> {
    let available = ledger::balance(&mut *tx, Book::Available, client.as_str()).await?;
    if available.0 < amount {
        return Ok(false);
    }
    crate::bids::reserve_for(tx, bid, client.as_str(), tally_protocol::Stroops(amount)).await?;
    query(
        "UPDATE bids SET reserved = reserved + $1, status = 'open', closed_at = NULL WHERE id = $2",
    )
    .bind(amount)
    .bind(bid.0)
    .execute(&mut *tx)
    .await?;
    Ok(true)
}

#[cfg(test)]
mod tests;
