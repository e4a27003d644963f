//! Submission of stored settlement transactions to Horizon or Stellar RPC
//! (only when `--horizon` / `--rpc` is set), and what each answer does.
//!
//! The envelope and its hash are stored with the record before the first
//! send, and only those bytes are ever sent. A record's life:
//!
//! | answer | what happens |
//! | --- | --- |
//! | success | `confirmed`; a hold on its workers is lifted |
//! | timeout, pending, try again later | `submitted`; the same bytes are resent (after asking the network by hash) |
//! | `tx_failed` (an operation failed) | `failed`, reason in `result_code` (`tx_failed: op_no_destination (G...)`); see below |
//! | `tx_bad_seq` and other rejections | asked by hash (a resend of an applied transaction says `tx_bad_seq`); else the sequence is re-read from the account for future records and the record waits out its max time |
//! | past max time + [`EXPIRY_MARGIN_SECS`], hash unknown | `expired`: it can never apply; its payouts are due again |
//!
//! A failed or expired record paid nothing (a Stellar transaction is
//! atomic), so in one database transaction its payouts move back
//! `paid -> earned` and its assignments' `payout_seq` is cleared: the next
//! batch pays them in a new record (the auditor does not count records in
//! these states as paid). Workers the network blamed (`op_no_destination`,
//! `op_no_trust`, ...) are put on hold with the reason for [`HOLD_MS`]:
//! their earnings stay unpaid meanwhile and are then retried in a record of
//! their own, so one missing account never blocks everyone else's payout.
//! Operation codes that blame the operator (`op_underfunded`, ...) put no
//! one on hold: everything is retried in the next batch.
//!
//! A replacement is built only once a record can no longer apply: never
//! while it still may, or a worker could be paid twice. "Past max time" is
//! judged by this machine's clock with a margin of [`EXPIRY_MARGIN_SECS`];
//! the operator's clock must be within that of the network's.

use std::sync::Arc;
use std::time::Duration;

use tally_protocol::wire;
use tally_settlement::record::{
    STATUS_CONFIRMED, STATUS_EXPIRED, STATUS_FAILED, STATUS_PENDING, STATUS_SUBMITTED,
};
use tally_settlement::{Endpoint, Outcome, PublicKey, Submitter};

use super::move_payout;
use crate::config::Config;
use crate::db::{int, json, text};
use crate::db::{query, WriteTx};
use crate::error::{MarketError, Result};
use crate::{now_ms, Market};

/// How often the submission job looks at records in flight.
pub const SUBMIT_EVERY: Duration = Duration::from_secs(1);
/// How long past its max time a record must be before it counts as expired.
pub const EXPIRY_MARGIN_SECS: u64 = 60;
/// How long a worker the network refused to pay is left out of batches.
pub const HOLD_MS: i64 = 3_600_000;
/// Operation results that blame the destination rather than the operator.
pub const DESTINATION_CODES: &[&str] = &[
    "op_no_destination",
    "op_no_trust",
    "op_not_authorized",
    "op_line_full",
    "op_no_issuer",
];
/// `result_code` prefix of a record the network rejected before applying it.
const REJECTED: &str = "rejected: ";

/// The client for the configured server, if any (Horizon first).
pub fn submitter(config: &Config) -> Result<Option<Submitter>> {
    let endpoint = match (&config.horizon, &config.rpc) {
        (Some(h), _) => Endpoint::Horizon(h.clone()),
        (None, Some(r)) => Endpoint::Rpc(r.clone()),
        (None, None) => return Ok(None),
    };
    Ok(Some(Submitter::new(endpoint)?))
}

/// The settlement record lifecycle: every status change is checked here.
pub fn record_transition(from: &str, to: &str) -> Result<()> {
    let ok = matches!(
        (from, to),
        (STATUS_PENDING, STATUS_SUBMITTED)
            | (
                STATUS_PENDING | STATUS_SUBMITTED,
                STATUS_CONFIRMED | STATUS_FAILED | STATUS_EXPIRED
            )
    );
    if ok {
        Ok(())
    } else {
        Err(MarketError::Corrupt(format!(
            "a settlement record may not move from {from:?} to {to:?}"
        )))
    }
}

