//! Idempotency keys on commands: a command with a key stores it with its
//! events, in the same transaction; a retry with the same key and the same
//! fingerprint answers what the first one did and appends nothing, and the
//! same key with another fingerprint is refused.

use larder_store::{
    AppendResult, Idempotency, IdempotencyRecord, IdempotentAppend, StoreError, StreamAppend,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::pipeline::Outcome;
use crate::{AppError, Context};

/// A client's idempotency key and what identifies its request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    /// The key the client chose, unique per tenant.
    pub key: String,
    /// A digest of the request (method, path, preconditions, body): a retry
    /// has the same one, another request reusing the key does not.
    pub fingerprint: String,
    /// The status the caller answers a success with (e.g. 201), stored
    /// with the key.
    pub status: u16,
}

/// What an outcome stores besides what the commit gives (version and
/// position).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Answer {
    pub(crate) id: Uuid,
    pub(crate) stream: String,
    pub(crate) events: Vec<String>,
}

impl Answer {
    /// The outcome answered again from a record's result.
    pub(crate) fn outcome(self, result: &AppendResult) -> Outcome {
        Outcome {
            id: self.id,
            version: result.version_of(&self.stream).unwrap_or(0),
            stream: self.stream,
            position: result.last_position,
            events: self.events,
            replayed: true,
        }
    }
}

/// How an append with or without a key ended.
pub(crate) enum Written {
    /// The events were appended (and the key, if any, stored).
    Appended(AppendResult),
    /// The key was stored already: nothing was appended.
    Replayed(IdempotencyRecord),
}

impl crate::App {
    /// The live record of the command's key, if it has one: checked before
    /// deciding, so a retry is answered even where deciding again would be
    /// refused (its `If-Match` is stale now). Another request's record is a
    /// reused key.
    pub(crate) async fn recorded(
        &self,
        ctx: &Context,
    ) -> Result<Option<IdempotencyRecord>, AppError> {
        let Some(key) = &ctx.idempotency else {
            return Ok(None);
        };
        match self
            .store
            .idempotency_record(ctx.tenant.as_str(), &key.key)
            .await?
        {
            Some(record) => matching(ctx, record).map(Some),
            None => Ok(None),
        }
    }

    /// Appends, storing the command's key (if any) with the events and
    /// `response` (what to answer a retry with, see [`Answer`]).
    pub(crate) async fn write(
        &self,
        ctx: &Context,
        appends: Vec<StreamAppend>,
        response: impl FnOnce() -> Result<String, AppError>,
    ) -> Result<Result<Written, StoreError>, AppError> {
        let Some(key) = &ctx.idempotency else {
            return Ok(self
                .store
                .append_streams(appends)
                .await
                .map(Written::Appended));
        };
        let idempotency = Idempotency {
            tenant: ctx.tenant.as_str().to_owned(),
            key: key.key.clone(),
            fingerprint: key.fingerprint.clone(),
            status: key.status,
            response: response()?,
        };
        Ok(
            match self.store.append_idempotent(appends, idempotency).await {
                Ok(IdempotentAppend::Appended(result)) => Ok(Written::Appended(result)),
                Ok(IdempotentAppend::Replayed(record)) => {
                    Ok(Written::Replayed(matching(ctx, record)?))
                }
                Err(error) => Err(error),
            },
        )
    }
}

/// The record, if the command is a retry of the one that stored it.
fn matching(ctx: &Context, record: IdempotencyRecord) -> Result<IdempotencyRecord, AppError> {
    match &ctx.idempotency {
        Some(key) if record.matches(&key.fingerprint) => Ok(record),
        _ => Err(AppError::IdempotencyKeyReused(record.key)),
    }
}

/// A stored response as `T`; one that does not read is a corrupt record.
pub(crate) fn parse<T: serde::de::DeserializeOwned>(
    record: &IdempotencyRecord,
) -> Result<T, AppError> {
    serde_json::from_str(&record.response).map_err(|error| {
        AppError::Store(StoreError::Corrupt {
            position: record.result.last_position,
            reason: format!("idempotency record {}: {error}", record.key),
        })
    })
}

/// `answer` as a stored response.
pub(crate) fn render<T: Serialize>(answer: &T) -> Result<String, AppError> {
    serde_json::to_string(answer)
        .map_err(|error| AppError::Store(StoreError::Invalid(error.to_string())))
}
