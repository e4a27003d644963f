use super::*;
use crate::amount::Stroops;
use crate::keys::Keypair;
use crate::record::tests::{operator, payout, record};
use crate::record::{RecordBody, STATUS_EXPIRED};
use crate::tx::TimeBounds;

fn chain() -> Vec<SettlementRecord> {
    let a = record(
        1,
        GENESIS_PREV_HASH,
        vec![payout(1, 70, &[1, 2]), payout(2, 35, &[3])],
    );
    let b = record(2, &a.hash, vec![payout(1, 35, &[4])]);
    let c = record(
        3,
        &b.hash,
        vec![payout(3, 35, &[5]), payout(2, 70, &[6, 7])],
    );
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
    assert_eq!(
        kinds(&check_chain(&records)),
        ["broken_chain", "broken_chain"]
    );
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
    assert!(
        k.contains(&"memo_mismatch") && k.contains(&"payout_mismatch"),
        "{findings:?}"
    );
    assert!(
        k.contains(&"broken_chain"),
        "the next record points at the old hash"
    );
}

#[test]
fn an_envelope_signed_by_someone_else_is_a_bad_signature() {
    let mut records = chain();
    let intruder = Keypair::from_seed(&[99; 32]);
    let body = RecordBody {
        source: intruder.public_key(),
        ..records[0].body()
    };
    let forged = body
        .sign(
            &intruder,
            5,
            100,
            TimeBounds {
                min_time: 0,
                max_time: 9,
            },
        )
        .unwrap();
    records[0].envelope_xdr = forged.envelope_xdr;
    let k = kinds(&check_chain(&records)).join(" ");
    assert!(
        k.contains("source_mismatch") && k.contains("bad_signature"),
        "{k}"
    );
    assert!(k.contains("tx_hash_mismatch"), "{k}");
}

#[test]
fn a_record_on_another_network_fails_its_signature() {
    let mut records = chain();
    records[2].network = Network::public();
    records[2] = rehash(records[2].clone());
    let k = kinds(&check_chain(&records)).join(" ");
    assert!(
        k.contains("bad_signature") && k.contains("tx_hash_mismatch"),
        "{k}"
    );
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
    assert!(
        k.contains("bad_envelope") && k.contains("bad_record"),
        "{k}"
    );
}

#[test]
fn paying_an_assignment_twice_is_a_double_payment() {
    let mut records = chain();
    let again = record(4, &records[2].hash, vec![payout(4, 35, &[3])]);
    records.push(again);
    let findings = check_chain(&records);
    assert_eq!(kinds(&findings), ["double_payment"], "{findings:?}");
    assert!(findings[0]
        .detail
        .contains("assignment 3 was already paid by record 1"));
}

#[test]
fn an_expired_record_may_be_replaced() {
    let mut first = record(1, GENESIS_PREV_HASH, vec![payout(1, 70, &[1])]);
    first.status = STATUS_EXPIRED.into();
    let replacement = record(2, &first.hash, vec![payout(1, 70, &[1])]);
    assert_eq!(check_chain(&[first, replacement]), vec![]);
}
