//! Menus: reading a store's menu, and menu commands whose recipes are
//! checked against the store's inventory first.
//!
//! The domain checks a recipe's shape (1 to 50 distinct items, quantities in
//! range) but cannot see other streams; whether each ingredient is an item
//! of the menu's store, and still active, is checked here, on the items'
//! event streams, before the command enters the pipeline.

use larder_domain::{
    ItemId, ItemState, MenuCommand, MenuId, MenuState, Recipe, StoreId, StoreState, TenantId,
};

use crate::idempotency::{Answer, parse};
use crate::pipeline::Outcome;
use crate::{AppError, Context, Request};

/// A state read from its stream, with the stream's version and the global
/// position of its last event (0 for an empty stream), for answers that let
/// a client compare it with live events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned<T> {
    /// The state.
    pub value: T,
    /// The stream's version it was folded to.
    pub version: u64,
    /// Global position of the stream's last event.
    pub position: u64,
}

/// Answers a command again from its idempotency key's record.
pub(crate) fn replayed(record: &larder_store::IdempotencyRecord) -> Result<Outcome, AppError> {
    parse::<Answer>(record).map(|answer| answer.outcome(&record.result))
}

impl crate::App {
    /// The global position of the last event of `stream` at `version`.
    pub(crate) async fn position_at(&self, stream: &str, version: u64) -> Result<u64, AppError> {
        if version == 0 {
            return Ok(0);
        }
        let events = self.store.read_stream(stream, version, 1).await?;
        Ok(events.first().map_or(0, |event| event.position))
    }

    /// A store's menu, if `tenant` owns the store (else
    /// [`AppError::NotFound`] `"store"`). A store nobody set a menu for has
    /// the empty one, at version 0.
    pub async fn menu(
        &self,
        tenant: &TenantId,
        store_id: StoreId,
    ) -> Result<Versioned<MenuState>, AppError> {
        // Which tenant a store belongs to never changes: a cached state
        // answers.
        self.owned::<StoreState>(tenant, store_id, false).await?;
        let stream = MenuId::of_store(store_id).stream_name();
        let (value, version) = self.state::<MenuState>(&stream, true).await?;
        let position = self.position_at(&stream, version).await?;
        Ok(Versioned {
            value,
            version,
            position,
        })
    }

    /// Executes a command on a store's menu. A recipe it sets must list
    /// items of that store that are not removed
    /// ([`AppError::IngredientNotInStore`], [`AppError::IngredientRemoved`]);
    /// the rest is the domain's to decide.
    pub async fn menu_command(
        &self,
        ctx: &Context,
        store_id: StoreId,
        command: MenuCommand,
    ) -> Result<Outcome, AppError> {
        let checked = self.check_menu_command(ctx, store_id, &command).await;
        if let Err(error) = checked {
            return self.or_replayed(ctx, Err(error), replayed).await;
        }
        self.execute(
            ctx,
            Request::<MenuState> {
                id: MenuId::of_store(store_id),
                within: Some(store_id),
                expected: None,
                command,
            },
        )
        .await
    }

    /// Checks that the store is the tenant's (so another tenant's store
    /// answers "not found" before its items are looked at), and that a recipe
    /// the command sets lists only active items of that store.
    async fn check_menu_command(
        &self,
        ctx: &Context,
        store_id: StoreId,
        command: &MenuCommand,
    ) -> Result<(), AppError> {
        self.owned::<StoreState>(&ctx.tenant, store_id, false)
            .await?;
        let recipe = match command {
            MenuCommand::AddMenuItem { recipe, .. } => Some(recipe),
            MenuCommand::ChangeMenuItem { recipe, .. } => recipe.as_ref(),
            MenuCommand::SetStation { .. }
            | MenuCommand::ActivateMenuItem { .. }
            | MenuCommand::DeactivateMenuItem { .. } => None,
        };
        match recipe {
            Some(recipe) => self.check_recipe(store_id, recipe).await,
            None => Ok(()),
        }
    }

    /// Each ingredient is an item of `store_id` and not removed.
    async fn check_recipe(&self, store_id: StoreId, recipe: &Recipe) -> Result<(), AppError> {
        for ingredient in recipe.ingredients() {
            let item_id: ItemId = ingredient.item_id;
            // Fresh: an item removed a moment ago must not go into a recipe.
            let (item, _) = self
                .state::<ItemState>(&item_id.stream_name(), true)
                .await?;
            if item.store_id() != Some(store_id) {
                return Err(AppError::IngredientNotInStore(item_id.as_uuid()));
            }
            if !item.is_active() {
                return Err(AppError::IngredientRemoved(item_id.as_uuid()));
            }
        }
        Ok(())
    }
}
