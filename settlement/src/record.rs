//! Settlement records: the hash-chained, append-only log of payouts.
//!
//! A record pays one batch: its payouts (account, amount, the assignment
//! and client-withdrawal ids it pays, and the [`PayoutOp`] that pays it)
//! and the signed transaction that pays them. Two hashes tie the record
//! and the transaction together:
//!
//! * the transaction's `MemoHash` is `sha256(body)`, so the transaction
//!   commits to the payouts;
//! * the record's `hash` covers the body fields *and* `tx_hash`, so the
//!   record commits to the transaction; `prev_hash` chains the records.
//!
//! Canonical encodings (UTF-8, `\n` after every line, no trailing spaces;
//! numbers in decimal without leading zeros; hashes 64 lowercase hex;
//! accounts `G...`; asset `native` or `CODE:ISSUER`; network the passphrase):
//!
//! ```text
//! body:        tally-settlement-body-v1      record:  tally-settlement-v1
//!              {seq}                                  {seq}
//!              {prev_hash}                            {prev_hash}
//!              {network}                              {network}
//!              {source}                               {source}
//!              {asset}                                {asset}
//!              {payout line}...                       {tx_hash}
//!                                                     {payout line}...
//! payout line: {account} {amount} {assignments}[ op={op}][ withdrawals={withdrawals}]
//! ```
//!
//! `{assignments}` is the assignment ids joined by `,`, or `-` when the
//! payout pays withdrawals only. The two optional fields appear only when
//! they differ from the default, in this order, each after one space:
//! ` op=create_account` or ` op=claimable_balance` (never ` op=payment`),
//! and ` withdrawals={ids joined by ","}` when the payout pays client
//! withdrawals. So a plain payment for assignments only is the line
//! `{account} {amount} {ids}` exactly as before payout ops and withdrawals
//! existed, and records made only of such payouts hash as they always did.
//! For example:
//!
//! ```text
//! GA... 5000000 4,9
//! GB... 20000000 7 op=create_account
//! GC... 150 - op=claimable_balance withdrawals=3,12
//! GD... 80 2 withdrawals=5
//! ```
//!
//! `memo = sha256(body)` (raw 32 bytes) and `hash = hex(sha256(record))`.
//! Payouts are sorted by account in the byte order of the `G...` text (not
//! of the raw key: base32 puts digits after letters), one payout per
//! account; assignment and withdrawal ids are sorted ascending, unique,
//! and a payout pays at least one of either. `create_account` payouts
//! only appear in records paying the native asset. The first record has
//! `seq` 1 and `prev_hash` = [`GENESIS_PREV_HASH`]. `envelope_xdr` and
//! `status` are not hashed: the envelope is bound by `tx_hash`, and the
//! status changes as the transaction goes through submission.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::amount::Stroops;
use crate::asset::Asset;
use crate::error::{Error, Result};
use crate::keys::{Keypair, PublicKey};
use crate::network::Network;
use crate::tx::{Payment, PaymentBatch, PayoutOp, SignedTx, TimeBounds, MAX_OPS};

/// `prev_hash` of the first record.
pub const GENESIS_PREV_HASH: &str =
    "0000000000000000000000000000000000000000000000000000000000000000";

/// Suggested record statuses. Records in [`STATUS_FAILED`] or
/// [`STATUS_EXPIRED`] paid nothing, so their assignments may be paid again
/// by a later record (the replacement); every other status counts as paid.
pub const STATUS_PENDING: &str = "pending";
pub const STATUS_SUBMITTED: &str = "submitted";
pub const STATUS_CONFIRMED: &str = "confirmed";
pub const STATUS_FAILED: &str = "failed";
pub const STATUS_EXPIRED: &str = "expired";
/// How a market without a submission server (no `--horizon`/`--rpc`)
/// shows a pending record: signed and recorded, never sent to the network.
/// Stored as [`STATUS_PENDING`], so a market started later with a server
/// submits it.
pub const STATUS_NOT_SUBMITTED: &str = "not_submitted";

/// Whether a record with `status` may have moved money.
pub fn status_pays(status: &str) -> bool {
    !matches!(status, STATUS_FAILED | STATUS_EXPIRED)
}

/// One account's share of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payout {
    pub account: PublicKey,
    pub amount: Stroops,
    /// The assignment ids this payout pays for.
    pub assignments: Vec<i64>,
    /// The operation that pays it (omitted in JSON when `payment`).
    #[serde(default, skip_serializing_if = "PayoutOp::is_payment")]
    pub op: PayoutOp,
    /// The ids of the client withdrawals this payout pays (omitted in JSON
    /// when none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub withdrawals: Vec<i64>,
}

