//! The outlet's tests: frame headers, partial writes, bounds, close
//! frames and corked batches, against a fake socket.

use super::*;

#[test]
fn headers_follow_rfc_6455_lengths() {
    assert_eq!(Head::new(TEXT, 5).as_slice(), &[0x81, 5]);
    assert_eq!(Head::new(TEXT, 125).as_slice(), &[0x81, 125]);
    assert_eq!(Head::new(TEXT, 126).as_slice(), &[0x81, 126, 0, 126]);
    assert_eq!(Head::new(PING, 65_535).as_slice(), &[0x89, 126, 0xff, 0xff]);
    assert_eq!(
        Head::new(TEXT, 65_536).as_slice(),
        &[0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0]
    );
}

#[test]
fn a_partly_written_frame_resumes_where_it_stopped() {
    let head = Head::new(TEXT, 3);
    assert_eq!(slices(&head, b"abc", 0), [&[0x81, 3][..], b"abc"]);
    assert_eq!(slices(&head, b"abc", 1), [&[3][..], b"abc"]);
    assert_eq!(slices(&head, b"abc", 3), [&[][..], b"bc"]);
}

/// A socket that takes `room` more bytes, then would block until
/// granted more.
#[derive(Default)]
struct Fake {
    state: Mutex<(Vec<u8>, usize, Option<std::task::Waker>)>,
    writes: std::sync::atomic::AtomicUsize,
}

impl Fake {
    fn grant(&self, bytes: usize) {
        let mut state = self.state.lock().unwrap();
        state.1 += bytes;
        if let Some(waker) = state.2.take() {
            waker.wake();
        }
    }

    fn taken(&self) -> Vec<u8> {
        self.state.lock().unwrap().0.clone()
    }
}

impl RawSocket for Arc<Fake> {
    fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.writes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut state = self.state.lock().unwrap();
        if state.1 == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let mut written = 0;
        for buf in bufs {
            let n = buf.len().min(state.1);
            state.0.extend_from_slice(&buf[..n]);
            state.1 -= n;
            written += n;
        }
        Ok(written)
    }

    fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut state = self.state.lock().unwrap();
        if state.1 > 0 {
            Poll::Ready(Ok(()))
        } else {
            state.2 = Some(cx.waker().clone());
            Poll::Pending
        }
    }
}

/// Reads unmasked server frames back: (opcode, payload).
fn frames(mut bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let opcode = bytes[0] & 0x0f;
        assert_eq!(bytes[0] & 0x80, 0x80, "FIN set");
        let (len, at) = match bytes[1] {
            126 => (usize::from(u16::from_be_bytes([bytes[2], bytes[3]])), 4),
            127 => (
                u64::from_be_bytes(bytes[2..10].try_into().unwrap()) as usize,
                10,
            ),
            n => (usize::from(n), 2),
        };
        out.push((opcode, bytes[at..at + len].to_vec()));
        bytes = &bytes[at + len..];
    }
    out
}

fn text(s: &str) -> Outbound {
    Outbound::Text(s.to_owned())
}

#[tokio::test]
async fn frames_keep_their_order_through_partial_writes() {
    let fake = Arc::new(Fake::default());
    fake.grant(5);
    let outlet = Outlet::new(Arc::new(fake.clone()), 16);
    let long = "x".repeat(300);
    assert_eq!(
        outlet.push(text("first frame")),
        Push::Queued,
        "5 bytes taken"
    );
    assert_eq!(outlet.push(text(&long)), Push::Queued);
    assert_eq!(outlet.push(Outbound::Ping), Push::Queued);
    let flushing = tokio::spawn({
        let outlet = outlet.clone();
        async move { outlet.flush().await }
    });
    for _ in 0..40 {
        fake.grant(9);
        tokio::task::yield_now().await;
    }
    fake.grant(1_000);
    flushing.await.unwrap().unwrap();
    assert_eq!(
        outlet.push(text("after")),
        Push::Sent,
        "an idle socket takes it at once"
    );
    let got = frames(&fake.taken());
    let want = vec![
        (TEXT, b"first frame".to_vec()),
        (TEXT, long.into_bytes()),
        (PING, Vec::new()),
        (TEXT, b"after".to_vec()),
    ];
    assert_eq!(got, want);
}

