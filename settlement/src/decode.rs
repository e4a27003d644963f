//! Reading a payment envelope back: what the auditor checks records against.
//!
//! [`decode_envelope`] accepts exactly what [`PaymentBatch`] produces — a
//! `TransactionEnvelope::Tx` from a plain ed25519 account whose ops are
//! `Payment`, `CreateAccount` or `CreateClaimableBalance` with exactly one
//! claimant and an unconditional predicate (the three [`PayoutOp`]s), no
//! per-op sources, plain (not muxed) accounts, optional time bounds, no
//! memo or a `MemoHash`, no Soroban data — and rejects everything else as
//! [`Error::Unsupported`], so nothing in an envelope escapes the check.

use stellar_xdr as xdr;
use stellar_xdr::ReadXdr;

use crate::amount::Stroops;
use crate::asset::Asset;
use crate::error::{Error, Result};
use crate::keys::PublicKey;
use crate::network::Network;
use crate::tx::{Payment, PaymentBatch, PayoutOp, SignedTx, TimeBounds};

/// Limits for decoding untrusted envelopes: a 100-op payment envelope is
/// under 16 KiB and a few levels deep.
pub(crate) fn decode_limits() -> xdr::Limits {
    xdr::Limits {
        depth: 64,
        len: 256 * 1024,
    }
}

/// One signature of an envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedSignature {
    /// The last 4 bytes of the signer's public key (a hint, not a proof).
    pub hint: [u8; 4],
    pub signature: Vec<u8>,
}

/// The contents of a payment envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedPayment {
    pub source: PublicKey,
    pub seq: i64,
    /// The total fee (base fee x ops for envelopes Tally built).
    pub fee: u32,
    pub time_bounds: Option<TimeBounds>,
    pub memo_hash: Option<[u8; 32]>,
    pub payments: Vec<Payment>,
    pub signatures: Vec<DecodedSignature>,
    tx: xdr::Transaction,
}

impl DecodedPayment {
    /// The transaction hash on `network` (the built-in `Transaction::hash`).
    pub fn tx_hash(&self, network: &Network) -> Result<[u8; 32]> {
        Ok(self.tx.hash(network.network_id())?)
    }

    /// Whether one of the signatures is `signer`'s over the hash on `network`.
    pub fn is_signed_by(&self, network: &Network, signer: &PublicKey) -> bool {
        let Ok(hash) = self.tx_hash(network) else {
            return false;
        };
        self.signatures
            .iter()
            .any(|s| s.hint == signer.hint() && signer.verify(&hash, &s.signature))
    }

    /// The base fee per operation, when the fee divides evenly.
    pub fn base_fee(&self) -> Option<u32> {
        let ops = self.payments.len() as u32;
        (ops > 0 && self.fee.is_multiple_of(ops)).then(|| self.fee / ops)
    }

    /// A batch that rebuilds this transaction, when the fee is base fee x ops.
    pub fn to_batch(&self) -> Option<PaymentBatch> {
        let mut batch = PaymentBatch::new(self.source, self.seq)
            .with_base_fee(self.base_fee()?)
            .with_payments(self.payments.iter().copied());
        if let Some(tb) = self.time_bounds {
            batch = batch.with_time_bounds(tb.min_time, tb.max_time);
        }
        if let Some(memo) = self.memo_hash {
            batch = batch.with_memo_hash(memo);
        }
        Some(batch)
    }

    /// The decoded XDR transaction.
    pub fn transaction(&self) -> &xdr::Transaction {
        &self.tx
    }
}

/// Decode a base64 `TransactionEnvelope` holding a Tally payment batch.
pub fn decode_envelope(envelope_xdr: &str) -> Result<DecodedPayment> {
    let envelope = xdr::TransactionEnvelope::from_xdr_base64(envelope_xdr.trim(), decode_limits())?;
    let xdr::TransactionEnvelope::Tx(v1) = envelope else {
        return Err(Error::Unsupported("not a v1 transaction envelope"));
    };
    let tx = v1.tx;
    let source = plain_account(&tx.source_account)?;
    let time_bounds = match &tx.cond {
        xdr::Preconditions::None => None,
        xdr::Preconditions::Time(tb) => Some(TimeBounds {
            min_time: tb.min_time.0,
            max_time: tb.max_time.0,
        }),
        xdr::Preconditions::V2(_) => return Err(Error::Unsupported("v2 preconditions")),
    };
    let memo_hash = match &tx.memo {
        xdr::Memo::None => None,
        xdr::Memo::Hash(h) => Some(h.0),
        _ => return Err(Error::Unsupported("a memo other than MemoHash")),
    };
    if !matches!(tx.ext, xdr::TransactionExt::V0) {
        return Err(Error::Unsupported("Soroban transaction data"));
    }
    let payments = tx
        .operations
        .iter()
        .map(decode_op)
        .collect::<Result<Vec<_>>>()?;
    let signatures = v1
        .signatures
        .iter()
        .map(|s| DecodedSignature {
            hint: s.hint.0,
            signature: s.signature.0.to_vec(),
        })
        .collect();
    Ok(DecodedPayment {
        source,
        seq: tx.seq_num.0,
        fee: tx.fee,
        time_bounds,
        memo_hash,
        payments,
        signatures,
        tx,
    })
}

