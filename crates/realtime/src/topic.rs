//! Topics: what a client subscribes to, matched against event metadata (and,
//! for a kitchen station's topic, the stations an order event names).

use std::fmt;
use std::str::FromStr;

use larder_store::{EventFilter, Metadata, RecordedEvent};
use serde::Deserialize;

/// The longest topic string accepted: topics are keys in memory.
const MAX_TOPIC_LEN: usize = 256;

/// A subscription topic. The string forms (documented in `docs/protocol.md`):
///
/// | string                       | matches events whose metadata has     |
/// |------------------------------|---------------------------------------|
/// | `tenant`                     | the subscriber's tenant               |
/// | `store:{id}`                 | `store == id`                         |
/// | `type:{entity_type}`         | `entity_type == entity_type`          |
/// | `entity:{entity_type}:{id}`  | `entity_type` and `entity_id`         |
/// | `item:{id}`                  | `entity_type == "item"`, `entity_id`  |
/// | `user:{user_id}`             | `actor == user_id`, or addressed to `user_id` ([`recipient`]) (own id only) |
/// | `session:{sid}`              | `session == sid` (own session only)   |
/// | `orders:{store}`             | `store`, `entity_type == "order"`     |
/// | `station:{store}:{station}`  | as `orders:{store}`, and the event names the station or no station (see below) |
/// | `dashboard:{store}`          | no event: derived `state` frames      |
/// | `dashboard`                  | no event: the tenant's `state` frames |
///
/// A kitchen station's topic is the one topic that looks past the metadata,
/// at the `station` an order event's data names (a line's station, or each
/// fired line's): an order event naming other stations only is not on it,
/// and one naming none (rush, ready, cancelled...) concerns the whole order
/// and is on every station's topic of its store.
///
/// A dashboard's topic carries no events: its subscribers get the
/// dashboard's figures as a snapshot and then as `state` frames the server
/// pushes, coalesced ([`Topic::is_derived`], [`crate::Hub::start_state_publisher`]).
///
/// Every topic is implicitly within the subscriber's tenant, and for a
/// store-scoped identity within its stores ([`Identity::can_see`](crate::Identity::can_see)).
///
/// ```
/// use larder_realtime::Topic;
/// let topic: Topic = "entity:item:42".parse().unwrap();
/// assert_eq!(topic.to_string(), "entity:item:42");
/// assert!("store:".parse::<Topic>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Topic {
    /// Everything the subscriber may see in its tenant.
    Tenant,
    /// One store's events.
    Store(String),
    /// Every entity of one type.
    Type(String),
    /// One entity.
    Entity {
        /// The entity type.
        entity_type: String,
        /// The entity id.
        id: String,
    },
    /// One item: shorthand for `entity:item:{id}`.
    Item(String),
    /// Events caused by one user (only one's own).
    User(String),
    /// Events caused by one login session (only one's own).
    Session(String),
    /// One store's orders.
    Orders(String),
    /// One kitchen station's part of a store's orders.
    Station {
        /// The store.
        store: String,
        /// The station key, e.g. `grill`.
        station: String,
    },
    /// A dashboard: one store's (`Some`), or the whole tenant's (`None`).
    Dashboard(Option<String>),
}