/// A record in flight, as stored.
struct InFlight {
    seq: u64,
    envelope_xdr: String,
    tx_hash: String,
    max_time: u64,
    attempts: i64,
    result_code: Option<String>,
    payouts: Vec<wire::Payout>,
}

/// One pass over the records in flight, in order: those past their max
/// time are settled by asking the network about their hash; the oldest
/// live one is sent (or asked about). `now_secs` is the unix time to judge
/// max times by (tests pass a later one instead of waiting).
pub async fn submit_round(m: &Market, sub: &Submitter, now_secs: u64) -> Result<()> {
    let rows = query(
        "SELECT seq, envelope_xdr, tx_hash, max_time, attempts, result_code, payouts FROM settlements
         WHERE status IN ('pending', 'submitted') ORDER BY seq",
    )
    .fetch_all(&m.db)
    .await?;
    for r in rows {
        let rec = InFlight {
            seq: int(&r, "seq")? as u64,
            envelope_xdr: text(&r, "envelope_xdr")?,
            tx_hash: text(&r, "tx_hash")?,
            max_time: int(&r, "max_time")? as u64,
            attempts: int(&r, "attempts")?,
            result_code: r.try_get("result_code")?,
            payouts: json(&text(&r, "payouts")?, "payouts")?,
        };
        if now_secs > rec.max_time.saturating_add(EXPIRY_MARGIN_SECS) {
            // It can no longer apply: only whether it did is left to learn.
            match sub.status(&rec.tx_hash).await? {
                Outcome::NotFound => {
                    let end = Unpaid {
                        to: STATUS_EXPIRED,
                        reason: "expired unapplied",
                        held: &[],
                    };
                    unpay(m, &rec, &end).await?
                }
                done @ (Outcome::Success { .. } | Outcome::Failed { .. }) => {
                    settle_outcome(m, &rec, done).await?
                }
                _ => return Ok(()),
            }
            continue;
        }
        return step(m, sub, &rec).await;
    }
    Ok(())
}

/// Send the oldest live record, or find out what became of it.
async fn step(m: &Market, sub: &Submitter, rec: &InFlight) -> Result<()> {
    if rec.attempts > 0 {
        let known = sub.status(&rec.tx_hash).await?;
        if matches!(known, Outcome::Success { .. } | Outcome::Failed { .. }) {
            return settle_outcome(m, rec, known).await;
        }
    }
    if rec
        .result_code
        .as_deref()
        .is_some_and(|c| c.starts_with(REJECTED))
    {
        return Ok(()); // it waits out its max time
    }
    let outcome = sub.submit(&rec.envelope_xdr).await?;
    match outcome {
        Outcome::Failed { ref tx_code, .. } if tx_code != "tx_failed" => {
            // A resend of a transaction that already applied says tx_bad_seq.
            let known = sub.status(&rec.tx_hash).await?;
            if matches!(known, Outcome::Success { .. } | Outcome::Failed { .. }) {
                return settle_outcome(m, rec, known).await;
            }
            mark_sent(m, rec, &format!("{REJECTED}{tx_code}")).await?;
            if tx_code == "tx_bad_seq" {
                resync(m, sub).await?;
            }
            tracing::warn!(seq = rec.seq, %tx_code, "settlement transaction rejected; it waits out its max time");
            Ok(())
        }
        Outcome::Success { .. } | Outcome::Failed { .. } => settle_outcome(m, rec, outcome).await,
        Outcome::Pending => mark_sent(m, rec, "pending").await,
        Outcome::TryAgainLater => mark_sent(m, rec, "try_again_later").await,
        Outcome::Timeout | Outcome::NotFound => mark_sent(m, rec, "timeout").await,
    }
}

