//! Order routes: the till opens orders and adds, voids and fires lines; the
//! kitchen starts, bumps and recalls lines; the till serves, completes,
//! cancels and rushes orders.
//!
//! Staff do all of it; viewers read. A token limited to some stores sees
//! only their orders: another store's order answers 404, like one that does
//! not exist.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use larder_app::{NewLine, order_total};
use larder_domain::{
    CancelReason, Course, Covers, Currency, LineId, LineQuantity, LineStatus, MenuItemId, Modifier,
    Order, OrderCommand, OrderId, OrderLine, OrderStatus, Service, StoreId, TableLabel,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::menu::MoneyBody;
use super::stores::{context, visible};
use super::{CommandResponse, made_up_id, replayed_header, schema};
use crate::auth::{Principal, Role};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Json, Path, RequestId};
use crate::state::AppState;

/// How an order is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ServiceKind {
    /// At a table (`table` required).
    DineIn,
    /// Taken away (no `table`).
    Takeaway,
}

/// Dine-in at a table, or takeaway.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceBody {
    pub kind: ServiceKind,
    #[schema(schema_with = schema::table)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
}

impl ServiceBody {
    fn parse(&self) -> Result<Service, ApiError> {
        let invalid = |message: &str| {
            ApiError::bad_request("invalid_table", message)
                .with_details(serde_json::json!({ "field": "table" }))
        };
        match (self.kind, &self.table) {
            (ServiceKind::DineIn, Some(table)) => Ok(Service::DineIn {
                table: TableLabel::parse(table)?,
            }),
            (ServiceKind::DineIn, None) => Err(invalid("a dine-in order needs a table")),
            (ServiceKind::Takeaway, None) => Ok(Service::Takeaway),
            (ServiceKind::Takeaway, Some(_)) => Err(invalid("a takeaway order has no table")),
        }
    }
}

impl From<&Service> for ServiceBody {
    fn from(service: &Service) -> Self {
        match service {
            Service::DineIn { table } => Self {
                kind: ServiceKind::DineIn,
                table: Some(table.as_str().to_owned()),
            },
            Service::Takeaway => Self {
                kind: ServiceKind::Takeaway,
                table: None,
            },
        }
    }
}

/// Open an order.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenOrderRequest {
    /// The order's id; made up by the server if absent (the same one for a
    /// retry with the same `Idempotency-Key`).
    pub order_id: Option<Uuid>,
    pub service: ServiceBody,
    /// Guests, 0 to 999 (default 0).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 999, default = 0)]
    pub covers: i64,
    /// The currency every line is priced in.
    #[schema(schema_with = schema::currency)]
    pub currency: String,
    /// Put it first in the kitchen (default false).
    #[serde(default)]
    pub rush: bool,
}

