//! The `tally-v2` request signature, byte for byte.
//!
//! ```text
//! message = "tally-v2\n{NETWORK}\n{OPERATOR}\n{METHOD}\n{PATH_AND_QUERY}\n{TIMESTAMP}\n{NONCE}\n{hex sha256 of body}"
//! ```
//! signed with the account's ed25519 key; the signature travels base64 in
//! `X-Tally-Signature`. `NETWORK` (the Stellar network passphrase) and
//! `OPERATOR` (the operator's `G...` account) name the one market a request
//! is for ([`Domain`], from `GET /v1/market`): a request signed for one
//! market never verifies on another. `tally-v1` (the same without the two
//! lines) is refused with a message saying the client is too old.
//! Freshness (the 60 s window) and nonce replay are the market's to
//! enforce; this module only builds and checks signatures.

use std::fmt;

use base64::Engine as _;
use ed25519_dalek::{Signature, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::{AccountId, Error};

pub const HEADER_ACCOUNT: &str = "x-tally-account";
pub const HEADER_TIMESTAMP: &str = "x-tally-timestamp";
pub const HEADER_NONCE: &str = "x-tally-nonce";
pub const HEADER_SIGNATURE: &str = "x-tally-signature";

/// The signature scheme's name, the first line of every signed message.
pub const VERSION: &str = "tally-v2";

/// How far a timestamp may be from the market's clock.
pub const MAX_SKEW_MS: i64 = 60_000;

/// The market a signature is bound to: its Stellar network passphrase and
/// its operator's account (both in `GET /v1/market`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    pub network: String,
    pub operator: AccountId,
}

impl Domain {
    pub fn new(network: impl Into<String>, operator: AccountId) -> Self {
        Domain {
            network: network.into(),
            operator,
        }
    }
}

/// The exact bytes that get signed.
pub fn message(
    domain: &Domain,
    method: &str,
    path_and_query: &str,
    timestamp_ms: i64,
    nonce: &str,
    body: &[u8],
) -> String {
    message_for_digest(
        domain,
        method,
        path_and_query,
        timestamp_ms,
        nonce,
        &body_digest(body),
    )
}

/// [`message`] for a body whose hex sha256 is already known (the market
/// hashes a body while it streams in).
pub fn message_for_digest(
    domain: &Domain,
    method: &str,
    path_and_query: &str,
    timestamp_ms: i64,
    nonce: &str,
    body_sha256_hex: &str,
) -> String {
    RequestLines {
        method,
        path_and_query,
        timestamp_ms,
        nonce,
        body_sha256_hex,
    }
    .message(domain)
}

/// The request lines both schemes sign after their market lines.
struct RequestLines<'a> {
    method: &'a str,
    path_and_query: &'a str,
    timestamp_ms: i64,
    nonce: &'a str,
    body_sha256_hex: &'a str,
}

impl RequestLines<'_> {
    /// The `tally-v2` message, bound to the market `domain`.
    fn message(&self, domain: &Domain) -> String {
        format!("{VERSION}\n{}\n{}\n{self}", domain.network, domain.operator)
    }

    /// The message of the retired `tally-v1` scheme (bound to no market),
    /// only to tell an outdated client why it is refused.
    fn message_v1(&self) -> String {
        format!("tally-v1\n{self}")
    }
}

impl fmt::Display for RequestLines<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}\n{}\n{}\n{}\n{}",
            self.method.to_ascii_uppercase(),
            self.path_and_query,
            self.timestamp_ms,
            self.nonce,
            self.body_sha256_hex
        )
    }
}

/// Verify stored evidence: a `POST` to `path` with `body`, signed by
/// `account` at `timestamp_ms` with `nonce`, on the market `domain`.
pub fn verify_post(
    domain: &Domain,
    account: &AccountId,
    path: &str,
    timestamp_ms: i64,
    nonce: &str,
    signature: &str,
    body: &[u8],
) -> Result<(), Error> {
    let msg = message(domain, "POST", path, timestamp_ms, nonce, body);
    verify(account, &msg, signature)
}

