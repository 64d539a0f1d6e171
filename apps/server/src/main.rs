use clap::Parser;
use larder_server::{Application, DRAIN_TIMEOUT, Settings, shutdown_signal, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::parse();
    telemetry::init(&settings);
    tracing::info!(?settings, "starting Larder");
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
