//! Golden vectors: envelopes made by the Python stellar-sdk
//! (`tests/golden/make_vectors.py`, regenerated only on purpose) must come
//! out of the Rust builder byte for byte, and decode back to their inputs,
//! for every op kind (`Payment`, `CreateAccount`, `CreateClaimableBalance`).

use serde::Deserialize;
use tally_settlement::{
    decode_envelope, verify_signature, Asset, Keypair, Network, Payment, PaymentBatch, PayoutOp,
    PublicKey, Stroops, TimeBounds,
};

#[derive(Deserialize)]
struct Vectors {
    vectors: Vec<Vector>,
}

#[derive(Deserialize)]
struct Vector {
    name: String,
    network: String,
    source_seed_hex: String,
    source_secret: String,
    source: String,
    seq: i64,
    base_fee: u32,
    min_time: u64,
    max_time: u64,
    memo_hash: String,
    payments: Vec<VectorPayment>,
    fee: u32,
    envelope_xdr: String,
    tx_hash: String,
}

#[derive(Deserialize)]
struct VectorPayment {
    destination: String,
    asset: String,
    amount: i64,
    /// `payment` when absent.
    #[serde(default)]
    op: PayoutOp,
}

fn vectors() -> Vec<Vector> {
    let text = include_str!("golden/vectors.json");
    let v: Vectors = serde_json::from_str(text).expect("vectors.json parses");
    assert!(v.vectors.len() >= 12, "expected at least 12 golden vectors");
    v.vectors
}

impl Vector {
    fn network(&self) -> Network {
        Network::parse(&self.network).unwrap()
    }

    fn payments(&self) -> Vec<Payment> {
        self.payments
            .iter()
            .map(|p| {
                Payment::with_op(
                    p.op,
                    PublicKey::parse(&p.destination).unwrap(),
                    Asset::parse(&p.asset).unwrap(),
                    Stroops(p.amount),
                )
            })
            .collect()
    }

    fn memo(&self) -> [u8; 32] {
        hex::decode(&self.memo_hash).unwrap().try_into().unwrap()
    }

    fn batch(&self) -> PaymentBatch {
        PaymentBatch::new(PublicKey::parse(&self.source).unwrap(), self.seq)
            .with_base_fee(self.base_fee)
            .with_time_bounds(self.min_time, self.max_time)
            .with_memo_hash(self.memo())
            .with_payments(self.payments())
    }
}

#[test]
fn keys_from_the_vectors_match_stellar_sdk() {
    for v in vectors() {
        let seed: [u8; 32] = hex::decode(&v.source_seed_hex).unwrap().try_into().unwrap();
        let kp = Keypair::from_seed(&seed);
        assert_eq!(
            kp,
            Keypair::from_secret(&v.source_secret).unwrap(),
            "{}",
            v.name
        );
        assert_eq!(kp.public_key().to_string(), v.source, "{}", v.name);
        assert_eq!(kp.secret_strkey(), v.source_secret, "{}", v.name);
    }
}

#[test]
fn rust_envelopes_are_byte_identical_to_stellar_sdk() {
    for v in vectors() {
        let kp = Keypair::from_secret(&v.source_secret).unwrap();
        let signed = v.batch().sign(&kp, &v.network()).unwrap();
        assert_eq!(signed.envelope_xdr, v.envelope_xdr, "{}: envelope", v.name);
        assert_eq!(signed.hash_hex(), v.tx_hash, "{}: tx hash", v.name);
        let theirs = decode_envelope(&v.envelope_xdr).unwrap().signatures;
        assert_eq!(theirs.len(), 1, "{}", v.name);
        assert_eq!(
            theirs[0].signature, signed.signature,
            "{}: signature",
            v.name
        );
        assert_eq!(v.batch().validate().unwrap(), v.fee, "{}: fee", v.name);
    }
}

#[test]
fn stellar_xdr_transactions_hash_like_stellar_sdk() {
    for v in vectors() {
        let tx = v.batch().to_transaction().unwrap();
        let hash = tx.hash(v.network().network_id()).unwrap();
        assert_eq!(hex::encode(hash), v.tx_hash, "{}", v.name);
    }
}

