//! Properties over random batches (every op kind) and assets: the direct
//! encoder agrees with `stellar-xdr`, decoding inverts signing, text forms
//! round-trip.

use proptest::prelude::*;
use stellar_xdr::{Limits, WriteXdr};
use tally_settlement::{
    decode_envelope, verify_signature, Asset, Keypair, Network, Payment, PaymentBatch, PayoutOp,
    PublicKey, Stroops,
};

fn key() -> impl Strategy<Value = PublicKey> {
    any::<[u8; 32]>().prop_map(|seed| Keypair::from_seed(&seed).public_key())
}

fn asset() -> impl Strategy<Value = Asset> {
    prop_oneof![
        Just(Asset::Native),
        ("[A-Za-z0-9]{1,12}", key())
            .prop_map(|(code, issuer)| Asset::parse(&format!("{code}:{issuer}")).unwrap()),
    ]
}

fn op() -> impl Strategy<Value = PayoutOp> {
    prop_oneof![
        Just(PayoutOp::Payment),
        Just(PayoutOp::CreateAccount),
        Just(PayoutOp::ClaimableBalance),
    ]
}

/// Any op; `create_account` always in the native asset (the only one it pays).
fn payment() -> impl Strategy<Value = Payment> {
    (op(), key(), asset(), 1..=i64::MAX).prop_map(|(op, destination, asset, amount)| {
        let asset = if op == PayoutOp::CreateAccount {
            Asset::Native
        } else {
            asset
        };
        Payment::with_op(op, destination, asset, Stroops(amount))
    })
}

fn network() -> impl Strategy<Value = Network> {
    prop_oneof![
        Just(Network::testnet()),
        Just(Network::public()),
        "[a-zA-Z ;0-9]{1,40}".prop_map(|p| Network::from_passphrase(&p).unwrap()),
    ]
}

prop_compose! {
    fn batch(source: PublicKey)(
        seq in any::<i64>(),
        base_fee in 100u32..=42_000_000,
        bounds in proptest::option::of((any::<u32>(), any::<u32>())),
        memo in proptest::option::of(any::<[u8; 32]>()),
        payments in proptest::collection::vec(payment(), 1..=100),
    ) -> PaymentBatch {
        let mut b = PaymentBatch::new(source, seq).with_base_fee(base_fee).with_payments(payments);
        if let Some((a, z)) = bounds {
            b = b.with_time_bounds(u64::from(a.min(z)), u64::from(a.max(z)));
        }
        if let Some(memo) = memo {
            b = b.with_memo_hash(memo);
        }
        b
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn signing_agrees_with_stellar_xdr_and_decoding_inverts_it(
        seed in any::<[u8; 32]>(),
        network in network(),
        b in batch(Keypair::from_seed(&[0; 32]).public_key()),
    ) {
        let kp = Keypair::from_seed(&seed);
        let b = PaymentBatch::new(kp.public_key(), b.seq())
            .with_base_fee(b.base_fee())
            .with_payments(b.payments().iter().copied());
        let signed = b.sign(&kp, &network).unwrap();
        let tx = b.to_transaction().unwrap();
        prop_assert_eq!(signed.hash, tx.hash(network.network_id()).unwrap());
        let envelope = signed.envelope().unwrap();
        prop_assert_eq!(envelope.to_xdr_base64(Limits::none()).unwrap(), signed.envelope_xdr.clone());
        let decoded = decode_envelope(&signed.envelope_xdr).unwrap();
        prop_assert_eq!(decoded.to_batch().unwrap(), b);
        prop_assert!(verify_signature(&signed.envelope_xdr, &network, &kp.public_key()));
    }

    #[test]
    fn batches_with_bounds_and_memos_round_trip(b in batch(Keypair::from_seed(&[7; 32]).public_key())) {
        let kp = Keypair::from_seed(&[7; 32]);
        let signed = b.sign(&kp, &Network::testnet()).unwrap();
        let decoded = decode_envelope(&signed.envelope_xdr).unwrap();
        prop_assert_eq!(decoded.to_batch().unwrap(), b);
    }

    #[test]
    fn assets_round_trip_through_text(a in asset()) {
        prop_assert_eq!(Asset::parse(&a.to_string()).unwrap(), a);
        prop_assert_eq!(Asset::from_xdr(&a.to_xdr()).unwrap(), a);
    }

    #[test]
    fn asset_parsing_never_panics(s in "\\PC{0,80}") {
        let _ = Asset::parse(&s);
    }

    #[test]
    fn decoding_garbage_never_panics(s in "[A-Za-z0-9+/=]{0,200}") {
        let _ = decode_envelope(&s);
    }
}
