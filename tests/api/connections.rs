//! Connection bounds: idle and slow connections are closed, a global cap
//! answers 503 and keeps health answering, a WebSocket keeps its place.

use std::time::Duration;

use larder_tests::server::Server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a test waits for the server to close a connection: a bound, far
/// above the timeouts configured here.
const CLOSE_BOUND: Duration = Duration::from_secs(15);

/// Reads until the server closes the connection (EOF or reset); panics if it
/// is still open after [`CLOSE_BOUND`]. Returns what was read.
async fn until_closed(socket: &mut TcpStream, what: &str) -> Vec<u8> {
    let mut read = Vec::new();
    let mut buffer = [0u8; 4096];
    let closed = tokio::time::timeout(CLOSE_BOUND, async {
        loop {
            match socket.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => read.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "{what}: the connection was still open after {CLOSE_BOUND:?}"
    );
    read
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_slow_and_idle_connections_are_closed() {
    let app = Server::start(|s| s.http_header_timeout_ms = 300).await;
    let address = app.socket_address();

    // Connects and sends nothing.
    let mut silent = TcpStream::connect(address).await.unwrap();
    until_closed(&mut silent, "a connection that sends nothing").await;

    // Half a request line, then nothing.
    let mut half = TcpStream::connect(address).await.unwrap();
    half.write_all(b"GET /heal").await.unwrap();
    until_closed(&mut half, "half a request line").await;

    // Headers trickling in, never finished.
    let mut slow = TcpStream::connect(address).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    until_closed(&mut slow, "unfinished headers").await;

    // A kept-alive connection, idle after its answer.
    let mut idle = TcpStream::connect(address).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let answer = until_closed(&mut idle, "an idle kept-alive connection").await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"ok\""), "{answer}");

    // The server goes on serving.
    let status = reqwest::get(app.url("/healthz")).await.unwrap().status();
    assert_eq!(status, 200);
}

/// A request on a connection of its own: (status, JSON body), or None when
/// the server closed the connection without answering.
async fn fresh_get(url: &str) -> Option<(u16, serde_json::Value)> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let response = client.get(url).send().await.ok()?;
    Some(larder_tests::read(response).await)
}

/// Retries `get` until it gives what `accept` wants, within `bound`.
async fn eventually(
    url: &str,
    bound: Duration,
    accept: impl Fn(&(u16, serde_json::Value)) -> bool,
) -> (u16, serde_json::Value) {
    let deadline = tokio::time::Instant::now() + bound;
    loop {
        let answer = fresh_get(url).await;
        if let Some(answer) = answer.filter(&accept) {
            return answer;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{url}: no acceptable answer within {bound:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_answers_while_two_thousand_idle_sockets_are_open() {
    // Client and server sockets both live in this process: make room.
    let limit = larder_server::raise_open_file_limit().expect("the open-file limit");
    assert!(
        limit >= 5_000,
        "this test needs 5,000 descriptors, the hard limit is {limit}"
    );
    const CAP: usize = 200;
    let app = Server::start(|s| {
        s.max_connections = CAP;
        // Idle sockets under the cap stay for the whole test.
        s.http_header_timeout_ms = 120_000;
    })
    .await;
    let address = app.socket_address();

    let mut idle = Vec::with_capacity(2_000);
    for _ in 0..2_000 {
        idle.push(TcpStream::connect(address).await.unwrap());
    }

    // Health answers (on a connection above the cap)...
    let (status, body) = eventually(&app.url("/healthz"), Duration::from_secs(30), |(s, _)| {
        *s == 200
    })
    .await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    let (status, _) = eventually(&app.url("/readyz"), Duration::from_secs(30), |(s, _)| {
        *s == 200
    })
    .await;
    assert_eq!(status, 200);
    // ...and anything else is a clear 503.
    let (status, body) = eventually(
        &app.url("/api/v1/stores"),
        Duration::from_secs(30),
        |(s, _)| *s != 0,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (503, Some("too_many_connections")),
        "{body}"
    );

    // The sockets above the cap were closed by the server; those under it
    // are still open.
    let mut open = 0;
    for socket in &mut idle {
        let mut byte = [0u8; 1];
        if tokio::time::timeout(Duration::from_millis(1), socket.read(&mut byte))
            .await
            .is_err()
        {
            open += 1;
        }
    }
    assert!(
        (CAP..=CAP + larder_server::OVERFLOW_CONNECTIONS).contains(&open),
        "{open} idle sockets still open"
    );

    // Once they go, the server serves normally again.
    drop(idle);
    let (status, body) = eventually(
        &app.url("/api/v1/stores"),
        Duration::from_secs(30),
        |(s, _)| *s == 401,
    )
    .await;
    assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_websocket_keeps_its_place_under_the_cap() {
    let app = Server::start(|s| {
        s.max_connections = 2;
        // Unauthenticated sockets stay for the whole test.
        s.ws_auth_timeout_ms = 120_000;
    })
    .await;
    let ws_url = format!("{}/ws", app.address.replacen("http", "ws", 1));
    let (first, _) = tokio_tungstenite::connect_async(&ws_url).await.unwrap();
    let (second, _) = tokio_tungstenite::connect_async(&ws_url).await.unwrap();
    let (status, body) = eventually(
        &app.url("/api/v1/openapi.json"),
        Duration::from_secs(30),
        |(s, _)| *s != 0,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (503, Some("too_many_connections"))
    );
    drop(first);
    drop(second);
    let (status, _) = eventually(
        &app.url("/api/v1/openapi.json"),
        Duration::from_secs(30),
        |(s, _)| *s == 200,
    )
    .await;
    assert_eq!(status, 200);
}
