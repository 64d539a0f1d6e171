//! Notifications end to end over real HTTP and real WebSockets: a sale that
//! crosses an item's threshold notifies exactly the store's managers, once
//! (no second low-stock notification until the item is restocked), live on
//! their `user:{id}` topic and again after a reconnect with `since`; nobody
//! else sees another user's notifications; a user who turned low stock off
//! gets none; a restart that reads the log again raises nothing twice; an
//! order left at a station past its threshold notifies the managers once,
//! and an order bumped in time not at all.

use larder_tests::ws::WsClient;
use larder_tests::{Backend, TestApp};
use serde_json::json;

crate::for_each_backend!(notifications:
    a_sale_crossing_the_threshold_notifies_exactly_the_stores_managers_once_live_and_after_a_reconnect,
    a_user_who_turned_low_stock_off_gets_nothing,
    a_restart_that_reads_the_log_again_raises_nothing_twice,
    an_admin_broadcast_reaches_a_role_and_is_marked_read,
    an_order_waiting_past_its_stations_threshold_notifies_the_managers_once,
);

/// Two stores, an item low at 3 in the first, and users: `root` (admin,
/// every store), `maria` (manager, every store), `mo` (manager of the
/// second store only), `sam` (staff), `vic` (viewer). Everyone has signed
/// in (so the directory knows them).
struct Shop {
    app: TestApp,
    root: String,
    maria: String,
    mo: String,
    sam: String,
    vic: String,
    store: String,
    item: String,
}

async fn shop(app: TestApp) -> Shop {
    let root = app.token("acme", "root", "admin").await;
    let maria = app.token("acme", "maria", "manager").await;
    let sam = app.token("acme", "sam", "staff").await;
    let vic = app.token("acme", "vic", "viewer").await;
    let store = app.create_store(&root, "Soho").await;
    let other = app.create_store(&root, "Deli").await;
    let mo = app
        .token_for(json!({ "tenant": "acme", "sub": "mo", "role": "manager", "stores": [other] }))
        .await;
    for token in [&root, &maria, &mo, &sam, &vic] {
        let (status, body) = app.get(token, "/api/v1/notifications/unread-count").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["unread"], 0);
    }
    let item = app.add_item(&maria, &store, "FLOUR", 10, 3).await;
    Shop {
        app,
        root,
        maria,
        mo,
        sam,
        vic,
        store,
        item,
    }
}

