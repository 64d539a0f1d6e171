//! Who issues a command, passed through the pipeline as one value.

use std::sync::Arc;

use larder_codec::Origin;
use larder_domain::TenantId;
use uuid::Uuid;

use crate::{IdempotencyKey, Lifecycle};

/// Everything a command carries besides its own fields: the tenant it acts
/// for, who issued it, and the request it came from. One value passed
/// through the pipeline, so adding to it (an idempotency key) changes no
/// signature.
#[derive(Debug, Clone)]
pub struct Context {
    /// The tenant the command acts for; it may touch only its own streams.
    pub tenant: TenantId,
    /// The user or service that issued it, for event metadata.
    pub actor: String,
    /// The login session (token `sid` claim), shared by all tabs of a sign-in.
    pub session: Option<String>,
    /// Shared by every event the request causes.
    pub correlation_id: Uuid,
    /// The client's idempotency key, if it sent one: stored with the
    /// command's events, so a retry appends nothing and gets the same answer.
    pub idempotency: Option<IdempotencyKey>,
    /// The event this command reacts to, when a process manager issues it
    /// (recorded as the `causation_id` of the events it writes); `None` for
    /// a user's command.
    pub causation_id: Option<Uuid>,
    /// Who follows the command's lifecycle, if anyone: told when the
    /// command enters the pipeline.
    pub lifecycle: Option<Arc<dyn Lifecycle>>,
}

impl Context {
    /// Tells the command's follower, if any, that it enters the pipeline.
    pub(crate) fn accepted(&self) {
        if let Some(lifecycle) = &self.lifecycle {
            lifecycle.accepted();
        }
    }

    /// What the events this command writes record as their origin.
    pub(crate) fn origin(&self) -> Origin {
        Origin {
            tenant: self.tenant.clone(),
            actor: self.actor.clone(),
            session: self.session.clone(),
            correlation_id: self.correlation_id,
            causation_id: self.causation_id,
        }
    }
}
