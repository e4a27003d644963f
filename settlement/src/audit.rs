//! Checks of settlement records that anyone can run from public data.
//!
//! [`check_chain`] (or a [`ChainChecker`] fed page by page) reports every
//! problem as a [`Finding`] and never stops at the first. Kinds:
//!
//! | kind | meaning |
//! | --- | --- |
//! | `broken_chain` | `seq` not consecutive from 1, or `prev_hash` not the previous `hash` |
//! | `bad_record` | malformed fields: hex, empty or unsorted payouts, non-positive amounts |
//! | `bad_hash` | `hash` is not the hash of the record's canonical encoding |
//! | `bad_envelope` | `envelope_xdr` does not decode as a payment batch |
//! | `source_mismatch` | the envelope's source is not the record's (or the expected operator) |
//! | `network_mismatch` | the record names another network than the expected one |
//! | `bad_signature` | the envelope is not signed by `source` for `network` |
//! | `tx_hash_mismatch` | the envelope's hash on `network` is not `tx_hash` |
//! | `memo_mismatch` | the envelope's `MemoHash` is not the hash of the record body |
//! | `payout_mismatch` | the payments are not exactly the payouts (account, amount, asset, order) |
//! | `double_payment` | an assignment id paid by two payouts (in one record or two) |
//!
//! Assignments of records whose status says they paid nothing (see
//! [`status_pays`]) do not count as paid, so their replacement is no double
//! payment.

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
/// (the last hash, the next seq, every paid assignment id).
#[derive(Debug, Clone)]
pub struct ChainChecker {
    next_seq: u64,
    prev_hash: String,
    paid: HashMap<i64, u64>,
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
                    format!("{at}: source {} is not the operator {source}", record.source),
                ));
            }
        }
        if let Some(network) = &self.network {
            if record.network != *network {
                findings.push(Finding::new(
                    "network_mismatch",
                    format!("{at}: network {:?} is not {:?}", record.network.passphrase(), network.passphrase()),
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
    if let Some(problem) = body.problem() {
        findings.push(Finding::new("bad_record", format!("{at}: {problem}")));
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
            format!("{at}: hash {} but the record hashes to {computed}", record.hash),
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
            format!("{at}: the envelope's source is {}, the record's {}", decoded.source, record.source),
        ));
    }
    if !decoded.is_signed_by(&record.network, &record.source) {
        findings.push(Finding::new(
            "bad_signature",
            format!("{at}: not signed by {} for {:?}", record.source, record.network.passphrase()),
        ));
    }
    match decoded.tx_hash(&record.network) {
        Ok(hash) if hex::encode(hash) == record.tx_hash => {}
        Ok(hash) => findings.push(Finding::new(
            "tx_hash_mismatch",
            format!("{at}: the envelope hashes to {}, the record says {}", hex::encode(hash), record.tx_hash),
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
        .position(|(pay, out)| {
            pay.destination != out.account || pay.amount != out.amount || pay.asset != record.asset
        });
    if !same_len || mismatch.is_some() {
        let detail = match mismatch {
            Some(i) => format!(
                "{at}: payment {i} pays {} {} to {}, payout is {} to {}",
                decoded.payments[i].amount,
                decoded.payments[i].asset,
                decoded.payments[i].destination,
                record.payouts[i].amount,
                record.payouts[i].account
            ),
            None => format!(
                "{at}: {} payments for {} payouts",
                decoded.payments.len(),
                record.payouts.len()
            ),
        };
        findings.push(Finding::new("payout_mismatch", detail));
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::amount::Stroops;
    use crate::keys::Keypair;
    use crate::record::tests::{operator, payout, record};
    use crate::record::{RecordBody, STATUS_EXPIRED};
    use crate::tx::TimeBounds;

    fn chain() -> Vec<SettlementRecord> {
        let a = record(1, GENESIS_PREV_HASH, vec![payout(1, 70, &[1, 2]), payout(2, 35, &[3])]);
        let b = record(2, &a.hash, vec![payout(1, 35, &[4])]);
        let c = record(3, &b.hash, vec![payout(3, 35, &[5]), payout(2, 70, &[6, 7])]);
        vec![a, b, c]
    }

    fn kinds(findings: &[Finding]) -> Vec<&str> {
        findings.iter().map(|f| f.kind.as_str()).collect()
    }

    /// Re-hash a record after tampering with it, so only the deeper check fires.
    fn rehash(mut r: SettlementRecord) -> SettlementRecord {
        r.hash = r.compute_hash();
        r
    }

    #[test]
    fn an_honest_chain_has_no_findings() {
        let records = chain();
        assert_eq!(check_chain(&records), vec![]);
        let mut checker = ChainChecker::new()
            .expect_source(operator().public_key())
            .expect_network(Network::testnet())
            .expect_asset(Asset::Native);
        for r in &records {
            assert_eq!(checker.check(r), vec![]);
        }
        assert_eq!(checker.next_seq(), 4);
    }

    #[test]
    fn a_missing_or_reordered_record_breaks_the_chain() {
        let mut records = chain();
        records.remove(1);
        assert_eq!(kinds(&check_chain(&records)), ["broken_chain", "broken_chain"]);
        let mut records = chain();
        records.swap(0, 1);
        assert!(kinds(&check_chain(&records)).contains(&"broken_chain"));
    }

    #[test]
    fn an_edited_payout_is_a_bad_hash_and_rehashing_is_caught_by_the_envelope() {
        let mut records = chain();
        records[1].payouts[0].amount = Stroops(36);
        let findings = check_chain(&records);
        assert!(kinds(&findings).contains(&"bad_hash"), "{findings:?}");
        records[1] = rehash(records[1].clone());
        let findings = check_chain(&records);
        let k = kinds(&findings);
        assert!(k.contains(&"memo_mismatch") && k.contains(&"payout_mismatch"), "{findings:?}");
        assert!(k.contains(&"broken_chain"), "the next record points at the old hash");
    }

    #[test]
    fn an_envelope_signed_by_someone_else_is_a_bad_signature() {
        let mut records = chain();
        let intruder = Keypair::from_seed(&[99; 32]);
        let body = RecordBody { source: intruder.public_key(), ..records[0].body() };
        let forged = body.sign(&intruder, 5, 100, TimeBounds { min_time: 0, max_time: 9 }).unwrap();
        records[0].envelope_xdr = forged.envelope_xdr;
        let k = kinds(&check_chain(&records)).join(" ");
        assert!(k.contains("source_mismatch") && k.contains("bad_signature"), "{k}");
        assert!(k.contains("tx_hash_mismatch"), "{k}");
    }

    #[test]
    fn a_record_on_another_network_fails_its_signature() {
        let mut records = chain();
        records[2].network = Network::public();
        records[2] = rehash(records[2].clone());
        let k = kinds(&check_chain(&records)).join(" ");
        assert!(k.contains("bad_signature") && k.contains("tx_hash_mismatch"), "{k}");
        let mut checker = ChainChecker::new().expect_network(Network::testnet());
        let all: Vec<Finding> = records.iter().flat_map(|r| checker.check(r)).collect();
        assert!(kinds(&all).contains(&"network_mismatch"));
    }

    #[test]
    fn garbage_envelopes_and_hex_are_reported_not_fatal() {
        let mut records = chain();
        records[0].envelope_xdr = "bm90IHhkcg==".into();
        records[1].tx_hash = "XYZ".into();
        let k = kinds(&check_chain(&records)).join(" ");
        assert!(k.contains("bad_envelope") && k.contains("bad_record"), "{k}");
    }

    #[test]
    fn paying_an_assignment_twice_is_a_double_payment() {
        let mut records = chain();
        let again = record(4, &records[2].hash, vec![payout(4, 35, &[3])]);
        records.push(again);
        let findings = check_chain(&records);
        assert_eq!(kinds(&findings), ["double_payment"], "{findings:?}");
        assert!(findings[0].detail.contains("assignment 3 was already paid by record 1"));
    }

    #[test]
    fn an_expired_record_may_be_replaced() {
        let mut first = record(1, GENESIS_PREV_HASH, vec![payout(1, 70, &[1])]);
        first.status = STATUS_EXPIRED.into();
        let replacement = record(2, &first.hash, vec![payout(1, 70, &[1])]);
        assert_eq!(check_chain(&[first, replacement]), vec![]);
    }
}
