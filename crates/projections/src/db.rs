//! One way to run a statement on either backend.
//!
//! Read-model SQL is written once, with `$1`-style parameters (which SQLite
//! accepts too) and upserts both backends understand; [`Tx`] and [`DbRow`]
//! hide which driver runs it.

use chrono::{DateTime, Utc};
use larder_store::Database;
use sqlx::migrate::Migrator;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{Postgres, Row, Sqlite, Transaction};

use crate::ProjectionError;

static SQLITE_MIGRATIONS: Migrator = Migrator {
    ignore_missing: true,
    ..sqlx::migrate!("./migrations/sqlite")
};
static POSTGRES_MIGRATIONS: Migrator = Migrator {
    ignore_missing: true,
    ..sqlx::migrate!("./migrations/postgres")
};

/// Creates or upgrades the read-model tables.
pub async fn migrate(db: &Database) -> Result<(), ProjectionError> {
    match db {
        Database::Sqlite(pool) => SQLITE_MIGRATIONS.run(pool).await?,
        Database::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await?,
    }
    Ok(())
}

/// A statement parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    /// An integer, or a typed NULL.
    Int(Option<i64>),
    /// A string, or a typed NULL.
    Text(Option<String>),
    /// A timestamp.
    Time(DateTime<Utc>),
}

impl From<i64> for Arg {
    fn from(value: i64) -> Self {
        Self::Int(Some(value))
    }
}

impl From<u64> for Arg {
    fn from(value: u64) -> Self {
        Self::Int(Some(i64::try_from(value).unwrap_or(i64::MAX)))
    }
}

impl From<&str> for Arg {
    fn from(value: &str) -> Self {
        Self::Text(Some(value.to_owned()))
    }
}

impl From<String> for Arg {
    fn from(value: String) -> Self {
        Self::Text(Some(value))
    }
}

impl From<Option<String>> for Arg {
    fn from(value: Option<String>) -> Self {
        Self::Text(value)
    }
}

impl From<DateTime<Utc>> for Arg {
    fn from(value: DateTime<Utc>) -> Self {
        Self::Time(value)
    }
}

/// Builds a `Vec<Arg>` from values of mixed types.
macro_rules! args {
    ($($value:expr),* $(,)?) => { vec![$($crate::db::Arg::from($value)),*] };
}
pub(crate) use args;

macro_rules! bind_all {
    ($query:expr, $args:expr) => {{
        let mut query = $query;
        for arg in $args {
            query = match arg {
                Arg::Int(value) => query.bind(value),
                Arg::Text(value) => query.bind(value),
                Arg::Time(value) => query.bind(value),
            };
        }
        query
    }};
}

/// Every row `sql` returns on `executor`, as [`DbRow`]s of `variant`.
macro_rules! rows {
    ($executor:expr, $variant:ident, $sql:expr, $args:expr) => {
        bind_all!(sqlx::query($sql), $args)
            .fetch_all($executor)
            .await?
            .into_iter()
            .map(DbRow::$variant)
            .collect()
    };
}

