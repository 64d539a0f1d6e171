use async_trait::async_trait;

use crate::{
    AppendResult, CommandKey, EventFilter, ExpectedVersion, Idempotency, IdempotencyRecord,
    IdempotentAppend, NewEvent, Page, RecordedEvent, StoreError, StreamAppend,
};

/// The largest page a read returns, whatever the caller asks for: a bound on
/// the memory one read can take.
pub const MAX_PAGE_SIZE: u32 = 10_000;

/// An append-only log of events in streams, with a gap-free global position.
///
/// Guarantees every implementation keeps (the conformance suite in
/// `tests/it` checks them):
/// - An append is atomic across all its streams, and each stream's expected
///   version is checked in the same transaction.
/// - Global positions start at 1, have no gaps, and a reader that tails by
///   position never skips an event that commits later with a smaller one.
/// - Appending the same event ids again at the same place is a no-op that
///   returns the original result.
/// - Events are published to the bus after commit, in position order, never
///   for a failed append.
/// - An append with an idempotency key stores the key in the same
///   transaction as its events; a later append with the same (tenant, key),
///   while the record is live, appends nothing and gets the record back.
#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Appends events to several streams atomically, each with its own
    /// expected version. Nothing is written unless every check passes.
    async fn append_streams(&self, appends: Vec<StreamAppend>) -> Result<AppendResult, StoreError>;

    /// Appends `events` to one stream.
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        self.append_streams(vec![StreamAppend::new(stream, expected, events)])
            .await
    }

    /// Appends like [`EventStore::append_streams`] and stores `idempotency`
    /// with the events, in the same transaction. If a live record of the
    /// same (tenant, key) is stored (by an earlier append, or by a
    /// concurrent one that committed first), appends nothing and answers
    /// [`IdempotentAppend::Replayed`] with it, whether or not its
    /// fingerprint matches. An append that fails stores no record.
    async fn append_idempotent(
        &self,
        appends: Vec<StreamAppend>,
        idempotency: Idempotency,
    ) -> Result<IdempotentAppend, StoreError> {
        self.append_keyed(appends, vec![CommandKey::whole(idempotency)])
            .await
    }

    /// Appends like [`EventStore::append_idempotent`], storing several
    /// keys with the events, each answering with its command's part of the
    /// result ([`CommandKey`]): a group commit of several commands, each
    /// with its own key. If any key has a live record, appends nothing and
    /// answers [`IdempotentAppend::Replayed`] with that record. The keys
    /// must differ; with none, it is a plain append.
    async fn append_keyed(
        &self,
        appends: Vec<StreamAppend>,
        keys: Vec<CommandKey>,
    ) -> Result<IdempotentAppend, StoreError>;

    /// The live idempotency record of (tenant, key), if any: a fast path
    /// that answers a retry without deciding the command again.
    async fn idempotency_record(
        &self,
        tenant: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError>;

    /// Reads up to `limit` events of `stream` with version >= `from_version`.
    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        limit: u32,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// The event with this id, if it is stored: how a writer that derives
    /// its event ids from a request finds out whether it already ran.
    async fn read_event(&self, id: uuid::Uuid) -> Result<Option<RecordedEvent>, StoreError>;

    /// The stream's current version (0: no stream).
    async fn stream_version(&self, stream: &str) -> Result<u64, StoreError>;

    /// Reads up to `limit` events after position `after` that match `filter`.
    ///
    /// A page may hold fewer than `limit` events, or none, before the head
    /// (a filtered read on [`crate::SqlEventStore`] examines at most
    /// [`crate::FILTER_SCAN_WINDOW`] positions): read on from
    /// [`Page::scanned_to`] until [`Page::reached_head`].
    async fn read_all(
        &self,
        after: u64,
        limit: u32,
        filter: &EventFilter,
    ) -> Result<Page, StoreError>;

    /// The position of the last committed event (0: empty log).
    async fn head(&self) -> Result<u64, StoreError>;
}
