//! What the OpenAPI document says about values the domain parses: the same
//! rules as `larder_domain`'s value types, written as JSON Schema, so a
//! request the document allows is one the server takes (and the other way
//! round). Schemathesis (scripts/api-contract.sh) holds the two to each
//! other.

use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type};
use utoipa::openapi::{KnownFormat, RefOr, SchemaFormat};
use utoipa::{Number, ToSchema};

/// What `str::trim` removes: Unicode `White_Space`, written out, because a
/// pattern's `\s` means slightly different sets in different regex engines.
const WS: &str = r"\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";

/// What `char::is_control` finds: Unicode `Cc`.
const CONTROL: &str = r"\x00-\x1f\x7f-\x9f";

/// A display name (store or item): trimmed, then 1 to 100 characters, no
/// control characters. Whitespace around it is dropped.
fn name_pattern() -> String {
    format!("^[{WS}]*[^{WS}{CONTROL}](?:[^{CONTROL}]{{0,98}}[^{WS}{CONTROL}])?[{WS}]*$")
}

/// A SKU: trimmed, then 1 to 64 of letters, digits, `.`, `_`, `-` (upper-cased).
fn sku_pattern() -> String {
    format!("^[{WS}]*[A-Za-z0-9._-]{{1,64}}[{WS}]*$")
}

/// A unit: trimmed, then 1 to 16 letters, digits, spaces and dots (`\w` in
/// its Unicode sense, as Python and most engines read it).
fn unit_pattern() -> String {
    let first = r"(?:[^\W_]|[.])";
    format!("^[{WS}]*{first}(?:(?:[^\\W_]|[. ]){{0,14}}{first})?[{WS}]*$")
}

/// A note: trimmed, then at most 500 characters; blank means none.
fn note_pattern() -> String {
    format!("^[{WS}]*(?:[^{WS}](?:[\\s\\S]{{0,498}}[^{WS}])?)?[{WS}]*$")
}

/// Any form `Uuid::parse_str` reads: hyphenated, simple, braced or URN.
pub fn uuid_pattern() -> String {
    let hyphenated = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}";
    format!("^(?:{hyphenated}|[0-9a-fA-F]{{32}}|\\{{{hyphenated}\\}}|urn:uuid:{hyphenated})$")
}

fn text(pattern: String, description: &str, example: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
        .description(Some(description))
        .examples([serde_json::json!(example)])
}

/// [`text`] that may also be `null` (an optional field).
fn optional_text(pattern: String, description: &str, example: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .pattern(Some(pattern))
        .description(Some(description))
        .examples([serde_json::json!(example)])
}

/// See [`name_pattern`].
pub fn name() -> impl Into<RefOr<Schema>> {
    text(
        name_pattern(),
        "1 to 100 characters (after trimming), no control characters.",
        "Main Street",
    )
}

/// See [`sku_pattern`].
pub fn sku() -> impl Into<RefOr<Schema>> {
    text(
        sku_pattern(),
        "Stock-keeping unit, unique in the store: 1 to 64 letters, digits, `.`, `_`, `-` (upper-cased).",
        "FLOUR-25KG",
    )
}

/// See [`unit_pattern`].
pub fn unit() -> impl Into<RefOr<Schema>> {
    optional_text(
        unit_pattern(),
        "Unit of the quantities (default `each`): 1 to 16 letters, digits, spaces and dots.",
        "bag",
    )
}

/// See [`note_pattern`].
pub fn note() -> impl Into<RefOr<Schema>> {
    optional_text(
        note_pattern(),
        "A note, at most 500 characters (after trimming).",
        "lunch service",
    )
}

/// Short text: trimmed, then 1 to `most` characters, no control characters
/// (a table, a modifier, a cancellation reason; a name is this with 100).
fn label_pattern(most: usize) -> String {
    let inner = most - 2;
    format!("^[{WS}]*[^{WS}{CONTROL}](?:[^{CONTROL}]{{0,{inner}}}[^{WS}{CONTROL}])?[{WS}]*$")
}

/// A station key: trimmed, then 1 to 32 of `a-z`, `0-9`, `_`, `-`
/// (lower-cased first, so `A-Z` are taken too).
pub fn station_key_pattern() -> String {
    format!("^[{WS}]*[A-Za-z0-9_-]{{1,32}}[{WS}]*$")
}

/// See [`station_key_pattern`].
pub fn station() -> impl Into<RefOr<Schema>> {
    text(
        station_key_pattern(),
        "A kitchen station's key: 1 to 32 of a-z, 0-9, `_`, `-` (lower-cased).",
        "grill",
    )
}

/// A currency code: trimmed, three ASCII letters (upper-cased).
pub fn currency() -> impl Into<RefOr<Schema>> {
    text(
        format!("^[{WS}]*[A-Za-z]{{3}}[{WS}]*$"),
        "ISO 4217-style currency code: three letters (upper-cased).",
        "GBP",
    )
}

