//! One settlement record written in one database transaction: take the
//! lock and the transaction sequence number, collect what is due, build,
//! sign and store the record, mark what it pays and move it in the ledger.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use tally_protocol::wire;
use tally_protocol::{AccountId, AssignmentId, Stroops, TaskId};
use tally_settlement::record::STATUS_PENDING;
use tally_settlement::{
    PayoutOp, PublicKey, RecordBody, SettlementRecord, TimeBounds, GENESIS_PREV_HASH,
};

use crate::db::{int, placeholders, query, text, WriteTx};
use crate::error::{MarketError, Result};
use crate::{now_ms, Market};

use super::collect::{collect, Due, Probation};
use super::{move_payout, Operator, BASE_FEE, VALIDITY_SECS};

/// What a batch is written with, found before its transaction (network
/// I/O stays outside it).
pub(super) struct Batch<'a> {
    pub(super) op: &'a Operator,
    /// The transaction sequence number read from the network, if it was.
    pub(super) synced: Option<i64>,
    /// Whether records are submitted (a server is configured).
    pub(super) submitting: bool,
    /// How to pay each payee (`Payment` for one not listed).
    pub(super) payees: &'a HashMap<String, PayoutOp>,
}

/// Write one record in one transaction; `None` when nothing is due (or a
/// record is in flight, or the sequence number is not known yet).
pub(super) async fn settle_batch(m: &Market, batch: &Batch<'_>) -> Result<Option<u64>> {
    m.db.retrying("settlement", || settle_batch_once(m, batch))
        .await
}

/// One try of [`settle_batch`].
async fn settle_batch_once(m: &Market, batch: &Batch<'_>) -> Result<Option<u64>> {
    let now = now_ms();
    let mut tx = m.db.begin().await?;
    tx.serialize_decisions().await?;
    let Some(tx_seq) = lock(&mut tx, now, batch).await? else {
        return nothing(tx).await;
    };
    let dues = collect(
        &mut tx,
        now,
        m.config.settle_max_ops.clamp(1, 100),
        Probation::of(m, now),
    )
    .await?;
    if dues.is_empty() {
        return nothing(tx).await;
    }
    let (seq, prev_hash) = chain_head(&mut tx).await?;
    let (payouts, task_of) = payouts(&dues, batch.payees)?;
    let body = RecordBody::new(
        seq,
        &prev_hash,
        batch.op.network.clone(),
        batch.op.account(),
        batch.op.asset,
        payouts,
    )?;
    let max_time = (now / 1000) as u64 + VALIDITY_SECS;
    // Only max_time matters for the resubmission rule; a min_time would
    // only add a failure mode (an operator clock ahead of the network's).
    let bounds = TimeBounds {
        min_time: 0,
        max_time,
    };
    let signed = Signed {
        seq,
        tx_seq,
        max_time,
        record: body.sign(&batch.op.keypair, tx_seq, BASE_FEE, bounds)?,
    };
    let wire_payouts = wire_payouts(&signed.record, &task_of)?;
    store(&mut tx, &signed, &wire_payouts, now).await?;
    for p in &wire_payouts {
        pay(&mut tx, seq, p).await?;
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
        amount = signed.record.total().map_or(0, |t| t.0),
        tx_hash = %signed.record.tx_hash,
        "settlement record written"
    );
    Ok(Some(seq))
}

/// Take the settlers' lock (see the module docs) and the transaction
/// sequence number the record carries; `None` when it is not known yet, or
/// a record is in flight while submitting.
async fn lock(tx: &mut WriteTx<'_>, now: i64, batch: &Batch<'_>) -> Result<Option<i64>> {
    let stored: Option<i64> =
        query("UPDATE settlement_state SET updated_at = $1 WHERE id = 1 RETURNING next_tx_seq")
            .bind(now)
            .fetch_one(&mut *tx)
            .await?
            .try_get("next_tx_seq")?;
    let tx_seq = match (stored, batch.synced) {
        (Some(s), _) | (None, Some(s)) => s,
        (None, None) if !batch.submitting => 1,
        (None, None) => return Ok(None),
    };
    if batch.submitting && in_flight(tx).await? > 0 {
        return Ok(None);
    }
    Ok(Some(tx_seq))
}

