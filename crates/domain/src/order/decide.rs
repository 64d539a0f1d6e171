//! Deciding what a command does to an order.

use crate::error::DomainError;
use crate::ids::{LineId, OrderId};
use crate::money::Money;
use crate::order::{
    FiredLine, LineStatus, MAX_MODIFIERS, Order, OrderCommand, OrderEvent, OrderLine, OrderState,
    OrderStatus, RecalledTo, ReturnedLine,
};
use crate::store::StoreState;
use crate::values::parse_note;

/// The most lines an order holds, voided ones included.
pub const MAX_LINES: usize = 200;

/// Decides what a command does to an order: the events to append to
/// `order-{order_id}`, or why not.
///
/// `store` is the state of the order's store (for `OpenOrder`, of the store
/// the command names); it must exist and be open for every command. Every
/// transition the order or a line cannot make is refused with its own error
/// (see `docs/events.md` for the state machine). Setting the rush flag to
/// what it is returns `Ok(vec![])`.
pub fn decide(
    store: &StoreState,
    state: &OrderState,
    order_id: OrderId,
    cmd: OrderCommand,
) -> Result<Vec<OrderEvent>, DomainError> {
    let open_store = store.require_open()?;
    match (state, cmd) {
        (
            OrderState::NotOpened,
            OrderCommand::OpenOrder {
                store_id,
                service,
                covers,
                currency,
                rush,
            },
        ) => {
            if store_id != open_store {
                return Err(DomainError::StoreMismatch {
                    expected: store_id,
                    actual: open_store,
                });
            }
            Ok(vec![OrderEvent::OrderOpened {
                order_id,
                store_id,
                service,
                covers,
                currency,
                rush,
            }])
        }
        (OrderState::NotOpened, _) => Err(DomainError::OrderNotFound { order_id }),
        (OrderState::Opened(order), _) if order.store_id != open_store => {
            Err(DomainError::StoreMismatch {
                expected: order.store_id,
                actual: open_store,
            })
        }
        (OrderState::Opened(order), cmd) => decide_opened(order, cmd),
    }
}

/// The decision for an order that exists.
fn decide_opened(order: &Order, cmd: OrderCommand) -> Result<Vec<OrderEvent>, DomainError> {
    let (order_id, store_id) = (order.order_id, order.store_id);
    match cmd {
        OrderCommand::OpenOrder { .. } => Err(DomainError::OrderAlreadyExists { order_id }),
        OrderCommand::AddLine {
            line_id,
            item,
            quantity,
            modifiers,
            note,
            course,
        } => {
            require_in_kitchen(order)?;
            if order.line(line_id).is_some() {
                return Err(DomainError::LineAlreadyExists { line_id });
            }
            if order.lines.len() >= MAX_LINES {
                return Err(DomainError::LimitReached {
                    what: "lines per order",
                    max: MAX_LINES,
                });
            }
            if item.unit_price.currency() != &order.currency {
                return Err(DomainError::CurrencyMismatch {
                    expected: order.currency.clone(),
                    actual: item.unit_price.currency().clone(),
                });
            }
            if modifiers.len() > MAX_MODIFIERS {
                return Err(DomainError::InvalidModifier {
                    field: "modifiers",
                    reason: "at most 10 per line",
                });
            }
            Ok(vec![OrderEvent::OrderLineAdded {
                order_id,
                store_id,
                line_id,
                menu_item_id: item.menu_item_id,
                name: item.name,
                unit_price: item.unit_price,
                station: item.station,
                recipe: item.recipe,
                quantity,
                modifiers,
                note: parse_note(note)?,
                course,
            }])
        }
        OrderCommand::VoidLine { line_id } => {
            require_in_kitchen(order)?;
            let line = require_line(order, line_id)?;
            let returned = match line.status {
                LineStatus::Pending => Vec::new(),
                LineStatus::Fired => line.recipe.stock_for(line.quantity.get()),
                LineStatus::Started => return Err(DomainError::LineAlreadyStarted { line_id }),
                LineStatus::Ready => return Err(DomainError::LineAlreadyReady { line_id }),
                LineStatus::Voided => return Err(DomainError::LineVoided { line_id }),
            };
            let voided = OrderEvent::OrderLineVoided {
                order_id,
                store_id,
                line_id,
                station: line.station.clone(),
                returned,
            };
            Ok(with_readiness(order, voided))
        }
        OrderCommand::Fire { course } => {
            require_in_kitchen(order)?;
            let lines: Vec<_> = order
                .lines
                .iter()
                .filter(|line| line.status == LineStatus::Pending)
                .filter(|line| course.is_none_or(|course| line.course == course))
                .map(fired)
                .collect();
            if lines.is_empty() {
                return Err(DomainError::NothingToFire);
            }
            Ok(vec![OrderEvent::OrderFired {
                order_id,
                store_id,
                course,
                lines,
            }])
        }
        OrderCommand::StartLine { line_id } => {
            require_in_kitchen(order)?;
            let line = require_line(order, line_id)?;
            match line.status {
                LineStatus::Fired => Ok(vec![OrderEvent::OrderLineStarted {
                    order_id,
                    store_id,
                    line_id,
                    station: line.station.clone(),
                }]),
                status => Err(refused(status, line_id)),
            }
        }
        OrderCommand::MarkLineReady { line_id } => {
            require_in_kitchen(order)?;
            let line = require_line(order, line_id)?;
            match line.status {
                LineStatus::Fired | LineStatus::Started => {
                    let ready = OrderEvent::OrderLineReady {
                        order_id,
                        store_id,
                        line_id,
                        station: line.station.clone(),
                    };
                    Ok(with_readiness(order, ready))
                }
                status => Err(refused(status, line_id)),
            }
        }
        OrderCommand::RecallLine { line_id } => {
            require_in_kitchen(order)?;
            let line = require_line(order, line_id)?;
            match line.status {
                LineStatus::Ready => Ok(vec![OrderEvent::OrderLineRecalled {
                    order_id,
                    store_id,
                    line_id,
                    station: line.station.clone(),
                    back_to: if line.started {
                        RecalledTo::Started
                    } else {
                        RecalledTo::Fired
                    },
                }]),
                LineStatus::Voided => Err(DomainError::LineVoided { line_id }),
                LineStatus::Pending | LineStatus::Fired | LineStatus::Started => {
                    Err(DomainError::LineNotReady { line_id })
                }
            }
        }
        OrderCommand::Serve => match order.status {
            OrderStatus::Ready => Ok(vec![OrderEvent::OrderServed { order_id, store_id }]),
            OrderStatus::Open => Err(DomainError::OrderNotReady { order_id }),
            status => Err(finished(status, order_id)),
        },
        OrderCommand::Complete => match order.status {
            OrderStatus::Served => Ok(vec![OrderEvent::OrderCompleted {
                order_id,
                store_id,
                total: total(order)?,
            }]),
            OrderStatus::Open | OrderStatus::Ready => Err(DomainError::OrderNotServed { order_id }),
            status => Err(finished(status, order_id)),
        },
        OrderCommand::Cancel { reason } => match order.status {
            OrderStatus::Completed | OrderStatus::Cancelled => {
                Err(finished(order.status, order_id))
            }
            OrderStatus::Open | OrderStatus::Ready | OrderStatus::Served => {
                let returned = order
                    .lines
                    .iter()
                    .filter(|line| line.status == LineStatus::Fired)
                    .map(|line| ReturnedLine {
                        line_id: line.line_id,
                        station: line.station.clone(),
                        stock: line.recipe.stock_for(line.quantity.get()),
                    })
                    .collect();
                Ok(vec![OrderEvent::OrderCancelled {
                    order_id,
                    store_id,
                    reason,
                    returned,
                }])
            }
        },
        OrderCommand::SetRush { rush } => {
            require_in_kitchen(order)?;
            Ok(match (order.rush, rush) {
                (false, true) => vec![OrderEvent::OrderRushed { order_id, store_id }],
                (true, false) => vec![OrderEvent::OrderRushCleared { order_id, store_id }],
                _ => vec![],
            })
        }
    }
}

