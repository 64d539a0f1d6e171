//! Who issues a command, passed through the pipeline as one value.

use larder_codec::Origin;
use larder_domain::TenantId;
use uuid::Uuid;

use crate::IdempotencyKey;

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
}

impl Context {
    /// What the events this command writes record as their origin.
    pub(crate) fn origin(&self) -> Origin {
        Origin {
            tenant: self.tenant.clone(),
            actor: self.actor.clone(),
            session: self.session.clone(),
            correlation_id: self.correlation_id,
        }
    }
}
