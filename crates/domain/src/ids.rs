//! Identifiers: the tenant slug and the UUID ids of stores, items, transfers,
//! menus, menu items, orders and order lines.
//!
//! Ids are always passed in by the caller (the domain has no randomness), except
//! [`ItemId::for_sku`], which derives an item's id from its store and SKU, and
//! [`MenuId::of_store`]: a store has one menu, whose id is the store's.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::DomainError;
use crate::values::Sku;

/// The longest tenant id, in characters.
const TENANT_MAX_CHARS: usize = 64;

/// A tenant (a restaurant group or retail chain): 1..=64 characters of
/// `[a-z0-9_-]`.
///
/// Input is trimmed and lowercased, so `" Acme "` and `"acme"` are the same
/// tenant.
///
/// ```
/// use larder_domain::TenantId;
///
/// assert_eq!(TenantId::parse(" Acme-Foods ").unwrap().as_str(), "acme-foods");
/// assert!(TenantId::parse("acme foods").is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct TenantId(String);

impl TenantId {
    /// Parses a tenant id; see the type docs for the rules.
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let invalid = |reason| DomainError::InvalidTenant {
            field: "tenant",
            reason,
        };
        let value = input.trim().to_ascii_lowercase();
        if value.is_empty() {
            return Err(invalid("must not be empty"));
        }
        if value.chars().count() > TENANT_MAX_CHARS {
            return Err(invalid("must be at most 64 characters"));
        }
        if !value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        {
            return Err(invalid("may only contain a-z, 0-9, '_' and '-'"));
        }
        Ok(Self(value))
    }

    /// The normalised tenant id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TenantId {
    type Error = DomainError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl FromStr for TenantId {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl AsRef<str> for TenantId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Declares a UUID newtype. Every UUID is a valid id, so only `FromStr` can fail.
macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// Wraps a UUID chosen by the caller.
            pub const fn new(id: Uuid) -> Self {
                Self(id)
            }

            /// The underlying UUID.
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl FromStr for $name {
            type Err = DomainError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s.trim())
                    .map(Self)
                    .map_err(|_| DomainError::InvalidId {
                        field: $field,
                        reason: "must be a UUID",
                    })
            }
        }

        /// The hyphenated lowercase UUID.
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }
    };
}

uuid_id!(
    /// A store (a restaurant, shop or warehouse) of a tenant.
    StoreId,
    "store_id"
);

uuid_id!(
    /// A stock-keeping item of a store. Derived from the store and SKU by
    /// [`ItemId::for_sku`].
    ItemId,
    "item_id"
);

uuid_id!(
    /// One stored event: the id the event store gave it. The domain sees it
    /// only where a rule is about a recorded event (undoing a change).
    EventId,
    "event_id"
);

uuid_id!(
    /// One stock transfer between two items; chosen by the caller so that a
    /// retried request can be recognised.
    TransferId,
    "transfer_id"
);

uuid_id!(
    /// The menu of one store. A store has exactly one, and its id is the
    /// store's own UUID ([`MenuId::of_store`]), so the menu needs no creation
    /// and cannot be confused with another store's.
    MenuId,
    "menu_id"
);

uuid_id!(
    /// A dish or drink on a store's menu; chosen by the caller.
    MenuItemId,
    "menu_item_id"
);

uuid_id!(
    /// An order taken at a store; chosen by the caller (the till), so that a
    /// retried request can be recognised.
    OrderId,
    "order_id"
);

uuid_id!(
    /// A user's inbox of notifications. Derived from the tenant and the user
    /// by [`InboxId::of_user`]: a user has one inbox per tenant.
    InboxId,
    "inbox_id"
);

uuid_id!(
    /// One notification in a user's inbox. Derived from what it is about by
    /// [`NotificationId::derive`], so a rule run twice names the same one.
    NotificationId,
    "notification_id"
);

uuid_id!(
    /// One line of an order (a menu item, a quantity, modifiers); chosen by
    /// the caller and unique within its order.
    LineId,
    "line_id"
);

impl StoreId {
    /// The UUIDv5 namespace store ids are derived under from a client's key.
    ///
    /// Never change it: a retried create finds its store by the derived id.
    pub const NAMESPACE: Uuid = Uuid::from_u128(0x0b7e_52c4_41a8_4f9b_93d2_6e1f_a0c5_7d38);

