//! Encoding, decoding and the documented catalog of every event.

use serde_json::json;

use serde_json::Value;
use uuid::Uuid;

use super::kitchen_tests::kitchen_events;
use super::schema::{SCHEMAS, UPCASTERS};
use super::*;
use crate::ids::TransferId;
use crate::item::StockReason;
use crate::test_support::{
    item_added, item_id_of, item_name, other_store_id, q, sku, store_created, store_id, store_name,
    t, tenant,
};
use crate::values::Delta;

/// One event of every type.
fn every_event() -> Vec<DomainEvent> {
    let item_id = item_id_of(store_id(), "FLOUR");
    let store_events = [
        store_created(store_id(), tenant()),
        StoreEvent::StoreRenamed {
            store_id: store_id(),
            name: store_name("Soho"),
        },
        StoreEvent::StoreClosed {
            store_id: store_id(),
        },
    ];
    let item_events = [
        item_added(store_id(), "FLOUR", 10, 3),
        ItemEvent::StockAdjusted {
            item_id,
            store_id: store_id(),
            delta: Delta::parse(-7).unwrap(),
            quantity: q(3),
            reason: StockReason::Sold,
            note: Some("lunch".into()),
            undoes: None,
        },
        ItemEvent::StockAdjusted {
            item_id,
            store_id: store_id(),
            delta: Delta::parse(2).unwrap(),
            quantity: q(5),
            reason: StockReason::TransferIn,
            note: None,
            undoes: None,
        },
        ItemEvent::ThresholdChanged {
            item_id,
            store_id: store_id(),
            threshold: t(4),
            undoes: None,
        },
        ItemEvent::ItemRenamed {
            item_id,
            store_id: store_id(),
            name: item_name("Flour 00"),
            undoes: None,
        },
        ItemEvent::ItemRemoved {
            item_id,
            store_id: store_id(),
        },
        ItemEvent::LowStock {
            item_id,
            store_id: store_id(),
            sku: sku("FLOUR"),
            quantity: q(3),
            threshold: t(3),
        },
        ItemEvent::OutOfStock {
            item_id,
            store_id: store_id(),
            sku: sku("FLOUR"),
        },
        ItemEvent::Restocked {
            item_id,
            store_id: store_id(),
            sku: sku("FLOUR"),
            quantity: q(20),
            threshold: t(3),
        },
        ItemEvent::TransferCompleted {
            transfer_id: TransferId::new(Uuid::from_u128(9)),
            from_store: store_id(),
            from_item: item_id,
            to_store: other_store_id(),
            to_item: item_id_of(other_store_id(), "FLOUR"),
            sku: sku("FLOUR"),
            quantity: q(2),
        },
    ];
    store_events
        .into_iter()
        .map(DomainEvent::from)
        .chain(item_events.into_iter().map(DomainEvent::from))
        .chain(kitchen_events())
        .chain(
            crate::inbox::tests::inbox_events()
                .into_iter()
                .map(DomainEvent::from),
        )
        .collect()
}

#[test]
fn every_event_encodes_and_decodes_to_itself() {
    for event in every_event() {
        let data = event.to_data();
        let decoded = DomainEvent::decode(event.event_type(), event.schema_version(), &data)
            .unwrap_or_else(|e| panic!("{}: {e:?}", event.event_type()));
        assert_eq!(decoded, event);
    }
}

#[test]
fn every_event_encodes_to_json_text_as_to_data_and_decodes_from_it() {
    for event in every_event() {
        let json = event.to_data_json();
        let parsed: Value = serde_json::from_str(&json)
            .unwrap_or_else(|e| panic!("{}: {json}: {e}", event.event_type()));
        assert_eq!(parsed, event.to_data(), "{}", event.event_type());
        let decoded = DomainEvent::decode_json(event.event_type(), event.schema_version(), &json)
            .unwrap_or_else(|e| panic!("{}: {e:?}", event.event_type()));
        assert_eq!(decoded, event);
    }
}

#[test]
fn text_that_is_not_json_does_not_decode() {
    let error = DomainEvent::decode_json("StoreClosed", 1, "{ store_id").unwrap_err();
    assert!(
        matches!(error, DecodeError::InvalidData { ref event_type, .. } if event_type == "StoreClosed"),
        "{error:?}"
    );
}

