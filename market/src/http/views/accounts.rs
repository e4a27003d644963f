//! An account's view of the ledger (`GET /v1/accounts/me`) and a worker's
//! record as the public may see it, where decisions are published in
//! batches.

use tally_protocol::trust::{credibility, CheckRecord, ASSUMED_SABOTEURS};
use tally_protocol::wire::*;
use tally_protocol::{AccountId, Stroops};

use crate::db::{int, query};
use crate::error::Result;
use crate::ledger::{self, Book};
use crate::{now_ms, Market};

/// What the probation holdback keeps from settlement now of a worker's
/// unpaid earnings on public tasks.
async fn held(m: &Market, worker: &AccountId) -> Result<Stroops> {
    let p = crate::settle::Probation::of(m, now_ms());
    let r = query(
        "SELECT CAST(COALESCE(SUM(e.amount), 0) AS BIGINT) AS held FROM ledger_entries e
           JOIN assignments a ON a.id = e.assignment_id JOIN tasks t ON t.id = a.task_id
         WHERE e.book = 'earned' AND a.worker = $1 AND a.payout_seq IS NULL AND a.kind = 'result'
           AND COALESCE(a.checks_at_submit, 0) < $2 AND a.finished_at > $3 AND t.decided_at < $4
           AND NOT EXISTS (SELECT 1 FROM workers w WHERE w.account = a.worker AND w.caught_at IS NOT NULL)",
    )
    .bind(worker.as_str())
    .bind(p.min_checks)
    .bind(p.since)
    .bind(p.published_before)
    .fetch_one(&m.db)
    .await?;
    Ok(Stroops(int(&r, "held")?))
}

/// A worker's record as the public may see it: where decisions are
/// published in batches, counted over public tasks only, so no view tells
/// a worker how a result it just sent was judged, or that it was a check.
pub(crate) struct PublicRecord {
    pub reputation: Reputation,
    pub checks: CheckRecord,
    /// Earnings on tasks not public yet (left out of what is shown).
    pub unpublished_earned: i64,
}

/// `worker`'s [`PublicRecord`] now: its counts in the `workers` table, or,
/// where decisions are published in batches, recounted over public tasks.
pub(crate) async fn public_record(m: &Market, worker: &AccountId) -> Result<PublicRecord> {
    let pool = &m.db;
    let rep = query(
        "SELECT agreed, disagreed, timed_out, checks_passed, checks_failed FROM workers WHERE account = $1",
    )
    .bind(worker.as_str())
    .fetch_optional(pool)
    .await?;
    let Some(rep) = rep else {
        return Ok(PublicRecord {
            reputation: Reputation::default(),
            checks: CheckRecord::default(),
            unpublished_earned: 0,
        });
    };
    let mut reputation = Reputation {
        agreed: int(&rep, "agreed")?.max(0) as u64,
        disagreed: int(&rep, "disagreed")?.max(0) as u64,
        timed_out: int(&rep, "timed_out")?.max(0) as u64,
    };
    // A failure is never hidden: the worker learns it at once (no more work).
    let mut checks = CheckRecord {
        passed: int(&rep, "checks_passed")?.max(0) as u64,
        failed: int(&rep, "checks_failed")?.max(0) as u64,
    };
    if !crate::publish::batched(m) {
        return Ok(PublicRecord {
            reputation,
            checks,
            unpublished_earned: 0,
        });
    }
    let published_before = crate::publish::cutoff(m, now_ms());
    let r = query(
        "SELECT
           COALESCE(SUM(CASE WHEN b.kind = 'check' AND a.status = 'agreed' THEN 1 ELSE 0 END), 0) AS passed,
           COALESCE(SUM(CASE WHEN a.status = 'agreed' THEN 1 ELSE 0 END), 0) AS agreed,
           COALESCE(SUM(CASE WHEN a.status = 'disagreed' THEN 1 ELSE 0 END), 0) AS disagreed
         FROM assignments a JOIN tasks t ON t.id = a.task_id JOIN bids b ON b.id = t.bid_id
         WHERE a.worker = $1 AND a.kind = 'result' AND t.decided_at < $2",
    )
    .bind(worker.as_str())
    .bind(published_before)
    .fetch_one(pool)
    .await?;
    checks.passed = int(&r, "passed")?.max(0) as u64;
    reputation.agreed = int(&r, "agreed")?.max(0) as u64;
    reputation.disagreed = int(&r, "disagreed")?.max(0) as u64;
    let r = query(
        "SELECT CAST(COALESCE(SUM(e.amount), 0) AS BIGINT) AS earned FROM ledger_entries e
           JOIN assignments a ON a.id = e.assignment_id JOIN tasks t ON t.id = a.task_id
         WHERE e.book = 'earned' AND a.worker = $1 AND a.payout_seq IS NULL
           AND (t.decided_at IS NULL OR t.decided_at >= $2)",
    )
    .bind(worker.as_str())
    .bind(published_before)
    .fetch_one(pool)
    .await?;
    Ok(PublicRecord {
        reputation,
        checks,
        unpublished_earned: int(&r, "earned")?,
    })
}

/// `GET /v1/accounts/me`.
pub async fn account_view(m: &Market, account: &AccountId) -> Result<AccountView> {
    let pool = &m.db;
    let owner = account.as_str();
    let fees: i64 = query(
        "SELECT CAST(COALESCE(SUM(e.amount), 0) AS BIGINT) AS fees FROM ledger_entries e
         JOIN assignments a ON a.id = e.assignment_id WHERE e.book = 'fees' AND a.worker = $1",
    )
    .bind(owner)
    .fetch_one(pool)
    .await?
    .try_get("fees")?;
    let record = public_record(m, account).await?;
    let earned = ledger::balance(pool, Book::Earned, owner).await?;
    let paid_total = ledger::balance(pool, Book::Paid, owner).await?;
    Ok(AccountView {
        account: account.clone(),
        balance: ledger::balance(pool, Book::Available, owner).await?,
        reserved: ledger::balance(pool, Book::Reserved, owner).await?,
        earned_unpaid: Stroops(earned.0 - record.unpublished_earned),
        held: held(m, account).await?,
        paid_total,
        not_submitted: if m.config.submits() {
            Stroops(0)
        } else {
            paid_total
        },
        fees_paid: Stroops(fees),
        reputation: record.reputation,
        checks: record.checks,
        credibility: credibility(ASSUMED_SABOTEURS, record.checks),
        deposit_memo: crate::deposits::code_for(m, account).await?,
        deposit_address: m.config.operator.account().to_string(),
        withdrawing: ledger::balance(pool, Book::Withdrawing, owner).await?,
    })
}
