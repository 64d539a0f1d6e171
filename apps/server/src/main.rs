use clap::Parser;
use larder_server::{
    Application, DRAIN_TIMEOUT, OVERFLOW_CONNECTIONS, Settings, raise_open_file_limit,
    shutdown_signal, telemetry,
};

/// Descriptors kept aside for the database, log files and the like.
const OTHER_FILES: u64 = 256;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut settings = Settings::parse();
    telemetry::init(&settings);
    tracing::info!(?settings, "starting Larder");
    // Every connection is a file descriptor: the soft limit is often 1024,
    // far below what the connection cap allows.
    match raise_open_file_limit() {
        Ok(limit) => {
            tracing::info!(open_files = limit, "open-file limit");
            // Keep the cap within the limit, so the descriptors never run
            // out before the cap answers 503 (and health goes on answering).
            let reserve = OVERFLOW_CONNECTIONS as u64 + OTHER_FILES;
            let fits = usize::try_from(limit.saturating_sub(reserve)).unwrap_or(usize::MAX);
            if settings.max_connections > fits {
                tracing::warn!(
                    open_files = limit,
                    configured = settings.max_connections,
                    max_connections = fits.max(1),
                    "--max-connections lowered to fit the open-file limit; raise the hard limit \
                     (ulimit -Hn, LimitNOFILE=) to allow more"
                );
                settings.max_connections = fits.max(1);
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
