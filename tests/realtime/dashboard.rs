//! Dashboards end to end: a subscriber of `dashboard:{store}` gets a
//! snapshot, then `state` frames at most once per interval while orders
//! and stock changes pour in at ~500 events/s, and the last figures equal a
//! recount from the log.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use larder_store::EventFilter;
use larder_tests::ws::WsClient;
use larder_tests::{Backend, TestApp};
use serde_json::{Value, json};
use tokio::sync::Mutex;

crate::for_each_backend!(dashboard:
    a_dashboard_under_load_is_coalesced_and_equals_a_recount_of_the_log,
    dashboards_follow_the_tokens_stores,
);

/// The publishing interval under test (the default).
const INTERVAL: Duration = Duration::from_millis(1_000);
/// How long the load runs.
const LOAD: Duration = Duration::from_secs(4);
/// The target rate: one request every 2.5 ms carries ~1.4 events on average
/// (an order's flow is 6 requests and 8 events, plus stock alerts).
const REQUEST_EVERY: Duration = Duration::from_micros(2_500);
/// Requests in flight at once.
const WORKERS: usize = 12;

struct Diner {
    app: TestApp,
    admin: String,
    staff: String,
    store: String,
    dishes: Vec<String>,
    flour: String,
}

async fn diner(backend: Backend) -> Diner {
    let app = TestApp::spawn_with(backend, |s| {
        s.dashboard_interval_ms = INTERVAL.as_millis() as u64;
    })
    .await;
    let admin = app.token("acme", "root", "admin").await;
    let manager = app.token("acme", "maria", "manager").await;
    let staff = app.token("acme", "sam", "staff").await;
    let store = app.create_store(&admin, "Diner").await;
    let bun = app.add_item(&manager, &store, "BUN", 1_000_000, 5).await;
    let flour = app.add_item(&manager, &store, "FLOUR", 20, 10).await;
    let mut dishes = Vec::new();
    for (name, station) in [("Burger", "grill"), ("Fries", "fry"), ("Shake", "bar")] {
        let response = app
            .client
            .put(app.url(&format!("/api/v1/stores/{store}/menu/stations/{station}")))
            .bearer_auth(&manager)
            .json(&json!({ "name": station, "warn_after_secs": 300, "late_after_secs": 600 }))
            .send()
            .await
            .expect("the server answers");
        assert_eq!(response.status(), 200);
        let (status, body) = app
            .post(
                &manager,
                &format!("/api/v1/stores/{store}/menu/items"),
                json!({
                    "name": name, "station": station,
                    "price": { "amount_minor": 450 + 100 * dishes.len() as i64, "currency": "EUR" },
                    "recipe": [{ "item_id": bun, "quantity": 1 }],
                }),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        dishes.push(body["menu_item_id"].as_str().expect("an id").to_owned());
    }
    Diner {
        app,
        admin,
        staff,
        store,
        dishes,
        flour,
    }
}

/// One request of the load, paced by the shared ticker.
async fn post(
    app: &TestApp,
    token: &str,
    pace: &Mutex<tokio::time::Interval>,
    path: &str,
    body: Value,
) -> Value {
    pace.lock().await.tick().await;
    let (status, answer) = app.post(token, path, body).await;
    assert!((200..300).contains(&status), "{path}: {status} {answer}");
    answer
}

/// An order's life: open, a line or two, fire, ready, then served and
/// completed, or (one in five) cancelled.
async fn order_flow(d: &Diner, pace: &Mutex<tokio::time::Interval>, n: usize) {
    let (app, staff) = (&d.app, d.staff.as_str());
    let opened = post(
        app,
        staff,
        pace,
        &format!("/api/v1/stores/{}/orders", d.store),
        json!({ "service": { "kind": "takeaway" }, "currency": "EUR" }),
    )
    .await;
    let order = opened["id"].as_str().expect("an order id").to_owned();
    let lines = format!("/api/v1/orders/{order}/lines");
    let dish = &d.dishes[n % d.dishes.len()];
    let line = post(
        app,
        staff,
        pace,
        &lines,
        json!({ "menu_item_id": dish, "quantity": 1 + n % 3 }),
    )
    .await["line_id"]
        .as_str()
        .expect("a line id")
        .to_owned();
    post(
        app,
        staff,
        pace,
        &format!("/api/v1/orders/{order}/fire"),
        json!({}),
    )
    .await;
    if n % 5 == 4 {
        post(
            app,
            staff,
            pace,
            &format!("/api/v1/orders/{order}/cancel"),
            json!({ "reason": "guest left" }),
        )
        .await;
        return;
    }
    post(
        app,
        staff,
        pace,
        &format!("/api/v1/orders/{order}/lines/{line}/ready"),
        json!({}),
    )
    .await;
    post(
        app,
        staff,
        pace,
        &format!("/api/v1/orders/{order}/serve"),
        json!({}),
    )
    .await;
    post(
        app,
        staff,
        pace,
        &format!("/api/v1/orders/{order}/complete"),
        json!({}),
    )
    .await;
}

/// Flour down below its threshold and to zero, then back: low, out and
/// restocked alerts.
async fn stock_flow(d: &Diner, pace: &Mutex<tokio::time::Interval>) {
    let path = format!("/api/v1/items/{}/adjust", d.flour);
    for delta in [-12, -8, 20] {
        let reason = if delta > 0 { "received" } else { "wasted" };
        post(
            &d.app,
            &d.staff,
            pace,
            &path,
            json!({ "delta": delta, "reason": reason }),
        )
        .await;
    }
}

/// A `state` frame and when it arrived.
struct Received {
    at: Instant,
    frame: Value,
}

/// The figures a recount of the log gives for `store` on the day
/// `[start, end)`: what the dashboard says, computed independently from
/// every event.
fn recount(
    events: &[larder_store::RecordedEvent],
    store: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Value {
    let today = |at: DateTime<Utc>| at >= start && at < end;
    let (mut opened, mut completed, mut cancelled, mut revenue) = (0i64, 0i64, 0i64, 0i64);
    let mut open = HashMap::<String, bool>::new();
    // Fired lines: (order, line) → (menu item, quantity, fired at, station, ready at).
    let mut lines = BTreeMap::<
        (String, String),
        (String, i64, DateTime<Utc>, String, Option<DateTime<Utc>>),
    >::new();
    let mut cancelled_orders = Vec::new();
    // Items: quantity and threshold.
    let mut items = HashMap::<String, (i64, i64)>::new();
    let (mut low_alerts, mut out_alerts, mut restocked_alerts) = (0i64, 0i64, 0i64);
    for event in events {
        if event.metadata.store.as_deref() != Some(store) {
            continue;
        }
        let data: Value = serde_json::from_str(event.data.json()).expect("event data is JSON");
        let at = event.recorded_at;
        let order = data["order_id"].as_str().unwrap_or_default().to_owned();
        match event.event_type.as_str() {
            "OrderOpened" => {
                opened += i64::from(today(at));
                open.insert(order, true);
            }
            "OrderCompleted" => {
                if today(at) {
                    completed += 1;
                    revenue += data["total"]["amount_minor"].as_i64().expect("a total");
                }
                open.insert(order, false);
            }
            "OrderCancelled" => {
                cancelled += i64::from(today(at));
                open.insert(order.clone(), false);
                cancelled_orders.push(order);
            }
            "OrderFired" => {
                for line in data["lines"].as_array().expect("lines") {
                    lines.insert(
                        (
                            order.clone(),
                            line["line_id"].as_str().expect("a line").to_owned(),
                        ),
                        (
                            line["menu_item_id"].as_str().expect("an item").to_owned(),
                            line["quantity"].as_i64().expect("a quantity"),
                            at,
                            line["station"].as_str().expect("a station").to_owned(),
                            None,
                        ),
                    );
                }
            }
            "OrderLineReady" => {
                let key = (order, data["line_id"].as_str().expect("a line").to_owned());
                if let Some(line) = lines.get_mut(&key) {
                    line.4 = Some(at);
                }
            }
            "ItemAdded" => {
                items.insert(
                    event.metadata.entity_id.clone(),
                    (
                        data["quantity"].as_i64().expect("q"),
                        data["threshold"].as_i64().expect("t"),
                    ),
                );
            }
            "StockAdjusted" => {
                if let Some(item) = items.get_mut(&event.metadata.entity_id) {
                    item.0 = data["quantity"].as_i64().expect("q");
                }
            }
            "LowStock" => low_alerts += i64::from(today(at)),
            "OutOfStock" => out_alerts += i64::from(today(at)),
            "Restocked" => restocked_alerts += i64::from(today(at)),
            _ => {}
        }
    }
    // Lines of a cancelled order that were not ready do not count as sold.
    let counted = |key: &(String, String), ready: &Option<DateTime<Utc>>| {
        ready.is_some() || !cancelled_orders.contains(&key.0)
    };
    let mut portions = BTreeMap::<String, i64>::new();
    let mut stations = BTreeMap::<String, (i64, i64)>::new();
    for (key, (item, quantity, fired_at, station, ready)) in &lines {
        if today(*fired_at) && counted(key, ready) {
            *portions.entry(item.clone()).or_default() += quantity;
        }
        if let Some(ready) = ready.filter(|r| today(*r)) {
            let entry = stations.entry(station.clone()).or_default();
            entry.0 += 1;
            entry.1 += (ready - *fired_at).num_milliseconds().max(0);
        }
    }
    let mut top: Vec<(String, i64)> = portions.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    top.truncate(5);
    let low = items.values().filter(|(q, t)| *q > 0 && q <= t).count();
    let out = items.values().filter(|(q, _)| *q == 0).count();
    let average = if completed > 0 {
        (revenue * 2 + completed) / (2 * completed)
    } else {
        0
    };
    json!({
        "orders_opened": opened,
        "orders_completed": completed,
        "orders_cancelled": cancelled,
        "revenue_minor": revenue,
        "average_ticket_minor": average,
        "open_orders": open.values().filter(|o| **o).count(),
        "low_stock": low,
        "out_of_stock": out,
        "top_items": top.iter().map(|(id, q)| json!([id, q])).collect::<Vec<_>>(),
        "stations": stations.iter().map(|(s, (n, ms))| json!([s, n, *ms as f64 / *n as f64 / 1000.0])).collect::<Vec<_>>(),
        "alerts": [low_alerts, out_alerts, restocked_alerts],
    })
}

/// The same figures, as a dashboard states them.
fn figures(dashboard: &Value) -> Value {
    let revenue = dashboard["revenue"].as_array().cloned().unwrap_or_default();
    let eur = revenue.iter().find(|r| r["currency"] == "EUR");
    let sum = |field: &str| {
        dashboard["stock_alerts"].as_array().map_or(0, |b| {
            b.iter()
                .map(|b| b[field].as_i64().unwrap_or(0))
                .sum::<i64>()
        })
    };
    json!({
        "orders_opened": dashboard["orders_opened"],
        "orders_completed": dashboard["orders_completed"],
        "orders_cancelled": dashboard["orders_cancelled"],
        "revenue_minor": eur.map_or(json!(0), |r| r["total_minor"].clone()),
        "average_ticket_minor": eur.map_or(json!(0), |r| r["average_ticket_minor"].clone()),
        "open_orders": dashboard["open_orders"],
        "low_stock": dashboard["low_stock"],
        "out_of_stock": dashboard["out_of_stock"],
        "top_items": dashboard["top_items"].as_array().expect("top items").iter()
            .map(|t| json!([t["menu_item_id"], t["quantity"]])).collect::<Vec<_>>(),
        "stations": dashboard["stations"].as_array().expect("stations").iter()
            .map(|s| json!([s["station"], s["lines"], s["average_secs"]])).collect::<Vec<_>>(),
        "alerts": [sum("low"), sum("out"), sum("restocked")],
    })
}

/// Average preparation times are floats: compare them to the microsecond.
fn assert_same(actual: &Value, expected: &Value) {
    let mut a = actual.clone();
    let mut e = expected.clone();
    let (sa, se) = (a["stations"].take(), e["stations"].take());
    assert_eq!(a, e, "the dashboard equals the recount");
    let (sa, se) = (
        sa.as_array().expect("stations"),
        se.as_array().expect("stations"),
    );
    assert_eq!(sa.len(), se.len(), "{sa:?} vs {se:?}");
    for (x, y) in sa.iter().zip(se) {
        assert_eq!((&x[0], &x[1]), (&y[0], &y[1]));
        let (x, y) = (x[2].as_f64().expect("secs"), y[2].as_f64().expect("secs"));
        assert!((x - y).abs() < 0.001, "average preparation {x} vs {y}");
    }
}

pub async fn a_dashboard_under_load_is_coalesced_and_equals_a_recount_of_the_log(backend: Backend) {
    let d = Arc::new(diner(backend).await);
    let (mut watcher, _) = WsClient::authenticated(&d.app, &d.admin).await;
    let topic = format!("dashboard:{}", d.store);
    let reply = watcher
        .request(json!({ "type": "subscribe", "topic": topic, "snapshot": true }))
        .await;
    assert_eq!(reply["type"], "subscribed", "{reply}");
    assert_eq!(reply["snapshot"]["data"]["orders_opened"], 0, "{reply}");
    let head_before = d.app.store.head().await.expect("head");

    // When orders and stock changes arrive at ~500 events/s for a while...
    let mut pace = tokio::time::interval(REQUEST_EVERY);
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let pace = Arc::new(Mutex::new(pace));
    let started = Instant::now();
    let mut workers = Vec::new();
    for worker in 0..WORKERS {
        let (d, pace) = (d.clone(), pace.clone());
        workers.push(tokio::spawn(async move {
            let mut n = worker;
            while started.elapsed() < LOAD {
                if worker == 0 {
                    stock_flow(&d, &pace).await;
                } else {
                    order_flow(&d, &pace, n).await;
                }
                n += WORKERS;
            }
        }));
    }
    // ... the subscriber's frames are collected as they come.
    let mut frames: Vec<Received> = Vec::new();
    let load = async {
        for worker in workers {
            worker.await.expect("a load worker");
        }
    };
    tokio::pin!(load);
    loop {
        tokio::select! {
            () = &mut load => break,
            frame = watcher.next() => frames.push(Received { at: Instant::now(), frame }),
        }
    }
    let elapsed = started.elapsed();
    let head = d.app.store.head().await.expect("head");
    let rate = (head - head_before) as f64 / elapsed.as_secs_f64();
    eprintln!(
        "{} events in {elapsed:?}: {rate:.0} events/s",
        head - head_before
    );

    // The read models catch up; the dashboard as REST answers it then is
    // where the pushed frames must end.
    let (status, settled) = d
        .app
        .get(
            &d.admin,
            &format!("/api/v1/stores/{}/dashboard?min_position={head}", d.store),
        )
        .await;
    assert_eq!(status, 200, "{settled}");
    assert!(
        settled["position"].as_u64().expect("a position") >= head,
        "{settled}"
    );
    let deadline = Instant::now() + INTERVAL * 10;
    while frames
        .last()
        .is_none_or(|r| figures(&r.frame["data"]) != figures(&settled))
    {
        assert!(
            Instant::now() < deadline,
            "the last state frame never caught up with {settled}"
        );
        let frame = watcher.next().await;
        frames.push(Received {
            at: Instant::now(),
            frame,
        });
    }

    // Then: only `state` frames for the topic, positions never going back.
    let states: Vec<&Received> = frames
        .iter()
        .filter(|r| r.frame["type"] == "state")
        .collect();
    assert_eq!(
        states.len(),
        frames.len(),
        "nothing but state frames on a dashboard topic"
    );
    assert!(states.iter().all(|r| r.frame["topic"] == topic.as_str()));
    assert!(
        states
            .windows(2)
            .all(|w| w[0].frame["position"].as_u64() <= w[1].frame["position"].as_u64()),
        "positions never go back"
    );
    // Coalesced: however many events, at most one frame per interval (the
    // server spaces them by at least the interval; the network may bunch
    // two a little, never to half of it).
    let span = states.last().expect("frames").at - states[0].at;
    assert!(
        states.len() as f64 <= span.as_secs_f64() / INTERVAL.as_secs_f64() + 1.0,
        "{} frames in {span:?}: more than one per {INTERVAL:?}",
        states.len()
    );
    for pair in states.windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(gap >= INTERVAL / 2, "two frames {gap:?} apart");
    }
    assert!(
        states.len() >= 2,
        "the dashboard updated live during the load ({} frames)",
        states.len()
    );

    // And the last figures are a recount of the log.
    let mut events = Vec::new();
    let mut after = 0;
    loop {
        let page = d
            .app
            .store
            .read_all(after, 1_000, &EventFilter::tenant("acme"))
            .await
            .expect("the log reads");
        events.extend(page.events);
        if page.reached_head || page.scanned_to <= after {
            break;
        }
        after = page.scanned_to;
    }
    let start: DateTime<Utc> = settled["day_start"]
        .as_str()
        .expect("a day")
        .parse()
        .expect("RFC 3339");
    let end: DateTime<Utc> = settled["day_end"]
        .as_str()
        .expect("a day")
        .parse()
        .expect("RFC 3339");
    let expected = recount(&events, &d.store, start, end);
    let last = &states.last().expect("a frame").frame["data"];
    assert_same(&figures(last), &expected);
    assert!(
        expected["orders_completed"].as_i64().unwrap_or(0) > 0,
        "{expected}"
    );
    assert!(
        expected["alerts"][1].as_i64().unwrap_or(0) > 0,
        "{expected}"
    );
}

pub async fn dashboards_follow_the_tokens_stores(backend: Backend) {
    let d = diner(backend).await;
    let scoped = d
        .app
        .token_for(json!({ "tenant": "acme", "sub": "sue", "role": "staff", "stores": [d.store] }))
        .await;
    // A store-scoped token sees its store's dashboard...
    let (mut client, _) = WsClient::authenticated(&d.app, &scoped).await;
    let topic = format!("dashboard:{}", d.store);
    let reply = client
        .request(json!({ "type": "subscribe", "topic": topic, "snapshot": true }))
        .await;
    assert_eq!(reply["type"], "subscribed", "{reply}");
    assert_eq!(reply["snapshot"]["data"]["store_id"], d.store.as_str());
    // ... and, subscribed, the next state after an order, within a few
    // intervals (a new subscriber gets one at the next round anyway).
    let opened = d
        .app
        .post(
            &d.staff,
            &format!("/api/v1/stores/{}/orders", d.store),
            json!({ "service": { "kind": "takeaway" }, "currency": "EUR" }),
        )
        .await;
    assert_eq!(opened.0, 201, "{}", opened.1);
    loop {
        let frame = client.next().await;
        if frame["type"] == "state" && frame["data"]["orders_opened"] == 1 {
            assert_eq!(frame["data"]["open_orders"], 1);
            break;
        }
    }
    // Not the tenant's (it adds up stores it may not see), nor another
    // store's.
    let reply = client
        .request(json!({ "type": "subscribe", "topic": "dashboard", "snapshot": true }))
        .await;
    assert_eq!(reply["code"], "forbidden", "{reply}");
    let other = d.app.create_store(&d.admin, "Elsewhere").await;
    let reply = client
        .request(json!({ "type": "subscribe", "topic": format!("dashboard:{other}") }))
        .await;
    assert_eq!(reply["code"], "forbidden", "{reply}");
    let (status, body) = d.app.get(&scoped, "/api/v1/dashboard").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("forbidden")),
        "{body}"
    );
    let (status, body) = d
        .app
        .get(&scoped, &format!("/api/v1/stores/{other}/dashboard"))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("not_found")),
        "{body}"
    );
    // The tenant's dashboard adds up every store for an unscoped token.
    let (status, body) = d.app.get(&d.admin, "/api/v1/dashboard").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["orders_opened"], 1);
    assert_eq!(body["store_id"], Value::Null);
    // Dashboards are pushed over WebSocket only: an event stream of one is
    // refused, not left silent.
    let (status, body) = d
        .app
        .get(
            &d.admin,
            "/api/v1/events?topics=dashboard&since=0&wait_ms=0",
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_topic")),
        "{body}"
    );
}
