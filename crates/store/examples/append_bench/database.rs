//! A fresh database per backend, removed at the end.

use super::*;

/// A fresh database for one backend, and what it runs on.
pub struct BenchDatabase {
    pub store: SqlEventStore,
    pub facts: Vec<(&'static str, String)>,
    cleanup: Cleanup,
}

enum Cleanup {
    /// The SQLite file and its WAL and shared-memory files.
    Sqlite(PathBuf),
    /// The schema to drop, and a pool outside it to drop it through.
    Postgres { schema: String, admin: sqlx::PgPool },
}

impl BenchDatabase {
    pub async fn open(backend: Backend) -> Result<Self> {
        match backend {
            Backend::Sqlite => {
                let path = std::env::temp_dir().join(format!("larder-bench-{}.db", Uuid::new_v4()));
                let url = format!("sqlite://{}", path.display());
                let store = SqlEventStore::connect(&url, StoreOptions::default())
                    .await
                    .with_context(|| format!("opening {url}"))?;
                let Database::Sqlite(pool) = store.database() else {
                    bail!("{url} did not open as SQLite");
                };
                let mut facts = vec![("file", path.display().to_string())];
                for (key, sql) in [
                    ("version", "SELECT sqlite_version()"),
                    ("journal_mode", "PRAGMA journal_mode"),
                    // 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA.
                    ("synchronous", "PRAGMA synchronous"),
                ] {
                    let value: String =
                        match sqlx::query_scalar::<_, String>(sql).fetch_one(&pool).await {
                            Ok(text) => text,
                            Err(_) => sqlx::query_scalar::<_, i64>(sql)
                                .fetch_one(&pool)
                                .await?
                                .to_string(),
                        };
                    facts.push((key, value));
                }
                Ok(Self {
                    store,
                    facts,
                    cleanup: Cleanup::Sqlite(path),
                })
            }
            Backend::Postgres => {
                let url = std::env::var("LARDER_BENCH_DATABASE_URL")
                    .unwrap_or_else(|_| DEFAULT_POSTGRES_URL.into());
                let admin = PgPoolOptions::new()
                    .max_connections(1)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect(&url)
                    .await
                    .with_context(|| {
                        format!(
                            "PostgreSQL is unreachable at {} (set LARDER_BENCH_DATABASE_URL)",
                            redact(&url)
                        )
                    })?;
                let mut facts = Vec::new();
                for (key, sql) in [
                    ("version", "SELECT version()"),
                    ("synchronous_commit", "SHOW synchronous_commit"),
                    ("fsync", "SHOW fsync"),
                    ("wal_sync_method", "SHOW wal_sync_method"),
                ] {
                    let value: String = sqlx::query_scalar(sql).fetch_one(&admin).await?;
                    facts.push((key, value));
                }
                let schema = format!("larder_bench_{}", Uuid::new_v4().simple());
                let store =
                    SqlEventStore::connect(&url, StoreOptions::default().pg_schema(&schema)).await;
                let store = match store {
                    Ok(store) => store,
                    Err(error) => {
                        // The schema may exist already; leave nothing behind.
                        drop_schema(&admin, &schema).await?;
                        return Err(error).context("opening the PostgreSQL event store");
                    }
                };
                facts.push(("schema", schema.clone()));
                Ok(Self {
                    store,
                    facts,
                    cleanup: Cleanup::Postgres { schema, admin },
                })
            }
        }
    }

    pub fn describe(&self) -> String {
        self.facts
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub async fn close(self) -> Result<()> {
        drop(self.store);
        match self.cleanup {
            Cleanup::Sqlite(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let mut file = path.clone().into_os_string();
                    file.push(suffix);
                    let _ = std::fs::remove_file(file);
                }
                Ok(())
            }
            Cleanup::Postgres { schema, admin } => {
                drop_schema(&admin, &schema).await?;
                admin.close().await;
                Ok(())
            }
        }
    }
}

async fn drop_schema(admin: &sqlx::PgPool, schema: &str) -> Result<()> {
    // The name is ours (letters, digits, underscores), so quoting is enough.
    sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .execute(admin)
        .await
        .with_context(|| format!("dropping schema {schema}"))?;
    Ok(())
}

/// The URL without its password, for error messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}
