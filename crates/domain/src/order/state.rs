//! What an order's stream says about it: its status and its lines.

use serde::{Deserialize, Serialize};

use crate::ids::{LineId, MenuItemId, OrderId, StoreId};
use crate::menu::{MenuItemName, Recipe, StationKey};
use crate::money::{Currency, Money};
use crate::order::{Course, Covers, LineQuantity, Modifier, OrderEvent, RecalledTo, Service};

/// Where an order is in its life. See `docs/events.md` for the diagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Taking lines, or being cooked.
    Open,
    /// Every line not voided is ready at the pass. Adding or recalling a line
    /// makes it open again.
    Ready,
    /// Handed to the guest; waits to be completed.
    Served,
    /// Settled and closed. Final.
    Completed,
    /// Cancelled. Final.
    Cancelled,
}

/// Where a line is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineStatus {
    /// Added, not yet sent to the kitchen.
    Pending,
    /// On its station's screen; its stock is taken.
    Fired,
    /// Being prepared.
    Started,
    /// Bumped: ready at the pass.
    Ready,
    /// Removed. Final.
    Voided,
}

/// One line of an order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderLine {
    /// The line.
    pub line_id: LineId,
    /// The menu item.
    pub menu_item_id: MenuItemId,
    /// Its name when ordered.
    pub name: MenuItemName,
    /// Its price per portion when ordered.
    pub unit_price: Money,
    /// The station preparing it.
    pub station: StationKey,
    /// What one portion takes from stock.
    pub recipe: Recipe,
    /// How many portions.
    pub quantity: LineQuantity,
    /// The guest's changes.
    pub modifiers: Vec<Modifier>,
    /// The note for the kitchen.
    pub note: Option<String>,
    /// Its course.
    pub course: Course,
    /// Where it is.
    pub status: LineStatus,
    /// Whether it was started since it was last fired or recalled: a recall
    /// puts a started line back to started, an unstarted one back to fired.
    pub started: bool,
}

/// An order that was opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Order {
    /// The order.
    pub order_id: OrderId,
    /// Its store.
    pub store_id: StoreId,
    /// Dine-in at a table, or takeaway.
    pub service: Service,
    /// How many guests.
    pub covers: Covers,
    /// The currency of its lines and total.
    pub currency: Currency,
    /// Whether the kitchen puts it first.
    pub rush: bool,
    /// Where it is.
    pub status: OrderStatus,
    /// Its lines, in the order they were added (voided ones included).
    pub lines: Vec<OrderLine>,
}

impl Order {
    /// The line with this id.
    pub fn line(&self, line_id: LineId) -> Option<&OrderLine> {
        self.lines.iter().find(|line| line.line_id == line_id)
    }

    /// `true` when at least one line is not voided and every such line is
    /// ready.
    pub fn all_lines_ready(&self) -> bool {
        let mut live = self
            .lines
            .iter()
            .filter(|line| line.status != LineStatus::Voided)
            .peekable();
        live.peek().is_some() && live.all(|line| line.status == LineStatus::Ready)
    }

    fn line_mut(&mut self, line_id: LineId) -> Option<&mut OrderLine> {
        self.lines.iter_mut().find(|line| line.line_id == line_id)
    }

    fn set_line(&mut self, line_id: LineId, status: LineStatus) {
        if let Some(line) = self.line_mut(line_id) {
            line.status = status;
        }
    }
}

/// What an order's event stream says about it so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum OrderState {
    /// The stream is empty.
    #[default]
    NotOpened,
    /// Opened (whatever its status since).
    Opened(Order),
}

impl OrderState {
    /// The order, once opened.
    pub fn order(&self) -> Option<&Order> {
        match self {
            Self::NotOpened => None,
            Self::Opened(order) => Some(order),
        }
    }

    /// The order's status, once opened.
    pub fn status(&self) -> Option<OrderStatus> {
        self.order().map(|order| order.status)
    }

    /// The order's store, once opened.
    pub fn store_id(&self) -> Option<StoreId> {
        self.order().map(|order| order.store_id)
    }
}

/// Applies one event to an order's state. Never fails: events are facts. An
/// event that does not fit the state (which `decide` never produces) leaves
/// it unchanged.
pub fn evolve(state: OrderState, event: &OrderEvent) -> OrderState {
    let mut order = match (state, event) {
        (
            OrderState::NotOpened,
            OrderEvent::OrderOpened {
                order_id,
                store_id,
                service,
                covers,
                currency,
                rush,
            },
        ) => {
            return OrderState::Opened(Order {
                order_id: *order_id,
                store_id: *store_id,
                service: service.clone(),
                covers: *covers,
                currency: currency.clone(),
                rush: *rush,
                status: OrderStatus::Open,
                lines: Vec::new(),
            });
        }
        (OrderState::Opened(order), _) => order,
        (state, _) => return state,
    };
    match event {
        OrderEvent::OrderOpened { .. } => {}
        OrderEvent::OrderLineAdded {
            line_id,
            menu_item_id,
            name,
            unit_price,
            station,
            recipe,
            quantity,
            modifiers,
            note,
            course,
            ..
        } => {
            order.lines.push(OrderLine {
                line_id: *line_id,
                menu_item_id: *menu_item_id,
                name: name.clone(),
                unit_price: unit_price.clone(),
                station: station.clone(),
                recipe: recipe.clone(),
                quantity: *quantity,
                modifiers: modifiers.clone(),
                note: note.clone(),
                course: *course,
                status: LineStatus::Pending,
                started: false,
            });
            reopen(&mut order);
        }
        OrderEvent::OrderLineVoided { line_id, .. } => order.set_line(*line_id, LineStatus::Voided),
        OrderEvent::OrderFired { lines, .. } => {
            for fired in lines {
                order.set_line(fired.line_id, LineStatus::Fired);
            }
        }
        OrderEvent::OrderLineStarted { line_id, .. } => {
            if let Some(line) = order.line_mut(*line_id) {
                line.status = LineStatus::Started;
                line.started = true;
            }
        }
        OrderEvent::OrderLineReady { line_id, .. } => order.set_line(*line_id, LineStatus::Ready),
        OrderEvent::OrderLineRecalled {
            line_id, back_to, ..
        } => {
            let status = match back_to {
                RecalledTo::Fired => LineStatus::Fired,
                RecalledTo::Started => LineStatus::Started,
            };
            order.set_line(*line_id, status);
            reopen(&mut order);
        }
        OrderEvent::OrderReady { .. } => order.status = OrderStatus::Ready,
        OrderEvent::OrderServed { .. } => order.status = OrderStatus::Served,
        OrderEvent::OrderCompleted { .. } => order.status = OrderStatus::Completed,
        OrderEvent::OrderCancelled { .. } => order.status = OrderStatus::Cancelled,
        OrderEvent::OrderRushed { .. } => order.rush = true,
        OrderEvent::OrderRushCleared { .. } => order.rush = false,
    }
    OrderState::Opened(order)
}

/// A ready order with a line that is not ready (added or recalled) is open
/// again.
fn reopen(order: &mut Order) {
    if order.status == OrderStatus::Ready {
        order.status = OrderStatus::Open;
    }
}

/// Folds an order's stream, oldest first, into its current state.
pub fn replay<'a>(events: impl IntoIterator<Item = &'a OrderEvent>) -> OrderState {
    events.into_iter().fold(OrderState::NotOpened, evolve)
}
