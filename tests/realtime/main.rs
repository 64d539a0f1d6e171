//! Real-time delivery end to end: real WebSocket clients (tokio-tungstenite)
//! and HTTP clients against the server on port 0.

mod dashboard;
mod delivery;
mod documented;
mod fallbacks;
mod lifecycle;
mod limits;
mod notifications;
mod orders;

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
