//! Stellar networks: a passphrase, and the network id `sha256(passphrase)`
//! that every transaction signature commits to.

use std::borrow::Cow;
use std::fmt;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// A Stellar network, identified by its passphrase.
///
/// Two values are equal when their passphrases are, so a custom network
/// spelled with the testnet passphrase *is* testnet. Passphrases may not be
/// empty or contain control characters (records keep them on one line).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Network {
    passphrase: Cow<'static, str>,
}

impl Network {
    pub const TESTNET_PASSPHRASE: &'static str = "Test SDF Network ; September 2015";
    pub const PUBLIC_PASSPHRASE: &'static str = "Public Global Stellar Network ; September 2015";

    pub const fn testnet() -> Self {
        Network {
            passphrase: Cow::Borrowed(Self::TESTNET_PASSPHRASE),
        }
    }

    pub const fn public() -> Self {
        Network {
            passphrase: Cow::Borrowed(Self::PUBLIC_PASSPHRASE),
        }
    }

    /// A network by its exact passphrase (a standalone or private network).
    pub fn from_passphrase(passphrase: &str) -> Result<Self> {
        if passphrase.is_empty() {
            return Err(Error::Network("the passphrase is empty"));
        }
        if passphrase.chars().any(char::is_control) {
            // Records put the passphrase on a line of their canonical encoding.
            return Err(Error::Network(
                "the passphrase contains a control character",
            ));
        }
        Ok(match passphrase {
            Self::TESTNET_PASSPHRASE => Self::testnet(),
            Self::PUBLIC_PASSPHRASE => Self::public(),
            other => Network {
                passphrase: Cow::Owned(other.to_owned()),
            },
        })
    }

    /// The CLI form: `testnet`, `public`, or any other text as a passphrase.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "testnet" => Ok(Self::testnet()),
            "public" => Ok(Self::public()),
            other => Self::from_passphrase(other),
        }
    }

    pub fn passphrase(&self) -> &str {
        &self.passphrase
    }

    /// `testnet`, `public` or `custom`.
    pub fn name(&self) -> &'static str {
        match self.passphrase() {
            Self::TESTNET_PASSPHRASE => "testnet",
            Self::PUBLIC_PASSPHRASE => "public",
            _ => "custom",
        }
    }

    /// `sha256(passphrase)`, the first 32 bytes of every signature payload.
    pub fn network_id(&self) -> [u8; 32] {
        Sha256::digest(self.passphrase.as_bytes()).into()
    }
}

/// The passphrase, exactly as it is hashed.
impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.passphrase())
    }
}

impl fmt::Debug for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Network({:?})", self.passphrase())
    }
}

// Serialized as the passphrase (records name their network that way).
text_form!(Network, parse, from_passphrase);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_ids_are_the_sha256_of_the_passphrases() {
        // Published network ids (hex) of testnet and the public network.
        assert_eq!(
            hex::encode(Network::testnet().network_id()),
            "cee0302d59844d32bdca915c8203dd44b33fbb7edc19051ea37abedf28ecd472"
        );
        assert_eq!(
            hex::encode(Network::public().network_id()),
            "7ac33997544e3175d266bd022439b22cdb16508c01163f26e5cb2a3e1045a979"
        );
    }

    #[test]
    fn parse_knows_testnet_public_and_takes_anything_else_as_a_passphrase() {
        assert_eq!(Network::parse("testnet").unwrap(), Network::testnet());
        assert_eq!(Network::parse("public").unwrap(), Network::public());
        let custom = Network::parse("Standalone Network ; February 2017").unwrap();
        assert_eq!(custom.name(), "custom");
        assert_eq!(custom.passphrase(), "Standalone Network ; February 2017");
        assert_eq!(
            Network::parse(Network::TESTNET_PASSPHRASE).unwrap().name(),
            "testnet"
        );
        assert!(Network::parse("").is_err());
        assert!(Network::parse("two\nlines").is_err());
    }

    #[test]
    fn serde_uses_the_passphrase() {
        let json = serde_json::to_string(&Network::public()).unwrap();
        assert_eq!(json, format!("\"{}\"", Network::PUBLIC_PASSPHRASE));
        assert_eq!(
            serde_json::from_str::<Network>(&json).unwrap(),
            Network::public()
        );
    }
}
