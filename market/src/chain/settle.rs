//! Settlement batches: unpaid earnings netted per
//! worker into hash-chained records, each paid by one signed Stellar
//! payment transaction with one operation per worker.
//!
//! A batch is one database transaction: allocate the next record `seq` and
//! the next transaction sequence number, collect the agreeing assignments
//! not yet paid, build, sign and seal the record, store it, set the
//! assignments' `payout_seq`, and move each payout `earned -> paid` in the
//! ledger. A crash before the commit leaves nothing behind, after it
//! everything: no payout is made twice or lost.
//!
//! The first statement of a batch updates the one `settlement_state` row.
//! That is the lock serialising settlers: in-process on SQLite (one writer),
//! across processes on PostgreSQL (the row lock, held to the commit), so two
//! settlers never build the same batch, and [`settle_now`] may run beside
//! the periodic job.
//!
//! Sequence numbers: `settlement_state.next_tx_seq` is the number the next
//! transaction carries; each record takes it and stores it + 1 in the same
//! transaction, so no number is handed out twice while a record holding it
//! may still apply. When it is unknown (NULL: a fresh database, or a record
//! that did not apply) it is read from the operator's account when a
//! Horizon / RPC server is configured, and starts at 1 otherwise (records
//! are then kept for export only). With a server, a new record is built
//! only when no other is in flight: the network takes one transaction per
//! account per ledger anyway, and a record that never applies then stalls
//! nothing behind it. Submission and failure handling are in [`submit`].

pub mod submit;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tally_protocol::wire;
use tally_protocol::{AccountId, AssignmentId, Stroops, TaskId};
use tally_settlement::record::STATUS_PENDING;
use tally_settlement::{
    Asset, Keypair, Network, PayoutOp, PublicKey, RecordBody, Submitter, TimeBounds,
    GENESIS_PREV_HASH,
};

use crate::config::Config;
use crate::db::{int, text};
use crate::db::{placeholders, query, WriteTx};
use crate::error::{MarketError, Result};
use crate::ledger::{self, Book, Cause, Leg};
use crate::{now_ms, Market};

/// Fee per operation in stroops (the network's minimum base fee).
pub const BASE_FEE: u32 = 100;
/// How long a signed settlement transaction stays valid (its max time).
pub const VALIDITY_SECS: u64 = 300;
/// At most this many assignments are paid by one record.
pub const MAX_ASSIGNMENTS: i64 = 20_000;

/// What signs and names every record of this market. The key comes from
/// the configuration and is never stored or logged.
pub struct Operator {
    keypair: Keypair,
    pub network: Network,
    pub asset: Asset,
}

impl Operator {
    pub fn from_config(config: &Config) -> Result<Operator> {
        Ok(Operator {
            keypair: Keypair::from_seed(&config.operator.seed()),
            network: Network::from_passphrase(&config.network)?,
            asset: Asset::parse(&config.asset)?,
        })
    }

    pub fn account(&self) -> PublicKey {
        self.keypair.public_key()
    }
}

/// Settle everything that is due now: as many records as it takes without
/// a submission server, at most one with one. Returns how many were written.
pub async fn settle_now(m: &Market) -> Result<usize> {
    let submitter = submit::submitter(&m.config)?;
    settle_with(m, submitter.as_ref()).await
}

/// [`settle_now`] with an explicit submission server (or none).
#[tracing::instrument(level = "debug", skip_all)]
pub async fn settle_with(m: &Market, submitter: Option<&Submitter>) -> Result<usize> {
    let op = Operator::from_config(&m.config)?;
    let mut written = 0;
    loop {
        // Network I/O stays outside the database transaction.
        let synced = match submitter {
            Some(sub) if next_tx_seq(m).await?.is_none() => {
                match sub.account_sequence(&op.account()).await? {
                    Some(current) => Some(current.checked_add(1).ok_or_else(|| {
                        MarketError::Corrupt("account sequence overflows".into())
                    })?),
                    None => {
                        tracing::warn!(account = %op.account(), "the operator account does not exist on the network; nothing is settled");
                        return Ok(written);
                    }
                }
            }
            _ => None,
        };
        let payees = match submitter {
            Some(sub) => payees(m, sub, op.asset).await?,
            None => HashMap::new(),
        };
        match settle_batch(m, &op, synced, submitter.is_some(), &payees).await? {
            Some(_) => written += 1,
            None => return Ok(written),
        }
        if submitter.is_some() {
            return Ok(written);
        }
    }
}

/// The least amount that funds a new account: the network's minimum
/// balance of two base reserves (0.5 XLM each).
pub const MIN_NEW_ACCOUNT: i64 = 10_000_000;

