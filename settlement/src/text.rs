//! The text form of the values that travel as strings (`G...` keys,
//! `CODE:ISSUER` assets, network passphrases): one way to parse them and
//! to carry them in serde.

/// `FromStr` through `$parse`, serde as the `Display` string, read back
/// through `$read` (the form records and configs carry).
macro_rules! text_form {
    ($name:ident, $parse:ident, $read:ident) => {
        impl std::str::FromStr for $name {
            type Err = crate::error::Error;
            fn from_str(s: &str) -> crate::error::Result<Self> {
                $name::$parse(s)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(
                &self,
                s: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(
                d: D,
            ) -> std::result::Result<Self, D::Error> {
                let s = <String as serde::Deserialize>::deserialize(d)?;
                $name::$read(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}