impl Payout {
    /// A plain payment of `amount` to `account` for `assignments`.
    pub fn new(account: PublicKey, amount: Stroops, assignments: Vec<i64>) -> Self {
        Payout {
            account,
            amount,
            assignments,
            op: PayoutOp::Payment,
            withdrawals: Vec::new(),
        }
    }

    /// The same payout paid by an `op` operation.
    pub fn with_op(mut self, op: PayoutOp) -> Self {
        self.op = op;
        self
    }

    /// The same payout also paying the client withdrawals `ids`.
    pub fn with_withdrawals(mut self, ids: Vec<i64>) -> Self {
        self.withdrawals = ids;
        self
    }

    /// The operation paying this payout in `asset`.
    pub fn payment(&self, asset: Asset) -> Payment {
        Payment::with_op(self.op, self.account, asset, self.amount)
    }
}

/// A settlement record, with the field names of `GET /v1/settlements`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettlementRecord {
    pub seq: u64,
    pub prev_hash: String,
    pub hash: String,
    pub network: Network,
    pub source: PublicKey,
    /// The settlement asset every payout is paid in.
    #[serde(default = "native")]
    pub asset: Asset,
    pub payouts: Vec<Payout>,
    pub envelope_xdr: String,
    pub tx_hash: String,
    pub status: String,
}

fn native() -> Asset {
    Asset::Native
}

/// The hashed part of a record before its transaction exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordBody {
    pub seq: u64,
    pub prev_hash: String,
    pub network: Network,
    pub source: PublicKey,
    pub asset: Asset,
    pub payouts: Vec<Payout>,
}

impl RecordBody {
    /// A body with its payouts put in canonical order (by account, ids
    /// ascending). Fails on an empty or oversized batch, a non-positive
    /// amount, an account paid twice, a payout for no assignment and no
    /// withdrawal, or a `create_account` payout in a non-native asset.
    pub fn new(
        seq: u64,
        prev_hash: &str,
        network: Network,
        source: PublicKey,
        asset: Asset,
        mut payouts: Vec<Payout>,
    ) -> Result<Self> {
        payouts.sort_by_cached_key(|p| p.account.to_string());
        for p in &mut payouts {
            p.assignments.sort_unstable();
            p.withdrawals.sort_unstable();
        }
        let body = RecordBody {
            seq,
            prev_hash: prev_hash.to_owned(),
            network,
            source,
            asset,
            payouts,
        };
        if let Some(problem) = body.problem() {
            return Err(Error::Record(problem));
        }
        Ok(body)
    }

    /// The first thing wrong with the body, if any: its
    /// [`shape_problem`](Self::shape_problem), else the first payout whose
    /// op cannot pay the record's asset ([`op_problems`](Self::op_problems)).
    pub fn problem(&self) -> Option<String> {
        self.shape_problem()
            .or_else(|| self.op_problems().into_iter().next())
    }

    /// One problem per payout whose op cannot pay in the record's asset
    /// (`create_account` pays native lumens only).
    pub fn op_problems(&self) -> Vec<String> {
        self.payouts
            .iter()
            .filter(|p| !p.op.supports(&self.asset))
            .map(|p| {
                format!(
                    "payout to {} is {} in {}: create_account pays native lumens only",
                    p.account, p.op, self.asset
                )
            })
            .collect()
    }

    /// The first thing wrong with the body's shape (hex, counts, amounts,
    /// order, ids), if any.
    pub fn shape_problem(&self) -> Option<String> {
        if !is_hash_hex(&self.prev_hash) {
            return Some(format!(
                "prev_hash {:?} is not 64 lowercase hex",
                self.prev_hash
            ));
        }
        if self.payouts.is_empty() || self.payouts.len() > MAX_OPS {
            return Some(format!(
                "{} payouts (1 to {MAX_OPS} allowed)",
                self.payouts.len()
            ));
        }
        for (i, p) in self.payouts.iter().enumerate() {
            if !p.amount.is_positive() {
                return Some(format!("payout to {} of {}", p.account, p.amount));
            }
            if p.assignments.is_empty() && p.withdrawals.is_empty() {
                return Some(format!(
                    "payout to {} pays no assignment and no withdrawal",
                    p.account
                ));
            }
            for (what, ids) in [
                ("assignments", &p.assignments),
                ("withdrawals", &p.withdrawals),
            ] {
                if ids.windows(2).any(|w| w[0] >= w[1]) {
                    return Some(format!(
                        "payout to {}: {what} not sorted and unique",
                        p.account
                    ));
                }
            }
            if i > 0 && self.payouts[i - 1].account.to_string() >= p.account.to_string() {
                return Some(format!("payouts not sorted by account at {}", p.account));
            }
        }
        None
    }

