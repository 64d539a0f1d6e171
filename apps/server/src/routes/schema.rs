//! What the OpenAPI document says about values the domain parses: the same
//! rules as `larder_domain`'s value types, written as JSON Schema, so a
//! request the document allows is one the server takes (and the other way
//! round). `tests/api/openapi.rs` and Schemathesis (scripts/api-contract.sh)
//! hold the two to each other.

use utoipa::ToSchema;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type};
use utoipa::openapi::{KnownFormat, RefOr, SchemaFormat};

/// A note: trimmed, then at most 500 characters; blank means none.
pub const NOTE: &str = r"^\s*(?:\S(?:[\s\S]{0,498}\S)?)?\s*$";

/// A display name (store or item): trimmed, then 1 to 100 characters, no
/// control characters. Whitespace around it is dropped.
pub const NAME: &str =
    r"^\s*[^\s\x00-\x1f\x7f-\x9f](?:[^\x00-\x1f\x7f-\x9f]{0,98}[^\s\x00-\x1f\x7f-\x9f])?\s*$";

/// A SKU: trimmed, then 1 to 64 of letters, digits, `.`, `_`, `-` (upper-cased).
pub const SKU: &str = r"^\s*[A-Za-z0-9._-]{1,64}\s*$";

/// A unit: trimmed, then 1 to 16 characters without control characters (the
/// server further allows only letters, digits, spaces and dots).
pub const UNIT: &str =
    r"^\s*[^\s\x00-\x1f\x7f-\x9f](?:[^\x00-\x1f\x7f-\x9f]{0,14}[^\s\x00-\x1f\x7f-\x9f])?\s*$";

fn text(pattern: &str, description: &str, example: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
        .description(Some(description))
        .examples([serde_json::json!(example)])
}

/// [`text`] that may also be `null` (an optional field).
fn optional_text(pattern: &str, description: &str, example: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .pattern(Some(pattern))
        .description(Some(description))
        .examples([serde_json::json!(example)])
}

/// See [`NAME`].
pub fn name() -> impl Into<RefOr<Schema>> {
    text(
        NAME,
        "1 to 100 characters (after trimming), no control characters.",
        "Main Street",
    )
}

/// See [`SKU`].
pub fn sku() -> impl Into<RefOr<Schema>> {
    text(
        SKU,
        "Stock-keeping unit, unique in the store: 1 to 64 letters, digits, `.`, `_`, `-` (upper-cased).",
        "FLOUR-25KG",
    )
}

/// See [`UNIT`].
pub fn unit() -> impl Into<RefOr<Schema>> {
    optional_text(
        UNIT,
        "Unit of the quantities (default `each`): 1 to 16 letters, digits, spaces and dots.",
        "bag",
    )
}

/// See [`NOTE`].
pub fn note() -> impl Into<RefOr<Schema>> {
    optional_text(
        NOTE,
        "A note, at most 500 characters (after trimming).",
        "lunch service",
    )
}

/// Why stock changed, as a client may say it.
#[derive(ToSchema)]
#[schema(as = AdjustReason, rename_all = "snake_case")]
#[allow(dead_code)]
pub enum AdjustReasonSchema {
    Received,
    Sold,
    Wasted,
    Counted,
    Correction,
}

/// Which items of an inventory to list.
#[derive(ToSchema)]
#[schema(as = StatusFilter, rename_all = "snake_case")]
#[allow(dead_code)]
pub enum StatusFilterSchema {
    /// Every item but the removed ones (the default).
    Active,
    InStock,
    Low,
    Out,
    Removed,
    All,
}

/// A change of stock: any integer but zero.
pub fn delta() -> impl Into<RefOr<Schema>> {
    let side = |bound: ObjectBuilder| {
        bound
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
    };
    OneOfBuilder::new()
        .item(side(ObjectBuilder::new().maximum(Some(-1))))
        .item(side(ObjectBuilder::new().minimum(Some(1))))
        .description(Some("The change, non-zero: negative takes stock out."))
        .examples([serde_json::json!(-3)])
}