/// Act on a final answer: applied, or failed in a ledger.
async fn settle_outcome(m: &Market, rec: &InFlight, outcome: Outcome) -> Result<()> {
    match outcome {
        Outcome::Success { ledger } => confirm(m, rec, ledger).await,
        Outcome::Failed { tx_code, op_codes } => {
            let mut held = Vec::new();
            let mut blamed = Vec::new();
            for (i, code) in op_codes.iter().enumerate() {
                let account = rec.payouts.get(i).map(|p| p.account.as_str());
                if DESTINATION_CODES.contains(&code.as_str()) {
                    if let Some(a) = account {
                        held.push((a.to_string(), code.clone()));
                    }
                }
                if code != "op_success" {
                    blamed.push(format!("{code} ({})", account.unwrap_or("?")));
                }
            }
            let reason = if blamed.is_empty() {
                tx_code
            } else {
                format!("{tx_code}: {}", blamed.join(", "))
            };
            tracing::warn!(seq = rec.seq, %reason, "settlement transaction failed; its payouts are due again");
            let end = Unpaid {
                to: STATUS_FAILED,
                reason: &reason,
                held: &held,
            };
            unpay(m, rec, &end).await
        }
        other => Err(MarketError::Corrupt(format!(
            "not a final outcome: {other:?}"
        ))),
    }
}

/// Note a send of the record and what the network answered (`code`).
async fn mark_sent(m: &Market, rec: &InFlight, code: &str) -> Result<()> {
    m.db.retrying("settlement sent", || mark_sent_once(m, rec, code))
        .await
}

/// One try of [`mark_sent`].
async fn mark_sent_once(m: &Market, rec: &InFlight, code: &str) -> Result<()> {
    let mut tx = m.db.begin().await?;
    tx.serialize_decisions().await?;
    query(
        "UPDATE settlements SET status = $1, attempts = attempts + 1, result_code = $2, updated_at = $3
         WHERE seq = $4 AND status IN ('pending', 'submitted')",
    )
    .bind(STATUS_SUBMITTED)
    .bind(code)
    .bind(now_ms())
    .bind(rec.seq as i64)
    .execute(&mut tx)
    .await?;
    tx.commit().await
}

/// Move the record from in flight to `to`; false when another process did first.
async fn resolve(tx: &mut WriteTx<'_>, rec: &InFlight, to: &str, code: &str) -> Result<bool> {
    let row = query("SELECT status FROM settlements WHERE seq = $1")
        .bind(rec.seq as i64)
        .fetch_one(&mut *tx)
        .await?;
    let from = text(&row, "status")?;
    if from != STATUS_PENDING && from != STATUS_SUBMITTED {
        return Ok(false);
    }
    record_transition(&from, to)?;
    let n = query(
        "UPDATE settlements SET status = $1, result_code = $2, updated_at = $3
         WHERE seq = $4 AND status = $5",
    )
    .bind(to)
    .bind(code)
    .bind(now_ms())
    .bind(rec.seq as i64)
    .bind(&from)
    .execute(&mut *tx)
    .await?;
    Ok(n == 1)
}

/// The record applied in `ledger`: confirm it and lift its payees' holds.
async fn confirm(m: &Market, rec: &InFlight, ledger: u32) -> Result<()> {
    m.db.retrying("settlement confirmed", || confirm_once(m, rec, ledger))
        .await
}

/// One try of [`confirm`].
async fn confirm_once(m: &Market, rec: &InFlight, ledger: u32) -> Result<()> {
    let mut tx = m.db.begin().await?;
    tx.serialize_decisions().await?;
    if !resolve(&mut tx, rec, STATUS_CONFIRMED, &format!("ledger {ledger}")).await? {
        tx.rollback().await?;
        return Ok(());
    }
    for p in &rec.payouts {
        query("DELETE FROM payout_holds WHERE worker = $1")
            .bind(p.account.as_str())
            .execute(&mut tx)
            .await?;
    }
    tx.commit().await?;
    tracing::info!(seq = rec.seq, ledger, tx_hash = %rec.tx_hash, "settlement confirmed");
    Ok(())
}

/// How a record that paid nothing ends.
struct Unpaid<'a> {
    /// The status it moves to (expired or failed).
    to: &'a str,
    /// Why, as its result code.
    reason: &'a str,
    /// The workers whose payouts go on hold, each with the operation's code.
    held: &'a [(String, String)],
}

/// The record paid nothing: its payouts are due again (see the module docs).
async fn unpay(m: &Market, rec: &InFlight, end: &Unpaid<'_>) -> Result<()> {
    m.db.retrying("settlement unpaid", || unpay_once(m, rec, end))
        .await
}

