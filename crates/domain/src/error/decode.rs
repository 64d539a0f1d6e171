//! The decoding error of stored events.

/// Why a stored event could not be turned back into a [`crate::DomainEvent`].
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// No event of this type exists (it may come from a newer Larder).
    #[error("unknown event type {event_type:?}")]
    UnknownEventType {
        /// The stored type name.
        event_type: String,
    },
    /// The schema version is newer than this build knows, or zero.
    #[error("unsupported schema version {schema_version} of {event_type} (current is {current})")]
    UnsupportedVersion {
        /// The stored type name.
        event_type: String,
        /// The stored schema version.
        schema_version: u32,
        /// The newest version this build can read.
        current: u32,
    },
    /// The payload does not match the schema (a field is missing, or a value
    /// would not parse, e.g. a negative quantity).
    #[error("invalid data for {event_type} v{schema_version}")]
    InvalidData {
        /// The stored type name.
        event_type: String,
        /// The stored schema version.
        schema_version: u32,
        /// What serde found wrong.
        #[source]
        source: serde_json::Error,
    },
}
