//! The [`Aggregate`] trait, and Larder's aggregates implementing it: stores,
//! items, an item's recorded history for undo and redo, menus and orders.
//!
//! An aggregate says what the pipeline cannot know: its stream, how its state
//! folds, who owns it, and how it decides. The rules themselves stay in
//! `larder-domain`; these impls only adapt its functions to the trait.

use larder_domain::{
    DomainError, DomainEvent, EventId, InboxCommand, InboxId, InboxState, ItemCommand, ItemHistory,
    ItemId, ItemState, MenuCommand, MenuId, MenuState, OrderCommand, OrderId, OrderState, Recorded,
    StoreCommand, StoreId, StoreState, TenantId, UndoChange, inbox, item, menu, order, store,
};
use uuid::Uuid;

/// What the event store recorded about an event besides the event itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventMeta<'a> {
    /// The stored event's id.
    pub id: Uuid,
    /// Who caused it (metadata `actor`), if known.
    pub actor: Option<&'a str>,
}

/// One kind of aggregate: its state is `Self`.
///
/// `Within` is the aggregate this one lives in (an item lives in a store):
/// the pipeline loads its state for [`Aggregate::decide`], checks the tenant
/// owns it, and appends with its version unchanged, so a store closed
/// meanwhile refuses an item's command. A top-level aggregate names itself
/// and is executed without a parent.
pub trait Aggregate: Clone + Default + std::fmt::Debug + Send + Sync + 'static {
    /// The aggregate's id.
    type Id: Copy + std::fmt::Debug + Send + Sync + 'static;
    /// What it is asked to do.
    type Command: Clone + std::fmt::Debug + Send + Sync + 'static;
    /// What it records.
    type Event: Into<DomainEvent>;
    /// The aggregate it lives in.
    type Within: Aggregate;

    /// The entity type in event metadata and in "not found" answers.
    const KIND: &'static str;

    /// The stream its events are appended to.
    fn stream_name(id: Self::Id) -> String;
    /// The id as a UUID, for answers and metadata.
    fn uuid(id: Self::Id) -> Uuid;
    /// Applies one event; events of other aggregates leave it unchanged.
    /// `meta` is what the event store recorded with it: most aggregates
    /// ignore it; one whose rules are about recorded events (undo names an
    /// event by id) keeps it.
    fn evolve(self, event: &DomainEvent, meta: EventMeta<'_>) -> Self;
    /// The tenant owning it, once it exists.
    fn owner(&self) -> Option<&TenantId>;
    /// Whether the command creates the aggregate: it is then decided even
    /// though the tenant does not own (an existing) one.
    fn creates(_command: &Self::Command) -> bool {
        false
    }
    /// The events the command produces, or why it is refused. `within` is
    /// the parent's state when the aggregate has one.
    fn decide(
        within: Option<&Self::Within>,
        state: &Self,
        id: Self::Id,
        command: Self::Command,
    ) -> Result<Vec<Self::Event>, DomainError>;
}

impl Aggregate for StoreState {
    type Id = StoreId;
    type Command = StoreCommand;
    type Event = larder_domain::StoreEvent;
    type Within = StoreState;

    const KIND: &'static str = "store";

    fn stream_name(id: StoreId) -> String {
        id.stream_name()
    }

    fn uuid(id: StoreId) -> Uuid {
        id.as_uuid()
    }

    fn evolve(self, event: &DomainEvent, _meta: EventMeta<'_>) -> Self {
        match event {
            DomainEvent::Store(event) => store::evolve(self, event),
            _ => self,
        }
    }

    fn owner(&self) -> Option<&TenantId> {
        self.tenant()
    }

    fn creates(command: &StoreCommand) -> bool {
        matches!(command, StoreCommand::CreateStore { .. })
    }

    fn decide(
        _within: Option<&StoreState>,
        state: &Self,
        _id: StoreId,
        command: StoreCommand,
    ) -> Result<Vec<larder_domain::StoreEvent>, DomainError> {
        // Creating a store whose id is taken answers "already exists" even
        // when that store is closed (or another tenant's): the id is taken.
        match (&command, state.store_id()) {
            (StoreCommand::CreateStore { .. }, Some(store_id)) => {
                Err(DomainError::StoreAlreadyExists { store_id })
            }
            _ => store::decide(state, command),
        }
    }
}

impl Aggregate for ItemState {
    type Id = ItemId;
    type Command = ItemCommand;
    type Event = larder_domain::ItemEvent;
    type Within = StoreState;

    const KIND: &'static str = "item";

    fn stream_name(id: ItemId) -> String {
        id.stream_name()
    }

    fn uuid(id: ItemId) -> Uuid {
        id.as_uuid()
    }

    fn evolve(self, event: &DomainEvent, _meta: EventMeta<'_>) -> Self {
        match event {
            DomainEvent::Item(event) => item::evolve(self, event),
            _ => self,
        }
    }

    /// An item is owned through its store, which the pipeline checks.
    fn owner(&self) -> Option<&TenantId> {
        None
    }