impl Shop {
    /// Sam adjusts the item's stock; answers the position written.
    async fn adjust(&self, delta: i64) -> u64 {
        let reason = if delta < 0 { "sold" } else { "received" };
        let (status, body) = self
            .app
            .post(
                &self.sam,
                &format!("/api/v1/items/{}/adjust", self.item),
                json!({ "delta": delta, "reason": reason }),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["position"].as_u64().expect("a position")
    }

    /// `token`'s user, connected and live on their own topic from the head.
    async fn inbox(&self, token: &str, user: &str) -> WsClient {
        let (mut client, _) = WsClient::authenticated(&self.app, token).await;
        client
            .subscribe_from_head(&self.app, &format!("user:{user}"))
            .await;
        client
    }

    async fn unread(&self, token: &str, position: u64) -> u64 {
        let (status, body) = self
            .app
            .get(
                token,
                &format!("/api/v1/notifications/unread-count?min_position={position}"),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert!(body["position"].as_u64() >= Some(position), "{body}");
        body["unread"].as_u64().expect("a count")
    }
}

/// The next `count` inbox events on a client's topic (skipping the events
/// the user caused elsewhere), as (position, type, kind or alert).
async fn inbox_events(client: &mut WsClient, count: usize) -> Vec<(u64, String, String)> {
    let mut seen = Vec::new();
    while seen.len() < count {
        let frame = client.next_event().await;
        let event = &frame["event"];
        if event["metadata"]["entity_type"] != "inbox" {
            continue;
        }
        let detail = match event["type"].as_str() {
            Some("NotificationRaised") => event["data"]["notification"]["kind"].clone(),
            Some("AlertCleared") => json!(
                event["data"]["alert"]
                    .as_str()
                    .and_then(|a| a.split(':').next())
            ),
            _ => json!(null),
        };
        seen.push((
            frame["position"].as_u64().expect("a position"),
            event["type"].as_str().unwrap_or("?").to_owned(),
            detail.as_str().unwrap_or("").to_owned(),
        ));
    }
    seen
}

fn kinds(events: &[(u64, String, String)]) -> Vec<(&str, &str)> {
    events
        .iter()
        .map(|(_, t, k)| (t.as_str(), k.as_str()))
        .collect()
}

pub async fn a_sale_crossing_the_threshold_notifies_exactly_the_stores_managers_once_live_and_after_a_reconnect(
    backend: Backend,
) {
    let s = shop(TestApp::spawn(backend).await).await;
    let before = s.app.store.head().await.expect("the head");
    let mut maria = s.inbox(&s.maria, "maria").await;
    let mut root = s.inbox(&s.root, "root").await;
    let (mut watcher, _) = WsClient::authenticated(&s.app, &s.vic).await;
    watcher.subscribe_from_head(&s.app, "tenant").await;

    s.adjust(-8).await; // 10 -> 2: low
    s.adjust(-2).await; // 2 -> 0: out
    s.adjust(1).await; // 0 -> 1: low again, not restocked: no second one
    s.adjust(20).await; // 1 -> 21: restocked, both alerts cleared
    let live = inbox_events(&mut maria, 4).await;
    assert_eq!(
        kinds(&live),
        [
            ("NotificationRaised", "low_stock"),
            ("NotificationRaised", "out_of_stock"),
            ("AlertCleared", "low-stock"),
            ("AlertCleared", "out-of-stock"),
        ],
        "one low-stock notification until the item was restocked"
    );
    let last = s.adjust(-18).await; // 21 -> 3: low again, after a restock
    let again = inbox_events(&mut maria, 1).await;
    assert_eq!(kinds(&again), [("NotificationRaised", "low_stock")]);
    // The notifier writes one inbox after the other: the administrator's
    // is the last of the five to wait for.
    let fence = inbox_events(&mut root, 5).await[4].0.max(again[0].0);

    // Exactly the store's managers: maria and the admin, not the manager
    // of another store, not staff, not viewers.
    assert_eq!(
        s.unread(&s.maria, fence).await,
        1,
        "the first two were cleared"
    );
    assert_eq!(s.unread(&s.root, fence).await, 1);
    for token in [&s.mo, &s.sam, &s.vic] {
        assert_eq!(s.unread(token, fence).await, 0);
    }
    let (status, history) = s.app.get(&s.maria, "/api/v1/notifications").await;
    assert_eq!(status, 200, "{history}");
    let list = history["notifications"].as_array().expect("a list");
    assert_eq!(list.len(), 3, "{history}");
    assert_eq!(list[0]["kind"], "low_stock");
    assert_eq!(list[0]["read"], false);
    assert_eq!(list[0]["subject_type"], "item");
    assert_eq!(list[0]["subject_id"], json!(s.item));
    assert_eq!(list[0]["store_id"], json!(s.store));
    assert_eq!(list[2]["cleared"], true);

    // Nobody else sees maria's inbox: the viewer on the whole tenant gets
    // the stock events up to the last sale and no inbox event.
    loop {
        let frame = watcher.next_event().await;
        assert_ne!(
            frame["event"]["metadata"]["entity_type"], "inbox",
            "{frame}"
        );
        if frame["position"].as_u64() >= Some(last) {
            break;
        }
    }
    let (mut sam, _) = WsClient::authenticated(&s.app, &s.sam).await;
    let refused = sam.subscribe("user:maria", Some(0)).await;
    assert_eq!(refused["type"], "error", "{refused}");
    let (status, other) = s.app.get(&s.mo, "/api/v1/notifications?limit=10").await;
    assert_eq!(status, 200);
    assert_eq!(other["notifications"], json!([]));

    // After a reconnect, the same resume as every topic: the same
    // notifications, in order, once.
    maria.close().await;
    let (mut back, _) = WsClient::authenticated(&s.app, &s.maria).await;
    let reply = back.subscribe("user:maria", Some(before)).await;
    assert_eq!(reply["resume"], "recovered", "{reply}");
    let replayed = inbox_events(&mut back, 5).await;
    let mut expected = live.clone();
    expected.extend(again);
    assert_eq!(replayed, expected);

    // Mark read: one, then all.
    let first = list[0]["notification_id"].as_str().expect("an id");
    let (status, read) = s
        .app
        .post(
            &s.maria,
            &format!("/api/v1/notifications/{first}/read"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["events"], json!(["NotificationRead"]));
    let position = read["position"].as_u64().expect("a position");
    assert_eq!(s.unread(&s.maria, position).await, 0);
    let (status, none) = s
        .app
        .post(&s.maria, "/api/v1/notifications/read-all", json!({}))
        .await;
    assert_eq!(status, 200, "{none}");
    assert_eq!(none["events"], json!([]), "nothing left unread");
    let unknown = uuid::Uuid::new_v4();
    let (status, missing) = s
        .app
        .post(
            &s.maria,
            &format!("/api/v1/notifications/{unknown}/read"),
            json!({}),
        )
        .await;
    assert_eq!(status, 404, "{missing}");
    assert_eq!(missing["code"], "notification_not_found");
}

pub async fn a_user_who_turned_low_stock_off_gets_nothing(backend: Backend) {
    let s = shop(TestApp::spawn(backend).await).await;
    let response = s
        .app
        .client
        .put(s.app.url("/api/v1/notifications/preferences"))
        .bearer_auth(&s.maria)
        .json(&json!({ "kind": "low_stock", "enabled": false, "min_priority": "low" }))
        .send()
        .await
        .expect("the server answers");
    assert_eq!(response.status(), 200);
    let (status, preferences) = s
        .app
        .get(&s.maria, "/api/v1/notifications/preferences")
        .await;
    assert_eq!(status, 200, "{preferences}");
    assert_eq!(preferences["preferences"][0]["kind"], "low_stock");
    assert_eq!(preferences["preferences"][0]["enabled"], false);
    let bad = s
        .app
        .client
        .put(s.app.url("/api/v1/notifications/preferences"))
        .bearer_auth(&s.maria)
        .json(&json!({ "kind": "spam", "enabled": false, "min_priority": "low" }))
        .send()
        .await
        .expect("the server answers");
    assert_eq!(bad.status(), 400);

    let mut maria = s.inbox(&s.maria, "maria").await;
    let mut root = s.inbox(&s.root, "root").await;
    s.adjust(-8).await; // low: root only
    s.adjust(-2).await; // out: both
    let got = inbox_events(&mut maria, 1).await;
    assert_eq!(
        kinds(&got),
        [("NotificationRaised", "out_of_stock")],
        "the low-stock one was never raised"
    );
    let others = inbox_events(&mut root, 2).await;
    assert_eq!(
        kinds(&others),
        [
            ("NotificationRaised", "low_stock"),
            ("NotificationRaised", "out_of_stock")
        ]
    );
    let (status, history) = s
        .app
        .get(
            &s.maria,
            &format!("/api/v1/notifications?min_position={}", got[0].0),
        )
        .await;
    assert_eq!(status, 200, "{history}");
    let list = history["notifications"].as_array().expect("a list");
    assert_eq!(list.len(), 1, "nothing stored for low stock: {history}");
}

/// Sets the notifier's checkpoint back to the start, as if the server had
/// stopped before it saved any.
async fn rewind_notifier(app: &TestApp) {
    use sqlx::Connection;
    let url = &app.settings.database_url;
    let statement =
        |table: String| format!("UPDATE {table} SET position = 0 WHERE name = 'notifier'");
    if url.starts_with("sqlite:") {
        let mut db = sqlx::SqliteConnection::connect(url).await.expect("SQLite");
        let done = sqlx::query(&statement("projection_checkpoints".into()))
            .execute(&mut db)
            .await
            .expect("rewound");
        assert_eq!(done.rows_affected(), 1);
    } else {
        let schema = app.settings.pg_schema.clone().expect("a schema");
        let mut db = sqlx::PgConnection::connect(url).await.expect("PostgreSQL");
        let done = sqlx::query(&statement(format!("{schema}.projection_checkpoints")))
            .execute(&mut db)
            .await
            .expect("rewound");
        assert_eq!(done.rows_affected(), 1);
    }
}

pub async fn a_restart_that_reads_the_log_again_raises_nothing_twice(backend: Backend) {
    let mut s = shop(TestApp::spawn(backend).await).await;
    let before = s.app.store.head().await.expect("the head");
    let mut maria = s.inbox(&s.maria, "maria").await;
    s.adjust(-8).await; // low
    let first = inbox_events(&mut maria, 1).await;
    maria.close().await;

    s.app.stop().await.expect("stopped");
    rewind_notifier(&s.app).await;
    let settings = s.app.settings.clone();
    let restarted = TestApp::start(settings, None).await;
    let _first_run = std::mem::replace(&mut s.app, restarted);
    s.sam = s.app.token("acme", "sam", "staff").await;
    s.maria = s.app.token("acme", "maria", "manager").await;

    // After the restart the notifier reads everything again; the sale to
    // zero comes after, in log order, and is the only new notification.
    s.adjust(-2).await; // out
    let (mut back, _) = WsClient::authenticated(&s.app, &s.maria).await;
    let reply = back.subscribe("user:maria", Some(before)).await;
    assert_eq!(reply["resume"], "recovered", "{reply}");
    let all = inbox_events(&mut back, 2).await;
    assert_eq!(all[0], first[0]);
    assert_eq!(
        kinds(&all),
        [
            ("NotificationRaised", "low_stock"),
            ("NotificationRaised", "out_of_stock")
        ],
        "the low-stock notification was not raised again"
    );
    assert_eq!(s.unread(&s.maria, all[1].0).await, 2);
}

pub async fn an_admin_broadcast_reaches_a_role_and_is_marked_read(backend: Backend) {
    let s = shop(TestApp::spawn(backend).await).await;
    let mut sam = s.inbox(&s.sam, "sam").await;
    let (status, refused) = s
        .app
        .post(
            &s.maria,
            "/api/v1/notifications/broadcast",
            json!({ "audience": { "tenant": true }, "title": "Hi" }),
        )
        .await;
    assert_eq!(status, 403, "{refused}");
    let (status, bad) = s
        .app
        .post(
            &s.root,
            "/api/v1/notifications/broadcast",
            json!({ "audience": { "tenant": true, "role": "staff" }, "title": "Hi" }),
        )
        .await;
    assert_eq!(status, 400, "{bad}");
    assert_eq!(bad["code"], "invalid_audience");
    let (status, sent) = s
        .app
        .post(
            &s.root,
            "/api/v1/notifications/broadcast",
            json!({ "audience": { "role": "staff" }, "priority": "high",
                    "title": "Stock count at 6", "body": "Bring a pen." }),
        )
        .await;
    assert_eq!(status, 200, "{sent}");
    assert_eq!(sent["recipients"], 1, "sam is the only staff member");
    assert_eq!(sent["raised"], 1);
    let got = inbox_events(&mut sam, 1).await;
    assert_eq!(kinds(&got), [("NotificationRaised", "broadcast")]);
    assert_eq!(s.unread(&s.sam, got[0].0).await, 1);
    let (status, all) = s
        .app
        .post(&s.sam, "/api/v1/notifications/read-all", json!({}))
        .await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(all["events"], json!(["AllNotificationsRead"]));
    let position = all["position"].as_u64().expect("a position");
    assert_eq!(s.unread(&s.sam, position).await, 0);
    assert_eq!(s.unread(&s.vic, position).await, 0);
}

/// Sam opens a takeaway order of one `dish` and fires it; its id and line.
async fn fire(s: &Shop, dish: &str) -> (String, String) {
    let (status, opened) = s
        .app
        .post(
            &s.sam,
            &format!("/api/v1/stores/{}/orders", s.store),
            json!({ "service": { "kind": "takeaway" }, "currency": "EUR" }),
        )
        .await;
    assert_eq!(status, 201, "{opened}");
    let order = opened["id"].as_str().expect("an order id").to_owned();
    let (status, line) = s
        .app
        .post(
            &s.sam,
            &format!("/api/v1/orders/{order}/lines"),
            json!({ "menu_item_id": dish }),
        )
        .await;
    assert_eq!(status, 201, "{line}");
    let line = line["line_id"].as_str().expect("a line id").to_owned();
    let (status, fired) = s
        .app
        .post(&s.sam, &format!("/api/v1/orders/{order}/fire"), json!({}))
        .await;
    assert_eq!(status, 200, "{fired}");
    (order, line)
}

/// The next `order_waiting` notification on a client's inbox topic: the
/// order it names.
async fn next_waiting(client: &mut WsClient) -> String {
    loop {
        let frame = client.next_event().await;
        let notification = &frame["event"]["data"]["notification"];
        if frame["event"]["type"] == "NotificationRaised" && notification["kind"] == "order_waiting"
        {
            assert_eq!(notification["priority"], "urgent", "{notification}");
            assert_eq!(
                notification["subject"]["entity_type"], "order",
                "{notification}"
            );
            return notification["subject"]["id"]
                .as_str()
                .expect("an order id")
                .to_owned();
        }
    }
}

pub async fn an_order_waiting_past_its_stations_threshold_notifies_the_managers_once(
    backend: Backend,
) {
    // The check runs every second; the grill's threshold is two seconds.
    let s =
        shop(TestApp::spawn_with(backend, |settings| settings.waiting_check_secs = 1).await).await;
    let response = s
        .app
        .client
        .put(
            s.app
                .url(&format!("/api/v1/stores/{}/menu/stations/grill", s.store)),
        )
        .bearer_auth(&s.maria)
        .json(&json!({ "name": "Grill", "warn_after_secs": 1, "late_after_secs": 2 }))
        .send()
        .await
        .expect("the server answers");
    assert_eq!(response.status(), 200);
    let (status, dish) = s
        .app
        .post(
            &s.maria,
            &format!("/api/v1/stores/{}/menu/items", s.store),
            json!({ "name": "Burger", "station": "grill",
                    "price": { "amount_minor": 900, "currency": "EUR" },
                    "recipe": [{ "item_id": s.item, "quantity": 1 }] }),
        )
        .await;
    assert_eq!(status, 201, "{dish}");
    let dish = dish["menu_item_id"].as_str().expect("an id").to_owned();
    let mut maria = s.inbox(&s.maria, "maria").await;
    let mut root = s.inbox(&s.root, "root").await;

    // Order A is left on the grill; order B is made ready at once.
    let (late, _) = fire(&s, &dish).await;
    let (in_time, line) = fire(&s, &dish).await;
    let (status, ready) = s
        .app
        .post(
            &s.sam,
            &format!("/api/v1/orders/{in_time}/lines/{line}/ready"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(next_waiting(&mut maria).await, late);

    // Order C, fired after A's notification, is late only after the check
    // has looked at A again at least twice: A is not notified again.
    let (later, _) = fire(&s, &dish).await;
    assert_eq!(next_waiting(&mut maria).await, later);
    // The administrator manages every store: the same two, in order.
    assert_eq!(next_waiting(&mut root).await, late);
    assert_eq!(next_waiting(&mut root).await, later);
    let position = s.app.store.head().await.expect("the head");
    let listed = |token: String| {
        let s = &s;
        async move {
            let (status, body) = s
                .app
                .get(
                    &token,
                    &format!("/api/v1/notifications?min_position={position}"),
                )
                .await;
            assert_eq!(status, 200, "{body}");
            let mut orders: Vec<String> = body["notifications"]
                .as_array()
                .expect("notifications")
                .iter()
                .filter(|n| n["kind"] == "order_waiting")
                .map(|n| n["subject_id"].as_str().unwrap_or("?").to_owned())
                .collect();
            orders.sort();
            orders
        }
    };
    let mut expected = vec![late, later];
    expected.sort();
    assert_eq!(
        listed(s.maria.clone()).await,
        expected,
        "A and C, once each"
    );
    assert_eq!(
        listed(s.root.clone()).await,
        expected,
        "every store's manager"
    );
    assert!(listed(s.mo.clone()).await.is_empty(), "not another store's");
    assert!(listed(s.sam.clone()).await.is_empty(), "not the staff");
}
