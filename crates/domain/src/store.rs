//! The store aggregate: a restaurant, shop or warehouse of a tenant.
//!
//! A store is created once, may be renamed, and is closed for good. Its state
//! matters to items too: every item command needs its store to be open.

use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::ids::{StoreId, TenantId};
use crate::values::StoreName;

/// What a store's event stream says about it so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum StoreState {
    /// The stream is empty.
    #[default]
    NotCreated,
    /// Created and taking commands.
    Open {
        /// The store's id (also the name of its stream).
        store_id: StoreId,
        /// The tenant owning the store.
        tenant: TenantId,
        /// Its current name.
        name: StoreName,
    },
    /// Closed; the store and its items accept no command any more.
    Closed {
        /// The store's id (also the name of its stream).
        store_id: StoreId,
        /// The tenant owning the store.
        tenant: TenantId,
        /// Its name when it was closed.
        name: StoreName,
    },
}

impl StoreState {
    /// The owning tenant, once the store exists.
    pub fn tenant(&self) -> Option<&TenantId> {
        match self {
            Self::NotCreated => None,
            Self::Open { tenant, .. } | Self::Closed { tenant, .. } => Some(tenant),
        }
    }

    /// The store's id, once it exists.
    pub fn store_id(&self) -> Option<StoreId> {
        match self {
            Self::NotCreated => None,
            Self::Open { store_id, .. } | Self::Closed { store_id, .. } => Some(*store_id),
        }
    }

    /// The store's name, once it exists.
    pub fn name(&self) -> Option<&StoreName> {
        match self {
            Self::NotCreated => None,
            Self::Open { name, .. } | Self::Closed { name, .. } => Some(name),
        }
    }

    /// `true` when the store exists and is not closed.
    pub fn is_open(&self) -> bool {
        matches!(self, Self::Open { .. })
    }

    /// The store's id if it is open: [`DomainError::StoreNotFound`] or
    /// [`DomainError::StoreClosed`] otherwise. Every item command starts here.
    pub(crate) fn require_open(&self) -> Result<StoreId, DomainError> {
        match self {
            Self::NotCreated => Err(DomainError::StoreNotFound),
            Self::Closed { .. } => Err(DomainError::StoreClosed),
            Self::Open { store_id, .. } => Ok(*store_id),
        }
    }
}

/// What a user asks of a store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StoreCommand {
    /// Open a new store. The id is chosen by the caller.
    CreateStore {
        /// The new store's id.
        store_id: StoreId,
        /// The tenant it belongs to.
        tenant: TenantId,
        /// Its name.
        name: StoreName,
    },
    /// Give the store another name.
    RenameStore {
        /// The new name.
        name: StoreName,
    },
    /// Close the store for good.
    CloseStore,
}

/// What happened to a store. Stored in the stream `store-{store_id}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StoreEvent {
    /// A store was opened.
    StoreCreated {
        /// The store.
        store_id: StoreId,
        /// The tenant owning it.
        tenant: TenantId,
        /// Its name.
        name: StoreName,
    },
    /// A store got a new name.
    StoreRenamed {
        /// The store.
        store_id: StoreId,
        /// The new name.
        name: StoreName,
    },
    /// A store was closed for good.
    StoreClosed {
        /// The store.
        store_id: StoreId,
    },
}

impl StoreEvent {
    /// The store the event is about.
    pub fn store_id(&self) -> StoreId {
        match self {
            Self::StoreCreated { store_id, .. }
            | Self::StoreRenamed { store_id, .. }
            | Self::StoreClosed { store_id } => *store_id,
        }
    }
}

/// Decides what a command does to a store: the events to append, or why not.
///
/// A closed store accepts no command; creating an existing store is an error;
/// renaming to the current name changes nothing (`Ok(vec![])`).
pub fn decide(state: &StoreState, cmd: StoreCommand) -> Result<Vec<StoreEvent>, DomainError> {
    let (store_id, current_name) = match state {
        StoreState::Closed { .. } => return Err(DomainError::StoreClosed),
        StoreState::NotCreated => {
            return match cmd {
                StoreCommand::CreateStore {
                    store_id,
                    tenant,
                    name,
                } => Ok(vec![StoreEvent::StoreCreated {
                    store_id,
                    tenant,
                    name,
                }]),
                StoreCommand::RenameStore { .. } | StoreCommand::CloseStore => {
                    Err(DomainError::StoreNotFound)
                }
            };
        }
        StoreState::Open { store_id, name, .. } => (*store_id, name),
    };

    match cmd {
        StoreCommand::CreateStore { .. } => Err(DomainError::StoreAlreadyExists { store_id }),
        StoreCommand::RenameStore { name } if &name == current_name => Ok(vec![]),
        StoreCommand::RenameStore { name } => Ok(vec![StoreEvent::StoreRenamed { store_id, name }]),
        StoreCommand::CloseStore => Ok(vec![StoreEvent::StoreClosed { store_id }]),
    }
}