    /// The id of the store a tenant creates with the key `key` (chosen by the
    /// client to make a retried create recognisable): UUIDv5 of
    /// `"{tenant}/{key}"` under [`StoreId::NAMESPACE`].
    ///
    /// Store ids are global (the stream is `store-{id}`), keys are not:
    /// because the tenant is part of the name, two tenants using the same key
    /// get two stores, and no key tells one tenant anything about another's
    /// stores.
    ///
    /// ```
    /// use larder_domain::{StoreId, TenantId};
    /// use uuid::Uuid;
    ///
    /// let key = Uuid::from_u128(7);
    /// let acme = StoreId::for_key(&TenantId::parse("acme").unwrap(), key);
    /// let globex = StoreId::for_key(&TenantId::parse("globex").unwrap(), key);
    /// assert_ne!(acme, globex);
    /// assert_eq!(acme, StoreId::for_key(&TenantId::parse("acme").unwrap(), key));
    /// ```
    pub fn for_key(tenant: &TenantId, key: Uuid) -> StoreId {
        let name = format!("{tenant}/{key}");
        StoreId(Uuid::new_v5(&Self::NAMESPACE, name.as_bytes()))
    }

    /// The event stream holding this store's events: `store-{uuid}`.
    pub fn stream_name(&self) -> String {
        format!("store-{self}")
    }
}

impl ItemId {
    /// The UUIDv5 namespace item ids are derived under.
    ///
    /// Never change it: every stored item stream is named after an id derived
    /// from it.
    pub const NAMESPACE: Uuid = Uuid::from_u128(0x6563_f15d_c539_405d_8020_9985_2c59_f88f);

    /// The id of the item with this SKU in this store: UUIDv5 of
    /// `"{store}/{sku}"` under [`ItemId::NAMESPACE`].
    ///
    /// Because the id is a function of store and SKU, the item's own stream
    /// enforces SKU uniqueness per store: adding the same SKU twice lands on
    /// the same, already existing stream. The SKU is normalised (uppercase)
    /// before it gets here, so `abc-1` and `ABC-1` are the same item.
    ///
    /// ```
    /// use larder_domain::{ItemId, Sku, StoreId};
    /// use uuid::Uuid;
    ///
    /// let store = StoreId::new(Uuid::from_u128(1));
    /// let a = ItemId::for_sku(store, &Sku::parse("flour-00").unwrap());
    /// let b = ItemId::for_sku(store, &Sku::parse("FLOUR-00").unwrap());
    /// assert_eq!(a, b);
    /// ```
    pub fn for_sku(store: StoreId, sku: &Sku) -> ItemId {
        let name = format!("{store}/{sku}");
        ItemId(Uuid::new_v5(&Self::NAMESPACE, name.as_bytes()))
    }

    /// The event stream holding this item's events: `item-{uuid}`.
    pub fn stream_name(&self) -> String {
        format!("item-{self}")
    }
}

impl MenuId {
    /// The menu of `store`: the same UUID.
    pub const fn of_store(store: StoreId) -> MenuId {
        MenuId(store.as_uuid())
    }

    /// The store this menu belongs to.
    pub const fn store_id(self) -> StoreId {
        StoreId::new(self.0)
    }

    /// The event stream holding this menu's events: `menu-{uuid}`, the
    /// store's UUID.
    pub fn stream_name(&self) -> String {
        format!("menu-{self}")
    }
}

impl InboxId {
    /// The UUIDv5 namespace inbox ids are derived under.
    ///
    /// Never change it: every stored inbox stream is named after an id derived
    /// from it.
    pub const NAMESPACE: Uuid = Uuid::from_u128(0x3c1d_8a52_9e0f_4b7a_a6d4_51e2_c8f0_b913);

    /// The inbox of `user` in `tenant`: UUIDv5 of `"{tenant}/{user}"` under
    /// [`InboxId::NAMESPACE`]. A tenant is `[a-z0-9_-]`, so the first `/`
    /// ends it and two (tenant, user) pairs never share an inbox.
    ///
    /// ```
    /// use larder_domain::{InboxId, TenantId, UserId};
    ///
    /// let acme = TenantId::parse("acme").unwrap();
    /// let alice = UserId::parse("alice").unwrap();
    /// assert_eq!(InboxId::of_user(&acme, &alice), InboxId::of_user(&acme, &alice));
    /// let globex = TenantId::parse("globex").unwrap();
    /// assert_ne!(InboxId::of_user(&acme, &alice), InboxId::of_user(&globex, &alice));
    /// ```
    pub fn of_user(tenant: &TenantId, user: &crate::UserId) -> InboxId {
        let name = format!("{tenant}/{user}");
        InboxId(Uuid::new_v5(&Self::NAMESPACE, name.as_bytes()))
    }

    /// The event stream holding this inbox's events: `inbox-{uuid}`.
    pub fn stream_name(&self) -> String {
        format!("inbox-{self}")
    }
}

impl NotificationId {
    /// The id of the notification a rule raises in `inbox` for `key` (what
    /// it is about, e.g. `low-stock:{event id}`): UUIDv5 of
    /// `"{inbox}/{key}"` under the inbox namespace, so raising it again
    /// names the same notification.
    pub fn derive(inbox: InboxId, key: &str) -> NotificationId {
        let name = format!("{inbox}/{key}");
        NotificationId(Uuid::new_v5(&InboxId::NAMESPACE, name.as_bytes()))
    }
}

