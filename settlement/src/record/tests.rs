use super::*;

pub(crate) fn operator() -> Keypair {
    Keypair::from_seed(&[11; 32])
}

pub(crate) fn worker(i: u8) -> PublicKey {
    Keypair::from_seed(&[100 + i; 32]).public_key()
}

pub(crate) fn payout(i: u8, amount: i64, ids: &[i64]) -> Payout {
    Payout {
        account: worker(i),
        amount: Stroops(amount),
        assignments: ids.to_vec(),
    }
}

pub(crate) fn record(seq: u64, prev: &str, payouts: Vec<Payout>) -> SettlementRecord {
    let op = operator();
    RecordBody::new(
        seq,
        prev,
        Network::testnet(),
        op.public_key(),
        Asset::Native,
        payouts,
    )
    .unwrap()
    .sign(
        &op,
        1000 + seq as i64,
        100,
        TimeBounds {
            min_time: 0,
            max_time: 2_000_000_000,
        },
    )
    .unwrap()
}

#[test]
fn the_canonical_encoding_is_as_documented() {
    let body = RecordBody::new(
        1,
        GENESIS_PREV_HASH,
        Network::testnet(),
        worker(0),
        Asset::Native,
        vec![payout(2, 300, &[9, 4]), payout(1, 70, &[5])],
    )
    .unwrap();
    let (w1, w2) = (worker(1).to_string(), worker(2).to_string());
    let (a, b) = if w1 < w2 {
        (worker(1), worker(2))
    } else {
        (worker(2), worker(1))
    };
    let line = |k: PublicKey| {
        if k == worker(1) {
            format!("{k} 70 5\n")
        } else {
            format!("{k} 300 4,9\n")
        }
    };
    let expected = format!(
        "tally-settlement-body-v1\n1\n{GENESIS_PREV_HASH}\nTest SDF Network ; September 2015\n{}\nnative\n{}{}",
        worker(0),
        line(a),
        line(b)
    );
    assert_eq!(body.encode(), expected);
    assert_eq!(
        body.memo(),
        <[u8; 32]>::from(Sha256::digest(expected.as_bytes()))
    );
}

#[test]
fn a_record_commits_to_its_tx_and_the_tx_to_its_payouts() {
    let r = record(
        1,
        GENESIS_PREV_HASH,
        vec![payout(1, 70, &[5]), payout(2, 3, &[6, 7])],
    );
    assert_eq!(r.hash, r.compute_hash());
    assert!(r.encode().contains(&format!("\n{}\n", r.tx_hash)));
    let decoded = crate::decode::decode_envelope(&r.envelope_xdr).unwrap();
    assert_eq!(decoded.memo_hash, Some(r.body().memo()));
    assert_eq!(hex::encode(decoded.tx_hash(&r.network).unwrap()), r.tx_hash);
    assert_eq!(r.status, STATUS_PENDING);
    assert_eq!(r.total(), Some(Stroops(73)));
}

#[test]
fn payouts_are_sorted_by_the_account_text() {
    let payouts: Vec<Payout> = (0..60).map(|i| payout(i, 1, &[i as i64])).collect();
    let op = operator().public_key();
    let body = RecordBody::new(
        1,
        GENESIS_PREV_HASH,
        Network::testnet(),
        op,
        Asset::Native,
        payouts,
    )
    .unwrap();
    let texts: Vec<String> = body.payouts.iter().map(|p| p.account.to_string()).collect();
    let mut sorted = texts.clone();
    sorted.sort();
    assert_eq!(texts, sorted);
    let mut bytes: Vec<PublicKey> = body.payouts.iter().map(|p| p.account).collect();
    bytes.sort();
    assert_ne!(
        bytes,
        body.payouts.iter().map(|p| p.account).collect::<Vec<_>>()
    );
}

#[test]
fn malformed_bodies_are_refused() {
    let op = operator().public_key();
    let new = |prev: &str, payouts| {
        RecordBody::new(1, prev, Network::testnet(), op, Asset::Native, payouts)
    };
    assert!(new(GENESIS_PREV_HASH, vec![]).is_err());
    assert!(new("00", vec![payout(1, 1, &[1])]).is_err());
    assert!(new(GENESIS_PREV_HASH, vec![payout(1, 0, &[1])]).is_err());
    assert!(new(GENESIS_PREV_HASH, vec![payout(1, 5, &[])]).is_err());
    assert!(new(GENESIS_PREV_HASH, vec![payout(1, 5, &[2, 2])]).is_err());
    assert!(new(
        GENESIS_PREV_HASH,
        vec![payout(1, 5, &[1]), payout(1, 5, &[2])]
    )
    .is_err());
    let many = (0..101).map(|i| payout(i, 1, &[i as i64])).collect();
    assert!(new(GENESIS_PREV_HASH, many).is_err());
}

#[test]
fn records_serialize_with_the_design_field_names() {
    let r = record(1, GENESIS_PREV_HASH, vec![payout(1, 70, &[5])]);
    let json = serde_json::to_value(&r).unwrap();
    for field in [
        "seq",
        "prev_hash",
        "hash",
        "network",
        "source",
        "payouts",
        "envelope_xdr",
        "tx_hash",
        "status",
    ] {
        assert!(json.get(field).is_some(), "{field} missing");
    }
    assert_eq!(json["network"], Network::TESTNET_PASSPHRASE);
    assert_eq!(json["payouts"][0]["amount"], 70);
    assert_eq!(json["payouts"][0]["assignments"][0], 5);
    let back: SettlementRecord = serde_json::from_value(json).unwrap();
    assert_eq!(back, r);
}
