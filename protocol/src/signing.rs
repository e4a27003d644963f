//! The `tally-v1` request signature (DESIGN "Request signing"), byte for byte.
//!
//! ```text
//! message = "tally-v1\n{METHOD}\n{PATH_AND_QUERY}\n{TIMESTAMP}\n{NONCE}\n{hex sha256 of body}"
//! ```
//! signed with the account's ed25519 key; the signature travels base64 in
//! `X-Tally-Signature`. Freshness (the 60 s window) and nonce replay are the
//! market's to enforce; this module only builds and checks signatures.

use std::fmt;

use base64::Engine as _;
use ed25519_dalek::{Signature, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::{AccountId, Error};

pub const HEADER_ACCOUNT: &str = "x-tally-account";
pub const HEADER_TIMESTAMP: &str = "x-tally-timestamp";
pub const HEADER_NONCE: &str = "x-tally-nonce";
pub const HEADER_SIGNATURE: &str = "x-tally-signature";

/// How far a timestamp may be from the market's clock.
pub const MAX_SKEW_MS: i64 = 60_000;

/// The exact bytes that get signed.
pub fn message(
    method: &str,
    path_and_query: &str,
    timestamp_ms: i64,
    nonce: &str,
    body: &[u8],
) -> String {
    format!(
        "tally-v1\n{}\n{}\n{}\n{}\n{}",
        method.to_ascii_uppercase(),
        path_and_query,
        timestamp_ms,
        nonce,
        hex::encode(Sha256::digest(body))
    )
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

    /// Check the signature over this request.
    pub fn verify(&self, method: &str, path_and_query: &str, body: &[u8]) -> Result<(), Error> {
        verify(
            &self.account,
            &message(method, path_and_query, self.timestamp_ms, &self.nonce, body),
            &self.signature,
        )
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
            std::fs::read_to_string(spec).map_err(|e| Error::Key(format!("{spec}: {e}")))?
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

    /// Sign a request with an explicit timestamp and nonce.
    pub fn sign_at(
        &self,
        method: &str,
        path_and_query: &str,
        body: &[u8],
        timestamp_ms: i64,
        nonce: &str,
    ) -> SignedHeaders {
        let msg = message(method, path_and_query, timestamp_ms, nonce, body);
        SignedHeaders {
            account: self.account.clone(),
            timestamp_ms,
            nonce: nonce.to_string(),
            signature: self.sign_bytes(msg.as_bytes()),
        }
    }

    /// Sign a request now, with a fresh random nonce.
    pub fn sign(&self, method: &str, path_and_query: &str, body: &[u8]) -> SignedHeaders {
        self.sign_at(method, path_and_query, body, now_ms(), &fresh_nonce())
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
mod tests {
    use super::*;

    #[test]
    fn message_layout_is_exact() {
        let m = message(
            "post",
            "/v1/bids?x=1",
            1_700_000_000_000,
            "00112233445566778899aabbccddeeff",
            b"",
        );
        assert_eq!(
            m,
            "tally-v1\nPOST\n/v1/bids?x=1\n1700000000000\n00112233445566778899aabbccddeeff\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn signatures_verify_and_tampering_is_caught() {
        let s = Signer::from_seed([9; 32]);
        let h = s.sign("POST", "/v1/bids", b"{}");
        h.verify("POST", "/v1/bids", b"{}").unwrap();
        assert!(h.verify("POST", "/v1/bids", b"{ }").is_err());
        assert!(h.verify("GET", "/v1/bids", b"{}").is_err());
        assert!(h.verify("POST", "/v1/bids?a", b"{}").is_err());
        let other = Signer::from_seed([8; 32]);
        let forged = SignedHeaders {
            account: other.account().clone(),
            ..h.clone()
        };
        assert!(forged.verify("POST", "/v1/bids", b"{}").is_err());
    }

    #[test]
    fn secrets_round_trip_and_debug_redacts() {
        let s = Signer::generate();
        let back = Signer::from_secret(&format!("{}\n", s.secret())).unwrap();
        assert_eq!(back.account(), s.account());
        assert!(!format!("{s:?}").contains(&s.secret()));
        assert!(Signer::from_secret(s.account().as_str()).is_err());
    }

    #[test]
    fn header_parsing_names_the_bad_header() {
        let s = Signer::from_seed([1; 32]);
        let err = SignedHeaders::parse(
            Some(s.account().as_str()),
            Some("soon"),
            Some("00112233445566778899"),
            Some("x"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("X-Tally-Timestamp"));
        let err = SignedHeaders::parse(
            Some(s.account().as_str()),
            Some("1"),
            Some("xyz"),
            Some("x"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("X-Tally-Nonce"));
    }
}
