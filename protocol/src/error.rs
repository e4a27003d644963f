//! The one error type of the protocol crate.

/// Everything that can go wrong parsing, signing or talking to a market.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid account id {0:?}: expected a G... Stellar strkey")]
    InvalidAccount(String),
    #[error("invalid secret seed: expected an S... Stellar strkey")]
    InvalidSeed,
    #[error("invalid sha256 {0:?}: expected 64 lowercase hex characters")]
    InvalidHash(String),
    #[error("invalid signature header: {0}")]
    InvalidSignature(&'static str),
    #[error("signature does not verify")]
    BadSignature,
    /// A signature over the retired `tally-v1` message.
    #[error(
        "signed with tally-v1: this client is too old for this market, which takes only tally-v2 \
         signatures (bound to the market's network and operator); update the client"
    )]
    OutdatedSignature,
    #[error("could not read the key: {0}")]
    Key(String),
    #[error("http: {0}")]
    Http(#[from] reqwest::Error),
    #[error("the market answered {status}: {code}: {message}")]
    Api {
        status: u16,
        code: String,
        message: String,
    },
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    /// Evidence that does not say what it claims.
    #[error("{0}")]
    Invalid(String),
}