#[test]
fn stellar_sdk_envelopes_decode_to_their_inputs() {
    for v in vectors() {
        let d = decode_envelope(&v.envelope_xdr).unwrap();
        assert_eq!(d.source.to_string(), v.source, "{}", v.name);
        assert_eq!(d.seq, v.seq, "{}", v.name);
        assert_eq!(d.fee, v.fee, "{}", v.name);
        assert_eq!(
            d.time_bounds,
            Some(TimeBounds {
                min_time: v.min_time,
                max_time: v.max_time
            }),
            "{}",
            v.name
        );
        assert_eq!(d.memo_hash, Some(v.memo()), "{}", v.name);
        let ops: Vec<PayoutOp> = d.payments.iter().map(|p| p.op).collect();
        let expected: Vec<PayoutOp> = v.payments.iter().map(|p| p.op).collect();
        assert_eq!(ops, expected, "{}: op kinds", v.name);
        assert_eq!(d.payments, v.payments(), "{}", v.name);
        assert_eq!(d.signatures.len(), 1, "{}", v.name);
        assert_eq!(hex::encode(d.tx_hash(&v.network()).unwrap()), v.tx_hash);
        assert_eq!(d.to_batch().unwrap(), v.batch(), "{}", v.name);
        for p in &d.payments {
            // Text forms round-trip too.
            let text = p.asset.to_string();
            assert!(v.payments.iter().any(|q| q.asset == text), "{}", v.name);
        }
    }
}

#[test]
fn stellar_sdk_signatures_verify_for_their_network_only() {
    for v in vectors() {
        let source = PublicKey::parse(&v.source).unwrap();
        let network = v.network();
        assert!(
            verify_signature(&v.envelope_xdr, &network, &source),
            "{}",
            v.name
        );
        let other = if network == Network::testnet() {
            Network::public()
        } else {
            Network::testnet()
        };
        assert!(
            !verify_signature(&v.envelope_xdr, &other, &source),
            "{}",
            v.name
        );
    }
}

#[test]
fn the_vectors_cover_what_they_claim() {
    let vs = vectors();
    let ops: Vec<usize> = vs.iter().map(|v| v.payments.len()).collect();
    for n in [1, 3, 100] {
        assert!(ops.contains(&n), "no vector with {n} ops");
    }
    let names: Vec<&str> = vs.iter().map(|v| v.network().name()).collect();
    for n in ["testnet", "public", "custom"] {
        assert!(names.contains(&n), "no {n} vector");
    }
    let assets: Vec<Asset> = vs
        .iter()
        .flat_map(|v| v.payments())
        .map(|p| p.asset)
        .collect();
    assert!(assets.contains(&Asset::Native));
    let credit = |four: bool| {
        assets
            .iter()
            .any(|a| matches!(a, Asset::Credit { code, .. } if code.is_alphanum4() == four))
    };
    assert!(
        credit(true) && credit(false),
        "alphanum4 and alphanum12 both covered"
    );
}

#[test]
fn the_vectors_cover_every_op_kind() {
    let vs = vectors();
    let payments: Vec<Payment> = vs.iter().flat_map(|v| v.payments()).collect();
    let has = |op: PayoutOp, native: bool| {
        payments
            .iter()
            .any(|p| p.op == op && (p.asset == Asset::Native) == native)
    };
    assert!(has(PayoutOp::CreateAccount, true), "create_account");
    assert!(
        !has(PayoutOp::CreateAccount, false),
        "create_account pays lumens only"
    );
    for native in [true, false] {
        assert!(
            has(PayoutOp::ClaimableBalance, native),
            "claimable, native {native}"
        );
        assert!(has(PayoutOp::Payment, native), "payment, native {native}");
    }
    let kinds = |v: &Vector| {
        let mut ops: Vec<PayoutOp> = v.payments.iter().map(|p| p.op).collect();
        ops.sort();
        ops.dedup();
        ops
    };
    // Alone (a vector of one kind) and mixed (all three in one transaction).
    for op in [PayoutOp::CreateAccount, PayoutOp::ClaimableBalance] {
        assert!(vs.iter().any(|v| kinds(v) == [op]), "{op} alone");
    }
    let mixed: Vec<&Vector> = vs.iter().filter(|v| kinds(v).len() == 3).collect();
    assert!(
        mixed.iter().any(|v| v.payments.len() == 100),
        "100 mixed ops"
    );
    assert!(
        mixed
            .iter()
            .any(|v| v.payments().iter().any(|p| p.asset != Asset::Native)),
        "mixed ops with a credit asset"
    );
    assert!(
        mixed
            .iter()
            .any(|v| v.payments().iter().all(|p| p.asset == Asset::Native)),
        "mixed native ops"
    );
}
