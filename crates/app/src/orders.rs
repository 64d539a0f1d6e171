//! Orders: opening one at a store, adding lines copied from the store's
//! menu, the kitchen's and the till's commands, and reading an order.
//!
//! An order's commands name the order only; the store it lives in is read
//! from its stream (it never changes), checked to be the tenant's, and
//! handed to the pipeline as the order's parent, so a store closed meanwhile
//! refuses them.

use larder_domain::{
    Course, DomainError, LineId, LineQuantity, LineStatus, MenuId, MenuItemId, MenuState, Modifier,
    Money, Order, OrderCommand, OrderId, OrderState, StoreId, StoreState, TenantId,
};

use crate::menu::{Versioned, replayed};
use crate::pipeline::Outcome;
use crate::{AppError, Context, Request};

/// A line as the till asks for it: the menu item by id, copied from the
/// store's menu when the line is added (see [`crate::App::add_line`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLine {
    /// The line's id, chosen by the till, unique within the order.
    pub line_id: LineId,
    /// The menu item.
    pub menu_item_id: MenuItemId,
    /// How many portions.
    pub quantity: LineQuantity,
    /// The guest's changes.
    pub modifiers: Vec<Modifier>,
    /// A note for the kitchen.
    pub note: Option<String>,
    /// The course (the first if not given).
    pub course: Course,
}

/// The sum of an order's lines not voided, unit price times quantity: what
/// `OrderCompleted` records as its total, and what a bill shows before.
pub fn order_total(order: &Order) -> Result<Money, DomainError> {
    let mut sum: i64 = 0;
    for line in order
        .lines
        .iter()
        .filter(|line| line.status != LineStatus::Voided)
    {
        sum = line
            .unit_price
            .amount_minor()
            .checked_mul(line.quantity.get())
            .and_then(|amount| sum.checked_add(amount))
            .ok_or(DomainError::AmountOverflow)?;
    }
    Money::parse(sum, order.currency.clone())
}

impl crate::App {
    /// The store an order belongs to, if it was opened and `tenant` owns the
    /// store. Another tenant's order answers exactly like one that does not
    /// exist ([`AppError::NotFound`] `"order"`).
    pub async fn order_store(
        &self,
        tenant: &TenantId,
        order_id: OrderId,
    ) -> Result<StoreId, AppError> {
        // The store of an order, and the tenant of a store, never change:
        // cached states answer.
        let (state, _) = self
            .state::<OrderState>(&order_id.stream_name(), false)
            .await?;
        let store_id = state.store_id().ok_or(AppError::NotFound("order"))?;
        match self.owned::<StoreState>(tenant, store_id, false).await {
            Err(AppError::NotFound(_)) => Err(AppError::NotFound("order")),
            other => other.map(|_| store_id),
        }
    }

    /// An order as its stream says now, if `tenant` owns it.
    pub async fn order(
        &self,
        tenant: &TenantId,
        order_id: OrderId,
    ) -> Result<Versioned<Order>, AppError> {
        self.order_store(tenant, order_id).await?;
        let stream = order_id.stream_name();
        let (state, version) = self.state::<OrderState>(&stream, true).await?;
        let value = state.order().cloned().ok_or(AppError::NotFound("order"))?;
        let position = self.position_at(&stream, version).await?;
        Ok(Versioned {
            value,
            version,
            position,
        })
    }

    /// Opens an order at `store_id` (`command` is [`OrderCommand::OpenOrder`]
    /// naming that store). An id already taken is refused with
    /// `OrderAlreadyExists`, whoever's it is.
    pub async fn open_order(
        &self,
        ctx: &Context,
        order_id: OrderId,
        store_id: StoreId,
        command: OrderCommand,
    ) -> Result<Outcome, AppError> {
        self.execute(
            ctx,
            Request::<OrderState> {
                id: order_id,
                within: Some(store_id),
                expected: None,
                command,
            },
        )
        .await
    }

    /// Adds a line to an order: the menu item is copied from the order's
    /// store's menu as it is now ([`MenuState::line_item`]: an unknown or
    /// inactive menu item is refused), then `AddLine` runs through the
    /// pipeline. A retry with the same idempotency key answers the first
    /// request, even if the menu changed since.
    pub async fn add_line(
        &self,
        ctx: &Context,
        order_id: OrderId,
        line: NewLine,
    ) -> Result<Outcome, AppError> {
        // A retry is answered from its key's record before the menu is read
        // (the item may be off the menu by now), as `execute` would.
        if let Some(record) = self.recorded(ctx).await? {
            ctx.accepted();
            return replayed(&record);
        }
        let command = match self.line_command(ctx, order_id, line).await {
            Ok(command) => command,
            Err(error) => return self.or_replayed(ctx, Err(error), replayed).await,
        };
        self.order_command(ctx, order_id, command).await
    }

    /// The `AddLine` command for `line`, with the menu item copied in.
    async fn line_command(
        &self,
        ctx: &Context,
        order_id: OrderId,
        line: NewLine,
    ) -> Result<OrderCommand, AppError> {
        let store_id = self.order_store(&ctx.tenant, order_id).await?;
        let (menu, _) = self
            .state::<MenuState>(&MenuId::of_store(store_id).stream_name(), true)
            .await?;
        let item = menu.line_item(line.menu_item_id)?;
        Ok(OrderCommand::AddLine {
            line_id: line.line_id,
            item,
            quantity: line.quantity,
            modifiers: line.modifiers,
            note: line.note,
            course: line.course,
        })
    }

    /// Executes any command on an existing order of the tenant (`OpenOrder`
    /// on one is refused as `OrderAlreadyExists`).
    pub async fn order_command(
        &self,
        ctx: &Context,
        order_id: OrderId,
        command: OrderCommand,
    ) -> Result<Outcome, AppError> {
        let store_id = match self.order_store(&ctx.tenant, order_id).await {
            Ok(store_id) => store_id,
            Err(error) => return self.or_replayed(ctx, Err(error), replayed).await,
        };
        self.execute(
            ctx,
            Request::<OrderState> {
                id: order_id,
                within: Some(store_id),
                expected: None,
                command,
            },
        )
        .await
    }
}
