//! Stellar ed25519 keys: `G...` public keys (account ids) and `S...` secret seeds.
//!
//! A [`Keypair`] never shows its seed by accident: `Debug` redacts it, and the
//! only way to get the `S...` text back is [`Keypair::secret_strkey`].

use std::fmt;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};

use crate::error::{Error, Result};

/// An ed25519 public key, shown as a `G...` strkey: a Stellar account id.
///
/// `Ord` is the order of the 32 bytes, which is *not* the order of the
/// `G...` text (the base32 alphabet puts digits after letters); settlement
/// records sort by the text.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublicKey([u8; 32]);

/// A Stellar account id is its public key.
pub type AccountId = PublicKey;

impl PublicKey {
    /// Parse a `G...` strkey (surrounding whitespace is ignored).
    pub fn parse(s: &str) -> Result<Self> {
        let s = s.trim();
        stellar_strkey::ed25519::PublicKey::from_string(s)
            .map(|k| PublicKey(k.0))
            .map_err(|source| Error::Strkey {
                what: "account (G...)",
                input: s.chars().take(80).collect(),
                source,
            })
    }

    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        PublicKey(bytes)
    }

    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The signature hint Stellar attaches to a signature: the key's last 4 bytes.
    pub fn hint(&self) -> [u8; 4] {
        [self.0[28], self.0[29], self.0[30], self.0[31]]
    }

    /// Whether `signature` is a valid (strict) ed25519 signature of `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let Ok(sig) = ed25519_dalek::Signature::from_slice(signature) else {
            return false;
        };
        match VerifyingKey::from_bytes(&self.0) {
            Ok(key) => key.verify_strict(message, &sig).is_ok(),
            Err(_) => false,
        }
    }

    /// The key as a curve point; fails for 32 bytes that are not one.
    pub fn verifying_key(&self) -> Result<VerifyingKey> {
        VerifyingKey::from_bytes(&self.0).map_err(|_| Error::InvalidPublicKey)
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&stellar_strkey::ed25519::PublicKey(self.0), f)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

text_form!(PublicKey, parse, parse);

/// An ed25519 signing key with its public key: the seed behind an `S...` strkey.
#[derive(Clone)]
pub struct Keypair {
    signing: SigningKey,
    public: PublicKey,
}

impl Keypair {
    /// Parse an `S...` secret seed strkey (surrounding whitespace, such as the
    /// newline at the end of a key file, is ignored).
    pub fn from_secret(s: &str) -> Result<Self> {
        let s = s.trim();
        let seed = stellar_strkey::ed25519::PrivateKey::from_string(s).map_err(|source| {
            // Never echo what may be a secret.
            Error::Strkey {
                what: "secret seed (S...)",
                input: String::from("[REDACTED]"),
                source,
            }
        })?;
        Ok(Keypair::from_seed(&seed.0))
    }

    /// The key pair of a raw 32-byte ed25519 seed.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let signing = SigningKey::from_bytes(seed);
        let public = PublicKey(signing.verifying_key().to_bytes());
        Keypair { signing, public }
    }

    /// A fresh key pair from the operating system's random numbers.
    pub fn generate() -> Result<Self> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed)?;
        let keypair = Keypair::from_seed(&seed);
        seed.fill(0);
        Ok(keypair)
    }

    pub fn public_key(&self) -> PublicKey {
        self.public
    }

    /// The `S...` strkey of the seed, for writing a key file. Handle with care.
    pub fn secret_strkey(&self) -> String {
        let seed = stellar_strkey::ed25519::PrivateKey(self.signing.to_bytes());
        seed.as_unredacted().to_string().as_str().to_owned()
    }

    /// An ed25519 signature of `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }

    /// Check a signature against this key pair's public key.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        self.public.verify(message, signature)
    }
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keypair")
            .field("public", &format_args!("{}", self.public))
            .field("secret", &format_args!("[REDACTED]"))
            .finish()
    }
}

impl PartialEq for Keypair {
    fn eq(&self, other: &Self) -> bool {
        self.signing == other.signing
    }
}

impl Eq for Keypair {}

#[cfg(test)]
mod tests {
    use super::*;

    // operator-a of tests/golden/vectors.json (stellar-sdk derived this pair).
    const SECRET: &str = "SBLBF3TU6TSWPQS57EVPUBBINMVLURTCO22KRRUHYFDZKRXY5LW6ECO5";
    const PUBLIC: &str = "GBMVVCS2TT3XFDUXVCVXFGWO2NMTCNIYZHY4CKXTV37VPHXCAU3Z7E46";

    #[test]
    fn secret_seed_round_trips_and_derives_its_account() {
        let kp = Keypair::from_secret(SECRET).unwrap();
        assert_eq!(kp.public_key().to_string(), PUBLIC);
        assert_eq!(kp.secret_strkey(), SECRET);
        assert_eq!(Keypair::from_secret(&format!("{SECRET}\n")).unwrap(), kp);
    }

    #[test]
    fn debug_of_a_keypair_never_prints_the_seed() {
        let kp = Keypair::from_secret(SECRET).unwrap();
        let debug = format!("{kp:?} {kp:#?}");
        assert!(!debug.contains(SECRET), "{debug}");
        assert!(!debug.contains(&hex::encode(kp.signing.to_bytes())));
        assert!(debug.contains("REDACTED") && debug.contains(PUBLIC));
    }

    #[test]
    fn a_bad_secret_is_rejected_without_echoing_it() {
        let bad = "SBLBF3TU6TSWPQS57EVPUBBINMVLURTCO22KRRUHYFDZKRXY5LW6ECO4";
        let err = Keypair::from_secret(bad).unwrap_err().to_string();
        assert!(!err.contains(bad), "{err}");
        assert!(Keypair::from_secret(PUBLIC).is_err());
    }

    #[test]
    fn public_keys_parse_display_and_reject_garbage() {
        let pk = PublicKey::parse(PUBLIC).unwrap();
        assert_eq!(pk.to_string(), PUBLIC);
        assert_eq!(PublicKey::from_bytes(*pk.as_bytes()), pk);
        assert!(PublicKey::parse(SECRET).is_err());
        assert!(PublicKey::parse("GABC").is_err());
        assert!(PublicKey::parse("").is_err());
        let json = serde_json::to_string(&pk).unwrap();
        assert_eq!(json, format!("\"{PUBLIC}\""));
        assert_eq!(serde_json::from_str::<PublicKey>(&json).unwrap(), pk);
        assert!(serde_json::from_str::<PublicKey>("\"GXYZ\"").is_err());
    }

    #[test]
    fn signatures_verify_only_for_the_signed_message_and_key() {
        let kp = Keypair::generate().unwrap();
        let other = Keypair::generate().unwrap();
        assert_ne!(kp, other);
        let sig = kp.sign(b"pay worker 7");
        assert!(kp.verify(b"pay worker 7", &sig));
        assert!(kp.public_key().verify(b"pay worker 7", &sig));
        assert!(!kp.verify(b"pay worker 8", &sig));
        assert!(!other.verify(b"pay worker 7", &sig));
        assert!(!kp.verify(b"pay worker 7", &sig[..63]));
    }
}
