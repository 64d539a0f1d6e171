//! The values of a menu: station keys, names and timers, menu item names and
//! recipes.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::ids::ItemId;
use crate::values::{Quantity, parse_name, string_value};

/// The longest station key, in characters.
const STATION_KEY_MAX_CHARS: usize = 32;
/// The most ingredients one recipe lists: a dish, not a stock take.
pub const MAX_RECIPE_INGREDIENTS: usize = 50;
/// The most of an item one portion uses, in the item's unit: far beyond any
/// dish, small enough that a line of [`crate::order::MAX_LINE_QUANTITY`]
/// portions cannot overflow.
pub const MAX_PER_PORTION: i64 = 1_000_000;
/// The longest a timer threshold may be: a day.
const MAX_TIMER_SECS: u32 = 86_400;

/// A kitchen station's key, e.g. `grill`, `fry`, `bar`: trimmed, lowercased,
/// 1..=32 characters of `[a-z0-9_-]`. Topics and screens are named after it.
///
/// ```
/// use larder_domain::StationKey;
///
/// assert_eq!(StationKey::parse(" Grill ").unwrap().as_str(), "grill");
/// assert!(StationKey::parse("hot grill").is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct StationKey(String);

impl StationKey {
    /// Parses a station key; see the type docs for the rules.
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let invalid = |reason| DomainError::InvalidStation {
            field: "station",
            reason,
        };
        let value = input.trim().to_ascii_lowercase();
        if value.is_empty() {
            return Err(invalid("must not be empty"));
        }
        if value.chars().count() > STATION_KEY_MAX_CHARS {
            return Err(invalid("must be at most 32 characters"));
        }
        if !value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        {
            return Err(invalid("may only contain a-z, 0-9, '_' and '-'"));
        }
        Ok(Self(value))
    }
}

string_value!(StationKey);

/// A station's display name ("Grill & Plancha"): trimmed, 1..=100
/// characters, no control characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct StationName(String);

impl StationName {
    /// Parses a station name; see the type docs for the rules.
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        parse_name(input, "name").map(Self)
    }
}

string_value!(StationName);

/// A menu item's display name ("Margherita"): trimmed, 1..=100 characters,
/// no control characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct MenuItemName(String);

impl MenuItemName {
    /// Parses a menu item name; see the type docs for the rules.
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        parse_name(input, "name").map(Self)
    }
}

string_value!(MenuItemName);

/// When a station's ticket turns amber (`warn_after_secs` after it was
/// fired) and red (`late_after_secs`): `1 <= warn < late <= 86400`.
///
/// In JSON: `{"warn_after_secs": 300, "late_after_secs": 600}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "TimerFields")]
pub struct StationTimers {
    warn_after_secs: u32,
    late_after_secs: u32,
}

/// The unchecked JSON shape of [`StationTimers`].
#[derive(Deserialize)]
struct TimerFields {
    warn_after_secs: u32,
    late_after_secs: u32,
}

impl TryFrom<TimerFields> for StationTimers {
    type Error = DomainError;

    fn try_from(fields: TimerFields) -> Result<Self, Self::Error> {
        Self::parse(fields.warn_after_secs, fields.late_after_secs)
    }
}

impl StationTimers {
    /// Parses a pair of thresholds; see the type docs for the rules.
    pub fn parse(warn_after_secs: u32, late_after_secs: u32) -> Result<Self, DomainError> {
        if warn_after_secs == 0 {
            return Err(DomainError::InvalidTimers {
                field: "warn_after_secs",
                reason: "must be above zero",
            });
        }
        if late_after_secs <= warn_after_secs {
            return Err(DomainError::InvalidTimers {
                field: "late_after_secs",
                reason: "must be above warn_after_secs",
            });
        }
        if late_after_secs > MAX_TIMER_SECS {
            return Err(DomainError::InvalidTimers {
                field: "late_after_secs",
                reason: "must be at most 86400 (a day)",
            });
        }
        Ok(Self {
            warn_after_secs,
            late_after_secs,
        })
    }

