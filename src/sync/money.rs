//! Money between Odoo and the channels: exact decimals, never f64, and minor units (fils, cents)
//! from each currency's ISO 4217 exponent with an explicit rounding rule: half away from zero,
//! as accountants round.

use rust_decimal::{Decimal, RoundingStrategy};

/// Currencies whose minor unit is not a hundredth (ISO 4217). All others have exponent 2.
const EXPONENT_3: &[&str] = &["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"];
const EXPONENT_0: &[&str] = &[
    "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND",
    "VUV", "XAF", "XOF", "XPF",
];

/// Digits after the decimal point of the currency's minor unit (`kwd` -> 3, `jpy` -> 0, `egp` -> 2).
pub fn exponent(currency: &str) -> u32 {
    let code = currency.trim().to_ascii_uppercase();
    if EXPONENT_3.contains(&code.as_str()) {
        3
    } else if EXPONENT_0.contains(&code.as_str()) {
        0
    } else {
        2
    }
}

/// Rounds to the currency's precision.
pub fn round(amount: Decimal, currency: &str) -> Decimal {
    amount.round_dp_with_strategy(exponent(currency), RoundingStrategy::MidpointAwayFromZero)
}

/// Major units to minor units: 12.9 KWD -> 12900 fils; 19.995 EUR -> 2000 cents.
pub fn to_minor(amount: Decimal, currency: &str) -> Option<i64> {
    let scaled = round(amount, currency) * Decimal::from(10i64.pow(exponent(currency)));
    rust_decimal::prelude::ToPrimitive::to_i64(&scaled.trunc())
}

/// Minor units to major units: 12900 fils -> 12.900 KWD.
pub fn from_minor(minor: i64, currency: &str) -> Decimal {
    Decimal::new(minor, exponent(currency))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::str::FromStr;

    #[test]
    fn exponents_follow_iso_4217() {
        for (c, e) in [
            ("KWD", 3),
            ("kwd", 3),
            ("BHD", 3),
            ("OMR", 3),
            ("JOD", 3),
            ("TND", 3),
            ("JPY", 0),
            ("EGP", 2),
            ("USD", 2),
            ("EUR", 2),
        ] {
            assert_eq!(exponent(c), e, "{c}");
        }
    }

    #[test]
    fn known_amounts() {
        assert_eq!(
            to_minor(Decimal::from_str("12.9").unwrap(), "kwd"),
            Some(12_900)
        );
        assert_eq!(
            to_minor(Decimal::from_str("19.995").unwrap(), "eur"),
            Some(2000)
        );
        assert_eq!(
            to_minor(Decimal::from_str("0.0005").unwrap(), "kwd"),
            Some(1),
            "half away from zero"
        );
        assert_eq!(
            to_minor(Decimal::from_str("1500").unwrap(), "jpy"),
            Some(1500)
        );
        assert_eq!(from_minor(12_900, "kwd").to_string(), "12.900");
        assert_eq!(from_minor(5000, "kwd"), Decimal::from(5));
    }

    fn currency() -> impl Strategy<Value = &'static str> {
        prop_oneof![
            Just("KWD"),
            Just("BHD"),
            Just("EGP"),
            Just("USD"),
            Just("JPY"),
            Just("EUR")
        ]
    }

    proptest! {
        #[test]
        fn minor_units_round_trip(minor in 0i64..1_000_000_000_000, c in currency()) {
            prop_assert_eq!(to_minor(from_minor(minor, c), c), Some(minor));
        }

        #[test]
        fn major_units_round_trip_at_the_currency_precision(units in 0i64..1_000_000_000, frac in 0u32..100_000, c in currency()) {
            let amount = Decimal::from(units) + Decimal::new(frac as i64, 5);
            let minor = to_minor(amount, c).unwrap();
            prop_assert!(minor >= 0, "no negative from a non-negative amount");
            prop_assert_eq!(from_minor(minor, c), round(amount, c));
            prop_assert!((from_minor(minor, c) - amount).abs() <= Decimal::new(5, exponent(c) + 1));
        }
    }
}
