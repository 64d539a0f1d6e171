//! The REST API end to end: the real server on port 0, real HTTP, on SQLite
//! and on PostgreSQL.

mod api;
mod auth;
mod connections;
mod contract;
mod documented;
mod edge;
mod idempotency;
mod operations;
mod orders;
mod undo;

macro_rules! for_each_backend {
    ($module:ident: $($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    crate::$module::$name(larder_tests::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    crate::$module::$name(larder_tests::Backend::Postgres).await;
                }
            )*
        }
    };
}
pub(crate) use for_each_backend;