/// Lines and the kitchen act on an order that is open or ready; a served,
/// completed or cancelled one refuses.
fn require_in_kitchen(order: &Order) -> Result<(), DomainError> {
    match order.status {
        OrderStatus::Open | OrderStatus::Ready => Ok(()),
        status => Err(finished(status, order.order_id)),
    }
}

/// The refusal for an order past the kitchen.
fn finished(status: OrderStatus, order_id: OrderId) -> DomainError {
    match status {
        OrderStatus::Completed => DomainError::OrderAlreadyCompleted { order_id },
        OrderStatus::Cancelled => DomainError::OrderAlreadyCancelled { order_id },
        OrderStatus::Open | OrderStatus::Ready | OrderStatus::Served => {
            DomainError::OrderAlreadyServed { order_id }
        }
    }
}

/// The refusal to start or bump a line in `status`.
fn refused(status: LineStatus, line_id: LineId) -> DomainError {
    match status {
        LineStatus::Pending => DomainError::LineNotFired { line_id },
        LineStatus::Started => DomainError::LineAlreadyStarted { line_id },
        LineStatus::Ready => DomainError::LineAlreadyReady { line_id },
        LineStatus::Voided => DomainError::LineVoided { line_id },
        // Both callers accept a fired line; were one not to, a fired line is
        // not ready for it.
        LineStatus::Fired => DomainError::LineNotReady { line_id },
    }
}

fn require_line(order: &Order, line_id: LineId) -> Result<&OrderLine, DomainError> {
    order
        .line(line_id)
        .ok_or(DomainError::LineNotFound { line_id })
}

/// A pending line as `OrderFired` lists it.
fn fired(line: &OrderLine) -> FiredLine {
    FiredLine {
        line_id: line.line_id,
        menu_item_id: line.menu_item_id,
        name: line.name.clone(),
        station: line.station.clone(),
        course: line.course,
        quantity: line.quantity,
        modifiers: line.modifiers.clone(),
        note: line.note.clone(),
        stock: line.recipe.stock_for(line.quantity.get()),
    }
}

/// `event`, then `OrderReady` if after it every line not voided is ready.
fn with_readiness(order: &Order, event: OrderEvent) -> Vec<OrderEvent> {
    let after = crate::order::evolve(OrderState::Opened(order.clone()), &event);
    let ready = after.order().is_some_and(Order::all_lines_ready);
    let mut events = vec![event];
    if ready {
        events.push(OrderEvent::OrderReady {
            order_id: order.order_id,
            store_id: order.store_id,
        });
    }
    events
}

/// The sum of the lines not voided: unit price times quantity.
fn total(order: &Order) -> Result<Money, DomainError> {
    order
        .lines
        .iter()
        .filter(|line| line.status != LineStatus::Voided)
        .try_fold(Money::zero(order.currency.clone()), |sum, line| {
            sum.plus(&line.unit_price.times(line.quantity.get())?)
        })
}
