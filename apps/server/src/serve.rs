//! The HTTP accept loop: what `axum::serve` does, plus the bounds it lacks.
//!
//! `axum::serve` runs hyper without a timer, so hyper's header-read timeout
//! never applies: a client that connects and sends nothing, or half a
//! request line, holds its socket forever, and enough of them exhaust the
//! process's file descriptors (then nothing answers, not even `/healthz`).
//! Here every connection gets:
//! - a **header-read timeout**: hyper starts it whenever it waits for a
//!   request head (`Conn::poll_read_head`: on a new connection and on a
//!   kept-alive one after each response), so it bounds slow request heads
//!   and idle keep-alive connections alike. The connection is closed after
//!   it.
//! - a place under a **global cap**. Above the cap a small reserve of
//!   connections is still served, by a router that answers `/healthz` and
//!   `/readyz` and 503 `too_many_connections` to anything else, one request
//!   per connection and a short header timeout. Beyond the reserve a
//!   connection is closed at once: its descriptor is free again.
//!
//! The connection's place travels with its socket, also into an upgraded
//! WebSocket, so a long-lived WebSocket counts until it closes.
//! Graceful shutdown and `ConnectInfo<SocketAddr>` work as with axum.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use futures_util::FutureExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tower::ServiceExt;

/// Connections served above the cap: enough for health checks and clear
/// 503s while the server is full, few enough to cost little.
pub const OVERFLOW_CONNECTIONS: usize = 64;

/// Header-read timeout of a connection above the cap: it gets one answer,
/// and must ask quickly, so the reserve frees up again.
const OVERFLOW_HEADER_TIMEOUT: Duration = Duration::from_secs(1);

/// How long to pause accepting after an accept error other than a
/// connection's own failure (e.g. out of file descriptors), so the loop does
/// not spin while connections close.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// The bounds of one listener.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_timeout: Duration,
    pub max_connections: usize,
}

/// Serves `router` on `listener` until `shutdown` completes, then stops
/// accepting, lets every connection finish its request in flight, and
/// returns once they all closed. Connections above the cap are served by
/// `overflow`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    overflow: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    // Dropping the receiver tells every connection task to shut down.
    let (signal_tx, signal_rx) = watch::channel(());
    tokio::spawn(async move {
        shutdown.await;
        drop(signal_rx);
    });
    // Each connection task holds a receiver: once all are dropped, all ended.
    let (close_tx, close_rx) = watch::channel(());
    let places = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let reserve = Arc::new(Semaphore::new(OVERFLOW_CONNECTIONS));

    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    accept_error(error).await;
                    continue;
                }
            },
            () = signal_tx.closed() => break,
        };
        let (place, service, connection) = if let Ok(place) = places.clone().try_acquire_owned() {
            (
                place,
                router.clone(),
                Connection {
                    header_timeout: limits.header_timeout,
                    keep_alive: true,
                },
            )
        } else if let Ok(place) = reserve.clone().try_acquire_owned() {
            metrics::counter!("larder_http_connections_over_cap_total").increment(1);
            (
                place,
                overflow.clone(),
                Connection {
                    header_timeout: OVERFLOW_HEADER_TIMEOUT.min(limits.header_timeout),
                    keep_alive: false,
                },
            )
        } else {
            metrics::counter!("larder_http_connections_refused_total").increment(1);
            tracing::debug!(%peer, "connection refused: over the connection cap and its reserve");
            drop(stream);
            continue;
        };
        let io = TokioIo::new(Counted {
            stream,
            _place: place,
        });
        tokio::spawn(connection.run(io, service, peer, signal_tx.clone(), close_rx.clone()));
    }

    drop(close_rx);
    drop(listener);
    close_tx.closed().await;
}

/// How one connection is served.
#[derive(Debug, Clone, Copy)]
struct Connection {
    header_timeout: Duration,
    keep_alive: bool,
}

impl Connection {
    async fn run(
        self,
        io: TokioIo<Counted>,
        router: Router,
        peer: SocketAddr,
        signal: watch::Sender<()>,
        close: watch::Receiver<()>,
    ) {
        // As axum's `into_make_service_with_connect_info` does.
        let service = router.map_request(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            request.map(axum::body::Body::new)
        });
        let service = TowerToHyperService::new(service);
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_timeout)
            .keep_alive(self.keep_alive);
        let mut conn = pin!(builder.serve_connection(io, service).with_upgrades());
        let mut stopping = pin!(signal.closed().fuse());
        loop {
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(error) = result {
                        tracing::trace!(%error, "connection ended with an error");
                    }
                    break;
                }
                () = &mut stopping => conn.as_mut().graceful_shutdown(),
            }
        }
        drop(close);
    }
}

async fn accept_error(error: io::Error) {
    if matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(%error, "accepting a connection failed; pausing briefly");
    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
}

/// A socket holding its place under the connection cap until it is dropped
/// (also when hyper hands it to an upgraded WebSocket).
pub(crate) struct Counted {
    stream: TcpStream,
    _place: OwnedSemaphorePermit,
}

impl Counted {
    /// The socket and its place (hold it as long as the socket is open).
    pub(crate) fn into_parts(self) -> (TcpStream, OwnedSemaphorePermit) {
        (self.stream, self._place)
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Raises the process's soft open-file limit to its hard limit (each
/// connection is a descriptor) and returns the limit now in force.
#[cfg(unix)]
pub fn raise_open_file_limit() -> io::Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX)
}

/// Raises the process's soft open-file limit (nothing to do here).
#[cfg(not(unix))]
pub fn raise_open_file_limit() -> io::Result<u64> {
    Ok(u64::MAX)
}