    fn decide(
        within: Option<&StoreState>,
        state: &Self,
        id: ItemId,
        command: ItemCommand,
    ) -> Result<Vec<larder_domain::ItemEvent>, DomainError> {
        let unknown = StoreState::default();
        item::decide(within.unwrap_or(&unknown), state, id, command)
    }
}

/// An item with its recorded stream, for undo and redo: the same stream as
/// [`ItemState`], folded with each event's id and author.
impl Aggregate for ItemHistory {
    type Id = ItemId;
    type Command = UndoChange;
    type Event = larder_domain::ItemEvent;
    type Within = StoreState;

    const KIND: &'static str = "item";

    fn stream_name(id: ItemId) -> String {
        id.stream_name()
    }

    fn uuid(id: ItemId) -> Uuid {
        id.as_uuid()
    }

    fn evolve(self, event: &DomainEvent, meta: EventMeta<'_>) -> Self {
        match event {
            DomainEvent::Item(event) => self.record(Recorded {
                id: EventId::new(meta.id),
                actor: meta.actor.map(str::to_owned),
                event: event.clone(),
            }),
            _ => self,
        }
    }

    /// Owned through its store, like [`ItemState`].
    fn owner(&self) -> Option<&TenantId> {
        None
    }

    fn decide(
        within: Option<&StoreState>,
        state: &Self,
        id: ItemId,
        command: UndoChange,
    ) -> Result<Vec<larder_domain::ItemEvent>, DomainError> {
        let unknown = StoreState::default();
        item::undo::decide(within.unwrap_or(&unknown), state, id, command)
    }
}

/// A store's menu: its stations and the dishes and drinks it sells. It
/// lives in its store and needs no creation (an empty stream is the empty
/// menu).
impl Aggregate for MenuState {
    type Id = MenuId;
    type Command = MenuCommand;
    type Event = larder_domain::MenuEvent;
    type Within = StoreState;

    const KIND: &'static str = "menu";

    fn stream_name(id: MenuId) -> String {
        id.stream_name()
    }

    fn uuid(id: MenuId) -> Uuid {
        id.as_uuid()
    }

    fn evolve(self, event: &DomainEvent, _meta: EventMeta<'_>) -> Self {
        match event {
            DomainEvent::Menu(event) => menu::evolve(self, event),
            _ => self,
        }
    }

    /// A menu is owned through its store, which the pipeline checks.
    fn owner(&self) -> Option<&TenantId> {
        None
    }

    fn decide(
        within: Option<&StoreState>,
        state: &Self,
        id: MenuId,
        command: MenuCommand,
    ) -> Result<Vec<larder_domain::MenuEvent>, DomainError> {
        let unknown = StoreState::default();
        menu::decide(within.unwrap_or(&unknown), state, id, command)
    }
}

/// An order taken at a store's till. It lives in its store; `OpenOrder`
/// starts its stream.
impl Aggregate for OrderState {
    type Id = OrderId;
    type Command = OrderCommand;
    type Event = larder_domain::OrderEvent;
    type Within = StoreState;

    const KIND: &'static str = "order";

    fn stream_name(id: OrderId) -> String {
        id.stream_name()
    }

    fn uuid(id: OrderId) -> Uuid {
        id.as_uuid()
    }

    fn evolve(self, event: &DomainEvent, _meta: EventMeta<'_>) -> Self {
        match event {
            DomainEvent::Order(event) => order::evolve(self, event),
            _ => self,
        }
    }

    /// An order is owned through its store, which the pipeline checks.
    fn owner(&self) -> Option<&TenantId> {
        None
    }

    fn creates(command: &OrderCommand) -> bool {
        matches!(command, OrderCommand::OpenOrder { .. })
    }

    fn decide(
        within: Option<&StoreState>,
        state: &Self,
        id: OrderId,
        command: OrderCommand,
    ) -> Result<Vec<larder_domain::OrderEvent>, DomainError> {
        let unknown = StoreState::default();
        order::decide(within.unwrap_or(&unknown), state, id, command)
    }
}

/// A user's inbox of notifications. Its id is derived from the tenant and
/// the user ([`InboxId::of_user`]), so it cannot be another tenant's: it
/// needs no creation and has no owner to check (every command "creates" it).
impl Aggregate for InboxState {
    type Id = InboxId;
    type Command = InboxCommand;
    type Event = larder_domain::InboxEvent;
    type Within = InboxState;

    const KIND: &'static str = "inbox";

    fn stream_name(id: InboxId) -> String {
        id.stream_name()
    }

    fn uuid(id: InboxId) -> Uuid {
        id.as_uuid()
    }

    fn evolve(self, event: &DomainEvent, _meta: EventMeta<'_>) -> Self {
        match event {
            DomainEvent::Inbox(event) => inbox::evolve(self, event),
            _ => self,
        }
    }

    fn owner(&self) -> Option<&TenantId> {
        None
    }

    fn creates(_command: &InboxCommand) -> bool {
        true
    }

    fn decide(
        _within: Option<&InboxState>,
        state: &Self,
        _id: InboxId,
        command: InboxCommand,
    ) -> Result<Vec<larder_domain::InboxEvent>, DomainError> {
        inbox::decide(state, command)
    }
}