#[test]
fn every_event_type_is_listed_once_and_written_at_its_current_version() {
    let events = every_event();
    let mut written: Vec<_> = events.iter().map(DomainEvent::event_type).collect();
    written.dedup();
    let known: Vec<_> = DomainEvent::event_types().collect();
    assert_eq!(written, known);
    // Version 2 added `undoes` to the three undoable changes.
    let at_two = ["StockAdjusted", "ThresholdChanged", "ItemRenamed"];
    for event in &events {
        let expected = if at_two.contains(&event.event_type()) {
            2
        } else {
            1
        };
        assert_eq!(event.schema_version(), expected, "{}", event.event_type());
    }
}

#[test]
fn a_version_one_change_is_upcast_to_one_that_undoes_nothing() {
    let item_id = item_id_of(store_id(), "FLOUR").to_string();
    let v1 = [
        (
            "ItemRenamed",
            json!({ "item_id": item_id, "store_id": store_id(), "name": "Rye" }),
        ),
        (
            "ThresholdChanged",
            json!({ "item_id": item_id, "store_id": store_id(), "threshold": 2 }),
        ),
    ];
    for (event_type, data) in v1 {
        let event = DomainEvent::decode(event_type, 1, &data).unwrap();
        let DomainEvent::Item(event) = event else {
            panic!("{event_type} is an item event");
        };
        assert_eq!(event.undoes(), None, "{event_type}");
    }
}

#[test]
fn a_compensating_change_names_the_change_it_undoes() {
    let undone = crate::ids::EventId::new(Uuid::from_u128(42));
    let event = DomainEvent::from(ItemEvent::ItemRenamed {
        item_id: item_id_of(store_id(), "FLOUR"),
        store_id: store_id(),
        name: item_name("Flour"),
        undoes: Some(undone),
    });
    assert_eq!(event.to_data()["undoes"], json!(undone.to_string()));
    assert_eq!(event.causation_id(), Some(undone.as_uuid()));
    let decoded = DomainEvent::decode("ItemRenamed", 2, &event.to_data()).unwrap();
    assert_eq!(decoded, event);
    assert_eq!(every_event()[3].causation_id(), None);
}

#[test]
fn every_schema_above_version_one_has_an_upcaster_per_step() {
    for schema in SCHEMAS {
        for from_version in 1..schema.current_version {
            assert!(
                UPCASTERS
                    .iter()
                    .any(|u| u.event_type == schema.event_type && u.from_version == from_version),
                "{} has no upcaster from v{from_version}",
                schema.event_type
            );
        }
    }
}

#[test]
fn the_payload_is_a_snake_case_object_without_the_type() {
    for event in every_event() {
        let Value::Object(fields) = event.to_data() else {
            panic!("{} is not an object", event.event_type());
        };
        assert!(!fields.contains_key("type"));
        assert!(!fields.contains_key(event.event_type()));
        for key in fields.keys() {
            assert!(
                key.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{key} in {}",
                event.event_type()
            );
        }
    }
}

#[test]
fn stock_adjusted_is_encoded_with_plain_values() {
    let event = DomainEvent::from(ItemEvent::StockAdjusted {
        item_id: item_id_of(store_id(), "FLOUR"),
        store_id: store_id(),
        delta: Delta::parse(-7).unwrap(),
        quantity: q(3),
        reason: StockReason::TransferOut,
        note: None,
        undoes: None,
    });
    assert_eq!(
        event.to_data(),
        json!({
            "item_id": item_id_of(store_id(), "FLOUR").to_string(),
            "store_id": store_id().to_string(),
            "delta": -7,
            "quantity": 3,
            "reason": "transfer_out",
            "note": null,
            "undoes": null,
        })
    );
}

#[test]
fn a_missing_note_decodes_as_none() {
    let data = json!({
        "item_id": item_id_of(store_id(), "FLOUR").to_string(),
        "store_id": store_id().to_string(),
        "delta": 1,
        "quantity": 1,
        "reason": "received",
    });
    let event = DomainEvent::decode("StockAdjusted", 1, &data).unwrap();
    assert!(matches!(
        event,
        DomainEvent::Item(ItemEvent::StockAdjusted { note: None, .. })
    ));
}

