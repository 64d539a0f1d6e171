//! Larder's event store: an append-only log of events in streams, with a
//! gap-free global position, on SQLite (embedded default) or PostgreSQL.
//!
//! The store is the mailbox: every committed event is here, at a position
//! that only grows in commit order. The bus ([`larder_bus`]) is the doorbell:
//! after each commit the store publishes the new events so consumers learn
//! of them at once; a consumer that missed a ring reads the gap from here
//! ([`CatchUp`]).
//!
//! The crate knows nothing of Larder's domain: events carry a type name,
//! JSON data ([`EventData`], serialised once by whoever makes the event) and routing [`Metadata`], so other services can reuse it.
//!
//! ```no_run
//! use larder_store::{EventStore, ExpectedVersion, Metadata, NewEvent, SqlEventStore, StoreOptions};
//!
//! # async fn run() -> Result<(), larder_store::StoreError> {
//! let store = SqlEventStore::connect("sqlite://larder.db", StoreOptions::default()).await?;
//! let metadata = Metadata { tenant: "acme".into(), entity_type: "item".into(), entity_id: "42".into(), ..Metadata::default() };
//! let event = NewEvent::new("StockAdjusted", 1, serde_json::json!({ "delta": -2 }), metadata);
//! let result = store.append("item-42", ExpectedVersion::Any, vec![event]).await?;
//! println!("stream at version {}, log at position {}", result.version(), result.last_position);
//! # Ok(()) }
//! ```
//!
//! # Layout
//! - `event`: [`NewEvent`], [`EventData`], [`RecordedEvent`], [`Metadata`], [`ExpectedVersion`],
//!   [`StreamAppend`], [`AppendResult`], [`EventFilter`], [`Page`].
//! - `store`: the [`EventStore`] trait and its guarantees.
//! - `options`: [`StoreOptions`], and the [`Database`] a store runs on.
//! - `connect`: opening a [`SqlEventStore`]: pools, migrations, the writer.
//! - `sql`: [`SqlEventStore`] and its [`EventStore`] implementation: the
//!   reads, and handing appends to the writer.
//! - `idempotency`: [`Idempotency`] keys stored with an append's events,
//!   [`IdempotencyRecord`], [`IdempotentAppend`]; their SQL and sweep.
//! - `check`: checking an append (names, sizes) before it reaches a writer.
//! - `batch`: what both writers share: requests, batches, answering callers.
//! - `postgres_writer`: the PostgreSQL writer task (group commit, the append
//!   lock, the one-round-trip fast path).
//! - `sqlite_writer`: the SQLite writer thread (one synchronous connection),
//!   with its transaction (`commit`), `publisher` and `checkpoint` thread.
//! - `plan`: deciding a batch of appends against one snapshot (pure).
//! - `catchup`: [`CatchUp`], tailing the log by bus and store together.
//! - `error`: [`StoreError`]: database errors are classified here, once.
//! - `test_support` (feature `test-support`): dropping a test's PostgreSQL
//!   schema, shared by the test suites of the workspace.

mod batch;
mod catchup;
mod check;
mod connect;
mod error;
mod event;
mod idempotency;
mod options;
mod plan;
mod postgres_writer;
mod sql;
mod sqlite_writer;
mod store;
#[cfg(feature = "test-support")]
pub mod test_support;

pub use catchup::{CatchUp, DEFAULT_POLL_INTERVAL, DEFAULT_REORDER_WINDOW};
pub use error::{StoreError, is_unavailable};
pub use event::{
    AppendResult, EventData, EventFilter, ExpectedVersion, Metadata, NewEvent, Page, RecordedEvent,
    StreamAppend, StreamVersion,
};
pub use idempotency::{
    CommandKey, DEFAULT_IDEMPOTENCY_RETENTION, Idempotency, IdempotencyRecord, IdempotentAppend,
    MAX_IDEMPOTENCY_KEY_BYTES,
};
pub use options::{Database, StoreOptions};
pub use postgres_writer::APPEND_LOCK_CLASS;
pub use sql::{FILTER_SCAN_WINDOW, SqlEventStore};
pub use store::{EventStore, MAX_PAGE_SIZE};
