//! Checks of settlement records that anyone can run from public data.
//!
//! [`check_chain`] (or a [`ChainChecker`] fed page by page) reports every
//! problem as a [`Finding`] and never stops at the first. Kinds:
//!
//! | kind | meaning |
//! | --- | --- |
//! | `broken_chain` | `seq` not consecutive from 1, or `prev_hash` not the previous `hash` |
//! | `bad_record` | malformed fields: hex, empty or unsorted payouts, non-positive amounts, a payout for nothing |
//! | `bad_op` | a payout whose op cannot pay the record's asset (`create_account` in a non-native asset) |
//! | `bad_hash` | `hash` is not the hash of the record's canonical encoding |
//! | `bad_envelope` | `envelope_xdr` does not decode as a payment batch |
//! | `source_mismatch` | the envelope's source is not the record's (or the expected operator) |
//! | `network_mismatch` | the record names another network than the expected one |
//! | `bad_signature` | the envelope is not signed by `source` for `network` |
//! | `tx_hash_mismatch` | the envelope's hash on `network` is not `tx_hash` |
//! | `memo_mismatch` | the envelope's `MemoHash` is not the hash of the record body |
//! | `payout_mismatch` | the operations are not exactly the payouts (op kind, account, amount, asset, order) |
//! | `double_payment` | an assignment or withdrawal id paid by two payouts (in one record or two) |
//!
//! Assignments and withdrawals of records whose status says they paid
//! nothing (see [`status_pays`]) do not count as paid, so their replacement
//! is no double payment.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::asset::Asset;
use crate::decode::{decode_envelope, DecodedPayment};
use crate::keys::PublicKey;
use crate::network::Network;
use crate::record::{is_hash_hex, status_pays, SettlementRecord, GENESIS_PREV_HASH};

/// One problem found in the records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// snake_case kind, see the module docs.
    pub kind: String,
    pub detail: String,
}

impl Finding {
    pub fn new(kind: &str, detail: impl Into<String>) -> Self {
        Finding {
            kind: kind.to_owned(),
            detail: detail.into(),
        }
    }
}

/// Checks a chain of records in order, keeping what it needs between calls
/// (the last hash, the next seq, every paid assignment and withdrawal id).
#[derive(Debug, Clone)]
pub struct ChainChecker {
    next_seq: u64,
    prev_hash: String,
    paid: HashMap<i64, u64>,
    paid_withdrawals: HashMap<i64, u64>,
    source: Option<PublicKey>,
    network: Option<Network>,
    asset: Option<Asset>,
}

impl Default for ChainChecker {
    fn default() -> Self {
        ChainChecker::new()
    }
}

impl ChainChecker {
    /// A checker expecting the genesis record (seq 1) next.
    pub fn new() -> Self {
        ChainChecker {
            next_seq: 1,
            prev_hash: GENESIS_PREV_HASH.to_owned(),
            paid: HashMap::new(),
            paid_withdrawals: HashMap::new(),
            source: None,
            network: None,
            asset: None,
        }
    }

    /// Also require every record to come from `operator`.
    pub fn expect_source(mut self, operator: PublicKey) -> Self {
        self.source = Some(operator);
        self
    }

    /// Also require every record to be on `network`.
    pub fn expect_network(mut self, network: Network) -> Self {
        self.network = Some(network);
        self
    }

    /// Also require every record to pay in `asset`.
    pub fn expect_asset(mut self, asset: Asset) -> Self {
        self.asset = Some(asset);
        self
    }

    /// The `seq` the next record must have.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Check the next record of the chain.
    pub fn check(&mut self, record: &SettlementRecord) -> Vec<Finding> {
        let mut found = RecordFindings::new(record);
        self.check_link(record, &mut found);
        self.check_expected(record, &mut found);
        found.findings.extend(check_record(record));
        if status_pays(&record.status) {
            self.check_paid_once(record, &mut found);
        }
        found.findings
    }

    /// The record follows the previous one (`seq` and `prev_hash`); it
    /// becomes the one the next must follow.
    fn check_link(&mut self, record: &SettlementRecord, found: &mut RecordFindings) {
        if record.seq != self.next_seq {
            found.push("broken_chain", format!("expected seq {}", self.next_seq));
        }
        if record.prev_hash != self.prev_hash {
            found.push(
                "broken_chain",
                format!(
                    "prev_hash {} is not the previous hash {}",
                    record.prev_hash, self.prev_hash
                ),
            );
        }
        self.next_seq = record.seq.saturating_add(1);
        self.prev_hash = record.hash.clone();
    }

    /// The record's source, network and asset are the expected ones, where
    /// any were set.
    fn check_expected(&self, record: &SettlementRecord, found: &mut RecordFindings) {
        if let Some(source) = &self.source {
            if record.source != *source {
                found.push(
                    "source_mismatch",
                    format!("source {} is not the operator {source}", record.source),
                );
            }
        }
        if let Some(network) = &self.network {
            if record.network != *network {
                found.push(
                    "network_mismatch",
                    format!(
                        "network {:?} is not {:?}",
                        record.network.passphrase(),
                        network.passphrase()
                    ),
                );
            }
        }
        if let Some(asset) = &self.asset {
            if record.asset != *asset {
                found.push(
                    "payout_mismatch",
                    format!("asset {} is not {asset}", record.asset),
                );
            }
        }
    }

