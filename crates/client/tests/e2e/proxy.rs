//! A TCP proxy in front of the real server that fails on command: cut every
//! connection and refuse new ones (a network outage), or swallow the answer
//! of the next connections after the server got their request (an answer
//! lost on the way back, after the server applied the command).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

#[derive(Default)]
struct State {
    /// Refuse new connections (accept and close them at once).
    cut: bool,
    /// Connections whose answer is swallowed, still to come.
    swallow: u32,
    /// Connections passing through now, to end them on a cut.
    live: Vec<AbortHandle>,
}

/// A proxy on a port of its own.
pub struct Proxy {
    /// `http://127.0.0.1:PORT`, for a client.
    pub address: String,
    state: Arc<Mutex<State>>,
    accept: AbortHandle,
}

impl Proxy {
    /// Starts a proxy to `target` (`http://127.0.0.1:PORT`).
    pub async fn start(target: &str) -> Self {
        let target: SocketAddr = target
            .trim_start_matches("http://")
            .parse()
            .expect("an address");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = format!("http://{}", listener.local_addr().expect("address"));
        let state = Arc::new(Mutex::new(State::default()));
        let accept = tokio::spawn(accept(listener, target, state.clone())).abort_handle();
        Self {
            address,
            state,
            accept,
        }
    }

    /// Ends every connection now and refuses new ones until [`restore`](Self::restore).
    pub fn cut(&self) {
        let mut state = self.state.lock().unwrap();
        state.cut = true;
        for connection in state.live.drain(..) {
            connection.abort();
        }
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        self.state.lock().unwrap().cut = false;
    }

    /// The next `n` connections deliver their request to the server, and are
    /// closed as its answer arrives, without passing it on.
    pub fn swallow_answers(&self, n: u32) {
        self.state.lock().unwrap().swallow = n;
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

async fn accept(listener: TcpListener, target: SocketAddr, state: Arc<Mutex<State>>) {
    while let Ok((inbound, _)) = listener.accept().await {
        let swallow = {
            let mut state = state.lock().unwrap();
            if state.cut {
                continue; // dropping `inbound` closes it
            }
            let swallow = state.swallow > 0;
            state.swallow = state.swallow.saturating_sub(1);
            swallow
        };
        let task = tokio::spawn(pass(inbound, target, swallow));
        let mut state = state.lock().unwrap();
        state.live.retain(|t| !t.is_finished());
        state.live.push(task.abort_handle());
    }
}

async fn pass(mut inbound: TcpStream, target: SocketAddr, swallow: bool) {
    let Ok(mut upstream) = TcpStream::connect(target).await else {
        return;
    };
    if !swallow {
        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut upstream).await;
        return;
    }
    let (mut from_client, _to_client) = inbound.split();
    let (mut from_server, mut to_server) = upstream.split();
    let forward = async {
        let mut buffer = [0u8; 8192];
        loop {
            match from_client.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if to_server.write_all(&buffer[..n]).await.is_err() {
                        return;
                    }
                }
            }
        }
    };
    // The first byte of the answer means the server has decided: close.
    tokio::select! {
        _ = forward => {}
        _ = from_server.read_u8() => {}
    }
}
