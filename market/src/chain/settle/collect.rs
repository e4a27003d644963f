//! What the next settlement record pays: the unpaid agreeing assignments
//! and the withdrawals asked for, per worker, less what probation and
//! publication keep back, with a worker whose hold ran out retried alone.

use std::collections::BTreeMap;

use tally_protocol::Stroops;

use crate::db::{int, query, text, WriteTx};
use crate::error::{MarketError, Result};
use crate::Market;

use super::MAX_ASSIGNMENTS;

/// One unpaid agreeing assignment (with its task), or one withdrawal.
pub(super) struct Due {
    pub(super) id: i64,
    pub(super) task: Option<i64>,
    pub(super) amount: i64,
}

/// What keeps earnings from settlement at a moment: the probation
/// holdback (results submitted by a worker with fewer than `min_checks`
/// passed checks, earned after `since`, wait, whatever the worker passed
/// since), and publication (only tasks first decided before
/// `published_before` are public, see [`crate::publish`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Probation {
    pub(crate) min_checks: i64,
    pub(crate) since: i64,
    pub(crate) published_before: i64,
}

impl Probation {
    /// What keeps earnings back in `m` at `now`.
    pub(crate) fn of(m: &Market, now: i64) -> Probation {
        // Without spot checks no worker can earn trust: nothing is held.
        let min_checks = if m.config.golden.items.is_empty() {
            0
        } else {
            m.config.check_rates.trusted_after.min(i64::MAX as u64) as i64
        };
        Probation {
            min_checks,
            since: now.saturating_sub(m.config.holdback.as_millis().min(i64::MAX as u128) as i64),
            published_before: crate::publish::cutoff(m, now),
        }
    }
}

/// The dues found so far, per account, in account order: those of accounts
/// whose hold has run out (to retry) apart from the others.
#[derive(Default)]
struct Sides {
    fresh: BTreeMap<String, Vec<Due>>,
    retry: BTreeMap<String, Vec<Due>>,
}

impl Sides {
    /// Add `due` to `account`'s, on the retry side when `held` (the number
    /// of holds the account has) is not 0.
    fn push(&mut self, held: i64, account: String, due: Due) {
        let side = if held > 0 {
            &mut self.retry
        } else {
            &mut self.fresh
        };
        side.entry(account).or_default().push(due);
    }

    /// The batch: a retry goes first, alone, or a busy market would never
    /// get to it; else up to `max_ops` accounts.
    fn batch(self, max_ops: usize) -> Vec<(String, Vec<Due>)> {
        match self.retry.into_iter().next() {
            Some(one) => vec![one],
            None => self.fresh.into_iter().take(max_ops).collect(),
        }
    }
}

/// The next batch: up to `max_ops` workers (in account order) with their
/// unpaid agreeing assignments. Workers on hold are skipped, and so are
/// earnings still on probation; a worker whose hold has run out is retried
/// first, in a batch of its own, so a payout the network refuses again
/// takes no one else's with it.
pub(super) async fn collect(
    tx: &mut WriteTx<'_>,
    now: i64,
    max_ops: usize,
    probation: Probation,
) -> Result<Vec<(String, Vec<Due>)>> {
    let mut sides = Sides::default();
    assignments_due(tx, now, probation, &mut sides).await?;
    withdrawals_due(tx, now, &mut sides).await?;
    Ok(sides.batch(max_ops))
}

/// The unpaid agreeing assignments of workers not on hold, each checked
/// against what the ledger says it earned.
async fn assignments_due(
    tx: &mut WriteTx<'_>,
    now: i64,
    probation: Probation,
    sides: &mut Sides,
) -> Result<()> {
    let rows = query(
        "SELECT a.id, a.worker, a.task_id, b.fee_bps,
           CASE WHEN a.kind = 'review' THEN b.review_price ELSE t.price END AS price,
           (SELECT CAST(COALESCE(SUM(e.amount), 0) AS BIGINT) FROM ledger_entries e
             WHERE e.assignment_id = a.id AND e.book = 'earned') AS earned,
           (SELECT COUNT(*) FROM payout_holds h WHERE h.worker = a.worker) AS held
         FROM assignments a JOIN tasks t ON t.id = a.task_id JOIN bids b ON b.id = t.bid_id
         WHERE a.status = 'agreed' AND a.payout_seq IS NULL AND b.fee_bps < 10000
           AND (CASE WHEN a.kind = 'review' THEN b.review_price ELSE t.price END) > 0
           AND NOT EXISTS (SELECT 1 FROM payout_holds h WHERE h.worker = a.worker AND h.retry_at > $1)
           AND t.decided_at < $5
           AND NOT EXISTS (SELECT 1 FROM assignments o WHERE o.task_id = a.task_id AND o.status = 'leased' AND o.kind = 'result')
           AND NOT (a.kind = 'result' AND COALESCE(a.checks_at_submit, 0) < $3 AND a.finished_at > $4)
           AND NOT EXISTS (SELECT 1 FROM workers w WHERE w.account = a.worker AND w.caught_at IS NOT NULL)
         ORDER BY a.id LIMIT $2",
    )
    .bind(now)
    .bind(MAX_ASSIGNMENTS)
    .bind(probation.min_checks)
    .bind(probation.since)
    .bind(probation.published_before)
    .fetch_all(&mut *tx)
    .await?;
    for r in rows {
        let id = int(&r, "id")?;
        let price = Stroops(int(&r, "price")?);
        let fee = price
            .fee_bps(int(&r, "fee_bps")? as u32)
            .ok_or_else(|| MarketError::Corrupt("fee overflows".into()))?;
        let amount = price.0 - fee.0;
        let earned = int(&r, "earned")?;
        if amount != earned {
            return Err(MarketError::Corrupt(format!(
                "assignment {id} would be paid {amount} but the ledger says it earned {earned}"
            )));
        }
        let due = Due {
            id,
            task: Some(int(&r, "task_id")?),
            amount,
        };
        sides.push(int(&r, "held")?, text(&r, "worker")?, due);
    }
    Ok(())
}

/// The withdrawals asked for, of accounts not on hold.
async fn withdrawals_due(tx: &mut WriteTx<'_>, now: i64, sides: &mut Sides) -> Result<()> {
    let rows = query(
        "SELECT w.id, w.account, w.amount,
           (SELECT COUNT(*) FROM payout_holds h WHERE h.worker = w.account) AS held
         FROM withdrawals w
         WHERE w.payout_seq IS NULL
           AND NOT EXISTS (SELECT 1 FROM payout_holds h WHERE h.worker = w.account AND h.retry_at > $1)
         ORDER BY w.id LIMIT $2",
    )
    .bind(now)
    .bind(MAX_ASSIGNMENTS)
    .fetch_all(&mut *tx)
    .await?;
    for r in rows {
        let due = Due {
            id: int(&r, "id")?,
            task: None,
            amount: int(&r, "amount")?,
        };
        sides.push(int(&r, "held")?, text(&r, "account")?, due);
    }
    Ok(())
}
