//! What happened to an order.

use serde::{Deserialize, Serialize};

use crate::ids::{LineId, MenuItemId, OrderId, StoreId};
use crate::menu::{MenuItemName, Recipe, StationKey, StockUse};
use crate::money::{Currency, Money};
use crate::order::{CancelReason, Course, Covers, LineQuantity, Modifier, Service};

/// A line as the kitchen and the stock see it when it is fired: what to cook,
/// where, and what it takes from stock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FiredLine {
    /// The line.
    pub line_id: LineId,
    /// The menu item.
    pub menu_item_id: MenuItemId,
    /// Its name.
    pub name: MenuItemName,
    /// The station preparing it.
    pub station: StationKey,
    /// Its course.
    pub course: Course,
    /// How many portions.
    pub quantity: LineQuantity,
    /// The guest's changes.
    pub modifiers: Vec<Modifier>,
    /// The note for the kitchen, if any.
    pub note: Option<String>,
    /// What it takes from stock: the recipe times the quantity.
    pub stock: Vec<StockUse>,
}

/// A fired line that was never started, whose stock goes back when its order
/// is cancelled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReturnedLine {
    /// The line.
    pub line_id: LineId,
    /// The station it had been fired to.
    pub station: StationKey,
    /// The stock it gives back: what its `OrderFired` took.
    pub stock: Vec<StockUse>,
}

/// Where a recalled line goes back to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecalledTo {
    /// It had been fired and bumped without being started.
    Fired,
    /// It had been started.
    Started,
}

/// What happened to an order. Stored in the stream `order-{order_id}`.
///
/// `OrderReady` is decided together with the line event that made every line
/// ready (`OrderLineReady`, or `OrderLineVoided` of the last line not ready)
/// and appended right after it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderEvent {
    /// An order was opened.
    OrderOpened {
        /// The order.
        order_id: OrderId,
        /// Its store.
        store_id: StoreId,
        /// Dine-in at a table, or takeaway.
        service: Service,
        /// How many guests.
        covers: Covers,
        /// The currency of its lines and total.
        currency: Currency,
        /// Whether it is a rush order.
        rush: bool,
    },
    /// A line was added (not yet fired).
    OrderLineAdded {
        /// The order.
        order_id: OrderId,
        /// Its store.
        store_id: StoreId,
        /// The line.
        line_id: LineId,
        /// The menu item.
        menu_item_id: MenuItemId,
        /// Its name when ordered.
        name: MenuItemName,
        /// Its price per portion when ordered.
        unit_price: Money,
        /// The station preparing it.
        station: StationKey,
        /// What one portion takes from stock.
        recipe: Recipe,
        /// How many portions.
        quantity: LineQuantity,
        /// The guest's changes.
        modifiers: Vec<Modifier>,
        /// The note for the kitchen, if any.
        note: Option<String>,
        /// Its course.
        course: Course,
    },
    /// A line was removed before the kitchen started it. `returned` is the
    /// stock its `OrderFired` took, when it had been fired; empty otherwise.
    OrderLineVoided {
        /// The order.
        order_id: OrderId,
        /// Its store.
        store_id: StoreId,
        /// The line.
        line_id: LineId,
        /// Its station.
        station: StationKey,
        /// The stock that goes back.
        returned: Vec<StockUse>,
    },
    /// Lines were sent to the kitchen: each is now on its station's screen
    /// and takes its stock.
    OrderFired {
        /// The order.
        order_id: OrderId,
        /// Its store.
        store_id: StoreId,
        /// The course fired, or `None` for every line not yet fired.
        course: Option<Course>,
        /// The lines fired, in the order they were added.
        lines: Vec<FiredLine>,
    },
    /// The kitchen started a line.
    OrderLineStarted {
        /// The order.
        order_id: OrderId,
        /// Its store.
        store_id: StoreId,
        /// The line.
        line_id: LineId,
        /// Its station.
        station: StationKey,
    },
    /// The kitchen bumped a line: it is ready.
    OrderLineReady {
        /// The order.
        order_id: OrderId,
        /// Its store.
        store_id: StoreId,
        /// The line.
        line_id: LineId,
        /// Its station.
        station: StationKey,
    },
    /// A bump was undone: the line is back on its station's screen.
    OrderLineRecalled {
        /// The order.
        order_id: OrderId,
        /// Its store.
        store_id: StoreId,
        /// The line.
        line_id: LineId,
        /// Its station.
        station: StationKey,
        /// What it is again.
        back_to: RecalledTo,
    },
    /// Every line not voided is ready.
    OrderReady {
        /// The order.
        order_id: OrderId,
        /// Its store.
        store_id: StoreId,
    },
    /// The order was handed to the guest.
    OrderServed {
        /// The order.
        order_id: OrderId,
        /// Its store.
        store_id: StoreId,
    },
    /// The order was settled and closed.
    OrderCompleted {
        /// The order.
        order_id: OrderId,
        /// Its store.
        store_id: StoreId,
        /// The sum of its lines not voided: unit price times quantity.
        total: Money,
    },
    /// The order was cancelled. `returned` lists the lines fired but not
    /// started, whose stock goes back.
    OrderCancelled {
        /// The order.
        order_id: OrderId,
        /// Its store.
        store_id: StoreId,
        /// Why.
        reason: CancelReason,
        /// The lines giving stock back.
        returned: Vec<ReturnedLine>,
    },
    /// The order was made a rush order: the kitchen puts it first.
    OrderRushed {
        /// The order.
        order_id: OrderId,
        /// Its store.
        store_id: StoreId,
    },
    /// The order is no longer a rush order.
    OrderRushCleared {
        /// The order.
        order_id: OrderId,
        /// Its store.
        store_id: StoreId,
    },
}

impl OrderEvent {
    /// The order the event is about.
    pub fn order_id(&self) -> OrderId {
        self.ids().0
    }

    /// The store of the order.
    pub fn store_id(&self) -> StoreId {
        self.ids().1
    }

    fn ids(&self) -> (OrderId, StoreId) {
        match self {
            Self::OrderOpened {
                order_id, store_id, ..
            }
            | Self::OrderLineAdded {
                order_id, store_id, ..
            }
            | Self::OrderLineVoided {
                order_id, store_id, ..
            }
            | Self::OrderFired {
                order_id, store_id, ..
            }
            | Self::OrderLineStarted {
                order_id, store_id, ..
            }
            | Self::OrderLineReady {
                order_id, store_id, ..
            }
            | Self::OrderLineRecalled {
                order_id, store_id, ..
            }
            | Self::OrderReady { order_id, store_id }
            | Self::OrderServed { order_id, store_id }
            | Self::OrderCompleted {
                order_id, store_id, ..
            }
            | Self::OrderCancelled {
                order_id, store_id, ..
            }
            | Self::OrderRushed { order_id, store_id }
            | Self::OrderRushCleared { order_id, store_id } => (*order_id, *store_id),
        }
    }
}