    /// Seconds after firing at which a ticket is shown as running late.
    pub const fn warn_after_secs(&self) -> u32 {
        self.warn_after_secs
    }

    /// Seconds after firing at which a ticket is shown as late.
    pub const fn late_after_secs(&self) -> u32 {
        self.late_after_secs
    }
}

/// How much of an inventory item one portion uses: `1..=`[`MAX_PER_PORTION`],
/// in the item's unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "i64")]
pub struct PerPortion(i64);

impl PerPortion {
    /// Parses a quantity per portion; see the type docs for the rules.
    pub fn parse(value: i64) -> Result<Self, DomainError> {
        if !(1..=MAX_PER_PORTION).contains(&value) {
            return Err(DomainError::InvalidRecipe {
                field: "recipe",
                reason: "a quantity per portion must be 1..=1000000",
            });
        }
        Ok(Self(value))
    }

    /// The number.
    pub const fn get(self) -> i64 {
        self.0
    }
}

impl TryFrom<i64> for PerPortion {
    type Error = DomainError;

    fn try_from(value: i64) -> Result<Self, Self::Error> {
        Self::parse(value)
    }
}

impl fmt::Display for PerPortion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// One line of a recipe: an inventory item and how much of it a portion uses.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Ingredient {
    /// The inventory item (its stream is `item-{item_id}`).
    pub item_id: ItemId,
    /// How much of it one portion uses.
    pub quantity: PerPortion,
}

/// What one portion of a menu item takes from stock: 1..=50 ingredients,
/// each item at most once. Serialised as the list of [`Ingredient`]s.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "Vec<Ingredient>", into = "Vec<Ingredient>")]
pub struct Recipe(Vec<Ingredient>);

impl Recipe {
    /// Parses a recipe; see the type docs for the rules. The order of the
    /// ingredients is kept.
    pub fn parse(ingredients: Vec<Ingredient>) -> Result<Self, DomainError> {
        let invalid = |reason| DomainError::InvalidRecipe {
            field: "recipe",
            reason,
        };
        if ingredients.is_empty() {
            return Err(invalid("must list at least one ingredient"));
        }
        if ingredients.len() > MAX_RECIPE_INGREDIENTS {
            return Err(invalid("must list at most 50 ingredients"));
        }
        let mut seen = BTreeSet::new();
        if !ingredients.iter().all(|i| seen.insert(i.item_id)) {
            return Err(invalid("must not list an item twice"));
        }
        Ok(Self(ingredients))
    }

    /// The ingredients, in the order given.
    pub fn ingredients(&self) -> &[Ingredient] {
        &self.0
    }

    /// The stock `portions` portions take: each ingredient times `portions`.
    /// `portions` is a line quantity (at most
    /// [`crate::order::MAX_LINE_QUANTITY`]), so the products cannot overflow.
    pub(crate) fn stock_for(&self, portions: i64) -> Vec<StockUse> {
        self.0
            .iter()
            .map(|ingredient| StockUse {
                item_id: ingredient.item_id,
                quantity: Quantity::parse(ingredient.quantity.get().saturating_mul(portions))
                    .unwrap_or(Quantity::ZERO),
            })
            .collect()
    }
}

impl TryFrom<Vec<Ingredient>> for Recipe {
    type Error = DomainError;

    fn try_from(ingredients: Vec<Ingredient>) -> Result<Self, Self::Error> {
        Self::parse(ingredients)
    }
}

impl From<Recipe> for Vec<Ingredient> {
    fn from(recipe: Recipe) -> Self {
        recipe.0
    }
}