/// A write transaction on either backend.
#[derive(Debug)]
pub enum Tx {
    /// SQLite, begun with `BEGIN IMMEDIATE`.
    Sqlite(Transaction<'static, Sqlite>),
    /// PostgreSQL.
    Postgres(Transaction<'static, Postgres>),
}

impl Tx {
    /// Begins a write transaction.
    pub async fn begin(db: &Database) -> Result<Self, ProjectionError> {
        Ok(match db {
            Database::Sqlite(pool) => {
                Self::Sqlite(pool.begin_with(Database::SQLITE_BEGIN_WRITE).await?)
            }
            Database::Postgres(pool) => Self::Postgres(pool.begin().await?),
        })
    }

    /// Runs a statement; returns the number of rows it changed.
    pub async fn execute(&mut self, sql: &str, args: Vec<Arg>) -> Result<u64, ProjectionError> {
        Ok(match self {
            Self::Sqlite(tx) => bind_all!(sqlx::query(sql), args)
                .execute(&mut **tx)
                .await?
                .rows_affected(),
            Self::Postgres(tx) => bind_all!(sqlx::query(sql), args)
                .execute(&mut **tx)
                .await?
                .rows_affected(),
        })
    }

    /// Runs a query expected to return at most one row.
    pub async fn fetch_optional(
        &mut self,
        sql: &str,
        args: Vec<Arg>,
    ) -> Result<Option<DbRow>, ProjectionError> {
        Ok(match self {
            Self::Sqlite(tx) => bind_all!(sqlx::query(sql), args)
                .fetch_optional(&mut **tx)
                .await?
                .map(DbRow::Sqlite),
            Self::Postgres(tx) => bind_all!(sqlx::query(sql), args)
                .fetch_optional(&mut **tx)
                .await?
                .map(DbRow::Postgres),
        })
    }

    /// Runs a query; every row it returns.
    pub async fn fetch_all(
        &mut self,
        sql: &str,
        args: Vec<Arg>,
    ) -> Result<Vec<DbRow>, ProjectionError> {
        Ok(match self {
            Self::Sqlite(tx) => rows!(&mut **tx, Sqlite, sql, args),
            Self::Postgres(tx) => rows!(&mut **tx, Postgres, sql, args),
        })
    }

    /// Commits.
    pub async fn commit(self) -> Result<(), ProjectionError> {
        match self {
            Self::Sqlite(tx) => tx.commit().await?,
            Self::Postgres(tx) => tx.commit().await?,
        }
        Ok(())
    }
}

/// A read-only transaction in which every query sees the database as of one
/// moment: on PostgreSQL `REPEATABLE READ` (one snapshot for the whole
/// transaction), on SQLite a deferred transaction, whose first read fixes
/// the snapshot it reads (WAL mode keeps writers going meanwhile). A
/// projection's rows and its checkpoint are committed together, so reading
/// both in one such transaction gives rows exactly at the checkpoint.
#[derive(Debug)]
pub(crate) enum ReadTx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

impl ReadTx {
    pub(crate) async fn begin(db: &Database) -> Result<Self, ProjectionError> {
        Ok(match db {
            Database::Sqlite(pool) => Self::Sqlite(pool.begin_with("BEGIN DEFERRED").await?),
            Database::Postgres(pool) => Self::Postgres(
                pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    .await?,
            ),
        })
    }

    /// Runs a query in the transaction.
    pub(crate) async fn fetch_all(
        &mut self,
        sql: &str,
        args: Vec<Arg>,
    ) -> Result<Vec<DbRow>, ProjectionError> {
        Ok(match self {
            Self::Sqlite(tx) => rows!(&mut **tx, Sqlite, sql, args),
            Self::Postgres(tx) => rows!(&mut **tx, Postgres, sql, args),
        })
    }

    /// Ends the transaction (it changed nothing).
    pub(crate) async fn finish(self) -> Result<(), ProjectionError> {
        match self {
            Self::Sqlite(tx) => tx.commit().await?,
            Self::Postgres(tx) => tx.commit().await?,
        }
        Ok(())
    }
}

/// Runs a read query on the pool.
pub(crate) async fn fetch_all(
    db: &Database,
    sql: &str,
    args: Vec<Arg>,
) -> Result<Vec<DbRow>, ProjectionError> {
    Ok(match db {
        Database::Sqlite(pool) => rows!(pool, Sqlite, sql, args),
        Database::Postgres(pool) => rows!(pool, Postgres, sql, args),
    })
}

/// Runs one statement on the pool, in a transaction of its own (SQLite and
/// PostgreSQL both commit a lone statement by itself); the rows it changed.
pub async fn execute(db: &Database, sql: &str, args: Vec<Arg>) -> Result<u64, ProjectionError> {
    Ok(match db {
        Database::Sqlite(pool) => bind_all!(sqlx::query(sql), args)
            .execute(pool)
            .await?
            .rows_affected(),
        Database::Postgres(pool) => bind_all!(sqlx::query(sql), args)
            .execute(pool)
            .await?
            .rows_affected(),
    })
}

/// A row from either backend, read by column index.
pub enum DbRow {
    /// From SQLite.
    Sqlite(SqliteRow),
    /// From PostgreSQL.
    Postgres(PgRow),
}

impl std::fmt::Debug for DbRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbRow")
            .field("columns", &self.len())
            .finish()
    }
}

macro_rules! get {
    ($self:expr, $index:expr) => {
        match $self {
            DbRow::Sqlite(row) => row.try_get($index)?,
            DbRow::Postgres(row) => row.try_get($index)?,
        }
    };
}

impl DbRow {
    /// The number of columns.
    pub fn len(&self) -> usize {
        match self {
            DbRow::Sqlite(row) => row.len(),
            DbRow::Postgres(row) => row.len(),
        }
    }

    /// Whether the row has no column.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// An integer column.
    pub fn int(&self, index: usize) -> Result<i64, ProjectionError> {
        Ok(get!(self, index))
    }

    /// A nullable integer column.
    pub fn opt_int(&self, index: usize) -> Result<Option<i64>, ProjectionError> {
        Ok(get!(self, index))
    }

    /// A position or version column.
    pub fn uint(&self, index: usize) -> Result<u64, ProjectionError> {
        Ok(u64::try_from(self.int(index)?).unwrap_or(0))
    }

    /// A text column.
    pub fn text(&self, index: usize) -> Result<String, ProjectionError> {
        Ok(get!(self, index))
    }

    /// A nullable text column.
    pub fn opt_text(&self, index: usize) -> Result<Option<String>, ProjectionError> {
        Ok(get!(self, index))
    }

    /// A nullable timestamp column.
    pub fn opt_time(&self, index: usize) -> Result<Option<DateTime<Utc>>, ProjectionError> {
        Ok(get!(self, index))
    }

    /// A timestamp column.
    pub fn time(&self, index: usize) -> Result<DateTime<Utc>, ProjectionError> {
        Ok(get!(self, index))
    }
}
