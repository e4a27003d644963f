use super::*;

pub(crate) fn operator() -> Keypair {
    Keypair::from_seed(&[11; 32])
}

pub(crate) fn worker(i: u8) -> PublicKey {
    Keypair::from_seed(&[100 + i; 32]).public_key()
}

pub(crate) fn payout(i: u8, amount: i64, ids: &[i64]) -> Payout {
    Payout::new(worker(i), Stroops(amount), ids.to_vec())
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

/// A body paying `asset` with `payouts`, sorted, not checked.
fn body_in(asset: Asset, payouts: Vec<Payout>) -> RecordBody {
    let op = operator().public_key();
    RecordBody::new(1, GENESIS_PREV_HASH, Network::testnet(), op, asset, payouts).unwrap()
}

fn usdc() -> Asset {
    Asset::parse(&format!("USDC:{}", worker(50))).unwrap()
}

#[test]
fn plain_payment_records_hash_as_before_payout_ops_existed() {
    // Pinned from the encoder before `op` and `withdrawals` existed: hash
    // chains already stored must keep verifying.
    let r = record(
        1,
        GENESIS_PREV_HASH,
        vec![payout(1, 70, &[5]), payout(2, 3, &[7, 6])],
    );
    assert_eq!(
        r.tx_hash,
        "2380eab68422bec3e800ecd91277a389393b0ef59ace2dfc9dabc6a49f180604"
    );
    assert_eq!(
        hex::encode(r.body().memo()),
        "4329f608db935f0a7f1d1b2d325a542e1625982d0c02582b410cf925fe2f42bb"
    );
    assert_eq!(
        r.hash,
        "74aa489454e79f63e88564c0abdbb9a631fcb3be82144420b439373a68946569"
    );
}

#[test]
fn non_default_ops_and_withdrawals_are_encoded_as_documented() {
    let payouts = vec![
        payout(1, 70, &[5]).with_op(PayoutOp::CreateAccount),
        payout(2, 150, &[])
            .with_op(PayoutOp::ClaimableBalance)
            .with_withdrawals(vec![12, 3]),
        payout(3, 80, &[2]).with_withdrawals(vec![5]),
        payout(4, 9, &[8, 1]),
    ];
    let body = body_in(Asset::Native, payouts);
    let line = |i: u8| match i {
        1 => format!("{} 70 5 op=create_account\n", worker(1)),
        2 => format!(
            "{} 150 - op=claimable_balance withdrawals=3,12\n",
            worker(2)
        ),
        3 => format!("{} 80 2 withdrawals=5\n", worker(3)),
        _ => format!("{} 9 1,8\n", worker(4)),
    };
    let mut order: Vec<u8> = (1..=4).collect();
    order.sort_by_key(|&i| worker(i).to_string());
    let expected = format!(
        "tally-settlement-body-v1\n1\n{GENESIS_PREV_HASH}\nTest SDF Network ; September 2015\n{}\nnative\n{}",
        operator().public_key(),
        order.iter().map(|&i| line(i)).collect::<String>()
    );
    assert_eq!(body.encode(), expected);
}

#[test]
fn the_op_and_the_withdrawals_change_the_memo_and_the_hash() {
    let plain = body_in(Asset::Native, vec![payout(1, 70, &[5])]);
    let claimable = body_in(
        Asset::Native,
        vec![payout(1, 70, &[5]).with_op(PayoutOp::ClaimableBalance)],
    );
    let create = body_in(
        Asset::Native,
        vec![payout(1, 70, &[5]).with_op(PayoutOp::CreateAccount)],
    );
    let withdrawal = body_in(
        Asset::Native,
        vec![payout(1, 70, &[5]).with_withdrawals(vec![1])],
    );
    let memos = [&plain, &claimable, &create, &withdrawal].map(|b| b.memo());
    for i in 0..memos.len() {
        for j in 0..i {
            assert_ne!(memos[i], memos[j], "{i} {j}");
        }
    }
}

#[test]
fn each_payout_is_paid_by_its_op() {
    let body = body_in(
        Asset::Native,
        vec![
            payout(1, 70, &[5]).with_op(PayoutOp::CreateAccount),
            payout(2, 3, &[])
                .with_op(PayoutOp::ClaimableBalance)
                .with_withdrawals(vec![4]),
            payout(3, 9, &[6]),
        ],
    );
    let batch = body.payment_batch(
        7,
        100,
        TimeBounds {
            min_time: 0,
            max_time: 9,
        },
    );
    for (pay, out) in batch.payments().iter().zip(&body.payouts) {
        assert_eq!(
            (pay.op, pay.destination, pay.amount, pay.asset),
            (out.op, out.account, out.amount, Asset::Native)
        );
    }
    let r = body
        .sign(
            &operator(),
            7,
            100,
            TimeBounds {
                min_time: 0,
                max_time: 9,
            },
        )
        .unwrap();
    let decoded = crate::decode::decode_envelope(&r.envelope_xdr).unwrap();
    assert_eq!(decoded.payments, batch.payments());
    assert_eq!(crate::audit::check_record(&r), vec![]);
}

#[test]
fn payouts_may_pay_withdrawals_only_and_create_account_only_lumens() {
    let op = operator().public_key();
    let new = |asset: Asset, payouts| {
        RecordBody::new(1, GENESIS_PREV_HASH, Network::testnet(), op, asset, payouts)
    };
    let body = new(
        Asset::Native,
        vec![payout(1, 5, &[]).with_withdrawals(vec![9, 2, 4])],
    )
    .unwrap();
    assert_eq!(body.payouts[0].withdrawals, [2, 4, 9]);
    assert!(new(Asset::Native, vec![payout(1, 5, &[])]).is_err());
    let dup = payout(1, 5, &[1]).with_withdrawals(vec![3, 3]);
    assert!(new(Asset::Native, vec![dup]).is_err());
    let create = payout(1, 5, &[1]).with_op(PayoutOp::CreateAccount);
    assert!(new(Asset::Native, vec![create.clone()]).is_ok());
    let err = new(usdc(), vec![create]).unwrap_err().to_string();
    assert!(err.contains("create_account"), "{err}");
    let claimable = payout(1, 5, &[1]).with_op(PayoutOp::ClaimableBalance);
    assert!(new(usdc(), vec![claimable]).is_ok());
    assert!(new(
        usdc(),
        vec![payout(1, -5, &[1]).with_op(PayoutOp::ClaimableBalance)]
    )
    .is_err());
}

#[test]
fn default_ops_and_no_withdrawals_stay_out_of_the_json() {
    let plain = serde_json::to_value(payout(1, 70, &[5])).unwrap();
    assert_eq!(plain.as_object().unwrap().len(), 3, "{plain}");
    let old: Payout = serde_json::from_str(&format!(
        r#"{{"account":"{}","amount":70,"assignments":[5]}}"#,
        worker(1)
    ))
    .unwrap();
    assert_eq!(old, payout(1, 70, &[5]));
    let p = payout(1, 70, &[])
        .with_op(PayoutOp::ClaimableBalance)
        .with_withdrawals(vec![3]);
    let json = serde_json::to_value(&p).unwrap();
    assert_eq!(json["op"], "claimable_balance");
    assert_eq!(json["withdrawals"][0], 3);
    assert_eq!(serde_json::from_value::<Payout>(json).unwrap(), p);
}
