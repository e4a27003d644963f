//! Payment batches: one Stellar transaction, one operation per payee.
//!
//! Each [`Payment`] becomes the operation its [`PayoutOp`] names:
//!
//! | op | Stellar operation | destination must |
//! | --- | --- | --- |
//! | `payment` (default) | `Payment` | exist (and trust the asset) |
//! | `create_account` | `CreateAccount`, `starting_balance` = amount, native only | not exist yet |
//! | `claimable_balance` | `CreateClaimableBalance`, one claimant (the destination) with an unconditional predicate | nothing: it claims later |
//!
//! A [`PaymentBatch`] is validated (1-100 ops, positive amounts,
//! `create_account` only for the native asset, fee = base fee x ops fits
//! in a `u32`) and then either turned into the XDR
//! [`Transaction`](stellar_xdr::Transaction) or signed into a
//! [`SignedTx`]: the `TransactionEnvelope::Tx` with one decorated
//! signature over `sha256(network_id || ENVELOPE_TYPE_TX || tx)`, as
//! base64 XDR, plus the transaction hash.
//!
//! Signing writes the XDR bytes directly ([`crate::encode`]); tests check
//! those bytes against `stellar-xdr`'s encoding of [`PaymentBatch::to_transaction`]
//! and against envelopes made by the Python `stellar-sdk` (`tests/golden.rs`).

use serde::{Deserialize, Serialize};
use stellar_xdr as xdr;

use crate::amount::Stroops;
use crate::asset::Asset;
use crate::error::{Error, Result};
use crate::keys::PublicKey;

/// At most this many operations fit in one Stellar transaction.
pub const MAX_OPS: usize = 100;
/// The network's minimum base fee per operation, in stroops.
pub const DEFAULT_BASE_FEE: u32 = 100;

/// How a payout reaches its account: the kind of operation that pays it.
///
/// Serialized (and written in record encodings) in snake_case:
/// `payment`, `create_account`, `claimable_balance`.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum PayoutOp {
    /// A `Payment` op: fails if the destination account does not exist
    /// (or does not trust a credit asset).
    #[default]
    Payment,
    /// A `CreateAccount` op funding a new account with the amount as its
    /// starting balance. Native asset only; fails if the account exists.
    CreateAccount,
    /// A `CreateClaimableBalance` op the destination claims when it wants
    /// (one claimant, unconditional predicate): never fails on a missing
    /// destination.
    ClaimableBalance,
}

impl PayoutOp {
    /// Every op kind, the default first.
    pub const ALL: [PayoutOp; 3] = [
        PayoutOp::Payment,
        PayoutOp::CreateAccount,
        PayoutOp::ClaimableBalance,
    ];

    /// Whether this is the default, [`PayoutOp::Payment`].
    pub fn is_payment(&self) -> bool {
        *self == PayoutOp::Payment
    }

    /// The snake_case name: `payment`, `create_account`, `claimable_balance`.
    pub fn as_str(&self) -> &'static str {
        match self {
            PayoutOp::Payment => "payment",
            PayoutOp::CreateAccount => "create_account",
            PayoutOp::ClaimableBalance => "claimable_balance",
        }
    }

    /// The op kind named `name` (see [`as_str`](Self::as_str)).
    pub fn parse(name: &str) -> Option<Self> {
        PayoutOp::ALL.into_iter().find(|op| op.as_str() == name)
    }

    /// Whether this op can pay in `asset` (`create_account` pays lumens only).
    pub fn supports(&self, asset: &Asset) -> bool {
        *self != PayoutOp::CreateAccount || *asset == Asset::Native
    }
}

impl std::fmt::Display for PayoutOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One operation of a batch: `amount` of `asset` to `destination`, paid by
/// an `op` operation (for `create_account` the asset is always native).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Payment {
    pub op: PayoutOp,
    pub destination: PublicKey,
    pub asset: Asset,
    pub amount: Stroops,
}

