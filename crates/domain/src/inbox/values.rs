//! The values a notification is made of; each parses once and cannot hold a
//! bad value.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::DomainError;

/// The longest user id: the limit of a name in event metadata.
const USER_MAX_BYTES: usize = 200;
/// The longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 120;
/// The longest body, in characters.
pub const MAX_BODY_CHARS: usize = 1000;
/// The longest alert key or subject id, in bytes.
const KEY_MAX_BYTES: usize = 200;

fn invalid(field: &'static str, reason: &'static str) -> DomainError {
    DomainError::InvalidNotification { field, reason }
}

/// A user, as a token's `sub` names them: 1 to 200 bytes, no whitespace or
/// control characters. Users are not an aggregate: a user is whoever a valid
/// token says they are.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UserId(String);

impl UserId {
    /// Parses a user id.
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        if input.is_empty() || input.len() > USER_MAX_BYTES {
            return Err(invalid("user", "must be 1 to 200 bytes"));
        }
        if input.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid(
                "user",
                "may not contain whitespace or control characters",
            ));
        }
        Ok(Self(input.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for UserId {
    type Error = DomainError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<UserId> for String {
    fn from(user: UserId) -> Self {
        user.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a notification is about; preferences are set per kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// An item of a store one manages fell to its threshold.
    LowStock,
    /// An item of a store one manages ran out.
    OutOfStock,
    /// An order one took is ready at the pass.
    OrderReady,
    /// An order has waited in the kitchen past its station's threshold.
    OrderWaiting,
    /// A transfer into or out of a store one manages completed.
    TransferCompleted,
    /// A message from an administrator.
    Broadcast,
}

impl NotificationKind {
    /// Every kind, in a fixed order.
    pub const ALL: [NotificationKind; 6] = [
        Self::LowStock,
        Self::OutOfStock,
        Self::OrderReady,
        Self::OrderWaiting,
        Self::TransferCompleted,
        Self::Broadcast,
    ];

    /// The snake_case name, as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LowStock => "low_stock",
            Self::OutOfStock => "out_of_stock",
            Self::OrderReady => "order_ready",
            Self::OrderWaiting => "order_waiting",
            Self::TransferCompleted => "transfer_completed",
            Self::Broadcast => "broadcast",
        }
    }

    /// The kind named `name` (snake_case).
    pub fn parse(name: &str) -> Result<Self, DomainError> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
            .ok_or_else(|| invalid("kind", "unknown notification kind"))
    }
}

/// How urgent a notification is; ordered from `low` to `urgent`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// For the record.
    Low,
    /// Worth a look today.
    Normal,
    /// Worth a look now.
    High,
    /// Act now.
    Urgent,
}

impl Priority {
    /// The snake_case name, as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Normal => "normal",
            Self::High => "high",
            Self::Urgent => "urgent",
        }
    }
}

/// The one-line text of a notification: 1 to 120 characters, trimmed, no
/// control characters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Title(String);

impl Title {
    /// Parses a title.
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let value = input.trim();
        if value.is_empty() || value.chars().count() > MAX_TITLE_CHARS {
            return Err(invalid("title", "must be 1 to 120 characters"));
        }
        if value.chars().any(char::is_control) {
            return Err(invalid("title", "may not contain control characters"));
        }
        Ok(Self(value.to_owned()))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Title {
    type Error = DomainError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Title> for String {
    fn from(title: Title) -> Self {
        title.0
    }
}

/// The longer text of a notification: at most 1,000 characters, trimmed
/// (may be empty); line breaks allowed, other control characters not.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Body(String);

impl Body {
    /// Parses a body.
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let value = input.trim();
        if value.chars().count() > MAX_BODY_CHARS {
            return Err(invalid("body", "must be at most 1000 characters"));
        }
        if value.chars().any(|c| c.is_control() && c != '\n') {
            return Err(invalid("body", "may not contain control characters"));
        }
        Ok(Self(value.to_owned()))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Body {
    type Error = DomainError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Body> for String {
    fn from(body: Body) -> Self {
        body.0
    }
}

/// What a notification links to: an entity of the log (`store`, `item`,
/// `order`) and its id. A client opens it as `entity:{entity_type}:{id}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    /// `store`, `item` or `order`.
    pub entity_type: SubjectType,
    /// The entity's id.
    pub id: String,
}

/// The kinds of entity a notification may link to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectType {
    /// A store.
    Store,
    /// An inventory item.
    Item,
    /// An order.
    Order,
}

/// What keeps an alert from being raised twice: while an alert with this key
/// is open in an inbox, another notification with the same key is not raised
/// (`low-stock:{item id}`). Clearing it (`AlertCleared`) lets the next one
/// through. 1 to 200 bytes without whitespace or control characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AlertKey(String);

impl AlertKey {
    /// Parses an alert key.
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        if input.is_empty() || input.len() > KEY_MAX_BYTES {
            return Err(invalid("alert", "must be 1 to 200 bytes"));
        }
        if input.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid(
                "alert",
                "may not contain whitespace or control characters",
            ));
        }
        Ok(Self(input.to_owned()))
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for AlertKey {
    type Error = DomainError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<AlertKey> for String {
    fn from(key: AlertKey) -> Self {
        key.0
    }
}

/// A user's preference for one kind of notification. The default lets every
/// notification through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preference {
    /// Off: nothing of this kind is raised.
    pub enabled: bool,
    /// Notifications below this priority are not raised.
    pub min_priority: Priority,
}

impl Default for Preference {
    fn default() -> Self {
        Self {
            enabled: true,
            min_priority: Priority::Low,
        }
    }
}

impl Preference {
    /// Whether a notification of this priority is let through.
    pub fn admits(&self, priority: Priority) -> bool {
        self.enabled && priority >= self.min_priority
    }
}
