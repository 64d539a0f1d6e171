//! Checking an append (names, data, sizes) in the caller's task, so the
//! writers only decide and insert.

use std::collections::HashSet;

use crate::{NewEvent, StoreError, StreamAppend};

/// The longest stream name, event type and metadata field accepted.
const MAX_NAME_LEN: usize = 200;

/// The bounds an append is checked against (see [`crate::StoreOptions`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub max_event_bytes: usize,
    pub max_events_per_append: usize,
}

impl Limits {
    /// Checks an append (names, data, sizes) in the caller's task, so the
    /// writer only decides and inserts.
    pub(crate) fn check(
        &self,
        appends: Vec<StreamAppend>,
    ) -> Result<Vec<StreamAppend>, StoreError> {
        if appends.is_empty() {
            return Err(StoreError::Invalid(
                "an append needs at least one stream".into(),
            ));
        }
        let count: usize = appends.iter().map(|a| a.events.len()).sum();
        if count > self.max_events_per_append {
            return Err(StoreError::Invalid(format!(
                "{count} events in one append, the maximum is {}",
                self.max_events_per_append
            )));
        }
        let mut streams = HashSet::new();
        let mut ids = HashSet::new();
        for append in &appends {
            check_name("stream name", &append.stream)?;
            if !streams.insert(append.stream.as_str()) {
                return Err(StoreError::Invalid(format!(
                    "stream {} appears twice in one append",
                    append.stream
                )));
            }
            for event in &append.events {
                if !ids.insert(event.id) {
                    return Err(StoreError::Invalid(format!(
                        "event id {} appears twice",
                        event.id
                    )));
                }
                self.check_event(event)?;
            }
        }
        Ok(appends)
    }

    fn check_event(&self, event: &NewEvent) -> Result<(), StoreError> {
        check_name("event type", &event.event_type)?;
        check_name("tenant", &event.metadata.tenant)?;
        check_name("entity type", &event.metadata.entity_type)?;
        check_name("entity id", &event.metadata.entity_id)?;
        for optional in [&event.metadata.store, &event.metadata.actor]
            .into_iter()
            .flatten()
        {
            check_name("metadata field", optional)?;
        }
        if !event.data.is_object() {
            return Err(StoreError::Invalid(format!(
                "event {} data must be a JSON object",
                event.id
            )));
        }
        let size = event.data.json().len()
            + event.event_type.len()
            + event.metadata.tenant.len()
            + event.metadata.entity_type.len()
            + event.metadata.entity_id.len()
            + event.metadata.store.as_ref().map_or(0, String::len)
            + event.metadata.actor.as_ref().map_or(0, String::len);
        if size > self.max_event_bytes {
            return Err(StoreError::EventTooLarge {
                id: event.id,
                size,
                max: self.max_event_bytes,
            });
        }
        Ok(())
    }
}

fn check_name(what: &str, value: &str) -> Result<(), StoreError> {
    if value.is_empty() || value.len() > MAX_NAME_LEN || has_control(value) {
        return Err(StoreError::Invalid(format!(
            "{what} must be 1 to {MAX_NAME_LEN} bytes without control characters"
        )));
    }
    Ok(())
}

/// Whether `value` holds a control character. Every one is encoded with a
/// byte below 0x20, 0x7f, or (U+0080 to U+009F) a leading 0xc2, so a string
/// with none of those bytes is decided without decoding it.
fn has_control(value: &str) -> bool {
    // A fold without an early exit, which the compiler turns into wide
    // comparisons: names are short, and usually clean.
    let suspect = value.bytes().fold(false, |found, b| {
        found | (b < 0x20) | (b == 0x7f) | (b == 0xc2)
    });
    suspect && value.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::has_control;

    #[test]
    fn control_characters_are_found_without_decoding_clean_names() {
        for clean in ["item-42", "Café crème", "ß€😀", ""] {
            assert!(!has_control(clean), "{clean:?}");
        }
        for dirty in ["a\tb", "\u{7f}", "x\u{85}y", "\u{9f}", "\u{0}"] {
            assert!(has_control(dirty), "{dirty:?}");
        }
        // 0xc2 also leads printable characters (U+00A0 to U+00BF).
        assert!(!has_control("a\u{a0}b\u{bf}"));
    }
}
