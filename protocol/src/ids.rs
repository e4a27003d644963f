//! Newtypes for the values that cross the wire: ids, money, accounts, hashes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Error;

macro_rules! id_type {
    ($(#[doc = $doc:literal])* $name:ident) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                integer_schema(concat!($($doc, )* ""))
            }
        }

        impl FromStr for $name {
            type Err = std::num::ParseIntError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map($name)
            }
        }
    };
}

/// The rest of a string newtype that is valid once built (its `parse`
/// checks): `as_str`, JSON schema (`pattern`, `description`), conversions
/// to and from `String` through `parse`, `FromStr` and `Display`.
macro_rules! string_type {
    ($name:ident, $pattern:literal, $description:literal) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                string_schema($pattern, $description)
            }
        }

        impl TryFrom<String> for $name {
            type Error = Error;
            fn try_from(s: String) -> Result<Self, Error> {
                $name::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self, Error> {
                $name::parse(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

/// An int64 id or amount, as JSON carries it: a bare integer.
fn integer_schema(description: &str) -> schemars::Schema {
    schemars::json_schema!({
        "type": "integer",
        "format": "int64",
        "description": description.trim(),
    })
}

/// A string with a fixed `pattern`.
fn string_schema(pattern: &str, description: &str) -> schemars::Schema {
    schemars::json_schema!({
        "type": "string",
        "pattern": pattern,
        "description": description,
    })
}

id_type!(
    /// A client's bid: one price, one model, one or more inputs.
    BidId
);
id_type!(
    /// One input of a bid; runs on several workers.
    TaskId
);
id_type!(
    /// One replica of a task handed to one worker under a lease.
    AssignmentId
);

/// An amount of the settlement asset in stroops (1e-7 of a unit). Never a float.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Stroops(pub i64);

impl Stroops {
    pub const ZERO: Stroops = Stroops(0);

    pub fn checked_add(self, o: Stroops) -> Option<Stroops> {
        self.0.checked_add(o.0).map(Stroops)
    }
    pub fn checked_sub(self, o: Stroops) -> Option<Stroops> {
        self.0.checked_sub(o.0).map(Stroops)
    }
    pub fn checked_mul(self, n: i64) -> Option<Stroops> {
        self.0.checked_mul(n).map(Stroops)
    }
    /// `self * bps / 10_000`, rounded down; `None` on overflow.
    pub fn fee_bps(self, bps: u32) -> Option<Stroops> {
        let v = i128::from(self.0) * i128::from(bps) / 10_000;
        i64::try_from(v).ok().map(Stroops)
    }
}

impl schemars::JsonSchema for Stroops {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Stroops".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        integer_schema(
            "An amount of the settlement asset in stroops (1e-7 of a unit), never a float.",
        )
    }
}

impl fmt::Display for Stroops {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} stroops", self.0)
    }
}

/// A Stellar account id, kept as its `G...` strkey; always valid once built.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AccountId(String);

impl AccountId {
    pub fn parse(s: &str) -> Result<Self, Error> {
        stellar_strkey::ed25519::PublicKey::from_string(s)
            .map_err(|_| Error::InvalidAccount(s.chars().take(80).collect()))?;
        Ok(AccountId(s.to_string()))
    }
    pub fn from_public_key(key: &[u8; 32]) -> Self {
        AccountId(format!("{}", stellar_strkey::ed25519::PublicKey(*key)))
    }
    pub fn public_key(&self) -> [u8; 32] {
        // Valid by construction.
        stellar_strkey::ed25519::PublicKey::from_string(&self.0)
            .map(|k| k.0)
            .unwrap_or([0; 32])
    }
}

string_type!(
    AccountId,
    "^G[A-Z2-7]{55}$",
    "A Stellar account id: its `G...` ed25519 public-key strkey."
);

/// A sha256 digest as 64 lowercase hex characters: model and input addresses.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Sha256Hex(String);

impl Sha256Hex {
    pub fn parse(s: &str) -> Result<Self, Error> {
        let ok = s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if ok {
            Ok(Sha256Hex(s.to_string()))
        } else {
            Err(Error::InvalidHash(s.chars().take(80).collect()))
        }
    }
    /// The address of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        use sha2::Digest;
        Sha256Hex(hex::encode(sha2::Sha256::digest(bytes)))
    }
}

string_type!(
    Sha256Hex,
    "^[0-9a-f]{64}$",
    "A sha256 digest as 64 lowercase hex characters: a model's or an input's address."
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids_are_validated_strkeys() {
        let key = [7u8; 32];
        let a = AccountId::from_public_key(&key);
        assert!(a.as_str().starts_with('G'));
        assert_eq!(AccountId::parse(a.as_str()).unwrap().public_key(), key);
        assert!(AccountId::parse("GABC").is_err());
        let json = format!("\"{}\"", a);
        assert_eq!(serde_json::from_str::<AccountId>(&json).unwrap(), a);
        assert!(serde_json::from_str::<AccountId>("\"nope\"").is_err());
    }

    #[test]
    fn hashes_are_64_lowercase_hex() {
        let h = Sha256Hex::of(b"abc");
        assert_eq!(
            h.as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(Sha256Hex::parse(&h.as_str().to_uppercase()).is_err());
        assert!(Sha256Hex::parse("abc").is_err());
    }

    #[test]
    fn stroops_arithmetic_is_checked() {
        assert_eq!(Stroops(i64::MAX).checked_add(Stroops(1)), None);
        assert_eq!(Stroops(1000).fee_bps(250), Some(Stroops(25)));
        assert_eq!(Stroops(i64::MAX).fee_bps(10_000), Some(Stroops(i64::MAX)));
        assert_eq!(Stroops(3).checked_mul(i64::MAX), None);
    }
}
