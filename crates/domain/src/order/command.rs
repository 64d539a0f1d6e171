//! What the till and the kitchen ask of an order.

use serde::{Deserialize, Serialize};

use crate::ids::{LineId, StoreId};
use crate::menu::MenuItemSnapshot;
use crate::money::Currency;
use crate::order::{CancelReason, Course, Covers, LineQuantity, Modifier, Service};

/// What the till (staff) and the kitchen ask of an order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderCommand {
    /// Open a new order at a store. The order id is chosen by the caller.
    OpenOrder {
        /// The store taking it.
        store_id: StoreId,
        /// Dine-in at a table, or takeaway.
        service: Service,
        /// How many guests.
        covers: Covers,
        /// The currency every line is priced in.
        currency: Currency,
        /// Whether the kitchen should put it first.
        #[serde(default)]
        rush: bool,
    },
    /// Add a line. The menu item is copied into it by the caller
    /// ([`crate::MenuState::line_item`]), so later menu changes do not
    /// change orders already taken.
    AddLine {
        /// The line's id, chosen by the caller, unique within the order.
        line_id: LineId,
        /// The menu item, as it is now.
        item: MenuItemSnapshot,
        /// How many portions.
        quantity: LineQuantity,
        /// The guest's changes, at most [`crate::order::MAX_MODIFIERS`].
        #[serde(default)]
        modifiers: Vec<Modifier>,
        /// Free text for the kitchen, at most [`crate::MAX_NOTE_CHARS`]
        /// characters; trimmed, blank means none.
        #[serde(default)]
        note: Option<String>,
        /// The course; the first if not given.
        #[serde(default)]
        course: Course,
    },
    /// Remove a line the kitchen has not started. A line already fired gives
    /// its stock back.
    VoidLine {
        /// The line.
        line_id: LineId,
    },
    /// Send the lines not yet fired to the kitchen: all of them, or those of
    /// one course.
    Fire {
        /// Only this course; every course if `None`.
        #[serde(default)]
        course: Option<Course>,
    },
    /// The kitchen started preparing a fired line.
    StartLine {
        /// The line.
        line_id: LineId,
    },
    /// The kitchen bumped a line: it is ready at the pass. When it is the
    /// last line not ready, the order is ready too.
    MarkLineReady {
        /// The line.
        line_id: LineId,
    },
    /// Undo a bump: the line goes back to what it was before (started, or
    /// fired if it was never started).
    RecallLine {
        /// The line.
        line_id: LineId,
    },
    /// The ready order was handed to the guest.
    Serve,
    /// The served order is settled and closed, with its total.
    Complete,
    /// Cancel the order. Lines fired but not started give their stock back.
    Cancel {
        /// Why.
        reason: CancelReason,
    },
    /// Put the order first in the kitchen (`true`) or back in fire order
    /// (`false`).
    SetRush {
        /// Whether it is a rush order.
        rush: bool,
    },
}
