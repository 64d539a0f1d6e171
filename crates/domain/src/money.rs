//! Money: an amount in minor units (pence, cents) and a currency code.
//!
//! Amounts are whole numbers of the currency's smallest unit, never floats,
//! so a total is exactly the sum of its lines. The domain does not know how
//! many minor units a currency has; it only adds and multiplies them.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::DomainError;

/// An ISO 4217-style currency code: three ASCII letters, uppercased
/// (`" gbp "` is `GBP`). Whether the code is assigned is not checked.
///
/// ```
/// use larder_domain::Currency;
///
/// assert_eq!(Currency::parse(" eur ").unwrap().as_str(), "EUR");
/// assert!(Currency::parse("EURO").is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct Currency(String);

impl Currency {
    /// Parses a currency code; see the type docs for the rules.
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let value = input.trim().to_ascii_uppercase();
        if value.len() != 3 || !value.chars().all(|c| c.is_ascii_uppercase()) {
            return Err(DomainError::InvalidCurrency {
                field: "currency",
                reason: "must be three letters, e.g. GBP",
            });
        }
        Ok(Self(value))
    }

    /// The uppercase code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Currency {
    type Error = DomainError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A non-negative amount of money: `amount_minor` minor units of `currency`.
/// A price of zero is allowed (tap water); a negative one is not.
///
/// In JSON: `{"amount_minor": 1250, "currency": "GBP"}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "MoneyFields")]
pub struct Money {
    amount_minor: i64,
    currency: Currency,
}

/// The unchecked JSON shape of [`Money`], checked by `TryFrom`.
#[derive(Deserialize)]
struct MoneyFields {
    amount_minor: i64,
    currency: Currency,
}

impl TryFrom<MoneyFields> for Money {
    type Error = DomainError;

    fn try_from(fields: MoneyFields) -> Result<Self, Self::Error> {
        Self::parse(fields.amount_minor, fields.currency)
    }
}

impl Money {
    /// Parses an amount: `amount_minor >= 0`.
    pub fn parse(amount_minor: i64, currency: Currency) -> Result<Self, DomainError> {
        if amount_minor < 0 {
            return Err(DomainError::InvalidPrice {
                field: "price",
                reason: "must not be negative",
            });
        }
        Ok(Self {
            amount_minor,
            currency,
        })
    }

    /// Nothing, in `currency`.
    pub fn zero(currency: Currency) -> Self {
        Self {
            amount_minor: 0,
            currency,
        }
    }

    /// The amount in minor units.
    pub const fn amount_minor(&self) -> i64 {
        self.amount_minor
    }

    /// The currency.
    pub fn currency(&self) -> &Currency {
        &self.currency
    }

    /// This amount `times` times ([`DomainError::AmountOverflow`] past
    /// `i64::MAX`).
    pub(crate) fn times(&self, times: i64) -> Result<Money, DomainError> {
        let amount_minor = self
            .amount_minor
            .checked_mul(times)
            .ok_or(DomainError::AmountOverflow)?;
        Self::parse(amount_minor, self.currency.clone()).map_err(|_| DomainError::AmountOverflow)
    }

    /// The sum of two amounts of the same currency
    /// ([`DomainError::CurrencyMismatch`] otherwise).
    pub(crate) fn plus(&self, other: &Money) -> Result<Money, DomainError> {
        if other.currency != self.currency {
            return Err(DomainError::CurrencyMismatch {
                expected: self.currency.clone(),
                actual: other.currency.clone(),
            });
        }
        let amount_minor = self
            .amount_minor
            .checked_add(other.amount_minor)
            .ok_or(DomainError::AmountOverflow)?;
        Ok(Self {
            amount_minor,
            currency: self.currency.clone(),
        })
    }
}

impl fmt::Display for Money {
    /// `1250 GBP`: minor units, then the code.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount_minor, self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gbp() -> Currency {
        Currency::parse("GBP").unwrap()
    }

    #[test]
    fn currencies_are_three_letters_uppercased() {
        assert_eq!(Currency::parse(" usd\n").unwrap().as_str(), "USD");
        for input in ["", "US", "USDX", "U$D", "ÜSD", "12A"] {
            let err = Currency::parse(input).unwrap_err();
            assert_eq!(err.code(), "invalid_currency", "{input:?}");
            assert_eq!(err.field(), Some("currency"));
        }
    }

    #[test]
    fn prices_may_be_zero_but_not_negative() {
        assert_eq!(Money::parse(0, gbp()).unwrap(), Money::zero(gbp()));
        let err = Money::parse(-1, gbp()).unwrap_err();
        assert_eq!(err.code(), "invalid_price");
        assert_eq!(err.field(), Some("price"));
    }

    #[test]
    fn money_is_json_of_minor_units_and_code_and_decodes_through_the_parser() {
        let price = Money::parse(1250, gbp()).unwrap();
        let json = serde_json::to_value(&price).unwrap();
        assert_eq!(
            json,
            serde_json::json!({ "amount_minor": 1250, "currency": "GBP" })
        );
        assert_eq!(serde_json::from_value::<Money>(json).unwrap(), price);
        let negative = serde_json::json!({ "amount_minor": -5, "currency": "GBP" });
        assert!(serde_json::from_value::<Money>(negative).is_err());
        let bad_code = serde_json::json!({ "amount_minor": 5, "currency": "POUND" });
        assert!(serde_json::from_value::<Money>(bad_code).is_err());
    }

    #[test]
    fn multiplying_and_adding_are_exact_and_refuse_to_overflow() {
        let price = Money::parse(1250, gbp()).unwrap();
        let three = price.times(3).unwrap();
        assert_eq!(three.amount_minor(), 3750);
        assert_eq!(three.plus(&price).unwrap().amount_minor(), 5000);
        assert_eq!(price.times(i64::MAX), Err(DomainError::AmountOverflow));
        let huge = Money::parse(i64::MAX, gbp()).unwrap();
        assert_eq!(huge.plus(&price), Err(DomainError::AmountOverflow));
        let euros = Money::parse(1, Currency::parse("EUR").unwrap()).unwrap();
        assert_eq!(
            price.plus(&euros),
            Err(DomainError::CurrencyMismatch {
                expected: gbp(),
                actual: Currency::parse("EUR").unwrap(),
            })
        );
        assert_eq!(price.to_string(), "1250 GBP");
    }
}
