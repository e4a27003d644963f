//! Money: integer stroops (1e-7 of a unit of the settlement asset). Never floats.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// An amount in stroops. Payments must be positive; arithmetic is checked.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Stroops(pub i64);

impl Stroops {
    pub const ZERO: Stroops = Stroops(0);
    /// Stroops in one unit (1 XLM, 1 USDC, ...).
    pub const PER_UNIT: i64 = 10_000_000;

    pub fn checked_add(self, other: Stroops) -> Option<Stroops> {
        self.0.checked_add(other.0).map(Stroops)
    }

    pub fn checked_sub(self, other: Stroops) -> Option<Stroops> {
        self.0.checked_sub(other.0).map(Stroops)
    }

    pub fn checked_mul(self, n: i64) -> Option<Stroops> {
        self.0.checked_mul(n).map(Stroops)
    }

    /// The sum of `amounts`, or `None` on overflow.
    pub fn checked_sum<I: IntoIterator<Item = Stroops>>(amounts: I) -> Option<Stroops> {
        amounts
            .into_iter()
            .try_fold(Stroops::ZERO, Stroops::checked_add)
    }

    pub fn is_positive(self) -> bool {
        self.0 > 0
    }

    /// Parse a decimal integer number of stroops (`"1234567"`, `"-5"`).
    pub fn parse(s: &str) -> Result<Self> {
        s.trim()
            .parse::<i64>()
            .map(Stroops)
            .map_err(|_| Error::Amount(s.chars().take(40).collect()))
    }

    /// Whole units with exactly 7 decimals, as Horizon shows amounts
    /// (`12345678` -> `"1.2345678"`); integer arithmetic only.
    pub fn to_units_string(self) -> String {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let per = Self::PER_UNIT as u64;
        format!("{sign}{}.{:07}", abs / per, abs % per)
    }
}

/// `1234 stroops`.
impl fmt::Display for Stroops {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} stroops", self.0)
    }
}

impl FromStr for Stroops {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Stroops::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_is_checked() {
        assert_eq!(Stroops(2).checked_add(Stroops(3)), Some(Stroops(5)));
        assert_eq!(Stroops(i64::MAX).checked_add(Stroops(1)), None);
        assert_eq!(Stroops(i64::MIN).checked_sub(Stroops(1)), None);
        assert_eq!(Stroops(7).checked_sub(Stroops(9)), Some(Stroops(-2)));
        assert_eq!(Stroops(7).checked_mul(3), Some(Stroops(21)));
        assert_eq!(Stroops(i64::MAX / 2 + 1).checked_mul(2), None);
        assert_eq!(
            Stroops::checked_sum([Stroops(1), Stroops(2), Stroops(3)]),
            Some(Stroops(6))
        );
        assert_eq!(Stroops::checked_sum([Stroops(i64::MAX), Stroops(1)]), None);
    }

    #[test]
    fn display_parse_and_units() {
        assert_eq!(Stroops(1234).to_string(), "1234 stroops");
        assert_eq!(Stroops::parse(" 1234 ").unwrap(), Stroops(1234));
        assert!(Stroops::parse("1.5").is_err());
        assert!(Stroops::parse("99999999999999999999").is_err());
        assert_eq!(Stroops(12_345_678).to_units_string(), "1.2345678");
        assert_eq!(Stroops(1).to_units_string(), "0.0000001");
        assert_eq!(Stroops(-10_000_000).to_units_string(), "-1.0000000");
        assert_eq!(Stroops(i64::MIN).to_units_string(), "-922337203685.4775808");
        assert_eq!(serde_json::to_string(&Stroops(42)).unwrap(), "42");
        assert_eq!(serde_json::from_str::<Stroops>("42").unwrap(), Stroops(42));
    }
}