/// Applies one event to a store's state. Never fails: events are facts.
///
/// An event that does not fit the state (which `decide` never produces) leaves
/// the state unchanged.
pub fn evolve(state: StoreState, event: &StoreEvent) -> StoreState {
    match (state, event) {
        (
            StoreState::NotCreated,
            StoreEvent::StoreCreated {
                store_id,
                tenant,
                name,
            },
        ) => StoreState::Open {
            store_id: *store_id,
            tenant: tenant.clone(),
            name: name.clone(),
        },
        (
            StoreState::Open {
                store_id, tenant, ..
            },
            StoreEvent::StoreRenamed { name, .. },
        ) => StoreState::Open {
            store_id,
            tenant,
            name: name.clone(),
        },
        (
            StoreState::Open {
                store_id,
                tenant,
                name,
            },
            StoreEvent::StoreClosed { .. },
        ) => StoreState::Closed {
            store_id,
            tenant,
            name,
        },
        (state, _) => state,
    }
}

/// Folds a store's stream, oldest first, into its current state.
pub fn replay<'a>(events: impl IntoIterator<Item = &'a StoreEvent>) -> StoreState {
    events.into_iter().fold(StoreState::NotCreated, evolve)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{Then, other_tenant, store_created, store_id, store_name, tenant};

    struct Given {
        state: StoreState,
    }

    fn given(events: impl IntoIterator<Item = StoreEvent>) -> Given {
        let events: Vec<_> = events.into_iter().collect();
        Given {
            state: replay(&events),
        }
    }

    impl Given {
        fn when(self, cmd: StoreCommand) -> Then<Vec<StoreEvent>> {
            Then::new(decide(&self.state, cmd))
        }
    }

    fn created() -> StoreEvent {
        store_created(store_id(), tenant())
    }

    fn closed() -> StoreEvent {
        StoreEvent::StoreClosed {
            store_id: store_id(),
        }
    }

    #[test]
    fn creating_a_store_records_it() {
        given([])
            .when(StoreCommand::CreateStore {
                store_id: store_id(),
                tenant: tenant(),
                name: store_name("Soho Kitchen"),
            })
            .then(vec![created()]);
    }

    #[test]
    fn creating_an_existing_store_is_rejected() {
        given([created()])
            .when(StoreCommand::CreateStore {
                store_id: store_id(),
                tenant: other_tenant(),
                name: store_name("Other"),
            })
            .then_err(DomainError::StoreAlreadyExists {
                store_id: store_id(),
            });
    }

    #[test]
    fn renaming_a_store_records_the_new_name() {
        given([created()])
            .when(StoreCommand::RenameStore {
                name: store_name("Soho Kitchen & Bar"),
            })
            .then(vec![StoreEvent::StoreRenamed {
                store_id: store_id(),
                name: store_name("Soho Kitchen & Bar"),
            }]);
    }

    #[test]
    fn renaming_a_store_to_its_current_name_changes_nothing() {
        given([created()])
            .when(StoreCommand::RenameStore {
                name: store_name("  Soho Kitchen "),
            })
            .then(vec![]);
    }

    #[test]
    fn renaming_to_the_previous_name_after_a_rename_is_a_change() {
        given([
            created(),
            StoreEvent::StoreRenamed {
                store_id: store_id(),
                name: store_name("Soho"),
            },
        ])
        .when(StoreCommand::RenameStore {
            name: store_name("Soho Kitchen"),
        })
        .then(vec![StoreEvent::StoreRenamed {
            store_id: store_id(),
            name: store_name("Soho Kitchen"),
        }]);
    }

    #[test]
    fn renaming_or_closing_a_store_that_does_not_exist_is_rejected() {
        given([])
            .when(StoreCommand::RenameStore {
                name: store_name("X"),
            })
            .then_err(DomainError::StoreNotFound);
        given([])
            .when(StoreCommand::CloseStore)
            .then_err(DomainError::StoreNotFound);
    }

    #[test]
    fn closing_a_store_records_it() {
        given([created()])
            .when(StoreCommand::CloseStore)
            .then(vec![closed()]);
    }

    #[test]
    fn a_closed_store_accepts_no_command() {
        let commands = [
            StoreCommand::CreateStore {
                store_id: store_id(),
                tenant: tenant(),
                name: store_name("Again"),
            },
            StoreCommand::RenameStore {
                name: store_name("New"),
            },
            StoreCommand::CloseStore,
        ];
        for cmd in commands {
            given([created(), closed()])
                .when(cmd)
                .then_err(DomainError::StoreClosed);
        }
    }

    #[test]
    fn replaying_a_stream_gives_the_latest_state() {
        let renamed = StoreEvent::StoreRenamed {
            store_id: store_id(),
            name: store_name("Soho"),
        };
        let open = replay(&[created(), renamed.clone()]);
        assert!(open.is_open());
        assert_eq!(open.tenant(), Some(&tenant()));
        assert_eq!(open.name(), Some(&store_name("Soho")));
        assert_eq!(open.store_id(), Some(store_id()));

        let closed = replay(&[created(), renamed, closed()]);
        assert!(!closed.is_open());
        assert_eq!(closed.tenant(), Some(&tenant()));
        assert_eq!(closed.name(), Some(&store_name("Soho")));

        let empty = replay(&[]);
        assert_eq!(empty, StoreState::NotCreated);
        assert_eq!(empty.tenant(), None);
        assert!(!empty.is_open());
    }
}
