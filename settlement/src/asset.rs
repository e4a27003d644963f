//! The settlement asset: `native` (XLM) or a credit asset `CODE:ISSUER`.
//!
//! A code of 1-4 characters is an `AlphaNum4` asset, 5-12 characters an
//! `AlphaNum12` one; characters are ASCII letters and digits. The text form
//! round-trips: `Asset::parse(&a.to_string()) == a`.

use std::fmt;

use stellar_xdr as xdr;

use crate::error::{Error, Result};
use crate::keys::PublicKey;

/// A validated asset code: 1-12 ASCII letters or digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AssetCode {
    bytes: [u8; 12],
    len: u8,
}

impl AssetCode {
    pub fn parse(code: &str) -> Result<Self> {
        let bad = |reason| Error::Asset {
            input: code.chars().take(40).collect(),
            reason,
        };
        if code.is_empty() || code.len() > 12 {
            return Err(bad("the code must have 1 to 12 characters"));
        }
        if !code.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(bad("the code must be ASCII letters and digits"));
        }
        let mut bytes = [0u8; 12];
        bytes[..code.len()].copy_from_slice(code.as_bytes());
        Ok(AssetCode {
            bytes,
            len: code.len() as u8,
        })
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII alphanumerics are ever stored.
        std::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or("")
    }

    /// `true` for 1-4 characters (`AlphaNum4`), `false` for 5-12 (`AlphaNum12`).
    pub fn is_alphanum4(&self) -> bool {
        self.len <= 4
    }

    /// The code zero-padded to 12 bytes, as XDR stores it (first 4 for alphanum4).
    pub fn padded(&self) -> &[u8; 12] {
        &self.bytes
    }

    /// Read an XDR code: letters and digits, then only zero padding.
    fn from_padded(padded: &[u8], alphanum4: bool) -> Result<Self> {
        let len = padded.iter().position(|&b| b == 0).unwrap_or(padded.len());
        let text = String::from_utf8_lossy(&padded[..len]).into_owned();
        let bad = |reason| Error::Asset {
            input: text.clone(),
            reason,
        };
        if padded[len..].iter().any(|&b| b != 0) {
            return Err(bad("the code has bytes after its zero padding"));
        }
        let code = AssetCode::parse(&text)?;
        if code.is_alphanum4() != alphanum4 {
            return Err(bad("the code length does not fit its asset type"));
        }
        Ok(code)
    }
}

impl fmt::Display for AssetCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for AssetCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AssetCode({})", self.as_str())
    }
}

/// What a payment pays in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Asset {
    Native,
    Credit { code: AssetCode, issuer: PublicKey },
}

impl Asset {
    /// `native`, or `CODE:ISSUER` with a `G...` issuer.
    pub fn parse(s: &str) -> Result<Self> {
        let s = s.trim();
        if s == "native" {
            return Ok(Asset::Native);
        }
        let Some((code, issuer)) = s.split_once(':') else {
            return Err(Error::Asset {
                input: s.chars().take(80).collect(),
                reason: "expected `native` or `CODE:ISSUER`",
            });
        };
        Ok(Asset::Credit {
            code: AssetCode::parse(code)?,
            issuer: PublicKey::parse(issuer)?,
        })
    }

    pub fn to_xdr(&self) -> xdr::Asset {
        match self {
            Asset::Native => xdr::Asset::Native,
            Asset::Credit { code, issuer } => {
                let issuer = xdr::AccountId(xdr::PublicKey::PublicKeyTypeEd25519(xdr::Uint256(
                    *issuer.as_bytes(),
                )));
                let padded = code.padded();
                if code.is_alphanum4() {
                    let mut four = [0u8; 4];
                    four.copy_from_slice(&padded[..4]);
                    xdr::Asset::CreditAlphanum4(xdr::AlphaNum4 {
                        asset_code: xdr::AssetCode4(four),
                        issuer,
                    })
                } else {
                    xdr::Asset::CreditAlphanum12(xdr::AlphaNum12 {
                        asset_code: xdr::AssetCode12(*padded),
                        issuer,
                    })
                }
            }
        }
    }