/// Why a topic string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid topic {topic:?}: {reason}")]
pub struct TopicError {
    /// The string as given (truncated).
    pub topic: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

fn part(topic: &str, value: &str) -> Result<String, TopicError> {
    let error = |reason| TopicError {
        topic: topic.chars().take(64).collect(),
        reason,
    };
    if value.is_empty() {
        return Err(error("empty id"));
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(error(
            "ids may not contain whitespace or control characters",
        ));
    }
    Ok(value.to_owned())
}

impl FromStr for Topic {
    type Err = TopicError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let error = |reason| TopicError {
            topic: s.chars().take(64).collect(),
            reason,
        };
        if s.len() > MAX_TOPIC_LEN {
            return Err(error("longer than 256 bytes"));
        }
        if s == "tenant" {
            return Ok(Self::Tenant);
        }
        if s == DASHBOARD {
            return Ok(Self::Dashboard(None));
        }
        let Some((kind, rest)) = s.split_once(':') else {
            return Err(error("expected tenant or kind:id"));
        };
        match kind {
            "store" => Ok(Self::Store(part(s, rest)?)),
            "type" => Ok(Self::Type(part(s, rest)?)),
            "item" => Ok(Self::Item(part(s, rest)?)),
            "user" => Ok(Self::User(part(s, rest)?)),
            "session" => Ok(Self::Session(part(s, rest)?)),
            "orders" => Ok(Self::Orders(part(s, rest)?)),
            DASHBOARD => Ok(Self::Dashboard(Some(part(s, rest)?))),
            "station" => {
                let Some((store, station)) = rest.split_once(':') else {
                    return Err(error("expected station:{store}:{station}"));
                };
                Ok(Self::Station {
                    store: part(s, store)?,
                    station: part(s, station)?,
                })
            }
            "entity" => {
                let Some((entity_type, id)) = rest.split_once(':') else {
                    return Err(error("expected entity:{type}:{id}"));
                };
                Ok(Self::Entity {
                    entity_type: part(s, entity_type)?,
                    id: part(s, id)?,
                })
            }
            _ => Err(error("unknown topic kind")),
        }
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tenant => f.write_str("tenant"),
            Self::Store(id) => write!(f, "store:{id}"),
            Self::Type(t) => write!(f, "type:{t}"),
            Self::Entity { entity_type, id } => write!(f, "entity:{entity_type}:{id}"),
            Self::Item(id) => write!(f, "item:{id}"),
            Self::User(id) => write!(f, "user:{id}"),
            Self::Session(id) => write!(f, "session:{id}"),
            Self::Orders(store) => write!(f, "orders:{store}"),
            Self::Station { store, station } => write!(f, "station:{store}:{station}"),
            Self::Dashboard(None) => f.write_str(DASHBOARD),
            Self::Dashboard(Some(store)) => write!(f, "{DASHBOARD}:{store}"),
        }
    }
}

impl Topic {
    /// Whether an event with `metadata` belongs to this topic (tenant and
    /// permissions are checked separately).
    pub fn matches(&self, metadata: &Metadata) -> bool {
        match self {
            Self::Tenant => true,
            Self::Store(id) => metadata.store.as_deref() == Some(id),
            Self::Type(t) => metadata.entity_type == *t,
            Self::Entity { entity_type, id } => {
                metadata.entity_type == *entity_type && metadata.entity_id == *id
            }
            Self::Item(id) => metadata.entity_type == "item" && metadata.entity_id == *id,
            Self::User(id) => {
                metadata.actor.as_deref() == Some(id) || recipient(metadata) == Some(id)
            }
            Self::Session(id) => metadata.session.as_deref() == Some(id),
            Self::Orders(store) | Self::Station { store, .. } => {
                metadata.store.as_deref() == Some(store) && metadata.entity_type == ORDER
            }
            Self::Dashboard(_) => false,
        }
    }

    /// Whether the topic carries state derived from events (pushed by
    /// [`crate::Hub::start_state_publisher`]) rather than events.
    pub fn is_derived(&self) -> bool {
        matches!(self, Self::Dashboard(_))
    }

    /// The derived topics an event with `metadata` makes stale: its store's
    /// dashboard and its tenant's.
    pub(crate) fn derived_candidates(metadata: &Metadata) -> [Option<String>; 2] {
        [
            Some(DASHBOARD.to_owned()),
            metadata
                .store
                .as_ref()
                .map(|store| format!("{DASHBOARD}:{store}")),
        ]
    }