#[tokio::test]
async fn a_full_queue_refuses_and_a_slow_consumer_gets_its_close_after_the_partial_frame() {
    let fake = Arc::new(Fake::default());
    fake.grant(4);
    let outlet = Outlet::new(Arc::new(fake.clone()), 2);
    assert_eq!(outlet.push(text("partly written")), Push::Queued);
    assert_eq!(outlet.push(text("queued")), Push::Queued);
    assert_eq!(outlet.push(text("one too many")), Push::Full);
    outlet.seal(&CloseReason::new(
        crate::close::SLOW_CONSUMER,
        "slow consumer",
    ));
    assert_eq!(outlet.push(text("after the close")), Push::Closed);
    fake.grant(1_000);
    outlet.flush().await.unwrap();
    let mut close = 4009u16.to_be_bytes().to_vec();
    close.extend_from_slice(b"slow consumer");
    assert_eq!(
        frames(&fake.taken()),
        vec![(TEXT, b"partly written".to_vec()), (CLOSE, close)],
        "the backlog is skipped, the frame on the wire is finished"
    );
}

#[tokio::test]
async fn a_draining_close_follows_everything_queued() {
    let fake = Arc::new(Fake::default());
    let outlet = Outlet::new(Arc::new(fake.clone()), 8);
    assert_eq!(outlet.push(text("a")), Push::Queued);
    assert_eq!(outlet.push(text("b")), Push::Queued);
    outlet.seal(&CloseReason::new(crate::close::GOING_AWAY, "bye"));
    fake.grant(1_000);
    outlet.flush().await.unwrap();
    let got: Vec<u8> = frames(&fake.taken())
        .into_iter()
        .map(|(op, _)| op)
        .collect();
    assert_eq!(got, [TEXT, TEXT, CLOSE]);
}

#[test]
fn a_batch_writes_each_socket_once_in_order() {
    let fake = Arc::new(Fake::default());
    fake.grant(10_000);
    let outlet = Outlet::new(Arc::new(fake.clone()), 16);
    let mut corked = Corked::default();
    let first = SharedText::from("first".to_owned());
    let second = SharedText::from("second".to_owned());
    assert_eq!(outlet.push_corked(&first, None, &mut corked), Push::Queued);
    assert_eq!(
        outlet.push(text("presence")),
        Push::Queued,
        "a frame from elsewhere waits behind the batch"
    );
    assert_eq!(outlet.push_corked(&second, None, &mut corked), Push::Queued);
    assert_eq!(corked.outlets.len(), 1, "the outlet is corked once");
    assert!(fake.taken().is_empty(), "nothing written before the end");
    drop(corked);
    assert_eq!(fake.writes.load(std::sync::atomic::Ordering::Relaxed), 1);
    let got: Vec<Vec<u8>> = frames(&fake.taken()).into_iter().map(|f| f.1).collect();
    assert_eq!(got, [&b"first"[..], b"presence", b"second"]);
    assert_eq!(outlet.push(text("after")), Push::Sent, "uncorked again");
}

#[test]
fn a_corked_queue_keeps_its_bound() {
    let fake = Arc::new(Fake::default());
    let outlet = Outlet::new(Arc::new(fake.clone()), 2);
    let mut corked = Corked::default();
    let frame = SharedText::from("x".to_owned());
    assert_eq!(outlet.push_corked(&frame, None, &mut corked), Push::Queued);
    assert_eq!(outlet.push_corked(&frame, None, &mut corked), Push::Queued);
    assert_eq!(outlet.push_corked(&frame, None, &mut corked), Push::Full);
}