#[utoipa::path(post, path = "/api/v1/stores/{store_id}/orders", tag = "orders", request_body = OpenOrderRequest,
    params(("store_id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 201, body = CommandResponse, description = "Opened; `id` is the order id"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "order_already_exists"),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody, description = "store_closed")))]
pub async fn open_order(
    State(state): State<AppState>,
    principal: Principal,
    request: RequestId,
    Path(store_id): Path<Uuid>,
    Json(body): Json<OpenOrderRequest>,
) -> Result<impl IntoResponse, ApiError> {
    principal.require(Role::Staff)?;
    let store_id = visible(&principal, store_id)?;
    let order_id = OrderId::new(body.order_id.unwrap_or_else(|| made_up_id(&request)));
    let command = OrderCommand::OpenOrder {
        store_id,
        service: body.service.parse()?,
        covers: Covers::parse(body.covers)?,
        currency: Currency::parse(&body.currency)?,
        rush: body.rush,
    };
    let outcome = state
        .app
        .open_order(
            &context(&principal, request, StatusCode::CREATED),
            order_id,
            store_id,
            command,
        )
        .await?;
    let location = format!("/api/v1/orders/{order_id}");
    Ok((
        StatusCode::CREATED,
        [(axum::http::header::LOCATION, location)],
        CommandResponse::from(outcome),
    ))
}

/// A line of an order, as taken (name, price and station copied from the
/// menu when it was added).
#[derive(Debug, Serialize, ToSchema)]
pub struct LineView {
    pub line_id: Uuid,
    pub menu_item_id: Uuid,
    pub name: String,
    pub unit_price: MoneyBody,
    pub station: String,
    pub quantity: i64,
    pub modifiers: Vec<String>,
    pub note: Option<String>,
    pub course: i64,
    /// `pending`, `fired`, `started`, `ready` or `voided`.
    #[schema(value_type = String, example = "fired")]
    pub status: LineStatus,
}

impl From<&OrderLine> for LineView {
    fn from(line: &OrderLine) -> Self {
        Self {
            line_id: line.line_id.as_uuid(),
            menu_item_id: line.menu_item_id.as_uuid(),
            name: line.name.as_str().to_owned(),
            unit_price: MoneyBody::from(&line.unit_price),
            station: line.station.as_str().to_owned(),
            quantity: line.quantity.get(),
            modifiers: line
                .modifiers
                .iter()
                .map(|m| m.as_str().to_owned())
                .collect(),
            note: line.note.clone(),
            course: line.course.into(),
            status: line.status,
        }
    }
}

/// An order.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderView {
    pub order_id: Uuid,
    pub store_id: Uuid,
    pub service: ServiceBody,
    pub covers: i64,
    #[schema(example = "GBP")]
    pub currency: String,
    pub rush: bool,
    /// `open`, `ready`, `served`, `completed` or `cancelled`.
    #[schema(value_type = String, example = "open")]
    pub status: OrderStatus,
    /// The sum of the lines not voided (what completing records).
    pub total: MoneyBody,
    /// In the order they were added, voided ones included.
    pub lines: Vec<LineView>,
}

/// An order, folded from its event stream.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderResponse {
    /// The order stream's version.
    pub version: u64,
    /// Global position of the order's last event.
    pub position: u64,
    pub order: OrderView,
}

fn order_view(order: &Order) -> Result<OrderView, ApiError> {
    Ok(OrderView {
        order_id: order.order_id.as_uuid(),
        store_id: order.store_id.as_uuid(),
        service: ServiceBody::from(&order.service),
        covers: order.covers.into(),
        currency: order.currency.as_str().to_owned(),
        rush: order.rush,
        status: order.status,
        total: MoneyBody::from(&order_total(order)?),
        lines: order.lines.iter().map(LineView::from).collect(),
    })
}

#[utoipa::path(get, path = "/api/v1/orders/{order_id}", tag = "orders", params(("order_id" = Uuid, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = OrderResponse, headers(("ETag" = String, description = "The order's version"))),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_order(
    State(state): State<AppState>,
    principal: Principal,
    Path(order_id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let (_, order_id) = order_store(&state, &principal, order_id).await?;
    let found = state.app.order(&principal.tenant, order_id).await?;
    let etag = format!("\"{}\"", found.version);
    Ok((
        [(axum::http::header::ETAG, etag)],
        Json(OrderResponse {
            version: found.version,
            position: found.position,
            order: order_view(&found.value)?,
        }),
    ))
}

/// Add a line: a menu item of the order's store, copied as it is now.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddLineRequest {
    /// The line's id; made up by the server if absent (the same one for a
    /// retry with the same `Idempotency-Key`).
    pub line_id: Option<Uuid>,
    /// An active item of the store's menu.
    pub menu_item_id: Uuid,
    /// Portions, 1 to 999 (default 1).
    #[serde(default = "one")]
    #[schema(minimum = 1, maximum = 999, default = 1)]
    pub quantity: i64,
    /// At most 10.
    #[serde(default)]
    #[schema(schema_with = modifiers)]
    pub modifiers: Vec<String>,
    /// A note for the kitchen, at most 500 characters.
    #[schema(schema_with = schema::note)]
    pub note: Option<String>,
    /// Course 1 to 9 (default 1).
    #[schema(minimum = 1, maximum = 9, default = 1)]
    pub course: Option<i64>,
}

fn one() -> i64 {
    1
}

fn modifiers() -> utoipa::openapi::schema::Array {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(schema::modifier())
        .max_items(Some(larder_domain::order::MAX_MODIFIERS))
        .description(Some("The guest's changes, at most 10."))
        .build()
}