/// One try of [`unpay`].
async fn unpay_once(m: &Market, rec: &InFlight, end: &Unpaid<'_>) -> Result<()> {
    let now = now_ms();
    let mut tx = m.db.begin().await?;
    tx.serialize_decisions().await?;
    // Settlers take this row first; so does this, so no batch sees half of it.
    query("UPDATE settlement_state SET next_tx_seq = NULL, updated_at = $1 WHERE id = 1")
        .bind(now)
        .execute(&mut tx)
        .await?;
    if !resolve(&mut tx, rec, end.to, end.reason).await? {
        tx.rollback().await?;
        return Ok(());
    }
    for p in &rec.payouts {
        move_payout(&mut tx, rec.seq, p, false).await?;
    }
    query("UPDATE assignments SET payout_seq = NULL WHERE payout_seq = $1")
        .bind(rec.seq as i64)
        .execute(&mut tx)
        .await?;
    query("UPDATE withdrawals SET payout_seq = NULL WHERE payout_seq = $1")
        .bind(rec.seq as i64)
        .execute(&mut tx)
        .await?;
    for (worker, code) in end.held {
        query(
            "INSERT INTO payout_holds (worker, reason, record_seq, retry_at, created_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (worker) DO UPDATE SET reason = excluded.reason,
               record_seq = excluded.record_seq, retry_at = excluded.retry_at",
        )
        .bind(worker)
        .bind(format!("{code} in settlement {}", rec.seq))
        .bind(rec.seq as i64)
        .bind(now + HOLD_MS)
        .bind(now)
        .execute(&mut tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Read the operator account's sequence for future records.
async fn resync(m: &Market, sub: &Submitter) -> Result<()> {
    m.db.retrying("sequence resync", || resync_once(m, sub))
        .await
}

/// One try of [`resync`].
async fn resync_once(m: &Market, sub: &Submitter) -> Result<()> {
    let account = PublicKey::parse(m.config.operator.account().as_str())?;
    if let Some(current) = sub.account_sequence(&account).await? {
        let mut tx = m.db.begin().await?;
        tx.serialize_decisions().await?;
        query("UPDATE settlement_state SET next_tx_seq = $1, updated_at = $2 WHERE id = 1")
            .bind(current.saturating_add(1))
            .bind(now_ms())
            .execute(&mut tx)
            .await?;
        tx.commit().await?;
    }
    Ok(())
}

/// A worker whose payout is on hold, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub worker: String,
    pub reason: String,
    pub retry_at_ms: i64,
}

/// Every payout hold.
pub async fn holds(m: &Market) -> Result<Vec<Hold>> {
    query("SELECT worker, reason, retry_at FROM payout_holds ORDER BY worker")
        .fetch_all(&m.db)
        .await?
        .iter()
        .map(|r| {
            Ok(Hold {
                worker: text(r, "worker")?,
                reason: text(r, "reason")?,
                retry_at_ms: int(r, "retry_at")?,
            })
        })
        .collect()
}

/// The submission job.
pub fn spawn(m: &Arc<Market>, sub: Submitter) {
    let m = Arc::clone(m);
    tokio::spawn(async move {
        let mut shutdown = m.shutdown_signal();
        let mut tick = tokio::time::interval(SUBMIT_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            let now = (now_ms() / 1000) as u64;
            if let Err(e) = submit_round(&m, &sub, now).await {
                tracing::warn!(error = %e, "settlement submission failed; retrying");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_record_move_is_checked() {
        let all = [
            STATUS_PENDING,
            STATUS_SUBMITTED,
            STATUS_CONFIRMED,
            STATUS_FAILED,
            STATUS_EXPIRED,
        ];
        let allowed = [
            (STATUS_PENDING, STATUS_SUBMITTED),
            (STATUS_PENDING, STATUS_CONFIRMED),
            (STATUS_PENDING, STATUS_FAILED),
            (STATUS_PENDING, STATUS_EXPIRED),
            (STATUS_SUBMITTED, STATUS_CONFIRMED),
            (STATUS_SUBMITTED, STATUS_FAILED),
            (STATUS_SUBMITTED, STATUS_EXPIRED),
        ];
        for from in all {
            for to in all {
                let ok = record_transition(from, to).is_ok();
                assert_eq!(ok, allowed.contains(&(from, to)), "{from} -> {to}");
            }
        }
    }
}