/// How to pay a payee: a payment where its account exists and can hold
/// the asset; else a new account where the native amount covers the
/// minimum balance; else a claimable balance, which never fails.
/// (`exists_and_trusts`: `None` for a missing account.)
pub fn payout_op(exists_and_trusts: Option<bool>, native: bool, amount: i64) -> PayoutOp {
    match exists_and_trusts {
        Some(true) => PayoutOp::Payment,
        None if native && amount >= MIN_NEW_ACCOUNT => PayoutOp::CreateAccount,
        _ => PayoutOp::ClaimableBalance,
    }
}

/// The op of every account due a payout now, asked of the network (outside
/// any database transaction). Accounts seen able to take a payment are
/// remembered and not asked again.
async fn payees(m: &Market, sub: &Submitter, asset: Asset) -> Result<HashMap<String, PayoutOp>> {
    let rows = query(
        "SELECT a.worker AS account, CAST(SUM(e.amount) AS BIGINT) AS amount
           FROM assignments a JOIN ledger_entries e ON e.assignment_id = a.id AND e.book = 'earned'
          WHERE a.status = 'agreed' AND a.payout_seq IS NULL GROUP BY a.worker
         UNION ALL
         SELECT account, CAST(SUM(amount) AS BIGINT) AS amount FROM withdrawals
          WHERE payout_seq IS NULL GROUP BY account",
    )
    .fetch_all(&m.db)
    .await?;
    let mut due: HashMap<String, i64> = HashMap::new();
    for r in rows {
        *due.entry(text(&r, "account")?).or_default() += int(&r, "amount")?;
    }
    let mut out = HashMap::new();
    for (account, amount) in due {
        if m.payable.lock().expect("payable").contains(&account) {
            continue; // PayoutOp::Payment, the default
        }
        let key = PublicKey::parse(&account)?;
        let found = sub.payee(&key, &asset).await?;
        let op = payout_op(found, asset == Asset::Native, amount);
        if op == PayoutOp::Payment {
            m.payable.lock().expect("payable").insert(account.clone());
        }
        out.insert(account, op);
    }
    Ok(out)
}

/// The stored next transaction sequence number, if known.
pub async fn next_tx_seq(m: &Market) -> Result<Option<i64>> {
    query("SELECT next_tx_seq FROM settlement_state WHERE id = 1")
        .fetch_one(&m.db)
        .await?
        .try_get("next_tx_seq")
}

/// Mark `ids` as paid by record `seq` with `update` (which ends in `id IN`),
/// a few hundred per statement; any of them already paid or changed is an
/// error that undoes the record.
async fn mark_paid(
    tx: &mut WriteTx<'_>,
    update: &str,
    seq: u64,
    ids: &[i64],
    what: &str,
) -> Result<()> {
    for chunk in ids.chunks(500) {
        let mut q = query(format!("{update} ({})", placeholders(2, chunk.len()))).bind(seq as i64);
        for id in chunk {
            q = q.bind(*id);
        }
        if q.execute(&mut *tx).await? != chunk.len() as u64 {
            return Err(MarketError::Corrupt(format!(
                "{what} of record {seq} changed while settling"
            )));
        }
    }
    Ok(())
}

/// One unpaid agreeing assignment (with its task), or one withdrawal.
struct Due {
    id: i64,
    task: Option<i64>,
    amount: i64,
}

/// Write one record in one transaction; `None` when nothing is due (or a
/// record is in flight, or the sequence number is not known yet).
async fn settle_batch(
    m: &Market,
    op: &Operator,
    synced: Option<i64>,
    submitting: bool,
    payees: &HashMap<String, PayoutOp>,
) -> Result<Option<u64>> {
    m.db.retrying("settlement", || {
        settle_batch_once(m, op, synced, submitting, payees)
    })
    .await
}