/// Hex sha256 of a body, as it appears in the signed message.
pub fn body_digest(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// A nonce is 16-64 lowercase or uppercase hex characters.
pub fn valid_nonce(nonce: &str) -> bool {
    (16..=64).contains(&nonce.len()) && nonce.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The four headers of a signed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    pub account: AccountId,
    pub timestamp_ms: i64,
    pub nonce: String,
    pub signature: String,
}

impl SignedHeaders {
    /// Parse the raw header values; errors name the header at fault.
    pub fn parse(
        account: Option<&str>,
        timestamp: Option<&str>,
        nonce: Option<&str>,
        signature: Option<&str>,
    ) -> Result<Self, Error> {
        let account = account.ok_or(Error::InvalidSignature("missing X-Tally-Account"))?;
        let account = AccountId::parse(account)
            .map_err(|_| Error::InvalidSignature("X-Tally-Account is not a G... strkey"))?;
        let timestamp_ms = timestamp
            .ok_or(Error::InvalidSignature("missing X-Tally-Timestamp"))?
            .parse::<i64>()
            .map_err(|_| {
                Error::InvalidSignature("X-Tally-Timestamp is not integer milliseconds")
            })?;
        let nonce = nonce.ok_or(Error::InvalidSignature("missing X-Tally-Nonce"))?;
        if !valid_nonce(nonce) {
            return Err(Error::InvalidSignature(
                "X-Tally-Nonce must be 16-64 hex characters",
            ));
        }
        let signature = signature
            .ok_or(Error::InvalidSignature("missing X-Tally-Signature"))?
            .to_string();
        Ok(SignedHeaders {
            account,
            timestamp_ms,
            nonce: nonce.to_string(),
            signature,
        })
    }

    /// Check the signature over this request, for the market `domain`.
    pub fn verify(
        &self,
        domain: &Domain,
        method: &str,
        path_and_query: &str,
        body: &[u8],
    ) -> Result<(), Error> {
        self.verify_digest(domain, method, path_and_query, &body_digest(body))
    }

    /// [`SignedHeaders::verify`] for a body whose hex sha256 is known. A
    /// signature over the retired `tally-v1` message is
    /// [`Error::OutdatedSignature`].
    pub fn verify_digest(
        &self,
        domain: &Domain,
        method: &str,
        path_and_query: &str,
        body_sha256_hex: &str,
    ) -> Result<(), Error> {
        let request = RequestLines {
            method,
            path_and_query,
            timestamp_ms: self.timestamp_ms,
            nonce: &self.nonce,
            body_sha256_hex,
        };
        match verify(&self.account, &request.message(domain), &self.signature) {
            Err(Error::BadSignature) => {
                match verify(&self.account, &request.message_v1(), &self.signature) {
                    Ok(()) => Err(Error::OutdatedSignature),
                    Err(_) => Err(Error::BadSignature),
                }
            }
            other => other,
        }
    }
}

/// Verify a base64 ed25519 `signature` by `account` over `message`.
pub fn verify(account: &AccountId, message: &str, signature: &str) -> Result<(), Error> {
    let key = VerifyingKey::from_bytes(&account.public_key()).map_err(|_| Error::BadSignature)?;
    let sig = base64::engine::general_purpose::STANDARD
        .decode(signature)
        .map_err(|_| Error::InvalidSignature("X-Tally-Signature is not base64"))?;
    let sig = Signature::from_slice(&sig)
        .map_err(|_| Error::InvalidSignature("X-Tally-Signature is not 64 bytes"))?;
    key.verify(message.as_bytes(), &sig)
        .map_err(|_| Error::BadSignature)
}

/// A party's key: signs requests, and names the account that gets paid.
#[derive(Clone)]
pub struct Signer {
    key: SigningKey,
    account: AccountId,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signer({}, seed redacted)", self.account)
    }
}

impl Signer {
    pub fn from_seed(seed: [u8; 32]) -> Self {
        let key = SigningKey::from_bytes(&seed);
        let account = AccountId::from_public_key(key.verifying_key().as_bytes());
        Signer { key, account }
    }