/// Whether `envelope_xdr` decodes and carries `expected_signer`'s valid
/// signature of its transaction hash on `network`.
pub fn verify_signature(
    envelope_xdr: &str,
    network: &Network,
    expected_signer: &PublicKey,
) -> bool {
    decode_envelope(envelope_xdr).is_ok_and(|d| d.is_signed_by(network, expected_signer))
}

/// One operation as a [`Payment`], when it is one of the [`PayoutOp`] shapes.
fn decode_op(op: &xdr::Operation) -> Result<Payment> {
    if op.source_account.is_some() {
        return Err(Error::Unsupported("an operation with its own source"));
    }
    match &op.body {
        xdr::OperationBody::Payment(p) => Ok(Payment::new(
            plain_account(&p.destination)?,
            Asset::from_xdr(&p.asset)?,
            Stroops(p.amount),
        )),
        xdr::OperationBody::CreateAccount(c) => Ok(Payment::create_account(
            account(&c.destination),
            Stroops(c.starting_balance),
        )),
        xdr::OperationBody::CreateClaimableBalance(c) => {
            let [xdr::Claimant::ClaimantTypeV0(claimant)] = c.claimants.as_slice() else {
                return Err(Error::Unsupported(
                    "a claimable balance without exactly one claimant",
                ));
            };
            if claimant.predicate != xdr::ClaimPredicate::Unconditional {
                return Err(Error::Unsupported(
                    "a claimable balance with a conditional predicate",
                ));
            }
            Ok(Payment::with_op(
                PayoutOp::ClaimableBalance,
                account(&claimant.destination),
                Asset::from_xdr(&c.asset)?,
                Stroops(c.amount),
            ))
        }
        _ => Err(Error::Unsupported(
            "an operation other than Payment, CreateAccount or CreateClaimableBalance",
        )),
    }
}

fn account(id: &xdr::AccountId) -> PublicKey {
    let xdr::PublicKey::PublicKeyTypeEd25519(xdr::Uint256(bytes)) = &id.0;
    PublicKey::from_bytes(*bytes)
}

fn plain_account(account: &xdr::MuxedAccount) -> Result<PublicKey> {
    match account {
        xdr::MuxedAccount::Ed25519(xdr::Uint256(bytes)) => Ok(PublicKey::from_bytes(*bytes)),
        xdr::MuxedAccount::MuxedEd25519(_) => Err(Error::Unsupported("a muxed (M...) account")),
    }
}