    /// No assignment or withdrawal this (paying) record pays was paid by an
    /// earlier record of the chain; its ids count as paid from now on.
    fn check_paid_once(&mut self, record: &SettlementRecord, found: &mut RecordFindings) {
        let assignments = record.payouts.iter().flat_map(|p| &p.assignments);
        let withdrawals = record.payouts.iter().flat_map(|p| &p.withdrawals);
        mark_paid(&mut self.paid, assignments, record.seq, "assignment", found);
        mark_paid(
            &mut self.paid_withdrawals,
            withdrawals,
            record.seq,
            "withdrawal",
            found,
        );
    }
}

/// Count `ids` as paid by record `seq`, finding a `double_payment` for each
/// one `paid` already holds (a `what`: assignment or withdrawal).
fn mark_paid<'a>(
    paid: &mut HashMap<i64, u64>,
    ids: impl Iterator<Item = &'a i64>,
    seq: u64,
    what: &str,
    found: &mut RecordFindings,
) {
    for id in ids {
        if let Some(first) = paid.insert(*id, seq) {
            found.push(
                "double_payment",
                format!("{what} {id} was already paid by record {first}"),
            );
        }
    }
}

/// Check a whole chain from its genesis record.
pub fn check_chain(records: &[SettlementRecord]) -> Vec<Finding> {
    let mut checker = ChainChecker::new();
    records.iter().flat_map(|r| checker.check(r)).collect()
}

/// Check one record on its own: shape, hash, and its envelope against it.
pub fn check_record(record: &SettlementRecord) -> Vec<Finding> {
    let mut found = RecordFindings::new(record);
    check_fields(record, &mut found);
    match decode_envelope(&record.envelope_xdr) {
        Ok(decoded) => {
            check_envelope(record, &decoded, &mut found);
            check_operations(record, &decoded, &mut found);
        }
        Err(e) => found.push("bad_envelope", e),
    }
    found.findings
}

/// The findings about one record, each detail led by `record {seq}: `.
struct RecordFindings {
    at: String,
    findings: Vec<Finding>,
}

impl RecordFindings {
    fn new(record: &SettlementRecord) -> Self {
        Self {
            at: format!("record {}", record.seq),
            findings: Vec::new(),
        }
    }

    fn push(&mut self, kind: &str, detail: impl std::fmt::Display) {
        let detail = format!("{}: {detail}", self.at);
        self.findings.push(Finding::new(kind, detail));
    }
}

/// The record's own fields: its body's shape and ops, both hashes as hex,
/// and `hash` the hash of its canonical encoding.
fn check_fields(record: &SettlementRecord, found: &mut RecordFindings) {
    let body = record.body();
    if let Some(problem) = body.shape_problem() {
        found.push("bad_record", problem);
    }
    for problem in body.op_problems() {
        found.push("bad_op", problem);
    }
    for (name, value) in [("hash", &record.hash), ("tx_hash", &record.tx_hash)] {
        if !is_hash_hex(value) {
            found.push(
                "bad_record",
                format!("{name} {value:?} is not 64 lowercase hex"),
            );
        }
    }
    let computed = record.compute_hash();
    if computed != record.hash {
        found.push(
            "bad_hash",
            format!("hash {} but the record hashes to {computed}", record.hash),
        );
    }
}

/// The decoded envelope against the record: its source, its signature,
/// its hash on the record's network and its memo.
fn check_envelope(record: &SettlementRecord, decoded: &DecodedPayment, found: &mut RecordFindings) {
    if decoded.source != record.source {
        found.push(
            "source_mismatch",
            format!(
                "the envelope's source is {}, the record's {}",
                decoded.source, record.source
            ),
        );
    }
    if !decoded.is_signed_by(&record.network, &record.source) {
        found.push(
            "bad_signature",
            format!(
                "not signed by {} for {:?}",
                record.source,
                record.network.passphrase()
            ),
        );
    }
    match decoded.tx_hash(&record.network) {
        Ok(hash) if hex::encode(hash) == record.tx_hash => {}
        Ok(hash) => found.push(
            "tx_hash_mismatch",
            format!(
                "the envelope hashes to {}, the record says {}",
                hex::encode(hash),
                record.tx_hash
            ),
        ),
        Err(e) => found.push("bad_envelope", e),
    }
    if decoded.memo_hash != Some(record.body().memo()) {
        found.push(
            "memo_mismatch",
            "the memo is not the hash of the record body",
        );
    }
}

/// The envelope's operations are exactly the record's payouts, one for
/// one and in order; the first that differs is named.
fn check_operations(
    record: &SettlementRecord,
    decoded: &DecodedPayment,
    found: &mut RecordFindings,
) {
    let same_len = decoded.payments.len() == record.payouts.len();
    let mismatch = decoded
        .payments
        .iter()
        .zip(&record.payouts)
        .position(|(pay, out)| *pay != out.payment(record.asset));
    if same_len && mismatch.is_none() {
        return;
    }
    let detail = match mismatch {
        Some(i) => {
            let (pay, out) = (&decoded.payments[i], &record.payouts[i]);
            format!(
                "operation {i} is a {} of {} {} to {}, payout is a {} of {} {} to {}",
                pay.op,
                pay.amount,
                pay.asset,
                pay.destination,
                out.op,
                out.amount,
                record.asset,
                out.account
            )
        }
        None => format!(
            "{} operations for {} payouts",
            decoded.payments.len(),
            record.payouts.len()
        ),
    };
    found.push("payout_mismatch", detail);
}

#[cfg(test)]
mod tests;