/// The answer to adding a line: the command's answer (about the order's
/// stream) and the line's id.
#[derive(Debug, Serialize, ToSchema)]
pub struct LineAddedResponse {
    pub line_id: Uuid,
    /// The order's id.
    pub id: Uuid,
    #[schema(example = "order-67e55044-10b1-426f-9247-bb680e5fe0c8")]
    pub stream: String,
    pub version: u64,
    pub position: u64,
    pub events: Vec<String>,
}

#[utoipa::path(post, path = "/api/v1/orders/{order_id}/lines", tag = "orders", request_body = AddLineRequest,
    params(("order_id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 201, body = LineAddedResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody, description = "not_found, menu_item_not_found"),
        (status = 409, body = ErrorBody, description = "line_already_exists"), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "menu_item_inactive, currency_mismatch, order_already_served, limit_reached, store_closed")))]
pub async fn add_line(
    State(state): State<AppState>,
    principal: Principal,
    request: RequestId,
    Path(order_id): Path<Uuid>,
    Json(body): Json<AddLineRequest>,
) -> Result<impl IntoResponse, ApiError> {
    principal.require(Role::Staff)?;
    let (_, order_id) = order_store(&state, &principal, order_id).await?;
    let line_id = body.line_id.unwrap_or_else(|| made_up_id(&request));
    let line = NewLine {
        line_id: LineId::new(line_id),
        menu_item_id: MenuItemId::new(body.menu_item_id),
        quantity: LineQuantity::parse(body.quantity)?,
        modifiers: body
            .modifiers
            .iter()
            .map(|m| Modifier::parse(m))
            .collect::<Result<_, _>>()?,
        note: body.note,
        course: body
            .course
            .map(Course::parse)
            .transpose()?
            .unwrap_or_default(),
    };
    let outcome = state
        .app
        .add_line(
            &context(&principal, request, StatusCode::CREATED),
            order_id,
            line,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        replayed_header(outcome.replayed),
        Json(LineAddedResponse {
            line_id,
            id: outcome.id,
            stream: outcome.stream,
            version: outcome.version,
            position: outcome.position,
            events: outcome.events,
        }),
    ))
}

/// Send lines not yet fired to the kitchen.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FireRequest {
    /// Only this course (1 to 9); every course if absent.
    #[schema(minimum = 1, maximum = 9)]
    pub course: Option<i64>,
}