impl OrderId {
    /// The event stream holding this order's events: `order-{uuid}`.
    pub fn stream_name(&self) -> String {
        format!("order-{self}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_are_trimmed_and_lowercased() {
        let tenant = TenantId::parse("  Acme_Foods-2 \n").unwrap();
        assert_eq!(tenant.as_str(), "acme_foods-2");
        assert_eq!(tenant.to_string(), "acme_foods-2");
    }

    #[test]
    fn empty_or_blank_tenant_ids_are_rejected() {
        for input in ["", "   ", "\t"] {
            let err = TenantId::parse(input).unwrap_err();
            assert_eq!(err.code(), "invalid_tenant");
            assert_eq!(err.field(), Some("tenant"));
        }
    }

    #[test]
    fn tenant_ids_of_64_characters_are_accepted_and_65_rejected() {
        assert!(TenantId::parse(&"a".repeat(64)).is_ok());
        assert!(TenantId::parse(&"a".repeat(65)).is_err());
    }

    #[test]
    fn tenant_ids_with_other_characters_are_rejected() {
        for input in ["acme foods", "acme.foods", "acme/foods", "ācme", "acme!"] {
            assert!(TenantId::parse(input).is_err(), "{input:?} was accepted");
        }
    }

    #[test]
    fn deserialising_an_invalid_tenant_id_fails() {
        assert!(serde_json::from_str::<TenantId>(r#""no spaces""#).is_err());
        let tenant: TenantId = serde_json::from_str(r#""ACME""#).unwrap();
        assert_eq!(tenant.as_str(), "acme");
        assert_eq!(serde_json::to_string(&tenant).unwrap(), r#""acme""#);
    }

    #[test]
    fn uuid_ids_parse_from_and_display_as_hyphenated_uuids() {
        let text = "67e55044-10b1-426f-9247-bb680e5fe0c8";
        let store: StoreId = text.parse().unwrap();
        assert_eq!(store.to_string(), text);
        assert_eq!(store.as_uuid(), Uuid::parse_str(text).unwrap());
        assert_eq!(
            serde_json::to_string(&store).unwrap(),
            format!("\"{text}\"")
        );
    }

    #[test]
    fn ids_that_are_not_uuids_are_rejected_with_their_field() {
        let err = "store-1".parse::<StoreId>().unwrap_err();
        assert_eq!(err.code(), "invalid_id");
        assert_eq!(err.field(), Some("store_id"));
        assert_eq!("x".parse::<ItemId>().unwrap_err().field(), Some("item_id"));
        assert_eq!(
            "x".parse::<TransferId>().unwrap_err().field(),
            Some("transfer_id")
        );
    }

    #[test]
    fn stream_names_are_prefixed_with_the_entity_type() {
        let id = Uuid::from_u128(0xabc);
        assert_eq!(StoreId::new(id).stream_name(), format!("store-{id}"));
        assert_eq!(ItemId::new(id).stream_name(), format!("item-{id}"));
        assert_eq!(OrderId::new(id).stream_name(), format!("order-{id}"));
    }

    #[test]
    fn a_store_has_one_menu_named_after_it() {
        let store = StoreId::new(Uuid::from_u128(0xabc));
        let menu = MenuId::of_store(store);
        assert_eq!(menu.as_uuid(), store.as_uuid());
        assert_eq!(menu.store_id(), store);
        assert_eq!(menu.stream_name(), format!("menu-{store}"));
    }

    #[test]
    fn item_ids_are_uuid_v5_of_store_and_sku() {
        let store = StoreId::new(Uuid::from_u128(7));
        let sku = Sku::parse("FLOUR-00").unwrap();
        let id = ItemId::for_sku(store, &sku);
        let expected = Uuid::new_v5(
            &ItemId::NAMESPACE,
            format!("{}/FLOUR-00", store.as_uuid()).as_bytes(),
        );
        assert_eq!(id.as_uuid(), expected);
        assert_eq!(id.as_uuid().get_version_num(), 5);
    }

    #[test]
    fn the_same_sku_in_another_store_is_another_item() {
        let sku = Sku::parse("FLOUR-00").unwrap();
        let a = ItemId::for_sku(StoreId::new(Uuid::from_u128(1)), &sku);
        let b = ItemId::for_sku(StoreId::new(Uuid::from_u128(2)), &sku);
        assert_ne!(a, b);
    }

    #[test]
    fn item_id_derivation_is_stable() {
        // Pinned: a change here would orphan every stored item stream.
        let store: StoreId = "00000000-0000-0000-0000-000000000001".parse().unwrap();
        let id = ItemId::for_sku(store, &Sku::parse("SKU-1").unwrap());
        let again = Uuid::new_v5(
            &Uuid::parse_str("6563f15d-c539-405d-8020-99852c59f88f").unwrap(),
            b"00000000-0000-0000-0000-000000000001/SKU-1",
        );
        assert_eq!(id.as_uuid(), again);
    }
}
