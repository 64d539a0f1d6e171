//! Value types: names, SKUs, units and the numbers of stock keeping.
//!
//! Each one parses its input once and cannot hold an invalid value afterwards;
//! deserialising goes through the same parser, so a stored event or a request
//! body cannot smuggle one in either.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::DomainError;

/// The longest store or item name, in characters: long enough for
/// "Grand Central Market – Stall 14 (Late Kitchen)", short enough for a label.
const NAME_MAX_CHARS: usize = 100;
/// The longest SKU, in characters; vendor SKUs and GTINs fit comfortably.
const SKU_MAX_CHARS: usize = 64;
/// The longest unit, in characters ("each", "kg", "case of 12").
const UNIT_MAX_CHARS: usize = 16;
/// The longest note on a stock adjustment, in characters. Notes are free text
/// shown in the history of an item, not documents.
pub const MAX_NOTE_CHARS: usize = 500;

/// Trims and checks a display name; shared by [`StoreName`], [`ItemName`] and
/// the names of menus.
pub(crate) fn parse_name(input: &str, field: &'static str) -> Result<String, DomainError> {
    let invalid = |reason| DomainError::InvalidName { field, reason };
    let value = input.trim();
    if value.is_empty() {
        return Err(invalid("must not be empty"));
    }
    if value.chars().count() > NAME_MAX_CHARS {
        return Err(invalid("must be at most 100 characters"));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid("must not contain control characters"));
    }
    Ok(value.to_owned())
}

/// Declares the boilerplate every string value type shares.
macro_rules! string_value {
    ($name:ident) => {
        impl $name {
            /// The normalised value.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = DomainError;

            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value)
            }
        }

        impl std::str::FromStr for $name {
            type Err = DomainError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}
pub(crate) use string_value;

/// A store's display name: trimmed, 1..=100 characters, no control characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct StoreName(String);

impl StoreName {
    /// Parses a store name; see the type docs for the rules.
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        parse_name(input, "name").map(Self)
    }
}

string_value!(StoreName);

/// An item's display name: trimmed, 1..=100 characters, no control characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct ItemName(String);

impl ItemName {
    /// Parses an item name; see the type docs for the rules.
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        parse_name(input, "name").map(Self)
    }
}

string_value!(ItemName);

/// A stock-keeping unit code: trimmed, uppercased, 1..=64 characters of
/// `[A-Z0-9._-]`.
///
/// ```
/// use larder_domain::Sku;
///
/// assert_eq!(Sku::parse(" flour-00 ").unwrap().as_str(), "FLOUR-00");
/// assert!(Sku::parse("FLOUR 00").is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct Sku(String);

impl Sku {
    /// Parses a SKU; see the type docs for the rules.
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let invalid = |reason| DomainError::InvalidSku {
            field: "sku",
            reason,
        };
        let value = input.trim().to_ascii_uppercase();
        if value.is_empty() {
            return Err(invalid("must not be empty"));
        }
        if value.chars().count() > SKU_MAX_CHARS {
            return Err(invalid("must be at most 64 characters"));
        }
        if !value
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
        {
            return Err(invalid("may only contain A-Z, 0-9, '.', '_' and '-'"));
        }
        Ok(Self(value))
    }
}

string_value!(Sku);

/// The unit an item is counted in ("each", "kg", "case"): trimmed,
/// 1..=16 characters of letters, digits, spaces and dots.
///
/// Letters include non-ASCII ones ("Stück"); case is kept as given.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct Unit(String);

impl Unit {
    /// Parses a unit; see the type docs for the rules.
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let invalid = |reason| DomainError::InvalidUnit {
            field: "unit",
            reason,
        };
        let value = input.trim();
        if value.is_empty() {
            return Err(invalid("must not be empty"));
        }
        if value.chars().count() > UNIT_MAX_CHARS {
            return Err(invalid("must be at most 16 characters"));
        }
        if !value
            .chars()
            .all(|c| c.is_alphanumeric() || c == ' ' || c == '.')
        {
            return Err(invalid("may only contain letters, digits, spaces and '.'"));
        }
        Ok(Self(value.to_owned()))
    }
}

string_value!(Unit);

/// Stock on hand, counted in the item's [`Unit`]: never negative.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(try_from = "i64")]
pub struct Quantity(i64);

impl Quantity {
    /// No stock.
    pub const ZERO: Quantity = Quantity(0);

    /// Parses a quantity: `value >= 0`.
    pub fn parse(value: i64) -> Result<Self, DomainError> {
        if value < 0 {
            return Err(DomainError::InvalidQuantity {
                field: "quantity",
                reason: "must not be negative",
            });
        }
        Ok(Self(value))
    }

    /// The number.
    pub const fn get(self) -> i64 {
        self.0
    }

