//! `larder-relay`: the floor a Rust server sets for WebSocket fan-out on
//! this machine, to measure Larder against (`larder-bench --scenario
//! peers`). `POST /items` broadcasts its body, as is, to every WebSocket
//! connected at `/ws`. One thread, no storage, no authentication, no
//! filtering: whatever Larder does per event on top of this is its cost.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use clap::Parser;
use tokio::sync::broadcast;

#[derive(Debug, Parser)]
#[command(
    name = "larder-relay",
    about = "A bare WebSocket relay (axum + tokio broadcast)"
)]
struct Cli {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8090")]
    bind: SocketAddr,
    /// Messages a subscriber may fall behind before it is dropped.
    #[arg(long, default_value_t = 1024)]
    capacity: usize,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let (tx, _) = broadcast::channel::<Utf8Bytes>(cli.capacity.max(1));
        let app = Router::new()
            .route("/items", post(publish))
            .route("/ws", get(subscribe))
            .with_state(tx);
        let listener = tokio::net::TcpListener::bind(cli.bind).await?;
        axum::serve(listener, app).await?;
        Ok(())
    })
}

async fn publish(State(tx): State<broadcast::Sender<Utf8Bytes>>, body: Bytes) -> StatusCode {
    match Utf8Bytes::try_from(body) {
        Ok(text) => {
            let _ = tx.send(text);
            StatusCode::ACCEPTED
        }
        Err(_) => StatusCode::BAD_REQUEST,
    }
}

async fn subscribe(
    State(tx): State<broadcast::Sender<Utf8Bytes>>,
    upgrade: WebSocketUpgrade,
) -> Response {
    // Subscribed before the upgrade is answered: nothing published after
    // the client sees its connection open is missed.
    let rx = tx.subscribe();
    upgrade.on_upgrade(move |socket| relay(socket, rx))
}

async fn relay(mut socket: WebSocket, mut rx: broadcast::Receiver<Utf8Bytes>) {
    loop {
        tokio::select! {
            message = rx.recv() => match message {
                Ok(text) => {
                    if socket.send(Message::Text(text)).await.is_err() {
                        return;
                    }
                }
                // Lagged or closed: the client resubscribes if it cares.
                Err(_) => return,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
        }
    }
}