    /// Whether `event` belongs to this topic: [`Topic::matches`] on its
    /// metadata, and for a station's topic the stations its data names.
    pub fn matches_event(&self, event: &RecordedEvent) -> bool {
        if !self.matches(&event.metadata) {
            return false;
        }
        match self {
            Self::Station { station, .. } => {
                let named = stations_of(event);
                named.is_empty() || named.iter().any(|s| s == station)
            }
            _ => true,
        }
    }

    /// The store-side filter that narrows a replay read of `tenant` to this
    /// topic as far as [`EventFilter`] can; the rest is matched in memory.
    pub fn filter(&self, tenant: &str) -> EventFilter {
        let filter = EventFilter::tenant(tenant);
        match self {
            Self::Tenant | Self::User(_) | Self::Session(_) => filter,
            Self::Store(id) => filter.store(id),
            Self::Type(t) => filter.entity_type(t),
            Self::Entity { entity_type, id } => filter.entity_type(entity_type).entity_id(id),
            Self::Item(id) => filter.entity_type("item").entity_id(id),
            Self::Orders(store) | Self::Station { store, .. } => {
                filter.store(store).entity_type(ORDER)
            }
            Self::Dashboard(Some(store)) => filter.store(store),
            Self::Dashboard(None) => filter,
        }
    }

    /// The topics an event with `metadata` is routed to: the rooms the
    /// broadcaster looks up, in a fixed order.
    pub(crate) fn candidates(metadata: &Metadata) -> Vec<String> {
        let mut keys = Vec::with_capacity(7);
        keys.push("tenant".to_owned());
        if let Some(store) = &metadata.store {
            keys.push(format!("store:{store}"));
        }
        keys.push(format!("type:{}", metadata.entity_type));
        keys.push(format!(
            "entity:{}:{}",
            metadata.entity_type, metadata.entity_id
        ));
        if metadata.entity_type == "item" {
            keys.push(format!("item:{}", metadata.entity_id));
        }
        if let Some(actor) = &metadata.actor {
            keys.push(format!("user:{actor}"));
        }
        if let Some(user) = recipient(metadata)
            && metadata.actor.as_deref() != Some(user)
        {
            keys.push(format!("user:{user}"));
        }
        if let Some(session) = &metadata.session {
            keys.push(format!("session:{session}"));
        }
        if let (ORDER, Some(store)) = (metadata.entity_type.as_str(), &metadata.store) {
            keys.push(format!("orders:{store}"));
        }
        keys
    }

    /// The room of a station's topic an order event naming `station` goes
    /// to ([`stations_of`]).
    pub(crate) fn station_key(store: &str, station: &str) -> String {
        format!("station:{store}:{station}")
    }
}

/// The entity type of orders.
const ORDER: &str = "order";

/// The kind of a dashboard's topic.
const DASHBOARD: &str = "dashboard";
/// The entity type of a personal stream: an event whose `entity_type` is
/// `inbox` is addressed to the user its `entity_id` names, and to nobody
/// else (a user's notifications).
pub const PERSONAL: &str = "inbox";

/// The user an event is addressed to, if it is personal ([`PERSONAL`]):
/// only that user may see it ([`Identity::can_see`](crate::Identity::can_see)),
/// and it is on their `user:{id}` topic.
///
/// The realtime layer routes by metadata alone; this is the one convention
/// it keeps about an entity type, so a personal event needs no extra
/// column in the event store.
pub fn recipient(metadata: &Metadata) -> Option<&str> {
    (metadata.entity_type == PERSONAL).then_some(metadata.entity_id.as_str())
}

