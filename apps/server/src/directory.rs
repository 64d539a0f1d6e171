//! The user directory: every user the server authenticates is recorded
//! with their tenant, role and stores, so the notification rules can find
//! "the store's managers". Users exist only as the claims of their tokens:
//! a user is known once they have signed in (made one authenticated
//! request or WebSocket connection), and their entry follows their latest
//! token.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use larder_projections::{DirectoryEntry, record_user};
use larder_store::Database;

use crate::auth::{Principal, Role};

/// How often an unchanged user's `last_seen` is written again.
const REFRESH: Duration = Duration::from_secs(3600);
/// Users remembered as recorded; past this the memory starts over (the
/// cost is one more write per user, never a wrong entry).
const MAX_REMEMBERED: usize = 100_000;

/// What was last written for a user: their role, stores, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Written {
    role: Role,
    stores: Option<Vec<String>>,
    at: Instant,
}

/// Records users as they authenticate, writing only when their claims
/// changed (or once an hour).
#[derive(Debug)]
pub struct Directory {
    db: Database,
    written: Mutex<HashMap<(String, String), Written>>,
}

impl Directory {
    pub fn new(db: Database) -> Self {
        Self {
            db,
            written: Mutex::default(),
        }
    }

    /// Records `principal` if the directory does not have them as they are.
    /// A failure is logged, never answered: the request goes on, and the
    /// next one tries again.
    pub async fn seen(&self, principal: &Principal) {
        let mut stores: Option<Vec<String>> =
            principal.stores().map(|s| s.iter().cloned().collect());
        if let Some(stores) = &mut stores {
            stores.sort_unstable();
        }
        let key = (principal.tenant.as_str().to_owned(), principal.user.clone());
        let now = Instant::now();
        {
            let written = self.written.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(last) = written.get(&key)
                && last.role == principal.role
                && last.stores == stores
                && now.duration_since(last.at) < REFRESH
            {
                return;
            }
        }
        let entry = DirectoryEntry {
            tenant: key.0.clone(),
            user: key.1.clone(),
            role: role_name(principal.role).to_owned(),
            role_rank: principal.role as i64,
            stores: stores.clone(),
        };
        if let Err(error) = record_user(&self.db, &entry, chrono::Utc::now()).await {
            tracing::warn!(%error, user = %principal.user, "could not record the user in the directory");
            return;
        }
        let mut written = self.written.lock().unwrap_or_else(|e| e.into_inner());
        if written.len() >= MAX_REMEMBERED {
            written.clear();
        }
        written.insert(
            key,
            Written {
                role: principal.role,
                stores,
                at: now,
            },
        );
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Viewer => "viewer",
        Role::Staff => "staff",
        Role::Manager => "manager",
        Role::Admin => "admin",
    }
}
