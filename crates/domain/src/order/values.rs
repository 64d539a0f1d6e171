//! The values of an order: how it is served, covers, line quantities,
//! modifiers, courses and the reason for a cancellation.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::values::string_value;

/// The longest table label, in characters ("T12", "Terrace 4").
const TABLE_MAX_CHARS: usize = 16;
/// The most covers (guests) an order may count.
const MAX_COVERS: i64 = 999;
/// The most portions one line may hold.
pub const MAX_LINE_QUANTITY: i64 = 999;
/// The longest modifier, in characters ("no onions", "extra hot").
const MODIFIER_MAX_CHARS: usize = 40;
/// The most modifiers one line may carry.
pub const MAX_MODIFIERS: usize = 10;
/// The highest course number.
const MAX_COURSE: u8 = 9;
/// The longest cancellation reason, in characters.
const REASON_MAX_CHARS: usize = 200;

/// Trims a short label and checks its length and characters.
fn parse_label(
    input: &str,
    max_chars: usize,
    invalid: impl Fn(&'static str) -> DomainError,
    too_long: &'static str,
) -> Result<String, DomainError> {
    let value = input.trim();
    if value.is_empty() {
        return Err(invalid("must not be empty"));
    }
    if value.chars().count() > max_chars {
        return Err(invalid(too_long));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid("must not contain control characters"));
    }
    Ok(value.to_owned())
}

/// A table's label ("12", "Terrace 4"): trimmed, 1..=16 characters, no
/// control characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct TableLabel(String);

impl TableLabel {
    /// Parses a table label; see the type docs for the rules.
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let invalid = |reason| DomainError::InvalidTable {
            field: "table",
            reason,
        };
        parse_label(
            input,
            TABLE_MAX_CHARS,
            invalid,
            "must be at most 16 characters",
        )
        .map(Self)
    }
}

string_value!(TableLabel);

/// How an order is served. In JSON: `{"kind": "dine_in", "table": "12"}` or
/// `{"kind": "takeaway"}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Service {
    /// Eaten in, at a table.
    DineIn {
        /// The table.
        table: TableLabel,
    },
    /// Taken away (or delivered).
    Takeaway,
}

/// How many guests an order is for: `0..=999` (a takeaway may count none).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(try_from = "i64")]
pub struct Covers(u16);

impl Covers {
    /// Parses a number of covers; see the type docs for the rules.
    pub fn parse(value: i64) -> Result<Self, DomainError> {
        match u16::try_from(value) {
            Ok(covers) if value <= MAX_COVERS => Ok(Self(covers)),
            _ => Err(DomainError::InvalidCovers {
                field: "covers",
                reason: "must be 0..=999",
            }),
        }
    }

    /// The number.
    pub const fn get(self) -> u16 {
        self.0
    }
}

impl TryFrom<i64> for Covers {
    type Error = DomainError;

    fn try_from(value: i64) -> Result<Self, Self::Error> {
        Self::parse(value)
    }
}

impl From<Covers> for i64 {
    fn from(value: Covers) -> Self {
        value.0.into()
    }
}

/// How many portions a line holds: `1..=`[`MAX_LINE_QUANTITY`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "i64")]
pub struct LineQuantity(i64);

impl LineQuantity {
    /// Parses a line quantity; see the type docs for the rules.
    pub fn parse(value: i64) -> Result<Self, DomainError> {
        if !(1..=MAX_LINE_QUANTITY).contains(&value) {
            return Err(DomainError::InvalidQuantity {
                field: "quantity",
                reason: "must be 1..=999",
            });
        }
        Ok(Self(value))
    }

    /// The number.
    pub const fn get(self) -> i64 {
        self.0
    }
}

impl TryFrom<i64> for LineQuantity {
    type Error = DomainError;

    fn try_from(value: i64) -> Result<Self, Self::Error> {
        Self::parse(value)
    }
}

impl fmt::Display for LineQuantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// A change to a dish asked for by the guest ("no onions", "medium rare"):
/// trimmed, 1..=40 characters, no control characters. A line carries at most
/// [`MAX_MODIFIERS`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct Modifier(String);

impl Modifier {
    /// Parses a modifier; see the type docs for the rules.
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let invalid = |reason| DomainError::InvalidModifier {
            field: "modifiers",
            reason,
        };
        parse_label(
            input,
            MODIFIER_MAX_CHARS,
            invalid,
            "must be at most 40 characters",
        )
        .map(Self)
    }
}

string_value!(Modifier);

/// Which course a line belongs to: `1..=9`, 1 unless said otherwise. Lines
/// can be fired course by course.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "i64")]
pub struct Course(u8);

