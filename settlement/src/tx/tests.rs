use super::*;
use crate::keys::Keypair;
use crate::network::Network;
use xdr::{Limits, WriteXdr};

fn key(i: u8) -> PublicKey {
    Keypair::from_seed(&[i; 32]).public_key()
}

fn batch(ops: usize) -> PaymentBatch {
    let usdc = Asset::parse(&format!("USDC:{}", key(200))).unwrap();
    let long = Asset::parse(&format!("TALLYCOIN:{}", key(201))).unwrap();
    let assets = [Asset::Native, usdc, long];
    (0..ops).fold(
        PaymentBatch::new(key(1), 77)
            .with_time_bounds(10, 20)
            .with_memo_hash([9; 32]),
        |b, i| b.with_payment(key(i as u8 + 2), assets[i % 3], Stroops(i as i64 + 1)),
    )
}

/// Like [`batch`], but cycling through the op kinds (and the assets
/// each supports).
fn mixed(ops: usize) -> PaymentBatch {
    let usdc = Asset::parse(&format!("USDC:{}", key(200))).unwrap();
    let long = Asset::parse(&format!("TALLYCOIN:{}", key(201))).unwrap();
    (0..ops).fold(
        PaymentBatch::new(key(1), 77)
            .with_time_bounds(10, 20)
            .with_memo_hash([9; 32]),
        |b, i| {
            let (dest, amount) = (key(i as u8 + 2), Stroops(i as i64 * 1000 + 1));
            match i % 5 {
                0 => b.with_create_account(dest, amount),
                1 => b.with_claimable_balance(dest, Asset::Native, amount),
                2 => b.with_claimable_balance(dest, usdc, amount),
                3 => b.with_claimable_balance(dest, long, amount),
                _ => b.with_payment(dest, usdc, amount),
            }
        },
    )
}

#[test]
fn the_fee_is_base_fee_times_ops() {
    assert_eq!(batch(1).validate().unwrap(), 100);
    assert_eq!(batch(100).validate().unwrap(), 10_000);
    assert_eq!(batch(3).with_base_fee(250).validate().unwrap(), 750);
    let tx = batch(3).with_base_fee(250).to_transaction().unwrap();
    assert_eq!(tx.fee, 750);
    assert_eq!(tx.operations.len(), 3);
}

#[test]
fn empty_oversized_and_overflowing_batches_are_rejected() {
    assert!(matches!(batch(0).validate(), Err(Error::OpCount(0))));
    assert!(matches!(batch(101).validate(), Err(Error::OpCount(101))));
    assert!(matches!(
        batch(2).with_base_fee(u32::MAX).validate(),
        Err(Error::FeeOverflow { ops: 2, .. })
    ));
    assert!(batch(1).with_base_fee(u32::MAX).validate().is_ok());
    let inverted = batch(1).with_time_bounds(30, 20);
    assert!(matches!(inverted.validate(), Err(Error::TimeBounds { .. })));
    assert!(batch(1).with_time_bounds(30, 0).validate().is_ok());
}

#[test]
fn zero_and_negative_amounts_are_rejected() {
    for amount in [0, -1, i64::MIN] {
        let b = batch(2).with_payment(key(9), Asset::Native, Stroops(amount));
        assert!(matches!(
            b.validate(),
            Err(Error::NonPositiveAmount { index: 2, .. })
        ));
    }
}

#[test]
fn each_op_kind_becomes_its_operation() {
    let usdc = Asset::parse(&format!("USDC:{}", key(200))).unwrap();
    let tx = PaymentBatch::new(key(1), 1)
        .with_payment(key(2), usdc, Stroops(5))
        .with_create_account(key(3), Stroops(10_000_000))
        .with_claimable_balance(key(4), usdc, Stroops(7))
        .to_transaction()
        .unwrap();
    let bodies: Vec<&xdr::OperationBody> = tx.operations.iter().map(|o| &o.body).collect();
    assert!(matches!(bodies[0], xdr::OperationBody::Payment(p) if p.amount == 5));
    let xdr::OperationBody::CreateAccount(c) = bodies[1] else {
        panic!("{:?}", bodies[1]);
    };
    assert_eq!(
        (c.destination.clone(), c.starting_balance),
        (account_id(&key(3)), 10_000_000)
    );
    let xdr::OperationBody::CreateClaimableBalance(cb) = bodies[2] else {
        panic!("{:?}", bodies[2]);
    };
    assert_eq!((cb.asset.clone(), cb.amount), (usdc.to_xdr(), 7));
    assert_eq!(
        cb.claimants.to_vec(),
        vec![xdr::Claimant::ClaimantTypeV0(xdr::ClaimantV0 {
            destination: account_id(&key(4)),
            predicate: xdr::ClaimPredicate::Unconditional,
        })]
    );
}