async fn settle_batch_once(
    m: &Market,
    op: &Operator,
    synced: Option<i64>,
    submitting: bool,
    payees: &HashMap<String, PayoutOp>,
) -> Result<Option<u64>> {
    let now = now_ms();
    let mut tx = m.db.begin().await?;
    tx.serialize_decisions().await?;
    // The lock: see the module docs.
    let stored: Option<i64> =
        query("UPDATE settlement_state SET updated_at = $1 WHERE id = 1 RETURNING next_tx_seq")
            .bind(now)
            .fetch_one(&mut tx)
            .await?
            .try_get("next_tx_seq")?;
    let tx_seq = match (stored, synced) {
        (Some(s), _) | (None, Some(s)) => s,
        (None, None) if !submitting => 1,
        (None, None) => return nothing(tx).await,
    };
    if submitting && in_flight(&mut tx).await? > 0 {
        return nothing(tx).await;
    }
    let batch = collect(
        &mut tx,
        now,
        m.config.settle_max_ops.clamp(1, 100),
        Probation::of(m, now),
    )
    .await?;
    if batch.is_empty() {
        return nothing(tx).await;
    }
    let last = query("SELECT seq, hash FROM settlements ORDER BY seq DESC LIMIT 1")
        .fetch_optional(&mut tx)
        .await?;
    let (seq, prev_hash) = match last {
        Some(r) => (int(&r, "seq")? as u64 + 1, text(&r, "hash")?),
        None => (1, GENESIS_PREV_HASH.to_string()),
    };
    let mut task_of = HashMap::new();
    let mut payouts = Vec::with_capacity(batch.len());
    for (worker, dues) in &batch {
        let amount = dues
            .iter()
            .try_fold(0i64, |sum, d| sum.checked_add(d.amount))
            .ok_or_else(|| MarketError::Corrupt(format!("payout to {worker} overflows")))?;
        let (withdrawals, assignments): (Vec<&Due>, Vec<&Due>) =
            dues.iter().partition(|d| d.task.is_none());
        task_of.extend(assignments.iter().filter_map(|d| Some((d.id, d.task?))));
        let mut payout = tally_settlement::Payout::new(
            PublicKey::parse(worker)?,
            tally_settlement::Stroops(amount),
            assignments.iter().map(|d| d.id).collect(),
        );
        payout.withdrawals = withdrawals.iter().map(|d| d.id).collect();
        payout.op = payees.get(worker).copied().unwrap_or_default();
        payouts.push(payout);
    }
    let body = RecordBody::new(
        seq,
        &prev_hash,
        op.network.clone(),
        op.account(),
        op.asset,
        payouts,
    )?;
    let max_time = (now / 1000) as u64 + VALIDITY_SECS;
    // Only max_time matters for the resubmission rule; a min_time would
    // only add a failure mode (an operator clock ahead of the network's).
    let bounds = TimeBounds {
        min_time: 0,
        max_time,
    };
    let record = body.sign(&op.keypair, tx_seq, BASE_FEE, bounds)?;
    let wire_payouts = record
        .payouts
        .iter()
        .map(|p| {
            Ok(wire::Payout {
                account: AccountId::parse(&p.account.to_string())
                    .map_err(|e| MarketError::Corrupt(format!("payout account: {e}")))?,
                amount: Stroops(p.amount.0),
                assignments: p.assignments.iter().map(|&a| AssignmentId(a)).collect(),
                tasks: p.assignments.iter().map(|a| TaskId(task_of[a])).collect(),
                withdrawals: p.withdrawals.clone(),
                op: match p.op {
                    PayoutOp::Payment => wire::PayoutKind::Payment,
                    PayoutOp::CreateAccount => wire::PayoutKind::CreateAccount,
                    PayoutOp::ClaimableBalance => wire::PayoutKind::ClaimableBalance,
                },
            })
        })
        .collect::<Result<Vec<_>>>()?;
    query(
        "INSERT INTO settlements (seq, prev_hash, hash, network, source, asset, payouts, envelope_xdr,
           tx_hash, tx_seq, max_time, status, result_code, attempts, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, NULL, 0, $13, $13)",
    )
    .bind(seq as i64)
    .bind(&record.prev_hash)
    .bind(&record.hash)
    .bind(record.network.passphrase())
    .bind(record.source.to_string())
    .bind(record.asset.to_string())
    .bind(serde_json::to_string(&wire_payouts).expect("payouts serialize"))
    .bind(&record.envelope_xdr)
    .bind(&record.tx_hash)
    .bind(tx_seq)
    .bind(max_time as i64)
    .bind(STATUS_PENDING)
    .bind(now)
    .execute(&mut tx)
    .await?;
    for p in &wire_payouts {
        let assignments: Vec<i64> = p.assignments.iter().map(|a| a.0).collect();
        mark_paid(
            &mut tx,
            "UPDATE assignments SET payout_seq = $1 WHERE status = 'agreed' AND payout_seq IS NULL AND id IN",
            seq,
            &assignments,
            "an assignment",
        )
        .await?;
        mark_paid(
            &mut tx,
            "UPDATE withdrawals SET payout_seq = $1 WHERE payout_seq IS NULL AND id IN",
            seq,
            &p.withdrawals,
            "a withdrawal",
        )
        .await?;
        move_payout(&mut tx, seq, p, true).await?;
    }
    query("UPDATE settlement_state SET next_tx_seq = $1 WHERE id = 1")
        .bind(tx_seq + 1)
        .execute(&mut tx)
        .await?;
    tx.commit().await?;
    m.metrics.settlements.fetch_add(1, Ordering::Relaxed);
    crate::events::announce(m, vec![wire::MarketEvent::SettlementWritten { seq }]).await;
    tracing::info!(
        seq,
        tx_seq,
        payouts = wire_payouts.len(),
        amount = record.total().map_or(0, |t| t.0),
        tx_hash = %record.tx_hash,
        "settlement record written"
    );
    Ok(Some(seq))
}