impl Course {
    /// The first course, the default.
    pub const FIRST: Course = Course(1);

    /// Parses a course number; see the type docs for the rules.
    pub fn parse(value: i64) -> Result<Self, DomainError> {
        match u8::try_from(value) {
            Ok(course) if (1..=MAX_COURSE).contains(&course) => Ok(Self(course)),
            _ => Err(DomainError::InvalidCourse {
                field: "course",
                reason: "must be 1..=9",
            }),
        }
    }

    /// The number.
    pub const fn get(self) -> u8 {
        self.0
    }
}

impl Default for Course {
    fn default() -> Self {
        Self::FIRST
    }
}

impl TryFrom<i64> for Course {
    type Error = DomainError;

    fn try_from(value: i64) -> Result<Self, Self::Error> {
        Self::parse(value)
    }
}

impl From<Course> for i64 {
    fn from(value: Course) -> Self {
        value.0.into()
    }
}

impl fmt::Display for Course {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Why an order was cancelled: trimmed, 1..=200 characters, no control
/// characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct CancelReason(String);

impl CancelReason {
    /// Parses a reason; see the type docs for the rules.
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let invalid = |reason| DomainError::InvalidReason {
            field: "reason",
            reason,
        };
        parse_label(
            input,
            REASON_MAX_CHARS,
            invalid,
            "must be at most 200 characters",
        )
        .map(Self)
    }
}

string_value!(CancelReason);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_labels_are_short_trimmed_text() {
        assert_eq!(TableLabel::parse(" T12 ").unwrap().as_str(), "T12");
        for input in ["", "  ", "T\n12", &"x".repeat(17)] {
            let err = TableLabel::parse(input).unwrap_err();
            assert_eq!(err.code(), "invalid_table", "{input:?}");
            assert_eq!(err.field(), Some("table"));
        }
    }

    #[test]
    fn service_is_tagged_by_kind() {
        let dine_in = Service::DineIn {
            table: TableLabel::parse("12").unwrap(),
        };
        let json = serde_json::to_value(&dine_in).unwrap();
        assert_eq!(
            json,
            serde_json::json!({ "kind": "dine_in", "table": "12" })
        );
        assert_eq!(serde_json::from_value::<Service>(json).unwrap(), dine_in);
        assert_eq!(
            serde_json::to_value(Service::Takeaway).unwrap(),
            serde_json::json!({ "kind": "takeaway" })
        );
        let blank = serde_json::json!({ "kind": "dine_in", "table": " " });
        assert!(serde_json::from_value::<Service>(blank).is_err());
    }

    #[test]
    fn covers_are_zero_to_999() {
        assert_eq!(Covers::parse(0).unwrap().get(), 0);
        assert_eq!(Covers::parse(999).unwrap().get(), 999);
        for value in [-1, 1000, i64::MAX] {
            assert_eq!(Covers::parse(value).unwrap_err().code(), "invalid_covers");
        }
    }

    #[test]
    fn a_line_holds_one_to_999_portions() {
        assert_eq!(LineQuantity::parse(1).unwrap().get(), 1);
        assert!(LineQuantity::parse(MAX_LINE_QUANTITY).is_ok());
        for value in [0, -2, 1000] {
            let err = LineQuantity::parse(value).unwrap_err();
            assert_eq!(err.code(), "invalid_quantity");
            assert_eq!(err.field(), Some("quantity"));
        }
    }

    #[test]
    fn modifiers_and_reasons_are_short_trimmed_text() {
        assert_eq!(
            Modifier::parse(" no onions ").unwrap().as_str(),
            "no onions"
        );
        assert_eq!(Modifier::parse("").unwrap_err().code(), "invalid_modifier");
        assert!(Modifier::parse(&"x".repeat(41)).is_err());
        assert_eq!(
            CancelReason::parse(" guest left ").unwrap().as_str(),
            "guest left"
        );
        assert_eq!(
            CancelReason::parse(" ").unwrap_err().code(),
            "invalid_reason"
        );
        assert!(CancelReason::parse(&"x".repeat(201)).is_err());
    }

    #[test]
    fn courses_are_one_to_nine_and_default_to_one() {
        assert_eq!(Course::default(), Course::FIRST);
        assert_eq!(Course::parse(9).unwrap().get(), 9);
        for value in [0, 10, -1, 256] {
            assert_eq!(Course::parse(value).unwrap_err().code(), "invalid_course");
        }
        assert_eq!(serde_json::to_string(&Course::FIRST).unwrap(), "1");
    }
}
