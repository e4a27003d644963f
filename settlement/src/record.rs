//! Settlement records: the hash-chained, append-only log of payouts.
//!
//! A record pays one batch: its payouts (account, amount, the assignment
//! ids it pays) and the signed transaction that pays them. Two hashes tie
//! the record and the transaction together:
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
//! payout line: {account} {amount} {assignment ids joined by ","}
//! ```
//!
//! `memo = sha256(body)` (raw 32 bytes) and `hash = hex(sha256(record))`.
//! Payouts are sorted by account in the byte order of the `G...` text (not
//! of the raw key: base32 puts digits after letters), one payout per
//! account; assignment ids are sorted ascending. The first record has `seq` 1 and `prev_hash` =
//! [`GENESIS_PREV_HASH`]. `envelope_xdr` and `status` are not hashed: the
//! envelope is bound by `tx_hash`, and the status changes as the
//! transaction goes through submission.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::amount::Stroops;
use crate::asset::Asset;
use crate::error::{Error, Result};
use crate::keys::{Keypair, PublicKey};
use crate::network::Network;
use crate::tx::{Payment, PaymentBatch, SignedTx, TimeBounds, MAX_OPS};

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
    /// amount, an account paid twice or a payout for no assignment.
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

    /// The first thing wrong with the body's shape, if any.
    pub fn problem(&self) -> Option<String> {
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
            if p.assignments.is_empty() {
                return Some(format!("payout to {} pays no assignment", p.account));
            }
            if p.assignments.windows(2).any(|w| w[0] >= w[1]) {
                return Some(format!(
                    "payout to {}: assignments not sorted and unique",
                    p.account
                ));
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
            .with_payments(self.payouts.iter().map(|p| Payment {
                destination: p.account,
                asset: self.asset,
                amount: p.amount,
            }))
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
        for (i, id) in p.assignments.iter().enumerate() {
            let _ = write!(out, "{}{id}", if i > 0 { "," } else { "" });
        }
        out.push('\n');
    }
    out
}

/// 64 lowercase hex characters.
pub fn is_hash_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
pub(crate) mod tests;
