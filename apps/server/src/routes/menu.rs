//! Menu routes: a store's stations and the dishes and drinks it sells.
//!
//! Managers edit a menu; every role reads it. A recipe's ingredients must be
//! active items of the same store (checked by the application layer).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use larder_domain::{
    Currency, Ingredient, MenuCommand, MenuItem, MenuItemId, MenuItemName, Money, PerPortion,
    Recipe, Station, StationKey, StationName, StationTimers,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::stores::{context, visible};
use super::{CommandResponse, replayed_header, schema};
use crate::auth::{Principal, Role};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Json, Path, RequestId};
use crate::state::AppState;

/// An amount of money in minor units (pence, cents).
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoneyBody {
    /// Minor units, >= 0.
    #[schema(minimum = 0, maximum = 9223372036854775807i64, example = 1250)]
    pub amount_minor: i64,
    /// Currency code.
    #[schema(schema_with = schema::currency)]
    pub currency: String,
}

impl MoneyBody {
    fn parse(&self) -> Result<Money, ApiError> {
        Ok(Money::parse(
            self.amount_minor,
            Currency::parse(&self.currency)?,
        )?)
    }
}

impl From<&Money> for MoneyBody {
    fn from(money: &Money) -> Self {
        Self {
            amount_minor: money.amount_minor(),
            currency: money.currency().as_str().to_owned(),
        }
    }
}

/// One line of a recipe: an inventory item of the store and how much of it
/// one portion takes, in the item's unit.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IngredientBody {
    /// An active inventory item of the same store.
    pub item_id: Uuid,
    /// Per portion, 1 to 1000000.
    #[schema(minimum = 1, maximum = 1000000)]
    pub quantity: i64,
}

