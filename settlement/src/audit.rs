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
use crate::decode::decode_envelope;
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
        let mut findings = Vec::new();
        let at = format!("record {}", record.seq);
        if record.seq != self.next_seq {
            findings.push(Finding::new(
                "broken_chain",
                format!("{at}: expected seq {}", self.next_seq),
            ));
        }
        if record.prev_hash != self.prev_hash {
            findings.push(Finding::new(
                "broken_chain",
                format!(
                    "{at}: prev_hash {} is not the previous hash {}",
                    record.prev_hash, self.prev_hash
                ),
            ));
        }
        self.next_seq = record.seq.saturating_add(1);
        self.prev_hash = record.hash.clone();

        if let Some(source) = &self.source {
            if record.source != *source {
                findings.push(Finding::new(
                    "source_mismatch",
                    format!(
                        "{at}: source {} is not the operator {source}",
                        record.source
                    ),
                ));
            }
        }
        if let Some(network) = &self.network {
            if record.network != *network {
                findings.push(Finding::new(
                    "network_mismatch",
                    format!(
                        "{at}: network {:?} is not {:?}",
                        record.network.passphrase(),
                        network.passphrase()
                    ),
                ));
            }
        }
        if let Some(asset) = &self.asset {
            if record.asset != *asset {
                findings.push(Finding::new(
                    "payout_mismatch",
                    format!("{at}: asset {} is not {asset}", record.asset),
                ));
            }
        }
        findings.extend(check_record(record));

        if status_pays(&record.status) {
            for id in record.payouts.iter().flat_map(|p| &p.assignments) {
                if let Some(first) = self.paid.insert(*id, record.seq) {
                    findings.push(Finding::new(
                        "double_payment",
                        format!("{at}: assignment {id} was already paid by record {first}"),
                    ));
                }
            }
            for id in record.payouts.iter().flat_map(|p| &p.withdrawals) {
                if let Some(first) = self.paid_withdrawals.insert(*id, record.seq) {
                    findings.push(Finding::new(
                        "double_payment",
                        format!("{at}: withdrawal {id} was already paid by record {first}"),
                    ));
                }
            }
        }
        findings
    }
}

/// Check a whole chain from its genesis record.
pub fn check_chain(records: &[SettlementRecord]) -> Vec<Finding> {
    let mut checker = ChainChecker::new();
    records.iter().flat_map(|r| checker.check(r)).collect()
}

/// Check one record on its own: shape, hash, and its envelope against it.
pub fn check_record(record: &SettlementRecord) -> Vec<Finding> {
    let mut findings = Vec::new();
    let at = format!("record {}", record.seq);
    let body = record.body();
    if let Some(problem) = body.shape_problem() {
        findings.push(Finding::new("bad_record", format!("{at}: {problem}")));
    }
    for problem in body.op_problems() {
        findings.push(Finding::new("bad_op", format!("{at}: {problem}")));
    }
    for (name, value) in [("hash", &record.hash), ("tx_hash", &record.tx_hash)] {
        if !is_hash_hex(value) {
            findings.push(Finding::new(
                "bad_record",
                format!("{at}: {name} {value:?} is not 64 lowercase hex"),
            ));
        }
    }
    let computed = record.compute_hash();
    if computed != record.hash {
        findings.push(Finding::new(
            "bad_hash",
            format!(
                "{at}: hash {} but the record hashes to {computed}",
                record.hash
            ),
        ));
    }

    let decoded = match decode_envelope(&record.envelope_xdr) {
        Ok(d) => d,
        Err(e) => {
            findings.push(Finding::new("bad_envelope", format!("{at}: {e}")));
            return findings;
        }
    };
    if decoded.source != record.source {
        findings.push(Finding::new(
            "source_mismatch",
            format!(
                "{at}: the envelope's source is {}, the record's {}",
                decoded.source, record.source
            ),
        ));
    }
    if !decoded.is_signed_by(&record.network, &record.source) {
        findings.push(Finding::new(
            "bad_signature",
            format!(
                "{at}: not signed by {} for {:?}",
                record.source,
                record.network.passphrase()
            ),
        ));
    }
    match decoded.tx_hash(&record.network) {
        Ok(hash) if hex::encode(hash) == record.tx_hash => {}
        Ok(hash) => findings.push(Finding::new(
            "tx_hash_mismatch",
            format!(
                "{at}: the envelope hashes to {}, the record says {}",
                hex::encode(hash),
                record.tx_hash
            ),
        )),
        Err(e) => findings.push(Finding::new("bad_envelope", format!("{at}: {e}"))),
    }
    if decoded.memo_hash != Some(body.memo()) {
        findings.push(Finding::new(
            "memo_mismatch",
            format!("{at}: the memo is not the hash of the record body"),
        ));
    }
    let same_len = decoded.payments.len() == record.payouts.len();
    let mismatch = decoded
        .payments
        .iter()
        .zip(&record.payouts)
        .position(|(pay, out)| *pay != out.payment(record.asset));
    if !same_len || mismatch.is_some() {
        let detail = match mismatch {
            Some(i) => {
                let (pay, out) = (&decoded.payments[i], &record.payouts[i]);
                format!(
                    "{at}: operation {i} is a {} of {} {} to {}, payout is a {} of {} {} to {}",
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
                "{at}: {} operations for {} payouts",
                decoded.payments.len(),
                record.payouts.len()
            ),
        };
        findings.push(Finding::new("payout_mismatch", detail));
    }
    findings
}

#[cfg(test)]
mod tests;