#[test]
fn decoding_an_unknown_type_fails() {
    let err = DomainEvent::decode("StockTeleported", 1, &json!({})).unwrap_err();
    assert!(
        matches!(err, DecodeError::UnknownEventType { event_type } if event_type == "StockTeleported")
    );
    // Type names are exact: not the Rust path, not another casing.
    assert!(DomainEvent::decode("stock_adjusted", 1, &json!({})).is_err());
}

#[test]
fn decoding_a_version_this_build_does_not_know_fails() {
    let data = every_event()[2].to_data();
    for version in [0, 2] {
        let err = DomainEvent::decode("StoreClosed", version, &data).unwrap_err();
        assert!(
            matches!(
                err,
                DecodeError::UnsupportedVersion { schema_version, current: 1, .. }
                    if schema_version == version
            ),
            "{err:?}"
        );
    }
}

#[test]
fn decoding_a_payload_that_breaks_a_rule_fails() {
    let mut data = every_event()[3].to_data();
    data["quantity"] = json!(-1);
    let err = DomainEvent::decode("ItemAdded", 1, &data).unwrap_err();
    assert!(matches!(err, DecodeError::InvalidData { .. }), "{err:?}");

    let err = DomainEvent::decode("StoreClosed", 1, &json!({})).unwrap_err();
    assert!(matches!(err, DecodeError::InvalidData { .. }), "{err:?}");
    assert!(DomainEvent::decode("StoreClosed", 1, &json!("x")).is_err());
}

#[test]
fn events_name_their_store_and_entity() {
    let events = every_event();
    let item_id = item_id_of(store_id(), "FLOUR").to_string();
    for event in &events {
        let expected = match event {
            DomainEvent::Store(_) => ("store", store_id().to_string()),
            DomainEvent::Item(_) => ("item", item_id.clone()),
            DomainEvent::Menu(_) => ("menu", store_id().to_string()),
            DomainEvent::Order(_) => ("order", crate::test_support::order_id().to_string()),
            DomainEvent::Inbox(_) => {
                assert_eq!(event.store_id(), None);
                assert_eq!(event.recipient().map(|u| u.as_str()), Some("alice"));
                assert_eq!(event.entity(), ("inbox", "alice".to_owned()));
                continue;
            }
        };
        assert_eq!(event.store_id(), Some(store_id()));
        assert_eq!(event.recipient(), None);
        assert_eq!(event.entity(), expected, "{}", event.event_type());
    }
}

/// The `data` examples of `docs/events.md`, by the `### Type` heading above
/// each.
fn documented_examples() -> Vec<(String, Value)> {
    let doc = include_str!("../../../../docs/events.md");
    let mut examples = Vec::new();
    let mut heading = None;
    let mut block: Option<String> = None;
    for line in doc.lines() {
        if let Some(title) = line.strip_prefix("### ") {
            heading = Some(title.trim().trim_matches('`').to_owned());
        } else if line.starts_with("## ") || line.starts_with("#### ") {
            heading = None;
        } else if line.trim() == "```json" {
            block = Some(String::new());
        } else if line.trim() == "```" {
            if let (Some(json), Some(event_type)) = (block.take(), heading.take()) {
                let data =
                    serde_json::from_str(&json).unwrap_or_else(|e| panic!("{event_type}: {e}"));
                examples.push((event_type, data));
            }
        } else if let Some(json) = &mut block {
            json.push_str(line);
            json.push('\n');
        }
    }
    examples
}

#[test]
fn the_event_catalog_shows_a_valid_example_of_every_event() {
    let examples = documented_examples();
    let documented: Vec<_> = examples.iter().map(|(t, _)| t.as_str()).collect();
    let known: Vec<_> = DomainEvent::event_types().collect();
    assert_eq!(documented, known);
    for (event_type, data) in &examples {
        let version = SCHEMAS
            .iter()
            .find(|s| s.event_type == event_type)
            .map_or(1, |s| s.current_version);
        let event = DomainEvent::decode(event_type, version, data)
            .unwrap_or_else(|e| panic!("{event_type}: {e:?}"));
        assert_eq!(&event.to_data(), data, "{event_type}");
    }
}