fn recipe(ingredients: &[IngredientBody]) -> Result<Recipe, ApiError> {
    let ingredients = ingredients
        .iter()
        .map(|ingredient| {
            Ok(Ingredient {
                item_id: larder_domain::ItemId::new(ingredient.item_id),
                quantity: PerPortion::parse(ingredient.quantity)?,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(Recipe::parse(ingredients)?)
}

fn recipe_body(recipe: &Recipe) -> Vec<IngredientBody> {
    recipe
        .ingredients()
        .iter()
        .map(|ingredient| IngredientBody {
            item_id: ingredient.item_id.as_uuid(),
            quantity: ingredient.quantity.get(),
        })
        .collect()
}

/// A kitchen station.
#[derive(Debug, Serialize, ToSchema)]
pub struct StationView {
    /// Its key, e.g. `grill`.
    pub key: String,
    /// Its display name.
    pub name: String,
    /// Seconds after firing at which its tickets turn amber.
    pub warn_after_secs: u32,
    /// Seconds after firing at which its tickets turn red.
    pub late_after_secs: u32,
}

impl From<&Station> for StationView {
    fn from(station: &Station) -> Self {
        Self {
            key: station.key.as_str().to_owned(),
            name: station.name.as_str().to_owned(),
            warn_after_secs: station.timers.warn_after_secs(),
            late_after_secs: station.timers.late_after_secs(),
        }
    }
}

/// A dish or drink on the menu.
#[derive(Debug, Serialize, ToSchema)]
pub struct MenuItemView {
    pub menu_item_id: Uuid,
    pub name: String,
    /// Price per portion.
    pub price: MoneyBody,
    /// The station preparing it.
    pub station: String,
    /// What one portion takes from stock.
    pub recipe: Vec<IngredientBody>,
    /// Whether it can be ordered.
    pub active: bool,
}

impl From<&MenuItem> for MenuItemView {
    fn from(item: &MenuItem) -> Self {
        Self {
            menu_item_id: item.menu_item_id.as_uuid(),
            name: item.name.as_str().to_owned(),
            price: MoneyBody::from(&item.price),
            station: item.station.as_str().to_owned(),
            recipe: recipe_body(&item.recipe),
            active: item.active,
        }
    }
}

/// A store's menu, from its event stream.
#[derive(Debug, Serialize, ToSchema)]
pub struct MenuResponse {
    pub store_id: Uuid,
    /// The menu stream's version (0: nothing set yet).
    pub version: u64,
    /// Global position of the menu's last event (0: none).
    pub position: u64,
    /// By key.
    pub stations: Vec<StationView>,
    /// By id, active or not.
    pub items: Vec<MenuItemView>,
}

#[utoipa::path(get, path = "/api/v1/stores/{store_id}/menu", tag = "menu",
    params(("store_id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = MenuResponse, headers(("ETag" = String, description = "The menu's version"))),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_menu(
    State(state): State<AppState>,
    principal: Principal,
    Path(store_id): Path<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let store_id = visible(&principal, store_id)?;
    let menu = state.app.menu(&principal.tenant, store_id).await?;
    let etag = format!("\"{}\"", menu.version);
    Ok((
        [(axum::http::header::ETAG, etag)],
        Json(MenuResponse {
            store_id: store_id.as_uuid(),
            version: menu.version,
            position: menu.position,
            stations: menu.value.stations().map(StationView::from).collect(),
            items: menu.value.items().map(MenuItemView::from).collect(),
        }),
    ))
}

/// Add a station, or change its name and timers.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetStationRequest {
    /// Display name.
    #[schema(schema_with = schema::name)]
    pub name: String,
    /// Seconds after firing at which a ticket turns amber, >= 1.
    #[schema(minimum = 1, maximum = 86399)]
    pub warn_after_secs: u32,
    /// Seconds after firing at which a ticket turns red: above
    /// `warn_after_secs`, at most 86400.
    #[schema(minimum = 2, maximum = 86400)]
    pub late_after_secs: u32,
}

#[utoipa::path(put, path = "/api/v1/stores/{store_id}/menu/stations/{station}", tag = "menu",
    request_body = SetStationRequest,
    params(("store_id" = Uuid, Path), ("station" = String, Path, pattern = r"^[A-Za-z0-9_-]{1,32}$", description = "The station's key")),
    security(("bearer" = [])),
    responses((status = 200, body = CommandResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "store_closed, limit_reached")))]
pub async fn set_station(
    State(state): State<AppState>,
    principal: Principal,
    request: RequestId,
    Path((store_id, station)): Path<(Uuid, String)>,
    Json(body): Json<SetStationRequest>,
) -> Result<CommandResponse, ApiError> {
    principal.require(Role::Manager)?;
    // A path segment is taken as it is, without the trimming a body gets.
    if station.trim() != station {
        return Err(ApiError::bad_request(
            "invalid_station",
            "the station key in the path must not have spaces around it",
        )
        .with_details(serde_json::json!({ "field": "station" })));
    }
    let command = MenuCommand::SetStation {
        station: StationKey::parse(&station)?,
        name: StationName::parse(&body.name)?,
        timers: StationTimers::parse(body.warn_after_secs, body.late_after_secs)?,
    };
    menu_command(
        &state,
        &principal,
        request,
        store_id,
        StatusCode::OK,
        command,
    )
    .await
    .map(CommandResponse::from)
}

/// Put a dish or drink on the menu (active at once).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMenuItemRequest {
    /// The menu item's id; made up by the server if absent (the same one
    /// for a retry with the same `Idempotency-Key`).
    pub menu_item_id: Option<Uuid>,
    #[schema(schema_with = schema::name)]
    pub name: String,
    /// Price per portion.
    pub price: MoneyBody,
    /// The key of an existing station.
    #[schema(schema_with = schema::station)]
    pub station: String,
    /// 1 to 50 ingredients, each item once.
    #[schema(min_items = 1, max_items = 50)]
    pub recipe: Vec<IngredientBody>,
}

/// The answer to adding a menu item: the command's answer (about the
/// menu's stream) and the new item's id.
#[derive(Debug, Serialize, ToSchema)]
pub struct MenuItemAddedResponse {
    pub menu_item_id: Uuid,
    /// The store's id (a menu's id is its store's).
    pub id: Uuid,
    #[schema(example = "menu-67e55044-10b1-426f-9247-bb680e5fe0c8")]
    pub stream: String,
    pub version: u64,
    pub position: u64,
    pub events: Vec<String>,
}

#[utoipa::path(post, path = "/api/v1/stores/{store_id}/menu/items", tag = "menu", request_body = AddMenuItemRequest,
    params(("store_id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 201, body = MenuItemAddedResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "menu_item_already_exists"), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "unknown_station, ingredient_not_in_store, ingredient_removed, store_closed, limit_reached")))]
pub async fn add_menu_item(
    State(state): State<AppState>,
    principal: Principal,
    request: RequestId,
    Path(store_id): Path<Uuid>,
    Json(body): Json<AddMenuItemRequest>,
) -> Result<impl IntoResponse, ApiError> {
    principal.require(Role::Manager)?;
    let menu_item_id = body
        .menu_item_id
        .unwrap_or_else(|| super::made_up_id(&request));
    let command = MenuCommand::AddMenuItem {
        menu_item_id: MenuItemId::new(menu_item_id),
        name: MenuItemName::parse(&body.name)?,
        price: body.price.parse()?,
        station: StationKey::parse(&body.station)?,
        recipe: recipe(&body.recipe)?,
    };
    let outcome = menu_command(
        &state,
        &principal,
        request,
        store_id,
        StatusCode::CREATED,
        command,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        replayed_header(outcome.replayed),
        Json(MenuItemAddedResponse {
            menu_item_id,
            id: outcome.id,
            stream: outcome.stream,
            version: outcome.version,
            position: outcome.position,
            events: outcome.events,
        }),
    ))
}

/// Change a menu item; a field left out keeps its value. Orders already
/// taken keep what they were taken with.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeMenuItemRequest {
    #[schema(schema_with = schema::optional_name)]
    pub name: Option<String>,
    pub price: Option<MoneyBody>,
    #[schema(schema_with = schema::optional_station)]
    pub station: Option<String>,
    /// A new recipe: 1 to 50 ingredients, each item once.
    #[schema(min_items = 1, max_items = 50)]
    pub recipe: Option<Vec<IngredientBody>>,
}

#[utoipa::path(patch, path = "/api/v1/stores/{store_id}/menu/items/{menu_item_id}", tag = "menu",
    request_body = ChangeMenuItemRequest,
    params(("store_id" = Uuid, Path), ("menu_item_id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = CommandResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody, description = "not_found, menu_item_not_found"),
        (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "unknown_station, ingredient_not_in_store, ingredient_removed, store_closed")))]