/// The next record's `seq` and the hash it chains to.
async fn chain_head(tx: &mut WriteTx<'_>) -> Result<(u64, String)> {
    let last = query("SELECT seq, hash FROM settlements ORDER BY seq DESC LIMIT 1")
        .fetch_optional(&mut *tx)
        .await?;
    Ok(match last {
        Some(r) => (int(&r, "seq")? as u64 + 1, text(&r, "hash")?),
        None => (1, GENESIS_PREV_HASH.to_string()),
    })
}

/// One payout per account of `dues`, paid as `payees` says, and the task
/// of each assignment paid.
fn payouts(
    dues: &[(String, Vec<Due>)],
    payees: &HashMap<String, PayoutOp>,
) -> Result<(Vec<tally_settlement::Payout>, HashMap<i64, i64>)> {
    let mut task_of = HashMap::new();
    let mut payouts = Vec::with_capacity(dues.len());
    for (worker, dues) in dues {
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
    Ok((payouts, task_of))
}

/// The record's payouts as the wire and the `settlements` table carry them.
fn wire_payouts(
    record: &SettlementRecord,
    task_of: &HashMap<i64, i64>,
) -> Result<Vec<wire::Payout>> {
    record
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
        .collect()
}

/// A signed record with the numbers it was signed under.
struct Signed {
    seq: u64,
    tx_seq: i64,
    max_time: u64,
    record: SettlementRecord,
}

/// Store the record, pending.
async fn store(
    tx: &mut WriteTx<'_>,
    signed: &Signed,
    wire_payouts: &[wire::Payout],
    now: i64,
) -> Result<()> {
    let record = &signed.record;
    query(
        "INSERT INTO settlements (seq, prev_hash, hash, network, source, asset, payouts, envelope_xdr,
           tx_hash, tx_seq, max_time, status, result_code, attempts, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, NULL, 0, $13, $13)",
    )
    .bind(signed.seq as i64)
    .bind(&record.prev_hash)
    .bind(&record.hash)
    .bind(record.network.passphrase())
    .bind(record.source.to_string())
    .bind(record.asset.to_string())
    .bind(serde_json::to_string(wire_payouts).expect("payouts serialize"))
    .bind(&record.envelope_xdr)
    .bind(&record.tx_hash)
    .bind(signed.tx_seq)
    .bind(signed.max_time as i64)
    .bind(STATUS_PENDING)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Mark one payout's assignments and withdrawals paid by record `seq` and
/// move it `earned -> paid` in the ledger.
async fn pay(tx: &mut WriteTx<'_>, seq: u64, p: &wire::Payout) -> Result<()> {
    let assignments: Vec<i64> = p.assignments.iter().map(|a| a.0).collect();
    mark_paid(
        tx,
        "UPDATE assignments SET payout_seq = $1 WHERE status = 'agreed' AND payout_seq IS NULL AND id IN",
        seq,
        &assignments,
        "an assignment",
    )
    .await?;
    mark_paid(
        tx,
        "UPDATE withdrawals SET payout_seq = $1 WHERE payout_seq IS NULL AND id IN",
        seq,
        &p.withdrawals,
        "a withdrawal",
    )
    .await?;
    move_payout(tx, seq, p, true).await
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

/// Roll back before the write lock is let go: a transaction merely dropped
/// is rolled back later, by sqlx, and SQLite would meanwhile refuse the
/// next writer (one that has read already gets `SQLITE_BUSY` at once).
async fn nothing(tx: WriteTx<'_>) -> Result<Option<u64>> {
    tx.rollback().await?;
    Ok(None)
}

/// Records stored but not yet known to have applied or failed.
async fn in_flight(tx: &mut WriteTx<'_>) -> Result<i64> {
    let row =
        query("SELECT COUNT(*) AS n FROM settlements WHERE status IN ('pending', 'submitted')")
            .fetch_one(&mut *tx)
            .await?;
    int(&row, "n")
}