    /// `true` when there is no stock.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// Applies a change of stock, refusing to go below zero
    /// ([`DomainError::InsufficientStock`]) or past `i64::MAX`
    /// ([`DomainError::QuantityOverflow`]).
    pub(crate) fn apply(self, delta: Delta) -> Result<Quantity, DomainError> {
        match self.0.checked_add(delta.get()) {
            Some(new) if new >= 0 => Ok(Quantity(new)),
            // `self >= 0`, so adding a negative delta cannot overflow: only a
            // positive one can.
            None if delta.get() > 0 => Err(DomainError::QuantityOverflow),
            _ => Err(DomainError::InsufficientStock {
                available: self.0,
                // |i64::MIN| does not fit; anything that large is insufficient
                // either way.
                requested: delta.get().checked_neg().unwrap_or(i64::MAX),
            }),
        }
    }
}

impl TryFrom<i64> for Quantity {
    type Error = DomainError;

    fn try_from(value: i64) -> Result<Self, Self::Error> {
        Self::parse(value)
    }
}

impl From<Quantity> for i64 {
    fn from(value: Quantity) -> Self {
        value.0
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// The low-stock threshold of an item: never negative. An item whose quantity
/// is above zero and at or below its threshold is [`crate::StockStatus::Low`].
///
/// Its own type, not a [`Quantity`], so the two cannot be swapped by accident
/// in `AddItem`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(try_from = "i64")]
pub struct Threshold(i64);

impl Threshold {
    /// Parses a threshold: `value >= 0`.
    pub fn parse(value: i64) -> Result<Self, DomainError> {
        if value < 0 {
            return Err(DomainError::InvalidThreshold {
                field: "threshold",
                reason: "must not be negative",
            });
        }
        Ok(Self(value))
    }

    /// The number.
    pub const fn get(self) -> i64 {
        self.0
    }
}

impl TryFrom<i64> for Threshold {
    type Error = DomainError;

    fn try_from(value: i64) -> Result<Self, Self::Error> {
        Self::parse(value)
    }
}

impl From<Threshold> for i64 {
    fn from(value: Threshold) -> Self {
        value.0
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// A change of stock: positive adds, negative takes out, never zero (a change
/// of nothing is not an event).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64")]
pub struct Delta(i64);

impl Delta {
    /// Parses a delta: `value != 0`.
    pub fn parse(value: i64) -> Result<Self, DomainError> {
        if value == 0 {
            return Err(DomainError::InvalidDelta {
                field: "delta",
                reason: "must not be zero",
            });
        }
        Ok(Self(value))
    }

    /// The number.
    pub const fn get(self) -> i64 {
        self.0
    }

    /// The opposite change, which undoes this one. `i64::MIN` has none (no
    /// stored adjustment holds it: it would take every stock below zero).
    pub(crate) fn inverse(self) -> Result<Delta, DomainError> {
        self.0
            .checked_neg()
            .map(Delta)
            .ok_or(DomainError::QuantityOverflow)
    }

    /// `+quantity` for a quantity known to be above zero.
    pub(crate) fn incoming(quantity: Quantity) -> Delta {
        debug_assert!(quantity.get() > 0);
        Delta(quantity.get())
    }

    /// `-quantity` for a quantity known to be above zero (negating a
    /// non-negative `i64` cannot overflow).
    pub(crate) fn outgoing(quantity: Quantity) -> Delta {
        debug_assert!(quantity.get() > 0);
        Delta(-quantity.get())
    }
}

impl TryFrom<i64> for Delta {
    type Error = DomainError;

    fn try_from(value: i64) -> Result<Self, Self::Error> {
        Self::parse(value)
    }
}

impl From<Delta> for i64 {
    fn from(value: Delta) -> Self {
        value.0
    }
}

impl fmt::Display for Delta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Normalises an optional note: trimmed, blank becomes `None`, at most
/// [`MAX_NOTE_CHARS`] characters.
pub(crate) fn parse_note(note: Option<String>) -> Result<Option<String>, DomainError> {
    let Some(note) = note else {
        return Ok(None);
    };
    let trimmed = note.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    if trimmed.chars().count() > MAX_NOTE_CHARS {
        return Err(DomainError::InvalidNote {
            field: "note",
            reason: "must be at most 500 characters",
        });
    }
    Ok(Some(trimmed.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed() {
        assert_eq!(
            StoreName::parse("  Soho Kitchen ").unwrap().as_str(),
            "Soho Kitchen"
        );
        assert_eq!(
            ItemName::parse("\tFlour 00\n").unwrap().to_string(),
            "Flour 00"
        );
    }

    #[test]
    fn blank_names_are_rejected() {
        for input in ["", "  ", "\n\t"] {
            let err = StoreName::parse(input).unwrap_err();
            assert_eq!(err.code(), "invalid_name");
            assert_eq!(err.field(), Some("name"));
            assert!(ItemName::parse(input).is_err());
        }
    }

    #[test]
    fn names_of_100_characters_are_accepted_and_101_rejected() {
        // Counted in characters, not bytes: 100 × 'é' is 200 bytes.
        assert!(ItemName::parse(&"é".repeat(100)).is_ok());
        assert!(ItemName::parse(&"é".repeat(101)).is_err());
        assert!(StoreName::parse(&"a".repeat(101)).is_err());
    }

    #[test]
    fn names_with_control_characters_are_rejected() {
        for input in ["Flour\n00", "Flour\u{0}", "Flour\u{1b}[31m"] {
            assert!(ItemName::parse(input).is_err(), "{input:?} was accepted");
        }
        assert!(ItemName::parse("Crème fraîche – 1 L").is_ok());
    }

    #[test]
    fn skus_are_trimmed_and_uppercased() {
        assert_eq!(Sku::parse(" abc.1_x-2 ").unwrap().as_str(), "ABC.1_X-2");
    }

    #[test]
    fn skus_with_other_characters_or_bad_lengths_are_rejected() {
        for input in ["", "  ", "AB C", "AB/C", "ÄB", "A+B"] {
            let err = Sku::parse(input).unwrap_err();
            assert_eq!(err.code(), "invalid_sku", "{input:?}");
        }
        assert!(Sku::parse(&"A".repeat(64)).is_ok());
        assert!(Sku::parse(&"A".repeat(65)).is_err());
    }

    #[test]
    fn units_allow_letters_digits_spaces_and_dots() {
        for input in ["each", "kg", "case", "case of 12", "fl. oz", "Stück"] {
            assert_eq!(Unit::parse(input).unwrap().as_str(), input);
        }
        assert_eq!(Unit::parse("  kg ").unwrap().as_str(), "kg");
    }

    #[test]
    fn units_with_other_characters_or_bad_lengths_are_rejected() {
        for input in ["", " ", "kg/m", "50%", "a-b"] {
            let err = Unit::parse(input).unwrap_err();
            assert_eq!(err.code(), "invalid_unit", "{input:?}");
            assert_eq!(err.field(), Some("unit"));
        }
        assert!(Unit::parse(&"x".repeat(16)).is_ok());
        assert!(Unit::parse(&"x".repeat(17)).is_err());
    }

    #[test]
    fn quantities_and_thresholds_may_be_zero_but_not_negative() {
        assert_eq!(Quantity::parse(0).unwrap(), Quantity::ZERO);
        assert_eq!(Quantity::parse(i64::MAX).unwrap().get(), i64::MAX);
        assert_eq!(Quantity::parse(-1).unwrap_err().code(), "invalid_quantity");
        assert_eq!(Threshold::parse(0).unwrap().get(), 0);
        let err = Threshold::parse(-1).unwrap_err();
        assert_eq!(err.code(), "invalid_threshold");
        assert_eq!(err.field(), Some("threshold"));
    }

    #[test]
    fn deltas_may_be_negative_but_not_zero() {
        assert_eq!(Delta::parse(-3).unwrap().get(), -3);
        assert_eq!(Delta::parse(i64::MIN).unwrap().get(), i64::MIN);
        assert_eq!(Delta::parse(0).unwrap_err().code(), "invalid_delta");
    }

    #[test]
    fn applying_a_delta_never_goes_below_zero_or_overflows() {
        let five = Quantity::parse(5).unwrap();
        let delta = |d| Delta::parse(d).unwrap();
        assert_eq!(five.apply(delta(-5)), Ok(Quantity::ZERO));
        assert_eq!(five.apply(delta(3)), Ok(Quantity::parse(8).unwrap()));
        assert_eq!(
            five.apply(delta(-6)),
            Err(DomainError::InsufficientStock {
                available: 5,
                requested: 6
            })
        );
        assert_eq!(
            five.apply(delta(i64::MAX)),
            Err(DomainError::QuantityOverflow)
        );
        assert_eq!(
            five.apply(delta(i64::MIN)),
            Err(DomainError::InsufficientStock {
                available: 5,
                requested: i64::MAX
            })
        );
    }

    #[test]
    fn deserialising_goes_through_the_parsers() {
        assert!(serde_json::from_str::<Quantity>("-1").is_err());
        assert!(serde_json::from_str::<Threshold>("-1").is_err());
        assert!(serde_json::from_str::<Delta>("0").is_err());
        assert!(serde_json::from_str::<Sku>(r#""a b""#).is_err());
        assert!(serde_json::from_str::<Unit>(r#""""#).is_err());
        assert!(serde_json::from_str::<StoreName>(r#""\n""#).is_err());
        assert!(serde_json::from_str::<ItemName>(r#""""#).is_err());
        let sku: Sku = serde_json::from_str(r#""abc""#).unwrap();
        assert_eq!(sku.as_str(), "ABC");
        assert_eq!(serde_json::to_string(&sku).unwrap(), r#""ABC""#);
        assert_eq!(
            serde_json::to_string(&Quantity::parse(4).unwrap()).unwrap(),
            "4"
        );
    }

    #[test]
    fn notes_are_trimmed_and_blank_notes_dropped() {
        assert_eq!(parse_note(None), Ok(None));
        assert_eq!(parse_note(Some("   ".into())), Ok(None));
        assert_eq!(
            parse_note(Some(" dropped a case ".into())),
            Ok(Some("dropped a case".into()))
        );
    }

    #[test]
    fn notes_longer_than_500_characters_are_rejected() {
        assert!(parse_note(Some("é".repeat(500))).is_ok());
        let err = parse_note(Some("é".repeat(501))).unwrap_err();
        assert_eq!(err.code(), "invalid_note");
        assert_eq!(err.field(), Some("note"));
    }
}