pub async fn change_menu_item(
    State(state): State<AppState>,
    principal: Principal,
    request: RequestId,
    Path((store_id, menu_item_id)): Path<(Uuid, Uuid)>,
    Json(body): Json<ChangeMenuItemRequest>,
) -> Result<CommandResponse, ApiError> {
    principal.require(Role::Manager)?;
    let command = MenuCommand::ChangeMenuItem {
        menu_item_id: MenuItemId::new(menu_item_id),
        name: body.name.as_deref().map(MenuItemName::parse).transpose()?,
        price: body.price.as_ref().map(MoneyBody::parse).transpose()?,
        station: body.station.as_deref().map(StationKey::parse).transpose()?,
        recipe: body.recipe.as_deref().map(recipe).transpose()?,
    };
    menu_command(
        &state,
        &principal,
        request,
        store_id,
        StatusCode::OK,
        command,
    )
    .await
    .map(CommandResponse::from)
}

#[utoipa::path(post, path = "/api/v1/stores/{store_id}/menu/items/{menu_item_id}/activate", tag = "menu",
    params(("store_id" = Uuid, Path), ("menu_item_id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = CommandResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody, description = "not_found, menu_item_not_found"),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody, description = "store_closed")))]
pub async fn activate_menu_item(
    State(state): State<AppState>,
    principal: Principal,
    request: RequestId,
    Path((store_id, menu_item_id)): Path<(Uuid, Uuid)>,
) -> Result<CommandResponse, ApiError> {
    principal.require(Role::Manager)?;
    let command = MenuCommand::ActivateMenuItem {
        menu_item_id: MenuItemId::new(menu_item_id),
    };
    menu_command(
        &state,
        &principal,
        request,
        store_id,
        StatusCode::OK,
        command,
    )
    .await
    .map(CommandResponse::from)
}

#[utoipa::path(post, path = "/api/v1/stores/{store_id}/menu/items/{menu_item_id}/deactivate", tag = "menu",
    params(("store_id" = Uuid, Path), ("menu_item_id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = CommandResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody, description = "not_found, menu_item_not_found"),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody, description = "store_closed")))]
pub async fn deactivate_menu_item(
    State(state): State<AppState>,
    principal: Principal,
    request: RequestId,
    Path((store_id, menu_item_id)): Path<(Uuid, Uuid)>,
) -> Result<CommandResponse, ApiError> {
    principal.require(Role::Manager)?;
    let command = MenuCommand::DeactivateMenuItem {
        menu_item_id: MenuItemId::new(menu_item_id),
    };
    menu_command(
        &state,
        &principal,
        request,
        store_id,
        StatusCode::OK,
        command,
    )
    .await
    .map(CommandResponse::from)
}

async fn menu_command(
    state: &AppState,
    principal: &Principal,
    request: RequestId,
    store_id: Uuid,
    status: StatusCode,
    command: MenuCommand,
) -> Result<larder_app::Outcome, ApiError> {
    let store_id = visible(principal, store_id)?;
    Ok(state
        .app
        .menu_command(&context(principal, request, status), store_id, command)
        .await?)
}