#[test]
fn create_account_pays_native_only() {
    let usdc = Asset::parse(&format!("USDC:{}", key(200))).unwrap();
    let mut b = batch(2);
    b.payments.push(Payment::with_op(
        PayoutOp::CreateAccount,
        key(9),
        usdc,
        Stroops(1),
    ));
    assert!(matches!(
        b.validate(),
        Err(Error::OpAsset {
            index: 2,
            op: "create_account",
            ..
        })
    ));
    assert!(b.to_transaction().is_err());
    assert!(b
        .sign(&Keypair::from_seed(&[1; 32]), &Network::testnet())
        .is_err());
    assert!(PayoutOp::Payment.supports(&usdc) && PayoutOp::ClaimableBalance.supports(&usdc));
    assert!(PayoutOp::CreateAccount.supports(&Asset::Native));
}

#[test]
fn op_names_round_trip() {
    for op in PayoutOp::ALL {
        assert_eq!(PayoutOp::parse(op.as_str()), Some(op));
        assert_eq!(serde_json::to_string(&op).unwrap(), format!("\"{op}\""));
    }
    assert_eq!(PayoutOp::default(), PayoutOp::Payment);
    assert!(PayoutOp::Payment.is_payment() && !PayoutOp::CreateAccount.is_payment());
    assert_eq!(PayoutOp::parse("Payment"), None);
}

#[test]
fn signing_needs_the_source_key() {
    let b = batch(1);
    let other = Keypair::from_seed(&[42; 32]);
    assert!(matches!(
        b.sign(&other, &Network::testnet()),
        Err(Error::SignerMismatch { .. })
    ));
}

#[test]
fn direct_encoding_equals_stellar_xdr_encoding() {
    let kp = Keypair::from_seed(&[1; 32]);
    for ops in [1, 2, 3, 5, 50, 100] {
        for variant in 0..6 {
            let base = if variant < 3 { batch(ops) } else { mixed(ops) };
            let mut b = base.with_base_fee(100 + variant);
            let variant = variant % 3;
            if variant == 1 {
                b.time_bounds = None;
            }
            if variant == 2 {
                b.memo_hash = None;
            }
            let network = Network::testnet();
            let signed = b.sign(&kp, &network).unwrap();
            let tx = b.to_transaction().unwrap();
            assert_eq!(signed.hash, tx.hash(network.network_id()).unwrap());
            let envelope = xdr::TransactionEnvelope::Tx(xdr::TransactionV1Envelope {
                tx,
                signatures: vec![xdr::DecoratedSignature {
                    hint: xdr::SignatureHint(kp.public_key().hint()),
                    signature: xdr::Signature(signed.signature.to_vec().try_into().unwrap()),
                }]
                .try_into()
                .unwrap(),
            });
            assert_eq!(
                signed.envelope_xdr,
                envelope.to_xdr_base64(Limits::none()).unwrap()
            );
            assert_eq!(signed.envelope().unwrap(), envelope);
            assert!(kp.verify(&signed.hash, &signed.signature));
        }
    }
}

#[test]
fn the_network_changes_the_hash() {
    let kp = Keypair::from_seed(&[1; 32]);
    let a = batch(1).sign(&kp, &Network::testnet()).unwrap();
    let b = batch(1).sign(&kp, &Network::public()).unwrap();
    assert_ne!(a.hash, b.hash);
    assert_eq!(a.hash_hex().len(), 64);
}