impl Payment {
    /// A plain `Payment` op.
    pub fn new(destination: PublicKey, asset: Asset, amount: Stroops) -> Self {
        Payment::with_op(PayoutOp::Payment, destination, asset, amount)
    }

    /// An op of kind `op`.
    pub fn with_op(op: PayoutOp, destination: PublicKey, asset: Asset, amount: Stroops) -> Self {
        Payment {
            op,
            destination,
            asset,
            amount,
        }
    }

    /// A `CreateAccount` op: `amount` lumens as the new account's starting balance.
    pub fn create_account(destination: PublicKey, amount: Stroops) -> Self {
        Payment::with_op(PayoutOp::CreateAccount, destination, Asset::Native, amount)
    }

    /// A `CreateClaimableBalance` op claimable by `destination` alone, unconditionally.
    pub fn claimable_balance(destination: PublicKey, asset: Asset, amount: Stroops) -> Self {
        Payment::with_op(PayoutOp::ClaimableBalance, destination, asset, amount)
    }

    /// The XDR operation body (no per-operation source). Does not check the
    /// op against the asset: [`PaymentBatch::validate`] does.
    pub fn to_operation_body(&self) -> Result<xdr::OperationBody> {
        Ok(match self.op {
            PayoutOp::Payment => xdr::OperationBody::Payment(xdr::PaymentOp {
                destination: muxed(&self.destination),
                asset: self.asset.to_xdr(),
                amount: self.amount.0,
            }),
            PayoutOp::CreateAccount => xdr::OperationBody::CreateAccount(xdr::CreateAccountOp {
                destination: account_id(&self.destination),
                starting_balance: self.amount.0,
            }),
            PayoutOp::ClaimableBalance => {
                xdr::OperationBody::CreateClaimableBalance(xdr::CreateClaimableBalanceOp {
                    asset: self.asset.to_xdr(),
                    amount: self.amount.0,
                    claimants: vec![xdr::Claimant::ClaimantTypeV0(xdr::ClaimantV0 {
                        destination: account_id(&self.destination),
                        predicate: xdr::ClaimPredicate::Unconditional,
                    })]
                    .try_into()?,
                })
            }
        })
    }
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

    /// Add one `Payment` op.
    pub fn with_payment(mut self, destination: PublicKey, asset: Asset, amount: Stroops) -> Self {
        self.payments.push(Payment::new(destination, asset, amount));
        self
    }

    /// Add one `CreateAccount` op funding `destination` with `amount` lumens.
    pub fn with_create_account(mut self, destination: PublicKey, amount: Stroops) -> Self {
        self.payments
            .push(Payment::create_account(destination, amount));
        self
    }

    /// Add one `CreateClaimableBalance` op claimable by `destination`.
    pub fn with_claimable_balance(
        mut self,
        destination: PublicKey,
        asset: Asset,
        amount: Stroops,
    ) -> Self {
        self.payments
            .push(Payment::claimable_balance(destination, asset, amount));
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
        if let Some((index, p)) = self
            .payments
            .iter()
            .enumerate()
            .find(|(_, p)| !p.op.supports(&p.asset))
        {
            return Err(Error::OpAsset {
                index,
                op: p.op.as_str(),
                asset: p.asset.to_string(),
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
        let operations = self
            .payments
            .iter()
            .map(|p| {
                Ok(xdr::Operation {
                    source_account: None,
                    body: p.to_operation_body()?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
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
}

/// A plain (unmultiplexed) `MuxedAccount` for an ed25519 key.
pub(crate) fn muxed(key: &PublicKey) -> xdr::MuxedAccount {
    xdr::MuxedAccount::Ed25519(xdr::Uint256(*key.as_bytes()))
}

/// The `AccountId` of an ed25519 key.
pub(crate) fn account_id(key: &PublicKey) -> xdr::AccountId {
    xdr::AccountId(xdr::PublicKey::PublicKeyTypeEd25519(xdr::Uint256(
        *key.as_bytes(),
    )))
}

#[cfg(test)]
mod tests;