/// Roll back before the write lock is let go: a transaction merely dropped
/// is rolled back later, by sqlx, and SQLite would meanwhile refuse the
/// next writer (one that has read already gets `SQLITE_BUSY` at once).
async fn nothing(tx: WriteTx<'_>) -> Result<Option<u64>> {
    tx.rollback().await?;
    Ok(None)
}

/// Post one payout's ledger movement: `earned -> paid` for its assignments
/// and `withdrawing -> paid` for its withdrawals when it is settled
/// (`settle`), the reverse when its transaction paid nothing.
pub(crate) async fn move_payout(
    tx: &mut WriteTx<'_>,
    seq: u64,
    p: &wire::Payout,
    settle: bool,
) -> Result<()> {
    let kind = if settle {
        ledger::Posting::Settle
    } else {
        ledger::Posting::Unsettle
    };
    let cause = Cause {
        settlement: Some(seq),
        ..Cause::default()
    };
    let withdrawn = if p.withdrawals.is_empty() {
        0
    } else {
        let mut q = query(format!(
            "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) AS total FROM withdrawals WHERE id IN ({})",
            crate::db::placeholders(1, p.withdrawals.len())
        ));
        for w in &p.withdrawals {
            q = q.bind(*w);
        }
        int(&q.fetch_one(&mut *tx).await?, "total")?
    };
    let earned = p.amount.0 - withdrawn;
    let owner = p.account.as_str();
    let sign = if settle { 1 } else { -1 };
    let mut legs = vec![Leg {
        book: Book::Paid,
        owner,
        amount: sign * p.amount.0,
    }];
    for (book, part) in [(Book::Earned, earned), (Book::Withdrawing, withdrawn)] {
        if part != 0 {
            legs.push(Leg {
                book,
                owner,
                amount: -sign * part,
            });
        }
    }
    ledger::post(tx, kind, cause, &legs).await
}

/// Records stored but not yet known to have applied or failed.
async fn in_flight(tx: &mut WriteTx<'_>) -> Result<i64> {
    let row =
        query("SELECT COUNT(*) AS n FROM settlements WHERE status IN ('pending', 'submitted')")
            .fetch_one(&mut *tx)
            .await?;
    int(&row, "n")
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

/// The next batch: up to `max_ops` workers (in account order) with their
/// unpaid agreeing assignments. Workers on hold are skipped, and so are
/// earnings still on probation; a worker whose hold has run out is retried
/// first, in a batch of its own, so a payout the network refuses again
/// takes no one else's with it.
async fn collect(
    tx: &mut WriteTx<'_>,
    now: i64,
    max_ops: usize,
    probation: Probation,
) -> Result<Vec<(String, Vec<Due>)>> {
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
    let mut fresh: BTreeMap<String, Vec<Due>> = BTreeMap::new();
    let mut retry: BTreeMap<String, Vec<Due>> = BTreeMap::new();
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
        let side = if int(&r, "held")? > 0 {
            &mut retry
        } else {
            &mut fresh
        };
        side.entry(text(&r, "worker")?).or_default().push(due);
    }
    // Withdrawals asked for, of accounts not on hold.
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
        let side = if int(&r, "held")? > 0 {
            &mut retry
        } else {
            &mut fresh
        };
        side.entry(text(&r, "account")?).or_default().push(due);
    }
    // A retry goes first, alone, or a busy market would never get to it.
    Ok(match retry.into_iter().next() {
        Some(one) => vec![one],
        None => fresh.into_iter().take(max_ops).collect(),
    })
}

/// Start the periodic settlement job and, with a server configured, the
/// submission job.
pub fn spawn(m: &Arc<Market>) {
    let submitter = match submit::submitter(&m.config) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "no settlement submission: the client does not start");
            None
        }
    };
    let every = m.config.settle_every.max(Duration::from_millis(10));
    let market = Arc::clone(m);
    let sub = submitter.clone();
    tokio::spawn(async move {
        let mut shutdown = market.shutdown_signal();
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            if let Err(e) = settle_with(&market, sub.as_ref()).await {
                tracing::error!(error = %e, "settlement failed");
            }
        }
    });
    if let Some(sub) = submitter {
        submit::spawn(m, sub);
    }
}
