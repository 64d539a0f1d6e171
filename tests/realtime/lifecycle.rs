//! Command lifecycle frames (docs/protocol.md, "Command lifecycle"): a
//! command sent with `Command-Id` is followed by `command` frames on its
//! session's `session:{sid}` topic, over real HTTP and a real WebSocket.

use larder_tests::ws::WsClient;
use larder_tests::{Backend, TestApp};
use serde_json::{Value, json};

crate::for_each_backend!(lifecycle:
    executed_follows_the_commands_events_and_repeats_its_answer,
    failed_carries_the_answers_error_code,
    other_sessions_and_other_tenants_never_see_the_frames,
    a_command_without_command_id_sends_no_frames,
    an_idempotent_replay_says_so,
    an_invalid_command_id_is_refused_and_runs_nothing,
);

/// An admin token of `tenant` for login session `sid`.
async fn session_token(app: &TestApp, tenant: &str, sid: &str) -> String {
    app.token_for(json!({ "tenant": tenant, "sub": "alice", "role": "admin", "sid": sid }))
        .await
}

/// An HTTP answer: status, body, and whether it was an idempotent replay.
struct Answer {
    status: u16,
    body: Value,
    replayed: bool,
}

/// Sends a command, with the headers given.
async fn command(
    app: &TestApp,
    token: &str,
    path: &str,
    body: Value,
    headers: &[(&str, &str)],
) -> Answer {
    let mut request = app
        .client
        .post(app.url(path))
        .bearer_auth(token)
        .json(&body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let replayed = response.headers().get("idempotent-replayed").is_some();
    let (status, body) = larder_tests::read(response).await;
    Answer {
        status,
        body,
        replayed,
    }
}

/// A connection of `token`'s session, subscribed (from the head) to its
/// `session:{sid}` topic and to `topics`, and live on all of them: the
/// server handles a connection's messages in order, so once a later `ping`
/// is answered every subscription has finished its replay.
async fn listening(app: &TestApp, token: &str, sid: &str, topics: &[String]) -> WsClient {
    let (mut client, _) = WsClient::authenticated(app, token).await;
    client
        .subscribe_from_head(app, &format!("session:{sid}"))
        .await;
    for topic in topics {
        client.subscribe_from_head(app, topic).await;
    }
    assert_eq!(
        client.request(json!({ "type": "ping" })).await["type"],
        "pong"
    );
    client
}

/// The frames up to and including the final `command` frame of `command_id`.
async fn until_final(client: &mut WsClient, command_id: &str) -> Vec<Value> {
    let mut frames = Vec::new();
    loop {
        let frame = client.next().await;
        let last = frame["type"] == "command"
            && frame["command_id"] == command_id
            && frame["status"] != "accepted";
        frames.push(frame);
        if last {
            return frames;
        }
    }
}

/// The `command` frames among `frames`.
fn commands(frames: &[Value]) -> Vec<&Value> {
    frames.iter().filter(|f| f["type"] == "command").collect()
}

/// Answers a `ping` and returns the `command` frames that came before the
/// `pong`: every frame the server queued for the connection before it read
/// the ping.
async fn commands_so_far(client: &mut WsClient) -> Vec<Value> {
    let (pong, before) = client.request_collect(json!({ "type": "ping" })).await;
    assert_eq!(pong["type"], "pong", "{pong}");
    before
        .into_iter()
        .filter(|f| f["type"] == "command")
        .collect()
}

pub async fn executed_follows_the_commands_events_and_repeats_its_answer(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = session_token(&app, "acme", "till-1").await;
    let store = app.create_store(&token, "Main").await;
    let flour = app.add_item(&token, &store, "FLOUR", 100, 0).await;
    let sugar = app.add_item(&token, &store, "SUGAR", 0, 0).await;
    let store_topic = format!("store:{store}");
    let mut client = listening(&app, &token, "till-1", std::slice::from_ref(&store_topic)).await;

    // Many commands, each checked: an `executed` sent before the hub routed
    // the events would overtake them on some of these.
    for n in 0..20 {
        let command_id = format!("adjust-{n}");
        let answer = command(
            &app,
            &token,
            &format!("/api/v1/items/{flour}/adjust"),
            json!({ "delta": -1, "reason": "sold" }),
            &[("Command-Id", command_id.as_str())],
        )
        .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let position = answer.body["position"].as_u64().unwrap();
        let frames = until_final(&mut client, &command_id).await;
        let statuses: Vec<_> = commands(&frames)
            .iter()
            .map(|f| f["status"].clone())
            .collect();
        assert_eq!(statuses, ["accepted", "executed"], "{frames:?}");
        let executed = frames.last().unwrap();
        assert_eq!(executed["position"], position, "{executed}");
        assert_eq!(executed["replayed"], false);
        assert_eq!(executed["result"], answer.body, "the HTTP answer's body");
        // The command's event came first, on both topics.
        for topic in [store_topic.as_str(), "session:till-1"] {
            assert!(
                frames.iter().any(|f| f["type"] == "event"
                    && f["topic"] == topic
                    && f["position"] == position),
                "event {position} on {topic} before executed: {frames:?}"
            );
        }
    }

    // A transfer writes two streams: `executed` after both sides' events,
    // with the answer's position.
    let before = app.head_outside_inboxes().await;
    let answer = command(
        &app,
        &token,
        "/api/v1/transfers",
        json!({ "from_item": flour, "to_item": sugar, "quantity": 5 }),
        &[("Command-Id", "move-1")],
    )
    .await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    let position = answer.body["position"].as_u64().unwrap();
    let frames = until_final(&mut client, "move-1").await;
    let executed = frames.last().unwrap();
    assert_eq!(executed["status"], "executed", "{frames:?}");
    assert_eq!(executed["position"], position);
    assert_eq!(executed["result"], answer.body);
    let seen: Vec<u64> = frames
        .iter()
        .filter(|f| f["type"] == "event" && f["topic"] == store_topic.as_str())
        .map(|f| f["position"].as_u64().unwrap())
        .collect();
    let written: Vec<u64> = (before + 1..=position).collect();
    assert_eq!(seen, written, "both sides' events came first: {frames:?}");
}

pub async fn failed_carries_the_answers_error_code(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = session_token(&app, "acme", "till-1").await;
    let store = app.create_store(&token, "Main").await;
    let item = app.add_item(&token, &store, "TEA", 2, 0).await;
    let mut client = listening(&app, &token, "till-1", &[]).await;
    let head = app.head_outside_inboxes().await;

    let cases = [
        // Refused by the domain inside the pipeline: accepted, then failed.
        (
            "short",
            format!("/api/v1/items/{item}/adjust"),
            json!({ "delta": -100, "reason": "sold" }),
            None,
            422,
            "insufficient_stock",
            true,
        ),
        // A stale version: the pipeline refuses it.
        (
            "stale",
            format!("/api/v1/items/{item}/adjust"),
            json!({ "delta": 1, "reason": "received" }),
            Some("\"7\""),
            409,
            "version_conflict",
            true,
        ),
        // An item that does not exist: refused before the pipeline.
        (
            "nowhere",
            "/api/v1/items/6f1c1b3e-9d40-4a8e-8a52-6e1f2b7c9d10/adjust".to_owned(),
            json!({ "delta": 1, "reason": "received" }),
            None,
            404,
            "not_found",
            false,
        ),
        // A body that does not parse: refused before the pipeline.
        (
            "garbled",
            format!("/api/v1/items/{item}/adjust"),
            json!({ "delta": "many" }),
            None,
            400,
            "invalid_body",
            false,
        ),
    ];
    for (command_id, path, body, if_match, status, code, accepted) in cases {
        let mut headers = vec![("Command-Id", command_id)];
        if let Some(version) = if_match {
            headers.push(("If-Match", version));
        }
        let answer = command(&app, &token, &path, body, &headers).await;
        assert_eq!(answer.status, status, "{command_id}: {}", answer.body);
        assert_eq!(answer.body["code"], code);
        let frames = until_final(&mut client, command_id).await;
        let frames = commands(&frames);
        let failed = frames.last().unwrap();
        assert_eq!(failed["status"], "failed", "{frames:?}");
        assert_eq!(failed["code"], answer.body["code"], "{failed}");
        assert_eq!(failed["message"], answer.body["message"]);
        assert_eq!(failed["details"], answer.body["details"]);
        let expected = if accepted { 2 } else { 1 };
        assert_eq!(frames.len(), expected, "{command_id}: {frames:?}");
        if accepted {
            assert_eq!(frames[0]["status"], "accepted");
        }
    }
    assert_eq!(
        app.head_outside_inboxes().await,
        head,
        "nothing was written"
    );
}

pub async fn other_sessions_and_other_tenants_never_see_the_frames(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mine = session_token(&app, "acme", "till-1").await;
    let colleague = session_token(&app, "acme", "till-2").await;
    // Another tenant whose session has the same name.
    let stranger = session_token(&app, "globex", "till-1").await;
    let store = app.create_store(&mine, "Main").await;
    let item = app.add_item(&mine, &store, "RICE", 5, 0).await;
    let mut me = listening(&app, &mine, "till-1", &[]).await;
    let mut other_tab = listening(&app, &mine, "till-1", &[]).await;
    let mut colleague_ws = listening(&app, &colleague, "till-2", &[format!("store:{store}")]).await;
    let mut stranger_ws = listening(&app, &stranger, "till-1", &[]).await;

    let answer = command(
        &app,
        &mine,
        &format!("/api/v1/items/{item}/adjust"),
        json!({ "delta": 1, "reason": "received" }),
        &[("Command-Id", "mine-1")],
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    // Every connection of the session hears of it (both tabs)...
    for tab in [&mut me, &mut other_tab] {
        let frames = until_final(tab, "mine-1").await;
        assert_eq!(commands(&frames).len(), 2, "{frames:?}");
    }
    // ...and nobody else: their frames would have been queued at the same
    // moment, so before the answer to a ping sent now.
    let colleague_event = colleague_ws.next_event().await;
    assert_eq!(colleague_event["position"], answer.body["position"]);
    for other in [&mut colleague_ws, &mut stranger_ws] {
        assert_eq!(commands_so_far(other).await, Vec::<Value>::new());
    }

    // A session may not listen to another session's topic at all.
    let refused = colleague_ws.subscribe("session:till-1", None).await;
    assert_eq!(refused["code"], "forbidden", "{refused}");
}

pub async fn a_command_without_command_id_sends_no_frames(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = session_token(&app, "acme", "till-1").await;
    let store = app.create_store(&token, "Main").await;
    let item = app.add_item(&token, &store, "SALT", 5, 0).await;
    let mut client = listening(&app, &token, "till-1", &[]).await;

    let answer = command(
        &app,
        &token,
        &format!("/api/v1/items/{item}/adjust"),
        json!({ "delta": 1, "reason": "received" }),
        &[],
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    // Its event arrives on the session topic, and no `command` frame.
    let event = client.next().await;
    assert_eq!(event["type"], "event", "{event}");
    assert_eq!(event["position"], answer.body["position"]);
    assert_eq!(commands_so_far(&mut client).await, Vec::<Value>::new());
}

pub async fn an_idempotent_replay_says_so(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = session_token(&app, "acme", "till-1").await;
    let store = app.create_store(&token, "Main").await;
    let item = app.add_item(&token, &store, "OIL", 5, 0).await;
    let mut client = listening(&app, &token, "till-1", &[]).await;
    let path = format!("/api/v1/items/{item}/adjust");
    let body = json!({ "delta": 2, "reason": "received" });

    let first = command(
        &app,
        &token,
        &path,
        body.clone(),
        &[("Idempotency-Key", "k-1"), ("Command-Id", "try-1")],
    )
    .await;
    assert_eq!(
        (first.status, first.replayed),
        (200, false),
        "{}",
        first.body
    );
    let frames = until_final(&mut client, "try-1").await;
    assert_eq!(frames.last().unwrap()["replayed"], false);

    // The retry, with a command id of its own.
    let again = command(
        &app,
        &token,
        &path,
        body,
        &[("Idempotency-Key", "k-1"), ("Command-Id", "try-2")],
    )
    .await;
    assert_eq!(
        (again.status, again.replayed),
        (200, true),
        "{}",
        again.body
    );
    let frames = until_final(&mut client, "try-2").await;
    let statuses: Vec<_> = commands(&frames)
        .iter()
        .map(|f| f["status"].clone())
        .collect();
    assert_eq!(statuses, ["accepted", "executed"], "{frames:?}");
    let executed = frames.last().unwrap();
    assert_eq!(executed["replayed"], true, "{executed}");
    assert_eq!(executed["position"], first.body["position"]);
    assert_eq!(executed["result"], first.body);
    assert!(
        !frames.iter().any(|f| f["type"] == "event"),
        "a replay writes nothing: {frames:?}"
    );
}

pub async fn an_invalid_command_id_is_refused_and_runs_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = session_token(&app, "acme", "till-1").await;
    let store = app.create_store(&token, "Main").await;
    let item = app.add_item(&token, &store, "MILK", 5, 0).await;
    let mut client = listening(&app, &token, "till-1", &[]).await;
    let head = app.head_outside_inboxes().await;

    let long = "x".repeat(65);
    for bad in ["a b", "semi;colon", "quote\"", "a/b", long.as_str()] {
        let answer = command(
            &app,
            &token,
            &format!("/api/v1/items/{item}/adjust"),
            json!({ "delta": 1, "reason": "received" }),
            &[("Command-Id", bad)],
        )
        .await;
        assert_eq!(answer.status, 400, "{bad:?}: {}", answer.body);
        assert_eq!(answer.body["code"], "invalid_command_id");
    }
    // Even an unauthenticated one is refused for its id first, and nothing ran.
    let answer = command(
        &app,
        "not-a-token",
        "/api/v1/stores",
        json!({ "name": "X" }),
        &[("Command-Id", "")],
    )
    .await;
    assert_eq!(answer.body["code"], "invalid_command_id", "{}", answer.body);
    assert_eq!(app.head_outside_inboxes().await, head);
    assert_eq!(commands_so_far(&mut client).await, Vec::<Value>::new());

    // The longest valid id works.
    let longest = "x".repeat(64);
    let answer = command(
        &app,
        &token,
        &format!("/api/v1/items/{item}/adjust"),
        json!({ "delta": 1, "reason": "received" }),
        &[("Command-Id", longest.as_str())],
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let frames = until_final(&mut client, &longest).await;
    assert_eq!(frames.last().unwrap()["status"], "executed");
}