    /// A fresh random key.
    pub fn generate() -> Self {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).expect("the operating system's random source failed");
        Signer::from_seed(seed)
    }

    /// From an `S...` Stellar secret seed (surrounding whitespace ignored).
    pub fn from_secret(secret: &str) -> Result<Self, Error> {
        let seed = stellar_strkey::ed25519::PrivateKey::from_string(secret.trim())
            .map_err(|_| Error::InvalidSeed)?;
        Ok(Signer::from_seed(seed.0))
    }

    /// Load a key the CLI way: a file holding an `S...` seed, or `env:VAR`.
    pub fn load(spec: &str) -> Result<Self, Error> {
        let text = if let Some(var) = spec.strip_prefix("env:") {
            std::env::var(var)
                .map_err(|_| Error::Key(format!("environment variable {var} is not set")))?
        } else {
            std::fs::read_to_string(spec).map_err(|e| {
                Error::Key(match e.kind() {
                    std::io::ErrorKind::NotFound => format!(
                        "no key file {spec} ({e}); `tally keys generate --out {spec}` makes one"
                    ),
                    _ => format!("key file {spec}: {e}"),
                })
            })?
        };
        Signer::from_secret(&text)
            .map_err(|_| Error::Key(format!("{spec}: not an S... Stellar secret seed")))
    }

    /// The `S...` strkey, for writing a key file. Never log it.
    pub fn secret(&self) -> String {
        format!(
            "{}",
            stellar_strkey::ed25519::PrivateKey(self.key.to_bytes()).as_unredacted()
        )
    }

    pub fn seed(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    pub fn account(&self) -> &AccountId {
        &self.account
    }

    /// Base64 signature over raw bytes.
    pub fn sign_bytes(&self, msg: &[u8]) -> String {
        use ed25519_dalek::Signer as _;
        base64::engine::general_purpose::STANDARD.encode(self.key.sign(msg).to_bytes())
    }

    /// Sign a request for the market `domain` with an explicit timestamp and nonce.
    pub fn sign_at(
        &self,
        domain: &Domain,
        method: &str,
        path_and_query: &str,
        body: &[u8],
        timestamp_ms: i64,
        nonce: &str,
    ) -> SignedHeaders {
        let msg = message(domain, method, path_and_query, timestamp_ms, nonce, body);
        self.headers(timestamp_ms, nonce, &msg)
    }

    /// The headers of a request signed at `timestamp_ms` with `nonce`,
    /// whose signed message is `msg`.
    fn headers(&self, timestamp_ms: i64, nonce: &str, msg: &str) -> SignedHeaders {
        SignedHeaders {
            account: self.account.clone(),
            timestamp_ms,
            nonce: nonce.to_string(),
            signature: self.sign_bytes(msg.as_bytes()),
        }
    }

    /// Sign a request for the market `domain` now, with a fresh random nonce.
    pub fn sign(
        &self,
        domain: &Domain,
        method: &str,
        path_and_query: &str,
        body: &[u8],
    ) -> SignedHeaders {
        self.sign_at(
            domain,
            method,
            path_and_query,
            body,
            now_ms(),
            &fresh_nonce(),
        )
    }

    /// Sign the retired `tally-v1` message (bound to no market): only for
    /// tests showing that the market refuses it.
    #[doc(hidden)]
    pub fn sign_v1_at(
        &self,
        method: &str,
        path_and_query: &str,
        body: &[u8],
        timestamp_ms: i64,
        nonce: &str,
    ) -> SignedHeaders {
        let msg = RequestLines {
            method,
            path_and_query,
            timestamp_ms,
            nonce,
            body_sha256_hex: &body_digest(body),
        }
        .message_v1();
        self.headers(timestamp_ms, nonce, &msg)
    }
}

/// Unix time in milliseconds, UTC.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// 32 random hex characters.
pub fn fresh_nonce() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("the operating system's random source failed");
    hex::encode(b)
}

#[cfg(test)]
mod tests;
