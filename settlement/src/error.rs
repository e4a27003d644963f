//! The one error type of the settlement crate.

/// Everything that can go wrong parsing keys and assets, building, signing
/// or decoding a payment transaction, or talking to Horizon / Stellar RPC.
///
/// Audit problems in well-formed data are not errors: they are
/// [`Finding`](crate::audit::Finding)s.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid {what} strkey {input:?}")]
    Strkey {
        what: &'static str,
        input: String,
        #[source]
        source: stellar_strkey::DecodeError,
    },
    #[error("invalid public key: not a point on the ed25519 curve")]
    InvalidPublicKey,
    #[error("invalid asset {input:?}: {reason}")]
    Asset { input: String, reason: &'static str },
    #[error("invalid network: {0}")]
    Network(&'static str),
    #[error("invalid amount {0:?}: expected an integer number of stroops")]
    Amount(String),
    #[error("a payment transaction needs 1 to 100 operations, got {0}")]
    OpCount(usize),
    #[error("payment {index} has a non-positive amount of {amount} stroops")]
    NonPositiveAmount { index: usize, amount: i64 },
    #[error("payment {index}: a {op} operation cannot pay in {asset} (create_account pays native lumens only)")]
    OpAsset {
        index: usize,
        op: &'static str,
        asset: String,
    },
    #[error("fee overflows u32: base fee {base_fee} x {ops} operations")]
    FeeOverflow { base_fee: u32, ops: usize },
    #[error("time bounds are inverted: min {min} > max {max}")]
    TimeBounds { min: u64, max: u64 },
    #[error("the signing key {signer} is not the source account {source_account}")]
    SignerMismatch {
        signer: String,
        source_account: String,
    },
    #[error("invalid settlement record: {0}")]
    Record(String),
    #[error("xdr: {0}")]
    Xdr(#[from] stellar_xdr::Error),
    #[error("unsupported transaction: {0}")]
    Unsupported(&'static str),
    #[error("invalid hex {what}: {source}")]
    Hex {
        what: &'static str,
        #[source]
        source: hex::FromHexError,
    },
    #[error("no random numbers: {0}")]
    Random(#[from] getrandom::Error),
    #[error("http: {0}")]
    Http(#[from] reqwest::Error),
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    #[error("unexpected answer from {endpoint}: {detail}")]
    Response {
        endpoint: &'static str,
        detail: String,
    },
}

/// Shorthand used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
