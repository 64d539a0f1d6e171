/// What publishing to or subscribing on a bus can fail with.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The bus was shut down; nothing more can be published or received.
    #[error("the event bus is closed")]
    Closed,
    /// A distributed bus could not reach its broker.
    #[error("the event bus is unavailable: {0}")]
    Unavailable(String),
}