/// Stock an order line takes (when fired) or gives back (when voided or
/// cancelled before it was started): the recipe times the line's quantity.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StockUse {
    /// The inventory item.
    pub item_id: ItemId,
    /// How much of it, in the item's unit; above zero.
    pub quantity: Quantity,
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    fn ingredient(item: u128, quantity: i64) -> Ingredient {
        Ingredient {
            item_id: ItemId::new(Uuid::from_u128(item)),
            quantity: PerPortion::parse(quantity).unwrap(),
        }
    }

    #[test]
    fn station_keys_are_trimmed_lowercased_slugs() {
        assert_eq!(
            StationKey::parse(" Cold-Prep_2 ").unwrap().as_str(),
            "cold-prep_2"
        );
        for input in ["", " ", "hot grill", "grill!", "plancha/2", "ğrill"] {
            let err = StationKey::parse(input).unwrap_err();
            assert_eq!(err.code(), "invalid_station", "{input:?}");
            assert_eq!(err.field(), Some("station"));
        }
        assert!(StationKey::parse(&"g".repeat(32)).is_ok());
        assert!(StationKey::parse(&"g".repeat(33)).is_err());
    }

    #[test]
    fn station_and_menu_item_names_follow_the_name_rules() {
        assert_eq!(StationName::parse(" Grill ").unwrap().as_str(), "Grill");
        assert_eq!(MenuItemName::parse("").unwrap_err().code(), "invalid_name");
        assert!(MenuItemName::parse("Fish\n& chips").is_err());
    }

    #[test]
    fn timers_warn_before_they_call_late() {
        let timers = StationTimers::parse(300, 600).unwrap();
        assert_eq!(
            (timers.warn_after_secs(), timers.late_after_secs()),
            (300, 600)
        );
        let field = |w, l| StationTimers::parse(w, l).unwrap_err().field();
        assert_eq!(field(0, 600), Some("warn_after_secs"));
        assert_eq!(field(600, 600), Some("late_after_secs"));
        assert_eq!(field(600, 300), Some("late_after_secs"));
        assert_eq!(field(1, 86_401), Some("late_after_secs"));
        assert!(StationTimers::parse(1, 86_400).is_ok());
        let json = serde_json::json!({ "warn_after_secs": 9, "late_after_secs": 3 });
        assert!(serde_json::from_value::<StationTimers>(json).is_err());
    }

    #[test]
    fn a_portion_uses_between_one_and_a_million() {
        assert_eq!(PerPortion::parse(1).unwrap().get(), 1);
        assert!(PerPortion::parse(MAX_PER_PORTION).is_ok());
        for value in [0, -1, MAX_PER_PORTION + 1] {
            assert_eq!(
                PerPortion::parse(value).unwrap_err().code(),
                "invalid_recipe"
            );
        }
    }

    #[test]
    fn a_recipe_lists_one_to_fifty_distinct_items() {
        assert!(Recipe::parse(vec![ingredient(1, 2), ingredient(2, 1)]).is_ok());
        let err = Recipe::parse(vec![]).unwrap_err();
        assert_eq!(err.code(), "invalid_recipe");
        assert_eq!(err.field(), Some("recipe"));
        assert!(Recipe::parse(vec![ingredient(1, 2), ingredient(1, 3)]).is_err());
        let fifty: Vec<_> = (0..50).map(|i| ingredient(i, 1)).collect();
        assert!(Recipe::parse(fifty.clone()).is_ok());
        let mut too_many = fifty;
        too_many.push(ingredient(50, 1));
        assert!(Recipe::parse(too_many).is_err());
    }

    #[test]
    fn a_recipe_is_json_of_its_ingredients_and_decodes_through_the_parser() {
        let recipe = Recipe::parse(vec![ingredient(1, 250)]).unwrap();
        let json = serde_json::to_value(&recipe).unwrap();
        assert_eq!(
            json,
            serde_json::json!([{ "item_id": Uuid::from_u128(1).to_string(), "quantity": 250 }])
        );
        assert_eq!(serde_json::from_value::<Recipe>(json).unwrap(), recipe);
        assert!(serde_json::from_value::<Recipe>(serde_json::json!([])).is_err());
    }

    #[test]
    fn the_stock_of_a_line_is_the_recipe_times_its_portions() {
        let recipe = Recipe::parse(vec![ingredient(1, 250), ingredient(2, 1)]).unwrap();
        let stock = recipe.stock_for(3);
        let quantities: Vec<_> = stock.iter().map(|s| s.quantity.get()).collect();
        assert_eq!(quantities, [750, 3]);
        assert_eq!(stock[0].item_id, ItemId::new(Uuid::from_u128(1)));
    }
}