impl SignedTx {
    /// The envelope as an XDR value.
    pub fn envelope(&self) -> Result<xdr::TransactionEnvelope> {
        Ok(xdr::TransactionEnvelope::from_xdr_base64(
            &self.envelope_xdr,
            decode_limits(),
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Keypair;
    use xdr::{Limits, WriteXdr};

    fn signed(network: &Network) -> (Keypair, PaymentBatch, String) {
        let kp = Keypair::from_seed(&[5; 32]);
        let usdc = Asset::parse(&format!("USDC:{}", kp.public_key())).unwrap();
        let batch = PaymentBatch::new(kp.public_key(), 1 << 33)
            .with_time_bounds(100, 200)
            .with_memo_hash([7; 32])
            .with_payment(Keypair::from_seed(&[6; 32]).public_key(), usdc, Stroops(5))
            .with_payment(kp.public_key(), Asset::Native, Stroops(i64::MAX));
        let envelope = batch.sign(&kp, network).unwrap().envelope_xdr;
        (kp, batch, envelope)
    }

    #[test]
    fn a_signed_batch_decodes_to_its_inputs() {
        let network = Network::testnet();
        let (kp, batch, envelope) = signed(&network);
        let decoded = decode_envelope(&envelope).unwrap();
        assert_eq!(decoded.source, kp.public_key());
        assert_eq!(decoded.fee, 200);
        assert_eq!(decoded.to_batch().unwrap(), batch);
        assert_eq!(decoded.signatures.len(), 1);
        assert_eq!(decoded.signatures[0].hint, kp.public_key().hint());
        let hash = batch.sign(&kp, &network).unwrap().hash;
        assert_eq!(decoded.tx_hash(&network).unwrap(), hash);
    }

    /// A signed batch with one op of each kind, and its envelope as XDR.
    fn mixed_ops() -> (PaymentBatch, xdr::TransactionEnvelope) {
        let kp = Keypair::from_seed(&[5; 32]);
        let usdc = Asset::parse(&format!("USDC:{}", kp.public_key())).unwrap();
        let to = |i: u8| Keypair::from_seed(&[i; 32]).public_key();
        let batch = PaymentBatch::new(kp.public_key(), 3)
            .with_memo_hash([1; 32])
            .with_create_account(to(6), Stroops(10_000_000))
            .with_payment(to(7), usdc, Stroops(2))
            .with_claimable_balance(to(8), usdc, Stroops(3))
            .with_claimable_balance(to(9), Asset::Native, Stroops(4));
        let envelope = batch.sign(&kp, &Network::testnet()).unwrap();
        (batch, envelope.envelope().unwrap())
    }

    #[test]
    fn every_op_kind_decodes_back() {
        let (batch, envelope) = mixed_ops();
        let decoded = decode_envelope(&envelope.to_xdr_base64(Limits::none()).unwrap()).unwrap();
        let ops: Vec<PayoutOp> = decoded.payments.iter().map(|p| p.op).collect();
        use PayoutOp::*;
        assert_eq!(
            ops,
            [CreateAccount, Payment, ClaimableBalance, ClaimableBalance]
        );
        assert_eq!(decoded.payments[0].asset, Asset::Native);
        assert_eq!(decoded.to_batch().unwrap(), batch);
    }

    #[test]
    fn claimable_balances_tally_did_not_make_are_unsupported() {
        let (_, envelope) = mixed_ops();
        let edit = |f: &dyn Fn(&mut xdr::CreateClaimableBalanceOp)| {
            let mut env = envelope.clone();
            if let xdr::TransactionEnvelope::Tx(v1) = &mut env {
                let mut ops = v1.tx.operations.to_vec();
                if let xdr::OperationBody::CreateClaimableBalance(c) = &mut ops[2].body {
                    f(c);
                }
                v1.tx.operations = ops.try_into().unwrap();
            }
            decode_envelope(&env.to_xdr_base64(Limits::none()).unwrap())
        };
        assert!(edit(&|_| {}).is_ok());
        let conditional = edit(&|c| {
            let mut claimants = c.claimants.to_vec();
            let xdr::Claimant::ClaimantTypeV0(v0) = &mut claimants[0];
            v0.predicate = xdr::ClaimPredicate::BeforeRelativeTime(60);
            c.claimants = claimants.try_into().unwrap();
        });
        assert!(matches!(conditional, Err(Error::Unsupported(_))));
        let two = edit(&|c| {
            let mut claimants = c.claimants.to_vec();
            claimants.push(claimants[0].clone());
            c.claimants = claimants.try_into().unwrap();
        });
        assert!(matches!(two, Err(Error::Unsupported(_))));
        let none = edit(&|c| c.claimants = Vec::new().try_into().unwrap());
        assert!(matches!(none, Err(Error::Unsupported(_))));
    }

    #[test]
    fn signatures_verify_only_for_the_signer_and_network() {
        let network = Network::testnet();
        let (kp, _, envelope) = signed(&network);
        assert!(verify_signature(&envelope, &network, &kp.public_key()));
        assert!(!verify_signature(
            &envelope,
            &Network::public(),
            &kp.public_key()
        ));
        let stranger = Keypair::from_seed(&[8; 32]).public_key();
        assert!(!verify_signature(&envelope, &network, &stranger));
        assert!(!verify_signature("AAAA", &network, &kp.public_key()));
    }

    /// `envelope` with its transaction changed by `change`, re-encoded.
    fn altered(envelope: &str, change: impl FnOnce(&mut xdr::TransactionV1Envelope)) -> String {
        let mut env = xdr::TransactionEnvelope::from_xdr_base64(envelope, Limits::none()).unwrap();
        if let xdr::TransactionEnvelope::Tx(v1) = &mut env {
            change(v1);
        }
        env.to_xdr_base64(Limits::none()).unwrap()
    }

    #[test]
    fn a_tampered_envelope_fails_verification() {
        let network = Network::testnet();
        let (kp, _, envelope) = signed(&network);
        let tampered = altered(&envelope, |v1| {
            let mut ops = v1.tx.operations.to_vec();
            if let xdr::OperationBody::Payment(p) = &mut ops[0].body {
                p.amount += 1;
            }
            v1.tx.operations = ops.try_into().unwrap();
        });
        assert!(decode_envelope(&tampered).is_ok());
        assert!(!verify_signature(&tampered, &network, &kp.public_key()));
    }

    #[test]
    fn foreign_envelopes_are_unsupported() {
        let network = Network::testnet();
        let (_, _, envelope) = signed(&network);
        let memo_id = altered(&envelope, |v1| v1.tx.memo = xdr::Memo::Id(5));
        assert!(matches!(
            decode_envelope(&memo_id),
            Err(Error::Unsupported(_))
        ));
        assert!(matches!(decode_envelope("not base64!"), Err(Error::Xdr(_))));
        assert!(matches!(
            decode_envelope(&format!("{envelope}AAAA")),
            Err(Error::Xdr(_))
        ));
    }
}
