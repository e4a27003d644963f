use super::*;
use crate::amount::Stroops;
use crate::keys::Keypair;
use crate::record::tests::{operator, payout, record};
use crate::record::{Payout, RecordBody, STATUS_EXPIRED, STATUS_PENDING};
use crate::tx::{Payment, PaymentBatch, PayoutOp, TimeBounds};

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

fn usdc() -> Asset {
    Asset::parse(&format!(
        "USDC:{}",
        Keypair::from_seed(&[77; 32]).public_key()
    ))
    .unwrap()
}

const BOUNDS: TimeBounds = TimeBounds {
    min_time: 0,
    max_time: 2_000_000_000,
};

/// `body` sealed around a transaction that commits to it (memo, source,
/// signature) but whose operations went through `edit`: only the
/// operations can disagree with the record.
fn sealed_with(body: RecordBody, edit: impl Fn(&mut Vec<Payment>)) -> SettlementRecord {
    let mut payments: Vec<Payment> = body.payouts.iter().map(|p| p.payment(body.asset)).collect();
    edit(&mut payments);
    let signed = PaymentBatch::new(body.source, 9)
        .with_time_bounds(BOUNDS.min_time, BOUNDS.max_time)
        .with_memo_hash(body.memo())
        .with_payments(payments)
        .sign(&operator(), &body.network)
        .unwrap();
    body.seal(&signed, STATUS_PENDING)
}

fn body(asset: Asset, payouts: Vec<Payout>) -> RecordBody {
    RecordBody::new(
        1,
        GENESIS_PREV_HASH,
        Network::testnet(),
        operator().public_key(),
        asset,
        payouts,
    )
    .unwrap()
}

fn mixed_body() -> RecordBody {
    body(
        Asset::Native,
        vec![
            payout(1, 70, &[1]).with_op(PayoutOp::CreateAccount),
            payout(2, 35, &[])
                .with_op(PayoutOp::ClaimableBalance)
                .with_withdrawals(vec![1]),
            payout(3, 20, &[2]),
        ],
    )
}

#[test]
fn an_honest_record_with_every_op_kind_has_no_findings() {
    let r = mixed_body().sign(&operator(), 9, 100, BOUNDS).unwrap();
    assert_eq!(check_chain(std::slice::from_ref(&r)), vec![]);
    assert_eq!(sealed_with(mixed_body(), |_| {}), r);
}

#[test]
fn an_envelope_paying_by_another_op_is_a_payout_mismatch() {
    let payouts = mixed_body().payouts;
    for i in 0..3 {
        for other in PayoutOp::ALL {
            if other == payouts[i].op {
                continue;
            }
            let r = sealed_with(mixed_body(), |p| p[i].op = other);
            let findings = check_chain(&[r]);
            assert_eq!(
                kinds(&findings),
                ["payout_mismatch"],
                "{i} {other}: {findings:?}"
            );
            assert!(findings[0]
                .detail
                .contains(&format!("operation {i} is a {other}")));
        }
    }
}

#[test]
fn an_envelope_paying_another_destination_asset_or_amount_is_a_payout_mismatch() {
    let stranger = Keypair::from_seed(&[98; 32]).public_key();
    for i in 0..3 {
        let edits: [&dyn Fn(&mut Payment); 3] = [
            &|p| p.destination = stranger,
            &|p| p.amount = Stroops(p.amount.0 + 1),
            &|p| {
                // create_account cannot carry another asset: pay it by claimable balance.
                if p.op == PayoutOp::CreateAccount {
                    p.op = PayoutOp::ClaimableBalance;
                }
                p.asset = usdc();
            },
        ];
        for (e, edit) in edits.iter().enumerate() {
            let r = sealed_with(mixed_body(), |p| edit(&mut p[i]));
            let findings = check_chain(&[r]);
            assert_eq!(
                kinds(&findings),
                ["payout_mismatch"],
                "{i} {e}: {findings:?}"
            );
        }
    }
    let missing = sealed_with(mixed_body(), |p| {
        p.pop();
    });
    assert_eq!(kinds(&check_chain(&[missing])), ["payout_mismatch"]);
}

#[test]
fn a_create_account_payout_in_a_credit_asset_is_a_bad_op() {
    let good = body(
        usdc(),
        vec![
            payout(1, 70, &[1]).with_op(PayoutOp::ClaimableBalance),
            payout(2, 5, &[2]),
        ],
    );
    // The record RecordBody::new refuses, built by hand.
    let mut payouts = good.payouts.clone();
    payouts[0].op = PayoutOp::CreateAccount;
    let bad = RecordBody { payouts, ..good };
    assert!(bad.problem().is_some() && bad.shape_problem().is_none());
    assert!(bad.clone().sign(&operator(), 9, 100, BOUNDS).is_err());
    // Whatever pays it (lumens by CreateAccount, or the asset by another op),
    // the op is flagged.
    for op in [
        PayoutOp::CreateAccount,
        PayoutOp::ClaimableBalance,
        PayoutOp::Payment,
    ] {
        let r = sealed_with(bad.clone(), |p| {
            p[0].op = op;
            if op == PayoutOp::CreateAccount {
                p[0].asset = Asset::Native;
            }
        });
        let findings = check_chain(&[r]);
        let k = kinds(&findings);
        assert!(k.contains(&"bad_op"), "{op}: {findings:?}");
        assert!(!k.contains(&"bad_record"), "{op}: {findings:?}");
        // The record cannot be paid as it says: lumens are not its asset,
        // and another op is not its op.
        assert!(k.contains(&"payout_mismatch"), "{op}: {findings:?}");
    }
}

#[test]
fn paying_a_withdrawal_twice_is_a_double_payment() {
    let first = mixed_body().sign(&operator(), 9, 100, BOUNDS).unwrap();
    let again = RecordBody::new(
        2,
        &first.hash,
        Network::testnet(),
        operator().public_key(),
        Asset::Native,
        // Assignment 1 and withdrawal 1 are different things.
        vec![payout(4, 35, &[1_000]).with_withdrawals(vec![1])],
    )
    .unwrap()
    .sign(&operator(), 10, 100, BOUNDS)
    .unwrap();
    let findings = check_chain(&[first.clone(), again]);
    assert_eq!(kinds(&findings), ["double_payment"], "{findings:?}");
    assert!(findings[0]
        .detail
        .contains("withdrawal 1 was already paid by record 1"));
    let mut expired = first;
    expired.status = STATUS_EXPIRED.into();
    let replacement = RecordBody::new(
        2,
        &expired.hash,
        Network::testnet(),
        operator().public_key(),
        Asset::Native,
        vec![payout(4, 35, &[]).with_withdrawals(vec![1])],
    )
    .unwrap()
    .sign(&operator(), 10, 100, BOUNDS)
    .unwrap();
    assert_eq!(check_chain(&[expired, replacement]), vec![]);
}
