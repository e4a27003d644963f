//! Payment batches: one Stellar transaction, one `Payment` op per payee.
//!
//! A [`PaymentBatch`] is validated (1-100 ops, positive amounts, fee =
//! base fee x ops fits in a `u32`) and then either turned into the XDR
//! [`Transaction`](stellar_xdr::Transaction) or signed into a
//! [`SignedTx`]: the `TransactionEnvelope::Tx` with one decorated
//! signature over `sha256(network_id || ENVELOPE_TYPE_TX || tx)`, as
//! base64 XDR, plus the transaction hash.
//!
//! Signing writes the XDR bytes directly ([`crate::encode`]); tests check
//! those bytes against `stellar-xdr`'s encoding of [`PaymentBatch::to_transaction`]
//! and against envelopes made by the Python `stellar-sdk` (`tests/golden.rs`).

use stellar_xdr as xdr;

use crate::amount::Stroops;
use crate::asset::Asset;
use crate::encode::TxSigner;
use crate::error::{Error, Result};
use crate::keys::{Keypair, PublicKey};
use crate::network::Network;

/// At most this many operations fit in one Stellar transaction.
pub const MAX_OPS: usize = 100;
/// The network's minimum base fee per operation, in stroops.
pub const DEFAULT_BASE_FEE: u32 = 100;

/// One payment: `amount` of `asset` to `destination`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Payment {
    pub destination: PublicKey,
    pub asset: Asset,
    pub amount: Stroops,
}

/// A transaction's validity window in unix seconds; `max_time == 0` means
/// no upper bound (never use that for payouts: a replacement is only safe
/// once a ledger has closed past `max_time`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimeBounds {
    pub min_time: u64,
    pub max_time: u64,
}

/// The inputs of one payment transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentBatch {
    source: PublicKey,
    seq: i64,
    base_fee: u32,
    time_bounds: Option<TimeBounds>,
    memo_hash: Option<[u8; 32]>,
    payments: Vec<Payment>,
}

impl PaymentBatch {
    /// A batch from `source` using sequence number `seq`: the number the
    /// transaction carries, i.e. the account's current sequence + 1.
    pub fn new(source: PublicKey, seq: i64) -> Self {
        PaymentBatch {
            source,
            seq,
            base_fee: DEFAULT_BASE_FEE,
            time_bounds: None,
            memo_hash: None,
            payments: Vec::new(),
        }
    }

    /// The fee per operation in stroops (default 100).
    pub fn with_base_fee(mut self, base_fee: u32) -> Self {
        self.base_fee = base_fee;
        self
    }

    /// Valid from `min_time` to `max_time` (unix seconds, inclusive).
    pub fn with_time_bounds(mut self, min_time: u64, max_time: u64) -> Self {
        self.time_bounds = Some(TimeBounds { min_time, max_time });
        self
    }

    /// A `MemoHash`: for Tally, the hash of the settlement record body.
    pub fn with_memo_hash(mut self, memo: [u8; 32]) -> Self {
        self.memo_hash = Some(memo);
        self
    }

    /// Add one payment.
    pub fn with_payment(mut self, destination: PublicKey, asset: Asset, amount: Stroops) -> Self {
        self.payments.push(Payment {
            destination,
            asset,
            amount,
        });
        self
    }

    /// Add several payments.
    pub fn with_payments<I: IntoIterator<Item = Payment>>(mut self, payments: I) -> Self {
        self.payments.extend(payments);
        self
    }

    pub fn source(&self) -> PublicKey {
        self.source
    }
    pub fn seq(&self) -> i64 {
        self.seq
    }
    pub fn base_fee(&self) -> u32 {
        self.base_fee
    }
    pub fn time_bounds(&self) -> Option<TimeBounds> {
        self.time_bounds
    }
    pub fn memo_hash(&self) -> Option<[u8; 32]> {
        self.memo_hash
    }
    pub fn payments(&self) -> &[Payment] {
        &self.payments
    }

    /// Check the batch and return its total fee (base fee x ops).
    pub fn validate(&self) -> Result<u32> {
        let ops = self.payments.len();
        if ops == 0 || ops > MAX_OPS {
            return Err(Error::OpCount(ops));
        }
        if let Some((index, p)) = self
            .payments
            .iter()
            .enumerate()
            .find(|(_, p)| !p.amount.is_positive())
        {
            return Err(Error::NonPositiveAmount {
                index,
                amount: p.amount.0,
            });
        }
        if let Some(TimeBounds { min_time, max_time }) = self.time_bounds {
            if max_time != 0 && min_time > max_time {
                return Err(Error::TimeBounds {
                    min: min_time,
                    max: max_time,
                });
            }
        }
        self.base_fee
            .checked_mul(ops as u32)
            .ok_or(Error::FeeOverflow {
                base_fee: self.base_fee,
                ops,
            })
    }

    /// The XDR transaction this batch describes.
    pub fn to_transaction(&self) -> Result<xdr::Transaction> {
        let fee = self.validate()?;
        let operations: Vec<xdr::Operation> = self
            .payments
            .iter()
            .map(|p| xdr::Operation {
                source_account: None,
                body: xdr::OperationBody::Payment(xdr::PaymentOp {
                    destination: muxed(&p.destination),
                    asset: p.asset.to_xdr(),
                    amount: p.amount.0,
                }),
            })
            .collect();
        Ok(xdr::Transaction {
            source_account: muxed(&self.source),
            fee,
            seq_num: xdr::SequenceNumber(self.seq),
            cond: match self.time_bounds {
                None => xdr::Preconditions::None,
                Some(tb) => xdr::Preconditions::Time(xdr::TimeBounds {
                    min_time: xdr::TimePoint(tb.min_time),
                    max_time: xdr::TimePoint(tb.max_time),
                }),
            },
            memo: match self.memo_hash {
                None => xdr::Memo::None,
                Some(h) => xdr::Memo::Hash(xdr::Hash(h)),
            },
            operations: operations.try_into()?,
            ext: xdr::TransactionExt::V0,
        })
    }

    /// Sign with `keypair` (which must be the source account's) for `network`.
    pub fn sign(&self, keypair: &Keypair, network: &Network) -> Result<SignedTx> {
        TxSigner::new(keypair.clone(), network).sign(self)
    }
}

/// A signed transaction, ready to store and submit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedTx {
    /// `TransactionEnvelope` as base64 XDR: what Horizon and RPC accept.
    pub envelope_xdr: String,
    /// The transaction hash, `sha256(network_id || ENVELOPE_TYPE_TX || tx)`.
    pub hash: [u8; 32],
    /// The source account's ed25519 signature of `hash`.
    pub signature: [u8; 64],
}

impl SignedTx {
    /// The hash as 64 lowercase hex characters, as explorers show it.
    pub fn hash_hex(&self) -> String {
        hex::encode(self.hash)
    }

    /// The envelope as an XDR value.
    pub fn envelope(&self) -> Result<xdr::TransactionEnvelope> {
        use xdr::ReadXdr;
        Ok(xdr::TransactionEnvelope::from_xdr_base64(
            &self.envelope_xdr,
            crate::decode::decode_limits(),
        )?)
    }
}

/// A plain (unmultiplexed) `MuxedAccount` for an ed25519 key.
pub(crate) fn muxed(key: &PublicKey) -> xdr::MuxedAccount {
    xdr::MuxedAccount::Ed25519(xdr::Uint256(*key.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
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
        for ops in [1, 2, 3, 50, 100] {
            for variant in 0..3 {
                let mut b = batch(ops).with_base_fee(100 + variant);
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
}