    /// The asset of an XDR value; rejects codes that are not canonical.
    pub fn from_xdr(asset: &xdr::Asset) -> Result<Self> {
        let issuer_key = |id: &xdr::AccountId| {
            let xdr::PublicKey::PublicKeyTypeEd25519(xdr::Uint256(bytes)) = &id.0;
            PublicKey::from_bytes(*bytes)
        };
        Ok(match asset {
            xdr::Asset::Native => Asset::Native,
            xdr::Asset::CreditAlphanum4(a) => Asset::Credit {
                code: AssetCode::from_padded(&a.asset_code.0, true)?,
                issuer: issuer_key(&a.issuer),
            },
            xdr::Asset::CreditAlphanum12(a) => Asset::Credit {
                code: AssetCode::from_padded(&a.asset_code.0, false)?,
                issuer: issuer_key(&a.issuer),
            },
        })
    }
}

impl fmt::Display for Asset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Asset::Native => f.write_str("native"),
            Asset::Credit { code, issuer } => write!(f, "{code}:{issuer}"),
        }
    }
}

text_form!(Asset, parse, parse);

#[cfg(test)]
mod tests {
    use super::*;

    const ISSUER: &str = "GBMVVCS2TT3XFDUXVCVXFGWO2NMTCNIYZHY4CKXTV37VPHXCAU3Z7E46";

    #[test]
    fn native_and_credit_assets_round_trip_through_text_and_xdr() {
        for text in [
            "native".to_string(),
            format!("X:{ISSUER}"),
            format!("USDC:{ISSUER}"),
            format!("ABCDE:{ISSUER}"),
            format!("TALLYCREDITS:{ISSUER}"),
        ] {
            let asset = Asset::parse(&text).unwrap();
            assert_eq!(asset.to_string(), text);
            assert_eq!(Asset::from_xdr(&asset.to_xdr()).unwrap(), asset);
            let json = serde_json::to_string(&asset).unwrap();
            assert_eq!(serde_json::from_str::<Asset>(&json).unwrap(), asset);
        }
    }

    #[test]
    fn code_length_picks_alphanum4_or_alphanum12() {
        let four = Asset::parse(&format!("USDC:{ISSUER}")).unwrap().to_xdr();
        assert!(matches!(four, xdr::Asset::CreditAlphanum4(ref a) if &a.asset_code.0 == b"USDC"));
        let five = Asset::parse(&format!("ABCDE:{ISSUER}")).unwrap().to_xdr();
        assert!(
            matches!(five, xdr::Asset::CreditAlphanum12(ref a) if &a.asset_code.0 == b"ABCDE\0\0\0\0\0\0\0")
        );
    }

    #[test]
    fn bad_assets_are_rejected() {
        for bad in [
            String::new(),
            "native:".to_string(),
            "XLM".to_string(),
            format!(":{ISSUER}"),
            format!("THIRTEENCHARS:{ISSUER}"),
            format!("US-D:{ISSUER}"),
            format!("USD\u{e9}:{ISSUER}"),
            "USDC:GNOTAKEY".to_string(),
            format!("USDC:{ISSUER}:extra"),
        ] {
            assert!(Asset::parse(&bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn non_canonical_xdr_codes_are_rejected() {
        let issuer = match Asset::parse(&format!("USDC:{ISSUER}")).unwrap().to_xdr() {
            xdr::Asset::CreditAlphanum4(a) => a.issuer,
            _ => unreachable!(),
        };
        let gap = xdr::Asset::CreditAlphanum4(xdr::AlphaNum4 {
            asset_code: xdr::AssetCode4(*b"A\0B\0"),
            issuer: issuer.clone(),
        });
        assert!(Asset::from_xdr(&gap).is_err());
        let short12 = xdr::Asset::CreditAlphanum12(xdr::AlphaNum12 {
            asset_code: xdr::AssetCode12(*b"USD\0\0\0\0\0\0\0\0\0"),
            issuer,
        });
        assert!(Asset::from_xdr(&short12).is_err());
    }
}
