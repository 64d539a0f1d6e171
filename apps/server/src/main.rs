use clap::Parser;
use larder_server::{
    Application, DRAIN_TIMEOUT, OVERFLOW_CONNECTIONS, Settings, raise_open_file_limit,
    shutdown_signal, telemetry,
};

/// Descriptors kept aside for the database, log files and the like.
const OTHER_FILES: u64 = 256;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::parse();
    telemetry::init(&settings);
    tracing::info!(?settings, "starting Larder");
    // Every connection is a file descriptor: the soft limit is often 1024,
    // far below what the connection cap allows.
    match raise_open_file_limit() {
        Ok(limit) => {
            tracing::info!(open_files = limit, "open-file limit");
            let needed = (settings.max_connections + OVERFLOW_CONNECTIONS) as u64 + OTHER_FILES;
            if limit < needed {
                tracing::warn!(
                    open_files = limit,
                    max_connections = settings.max_connections,
                    "the open-file limit is below --max-connections plus a reserve ({needed}); \
                     lower --max-connections or raise the hard limit (ulimit -Hn)"
                );
            }
        }
        Err(error) => tracing::warn!(%error, "could not raise the open-file limit"),
    }
    let app = Application::build(settings).await?;
    let (drained, drain_started) = tokio::sync::oneshot::channel::<()>();
    let signal = async move {
        shutdown_signal().await;
        let _ = drained.send(());
    };
    let serve = app.run_until_stopped(signal);
    tokio::pin!(serve);
    tokio::select! {
        result = &mut serve => result,
        () = async {
            let _ = drain_started.await;
            tokio::time::sleep(DRAIN_TIMEOUT).await;
        } => {
            tracing::warn!("in-flight requests did not finish within {DRAIN_TIMEOUT:?}; exiting");
            Ok(())
        }
    }
}