#[utoipa::path(post, path = "/api/v1/orders/{order_id}/fire", tag = "orders", request_body = FireRequest,
    params(("order_id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = CommandResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "nothing_to_fire, order_already_served, store_closed")))]
pub async fn fire(
    State(state): State<AppState>,
    principal: Principal,
    request: RequestId,
    Path(order_id): Path<Uuid>,
    Json(body): Json<FireRequest>,
) -> Result<CommandResponse, ApiError> {
    principal.require(Role::Staff)?;
    let command = OrderCommand::Fire {
        course: body.course.map(Course::parse).transpose()?,
    };
    order_command(&state, &principal, request, order_id, command).await
}

/// Cancel an order.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    #[schema(schema_with = schema::reason)]
    pub reason: String,
}

#[utoipa::path(post, path = "/api/v1/orders/{order_id}/cancel", tag = "orders", request_body = CancelRequest,
    params(("order_id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = CommandResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "order_already_completed, order_already_cancelled, store_closed")))]
pub async fn cancel(
    State(state): State<AppState>,
    principal: Principal,
    request: RequestId,
    Path(order_id): Path<Uuid>,
    Json(body): Json<CancelRequest>,
) -> Result<CommandResponse, ApiError> {
    principal.require(Role::Staff)?;
    let command = OrderCommand::Cancel {
        reason: CancelReason::parse(&body.reason)?,
    };
    order_command(&state, &principal, request, order_id, command).await
}

/// Put an order first in the kitchen, or back in fire order.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RushRequest {
    /// `true`: first; `false`: back in fire order.
    pub rush: bool,
}

#[utoipa::path(post, path = "/api/v1/orders/{order_id}/rush", tag = "orders", request_body = RushRequest,
    params(("order_id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = CommandResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "order_already_served, store_closed")))]
pub async fn rush(
    State(state): State<AppState>,
    principal: Principal,
    request: RequestId,
    Path(order_id): Path<Uuid>,
    Json(body): Json<RushRequest>,
) -> Result<CommandResponse, ApiError> {
    principal.require(Role::Staff)?;
    let command = OrderCommand::SetRush { rush: body.rush };
    order_command(&state, &principal, request, order_id, command).await
}

/// Declares a bodiless order command route (`serve`, `complete`).
macro_rules! order_route {
    ($name:ident, $path:literal, $command:expr, $refusals:literal) => {
        #[utoipa::path(post, path = $path, tag = "orders",
            params(("order_id" = Uuid, Path)), security(("bearer" = [])),
            responses((status = 200, body = CommandResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
                (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
                (status = 422, body = ErrorBody, description = $refusals)))]
        pub async fn $name(
            State(state): State<AppState>,
            principal: Principal,
            request: RequestId,
            Path(order_id): Path<Uuid>,
        ) -> Result<CommandResponse, ApiError> {
            principal.require(Role::Staff)?;
            order_command(&state, &principal, request, order_id, $command).await
        }
    };
}

/// Declares a bodiless line command route (`void`, `start`, `ready`,
/// `recall`).
macro_rules! line_route {
    ($name:ident, $path:literal, $command:ident, $refusals:literal) => {
        #[utoipa::path(post, path = $path, tag = "orders",
            params(("order_id" = Uuid, Path), ("line_id" = Uuid, Path)), security(("bearer" = [])),
            responses((status = 200, body = CommandResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
                (status = 403, body = ErrorBody), (status = 404, body = ErrorBody, description = "not_found, line_not_found"),
                (status = 409, body = ErrorBody), (status = 422, body = ErrorBody, description = $refusals)))]
        pub async fn $name(
            State(state): State<AppState>,
            principal: Principal,
            request: RequestId,
            Path((order_id, line_id)): Path<(Uuid, Uuid)>,
        ) -> Result<CommandResponse, ApiError> {
            principal.require(Role::Staff)?;
            let command = OrderCommand::$command {
                line_id: LineId::new(line_id),
            };
            order_command(&state, &principal, request, order_id, command).await
        }
    };
}

order_route!(
    serve,
    "/api/v1/orders/{order_id}/serve",
    OrderCommand::Serve,
    "order_not_ready, order_already_served, order_already_completed, order_already_cancelled, store_closed"
);
order_route!(
    complete,
    "/api/v1/orders/{order_id}/complete",
    OrderCommand::Complete,
    "order_not_served, order_already_completed, order_already_cancelled, store_closed"
);
line_route!(
    void_line,
    "/api/v1/orders/{order_id}/lines/{line_id}/void",
    VoidLine,
    "line_already_started, line_already_ready, line_voided, order_already_served, store_closed"
);
line_route!(
    start_line,
    "/api/v1/orders/{order_id}/lines/{line_id}/start",
    StartLine,
    "line_not_fired, line_already_started, line_already_ready, line_voided, order_already_served, store_closed"
);
line_route!(
    ready_line,
    "/api/v1/orders/{order_id}/lines/{line_id}/ready",
    MarkLineReady,
    "line_not_fired, line_already_ready, line_voided, order_already_served, store_closed"
);
line_route!(
    recall_line,
    "/api/v1/orders/{order_id}/lines/{line_id}/recall",
    RecallLine,
    "line_not_ready, line_voided, order_already_served, store_closed"
);

/// The store of an order the caller may see, or 404.
async fn order_store(
    state: &AppState,
    principal: &Principal,
    order_id: Uuid,
) -> Result<(StoreId, OrderId), ApiError> {
    let order_id = OrderId::new(order_id);
    let store_id = state.app.order_store(&principal.tenant, order_id).await?;
    let store_id =
        visible(principal, store_id.as_uuid()).map_err(|_| ApiError::not_found("order"))?;
    Ok((store_id, order_id))
}

async fn order_command(
    state: &AppState,
    principal: &Principal,
    request: RequestId,
    order_id: Uuid,
    command: OrderCommand,
) -> Result<CommandResponse, ApiError> {
    let (_, order_id) = order_store(state, principal, order_id).await?;
    let outcome = state
        .app
        .order_command(
            &context(principal, request, StatusCode::OK),
            order_id,
            command,
        )
        .await?;
    Ok(outcome.into())
}