    /// The canonical body encoding (see the module docs).
    pub fn encode(&self) -> String {
        encode(self, None)
    }

    /// `sha256(body)`: the `MemoHash` of the record's transaction.
    pub fn memo(&self) -> [u8; 32] {
        Sha256::digest(self.encode().as_bytes()).into()
    }

    /// The payment batch paying this body, memo set; `tx_seq` is the
    /// source account's sequence number + 1.
    pub fn payment_batch(&self, tx_seq: i64, base_fee: u32, bounds: TimeBounds) -> PaymentBatch {
        PaymentBatch::new(self.source, tx_seq)
            .with_base_fee(base_fee)
            .with_time_bounds(bounds.min_time, bounds.max_time)
            .with_memo_hash(self.memo())
            .with_payments(self.payouts.iter().map(|p| p.payment(self.asset)))
    }

    /// Build and sign the batch, and seal the record around it.
    pub fn sign(
        self,
        keypair: &Keypair,
        tx_seq: i64,
        base_fee: u32,
        bounds: TimeBounds,
    ) -> Result<SettlementRecord> {
        let signed = self
            .payment_batch(tx_seq, base_fee, bounds)
            .sign(keypair, &self.network)?;
        Ok(self.seal(&signed, STATUS_PENDING))
    }

    /// The record for this body paid by `signed`, hash computed.
    pub fn seal(self, signed: &SignedTx, status: &str) -> SettlementRecord {
        let tx_hash = signed.hash_hex();
        let hash = record_hash(&self, &tx_hash);
        SettlementRecord {
            seq: self.seq,
            prev_hash: self.prev_hash,
            hash,
            network: self.network,
            source: self.source,
            asset: self.asset,
            payouts: self.payouts,
            envelope_xdr: signed.envelope_xdr.clone(),
            tx_hash,
            status: status.to_owned(),
        }
    }
}

impl SettlementRecord {
    /// The body part of the record (what the memo commits to).
    pub fn body(&self) -> RecordBody {
        RecordBody {
            seq: self.seq,
            prev_hash: self.prev_hash.clone(),
            network: self.network.clone(),
            source: self.source,
            asset: self.asset,
            payouts: self.payouts.clone(),
        }
    }

    /// The canonical record encoding (see the module docs).
    pub fn encode(&self) -> String {
        encode(&self.body(), Some(&self.tx_hash))
    }

    /// `hex(sha256(record encoding))`: what `hash` must be.
    pub fn compute_hash(&self) -> String {
        hex::encode(Sha256::digest(self.encode().as_bytes()))
    }

    /// The sum of the payouts, `None` on overflow.
    pub fn total(&self) -> Option<Stroops> {
        Stroops::checked_sum(self.payouts.iter().map(|p| p.amount))
    }
}

fn record_hash(body: &RecordBody, tx_hash: &str) -> String {
    hex::encode(Sha256::digest(encode(body, Some(tx_hash)).as_bytes()))
}

fn encode(body: &RecordBody, tx_hash: Option<&str>) -> String {
    use std::fmt::Write;
    let tag = if tx_hash.is_some() {
        "tally-settlement-v1"
    } else {
        "tally-settlement-body-v1"
    };
    let mut out = format!(
        "{tag}\n{}\n{}\n{}\n{}\n{}\n",
        body.seq, body.prev_hash, body.network, body.source, body.asset
    );
    if let Some(tx_hash) = tx_hash {
        out.push_str(tx_hash);
        out.push('\n');
    }
    for p in &body.payouts {
        let _ = write!(out, "{} {} ", p.account, p.amount.0);
        if p.assignments.is_empty() {
            out.push('-');
        }
        write_ids(&mut out, &p.assignments);
        if !p.op.is_payment() {
            let _ = write!(out, " op={}", p.op);
        }
        if !p.withdrawals.is_empty() {
            out.push_str(" withdrawals=");
            write_ids(&mut out, &p.withdrawals);
        }
        out.push('\n');
    }
    out
}

/// `ids` joined by `,`.
fn write_ids(out: &mut String, ids: &[i64]) {
    use std::fmt::Write;
    for (i, id) in ids.iter().enumerate() {
        let _ = write!(out, "{}{id}", if i > 0 { "," } else { "" });
    }
}

/// 64 lowercase hex characters.
pub fn is_hash_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
pub(crate) mod tests;
