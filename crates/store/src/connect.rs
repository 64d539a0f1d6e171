//! Opening a [`SqlEventStore`]: the pools, the migrations, and the writer
//! of the backend the URL names.

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use tokio::sync::mpsc;

use crate::check::Limits;
use crate::sql::Backend;
use crate::sqlite_writer::{self, SqliteTarget};
use crate::{SqlEventStore, StoreError, StoreOptions, postgres_writer};

// The store's migrations are numbered from 1, and read models kept in the
// same database number theirs apart (larder-projections: from 1001): every
// migrator ignores the versions it does not own.
static SQLITE_MIGRATIONS: Migrator = Migrator {
    ignore_missing: true,
    ..sqlx::migrate!("./migrations/sqlite")
};
static POSTGRES_MIGRATIONS: Migrator = Migrator {
    ignore_missing: true,
    ..sqlx::migrate!("./migrations/postgres")
};

impl SqlEventStore {
    /// Opens the store at `url` (`sqlite://path`, `postgres://...`), creating
    /// the SQLite file if missing, and runs the migrations.
    pub async fn connect(url: &str, options: StoreOptions) -> Result<Self, StoreError> {
        let (writer, queue) = mpsc::channel(options.queue_capacity);
        let backend = if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let (pool, connect) = Self::connect_postgres(url, &options).await?;
            postgres_writer::spawn(
                connect,
                options.bus,
                queue,
                options.max_batch_events,
                options.idempotency_retention,
            )
            .await?;
            Backend::Postgres { pool }
        } else if url.starts_with("sqlite:") {
            let (reader, target) = Self::connect_sqlite(url, &options).await?;
            let writer = sqlite_writer::spawn(
                &target,
                queue,
                options.bus,
                options.max_batch_events,
                options.idempotency_retention,
            )?;
            Backend::Sqlite { reader, writer }
        } else {
            return Err(StoreError::Invalid(format!(
                "unsupported database URL scheme (expected sqlite: or postgres:): {}",
                url.split(':').next().unwrap_or_default()
            )));
        };
        Ok(Self {
            backend,
            writer,
            limits: Limits {
                max_event_bytes: options.max_event_bytes,
                max_events_per_append: options.max_events_per_append,
            },
            inline_appends: options.inline_appends,
            idempotency_retention: options.idempotency_retention,
        })
    }

    /// Opens the read pool and migrates; says where the writer's own
    /// connection must open (the same file, or the same in-memory database).
    async fn connect_sqlite(
        url: &str,
        options: &StoreOptions,
    ) -> Result<(SqlitePool, SqliteTarget), StoreError> {
        // WAL lets readers run beside the writer; synchronous=NORMAL in WAL
        // mode survives a process crash, and a power loss may lose the last
        // commits but never corrupts the file.
        let connect = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(options.busy_timeout)
            .foreign_keys(true);
        let target = SqliteTarget {
            filename: connect.get_filename().to_string_lossy().into_owned(),
            in_memory: is_in_memory(url),
            busy_timeout: options.busy_timeout,
        };
        // Migrate on one connection of its own, then read through the pool.
        // Events are written by one dedicated connection of the writer
        // thread (see `sqlite_writer`): SQLite has one writer anyway, and it
        // keeps appends from queueing behind reads.
        let migrator = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(connect.clone())
            .await?;
        SQLITE_MIGRATIONS.run(&migrator).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(options.max_connections)
            .connect_with(connect)
            .await?;
        migrator.close().await;
        Ok((reader, target))
    }

    async fn connect_postgres(
        url: &str,
        options: &StoreOptions,
    ) -> Result<(PgPool, PgConnectOptions), StoreError> {
        let mut connect = PgConnectOptions::from_str(url)?;
        if let Some(schema) = &options.pg_schema {
            if !is_identifier(schema) {
                return Err(StoreError::Invalid(format!(
                    "invalid schema name {schema:?}"
                )));
            }
            let admin = PgPoolOptions::new()
                .max_connections(1)
                .connect_with(connect.clone())
                .await?;
            sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
                .execute(&admin)
                .await?;
            admin.close().await;
            connect = connect.options([("search_path", schema.as_str())]);
        }
        // Plan each statement for its parameters: a generic plan made while
        // the log was small (a sequential scan) would stay in use as it grows.
        connect = connect.options([("plan_cache_mode", "force_custom_plan")]);
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(Duration::from_secs(5))
            // A broken connection fails one call (reported as unavailable)
            // instead of every acquire paying a round trip to check.
            .test_before_acquire(false)
            .connect_with(connect.clone())
            .await?;
        POSTGRES_MIGRATIONS.run(&pool).await?;
        Ok((pool, connect))
    }
}

/// Whether a SQLite URL names an in-memory database (`sqlite::memory:`,
/// `sqlite://:memory:`, `mode=memory`), which sqlx opens with a shared cache
/// under a generated name.
fn is_in_memory(url: &str) -> bool {
    let (database, query) = url.split_once('?').unwrap_or((url, ""));
    let database = database
        .trim_start_matches("sqlite:")
        .trim_start_matches("//");
    database == ":memory:" || query.split('&').any(|pair| pair == "mode=memory")
}

fn is_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::is_in_memory;

    #[test]
    fn in_memory_urls_are_recognised() {
        assert!(is_in_memory("sqlite::memory:"));
        assert!(is_in_memory("sqlite://:memory:"));
        assert!(is_in_memory("sqlite://larder.db?mode=memory"));
        assert!(!is_in_memory("sqlite://larder.db"));
        assert!(!is_in_memory("sqlite:///tmp/memory.db?mode=rwc"));
    }
}
