//! Stellar settlement for Tally: keys, money, payment transactions,
//! settlement records and the checks an auditor runs on them.
//!
//! Everything here is pure computation except [`submit`], the only module
//! that talks to the network (Horizon or Stellar RPC). Money never leaves
//! integer [`Stroops`].
//!
//! - [`keys`]: `G...` public keys / account ids and `S...` secret seeds; sign and verify.
//! - [`network`]: testnet, public or a custom passphrase, and its network id.
//! - [`asset`]: `native` or `CODE:ISSUER` (alphanum4 / alphanum12) and its XDR.
//! - [`amount`]: [`Stroops`], checked arithmetic, no floats.
//! - [`tx`]: [`PaymentBatch`], one transaction with up to 100 payouts, each a [`PayoutOp`]
//!   (`Payment`, `CreateAccount` or `CreateClaimableBalance`), signed into a [`SignedTx`].
//! - [`encode`]: the direct XDR writer and [`TxSigner`] behind `tx`, with reused buffers.
//! - [`decode`]: a base64 envelope back into a [`DecodedPayment`]; signature checks.
//! - [`record`]: hash-chained [`SettlementRecord`]s and their canonical encoding.
//! - [`audit`]: [`check_chain`] and friends: [`Finding`]s about records and envelopes.
//! - [`submit`]: a Horizon / Stellar RPC client returning typed [`Outcome`]s.
//! - [`bench`](mod@bench): `tally bench settle`, build + sign + encode throughput.
//! - [`error`]: the crate's one [`Error`] type.

#[macro_use]
mod text;

pub mod amount;
pub mod asset;
pub mod audit;
pub mod bench;
pub mod decode;
pub mod encode;
pub mod error;
pub mod keys;
pub mod network;
pub mod record;
pub mod submit;
pub mod tx;

pub use amount::Stroops;
pub use asset::Asset;
pub use audit::{check_chain, check_record, ChainChecker, Finding};
pub use bench::{bench_build_sign, BenchReport};
pub use decode::{decode_envelope, verify_signature, DecodedPayment};
pub use encode::TxSigner;
pub use error::{Error, Result};
pub use keys::{AccountId, Keypair, PublicKey};
pub use network::Network;
pub use record::{Payout, RecordBody, SettlementRecord, GENESIS_PREV_HASH};
pub use submit::{Endpoint, Outcome, Submitter};
pub use tx::{Payment, PaymentBatch, PayoutOp, SignedTx, TimeBounds};