/// The kitchen stations an order event's data names: a line's `station`,
/// and each fired line's (`lines[].station`), sorted, each once. Empty for
/// an event of another entity, or one about the whole order.
pub(crate) fn stations_of(event: &RecordedEvent) -> Vec<String> {
    #[derive(Deserialize)]
    struct Named {
        #[serde(default)]
        station: Option<String>,
        #[serde(default)]
        lines: Vec<Line>,
    }
    #[derive(Deserialize)]
    struct Line {
        #[serde(default)]
        station: Option<String>,
    }
    if event.metadata.entity_type != ORDER {
        return Vec::new();
    }
    let Ok(named) = event.data.decode::<Named>() else {
        return Vec::new();
    };
    let mut stations: Vec<String> = named
        .station
        .into_iter()
        .chain(named.lines.into_iter().filter_map(|line| line.station))
        .collect();
    stations.sort_unstable();
    stations.dedup();
    stations
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::{Identity, Role};

    fn meta(store: Option<&str>, entity_type: &str, id: &str) -> Metadata {
        Metadata {
            tenant: "acme".into(),
            store: store.map(str::to_owned),
            entity_type: entity_type.into(),
            entity_id: id.into(),
            actor: Some("alice".into()),
            session: Some("s1".into()),
            ..Metadata::default()
        }
    }

    fn identity(stores: Option<&[&str]>) -> Identity {
        Identity {
            user: "alice".into(),
            tenant: "acme".into(),
            stores: stores.map(|s| s.iter().map(|s| (*s).to_owned()).collect::<HashSet<_>>()),
            role: Role::Staff,
            session: Some("s1".into()),
            expires_at: u64::MAX,
        }
    }

    #[test]
    fn every_documented_topic_parses_and_prints_back() {
        for s in [
            "tenant",
            "store:s1",
            "type:item",
            "entity:item:42",
            "entity:order:a:b",
            "item:42",
            "user:alice",
            "session:abc",
            "orders:s1",
            "station:s1:grill",
            "dashboard",
            "dashboard:s1",
        ] {
            let topic: Topic = s.parse().unwrap();
            assert_eq!(topic.to_string(), s);
        }
        assert_eq!(
            "entity:order:a:b".parse::<Topic>().unwrap(),
            Topic::Entity {
                entity_type: "order".into(),
                id: "a:b".into()
            }
        );
    }

    #[test]
    fn malformed_topics_are_rejected() {
        for s in [
            "",
            "tenant:",
            "store",
            "store:",
            "bogus:1",
            "entity:item",
            "entity::1",
            "item:a b",
            "TENANT",
            "orders:",
            "station:s1",
            "station::grill",
            "station:s1:",
            "dashboard:",
            "Dashboard",
        ] {
            assert!(s.parse::<Topic>().is_err(), "{s:?} should be rejected");
        }
        assert!("store:".repeat(100).parse::<Topic>().is_err());
    }

    #[test]
    fn topics_match_by_metadata_only() {
        let event = meta(Some("s1"), "item", "42");
        for yes in [
            "tenant",
            "store:s1",
            "type:item",
            "entity:item:42",
            "item:42",
            "user:alice",
            "session:s1",
        ] {
            assert!(yes.parse::<Topic>().unwrap().matches(&event), "{yes}");
        }
        for no in [
            "store:s2",
            "type:order",
            "entity:item:43",
            "item:43",
            "user:bob",
            "session:s2",
        ] {
            assert!(!no.parse::<Topic>().unwrap().matches(&event), "{no}");
        }
        for derived in ["dashboard", "dashboard:s1"] {
            assert!(
                !derived.parse::<Topic>().unwrap().matches(&event),
                "{derived}"
            );
        }
        let order = meta(None, "order", "42");
        assert!(!"item:42".parse::<Topic>().unwrap().matches(&order));
        assert!(!"store:s1".parse::<Topic>().unwrap().matches(&order));
    }

    #[test]
    fn every_matching_topic_is_a_routing_candidate() {
        let event = meta(Some("s1"), "item", "42");
        let candidates = Topic::candidates(&event);
        for s in [
            "tenant",
            "store:s1",
            "type:item",
            "entity:item:42",
            "item:42",
            "user:alice",
            "session:s1",
        ] {
            assert!(candidates.contains(&s.to_owned()), "{s}");
        }
    }

    #[test]
    fn the_replay_filter_narrows_to_the_topic_within_the_tenant() {
        let filter = "store:s1".parse::<Topic>().unwrap().filter("acme");
        assert_eq!(filter, EventFilter::tenant("acme").store("s1"));
        assert!(filter.matches(&meta(Some("s1"), "item", "1")));
        assert!(!filter.matches(&Metadata {
            tenant: "other".into(),
            ..meta(Some("s1"), "item", "1")
        }));
    }

    #[test]
    fn store_scoped_identities_only_see_their_stores() {
        let scoped = identity(Some(&["s1"]));
        assert!(scoped.can_see(&meta(Some("s1"), "item", "1")));
        assert!(!scoped.can_see(&meta(Some("s2"), "item", "1")));
        assert!(!scoped.can_see(&meta(None, "item", "1")));
        let all = identity(None);
        assert!(all.can_see(&meta(Some("s2"), "item", "1")));
        assert!(all.can_see(&meta(None, "item", "1")));
    }

    #[test]
    fn a_personal_event_is_seen_by_its_recipient_only_whatever_their_stores() {
        let to_alice = Metadata {
            actor: Some("larder:notifications".into()),
            session: None,
            ..meta(None, PERSONAL, "alice")
        };
        assert!(identity(None).can_see(&to_alice));
        assert!(identity(Some(&["s1"])).can_see(&to_alice));
        let bob = Identity {
            user: "bob".into(),
            role: Role::Admin,
            ..identity(None)
        };
        assert!(!bob.can_see(&to_alice));
        assert!(!bob.can_see(&Metadata {
            store: Some("s1".into()),
            ..to_alice.clone()
        }));
    }

    #[test]
    fn a_personal_event_is_on_its_recipients_user_topic_once() {
        let to_alice = Metadata {
            actor: Some("larder:notifications".into()),
            ..meta(None, PERSONAL, "alice")
        };
        let alice: Topic = "user:alice".parse().unwrap();
        assert!(alice.matches(&to_alice));
        assert!(!"user:bob".parse::<Topic>().unwrap().matches(&to_alice));
        let keys = Topic::candidates(&to_alice);
        assert_eq!(keys.iter().filter(|k| *k == "user:alice").count(), 1);
        // Read by alice herself: still one room key.
        let own = meta(None, PERSONAL, "alice");
        let keys = Topic::candidates(&own);
        assert_eq!(keys.iter().filter(|k| *k == "user:alice").count(), 1);
        assert_eq!(recipient(&meta(None, "item", "alice")), None);
    }

    #[test]
    fn nobody_sees_another_tenant() {
        let other = Metadata {
            tenant: "globex".into(),
            ..meta(Some("s1"), "item", "1")
        };
        assert!(!identity(None).can_see(&other));
        assert!(!identity(Some(&["s1"])).can_see(&other));
    }

    #[test]
    fn topics_outside_the_claims_are_forbidden() {
        let scoped = identity(Some(&["s1"]));
        let allowed = [
            "tenant",
            "store:s1",
            "type:item",
            "item:9",
            "entity:order:1",
            "user:alice",
            "session:s1",
        ];
        for s in allowed {
            assert!(scoped.may_subscribe(&s.parse().unwrap()), "{s}");
        }
        for s in ["store:s2", "user:bob", "session:s2"] {
            assert!(!scoped.may_subscribe(&s.parse().unwrap()), "{s}");
        }
        assert!(identity(None).may_subscribe(&"store:s2".parse().unwrap()));
        // A store-scoped identity sees its stores' dashboards, not the
        // tenant's (it adds up stores it may not see).
        assert!(scoped.may_subscribe(&"dashboard:s1".parse().unwrap()));
        assert!(!scoped.may_subscribe(&"dashboard:s2".parse().unwrap()));
        assert!(!scoped.may_subscribe(&"dashboard".parse().unwrap()));
        assert!(identity(None).may_subscribe(&"dashboard".parse().unwrap()));
        let sessionless = Identity {
            session: None,
            ..identity(None)
        };
        assert!(!sessionless.may_subscribe(&"session:s1".parse().unwrap()));
    }
}