/// A table label: 1 to 16 characters after trimming.
pub fn table() -> impl Into<RefOr<Schema>> {
    optional_text(
        label_pattern(16),
        "The table of a dine-in order: 1 to 16 characters (after trimming), no control \
         characters. Required for `dine_in`, absent for `takeaway`.",
        "T12",
    )
}

/// A modifier: 1 to 40 characters after trimming.
pub fn modifier() -> ObjectBuilder {
    text(
        label_pattern(40),
        "A change asked for by the guest: 1 to 40 characters (after trimming).",
        "no onions",
    )
}

/// A cancellation reason: 1 to 200 characters after trimming.
pub fn reason() -> impl Into<RefOr<Schema>> {
    text(
        label_pattern(200),
        "Why: 1 to 200 characters (after trimming), no control characters.",
        "guest left",
    )
}

/// [`name`] that may be `null` (left as it is).
pub fn optional_name() -> impl Into<RefOr<Schema>> {
    optional_text(
        name_pattern(),
        "1 to 100 characters (after trimming), no control characters; absent keeps it.",
        "Margherita",
    )
}

/// [`station`] that may be `null` (left as it is).
pub fn optional_station() -> impl Into<RefOr<Schema>> {
    optional_text(
        station_key_pattern(),
        "Another station's key; absent keeps it.",
        "grill",
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
        .item(side(
            ObjectBuilder::new()
                .minimum(Some(Number::Int(isize::MIN)))
                .maximum(Some(-1)),
        ))
        .item(side(
            ObjectBuilder::new()
                .minimum(Some(1))
                .maximum(Some(Number::Int(isize::MAX))),
        ))
        .description(Some("The change, non-zero: negative takes stock out."))
        .examples([serde_json::json!(-3)])
}

/// Gives every UUID in the document (path parameters and body fields) the
/// pattern of the forms the server reads, so a generator that does not know
/// the `uuid` format still makes ids the server takes.
pub struct UuidPatterns;

impl utoipa::Modify for UuidPatterns {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let pattern = uuid_pattern();
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                for parameter in operation.parameters.iter_mut().flatten() {
                    if let Some(schema) = parameter.schema.as_mut() {
                        with_uuid_pattern(schema, &pattern);
                    }
                }
            }
        }
        if let Some(components) = openapi.components.as_mut() {
            for schema in components.schemas.values_mut() {
                with_uuid_pattern(schema, &pattern);
            }
        }
    }
}

/// The values of the read models' status fields, which the projections
/// keep as text: a store is `open` or `closed` (`larder_projections::larder`
/// writes them), an item `in_stock`, `low`, `out` (`StockStatus`) or
/// `removed`. The contract check holds the document to what the server
/// answers.
pub struct StatusValues;

impl utoipa::Modify for StatusValues {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        for (schema, values) in [
            ("StoreSummary", &["open", "closed"][..]),
            ("InventoryItem", &["in_stock", "low", "out", "removed"][..]),
        ] {
            let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(schema) else {
                continue;
            };
            if let Some(RefOr::T(Schema::Object(status))) = object.properties.get_mut("status") {
                status.enum_values = Some(values.iter().map(|v| serde_json::json!(v)).collect());
            }
        }
    }
}

fn with_uuid_pattern(schema: &mut RefOr<Schema>, pattern: &str) {
    let RefOr::T(schema) = schema else { return };
    match schema {
        Schema::Object(object) => {
            if object.format == Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)) {
                object.pattern = Some(pattern.to_owned());
            }
            for property in object.properties.values_mut() {
                with_uuid_pattern(property, pattern);
            }
        }
        Schema::Array(array) => {
            if let utoipa::openapi::schema::ArrayItems::RefOrSchema(items) = &mut array.items {
                with_uuid_pattern(items, pattern);
            }
        }
        Schema::OneOf(one_of) => one_of
            .items
            .iter_mut()
            .for_each(|item| with_uuid_pattern(item, pattern)),
        Schema::AllOf(all_of) => all_of
            .items
            .iter_mut()
            .for_each(|item| with_uuid_pattern(item, pattern)),
        Schema::AnyOf(any_of) => any_of
            .items
            .iter_mut()
            .for_each(|item| with_uuid_pattern(item, pattern)),
        _ => {}
    }
}

/// A notification's title: trimmed, then 1 to 120 characters, no control
/// characters.
pub fn notification_title() -> impl Into<RefOr<Schema>> {
    text(
        label_pattern(120),
        "1 to 120 characters (after trimming), no control characters.",
        "Inventory count tonight",
    )
}

/// A notification's body: trimmed, then at most 1,000 characters, no
/// control characters but line feeds; blank means none.
pub fn notification_body() -> impl Into<RefOr<Schema>> {
    let middle = r"\x00-\x09\x0b-\x1f\x7f-\x9f";
    optional_text(
        format!("^[{WS}]*(?:[^{WS}{CONTROL}](?:[^{middle}]{{0,998}}[^{WS}{CONTROL}])?)?[{WS}]*$"),
        "At most 1,000 characters (after trimming), no control characters but line feeds.",
        "Close at 9, count at 9:15.",
    )
}
