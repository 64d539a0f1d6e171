//! Orders end to end over real HTTP and real WebSockets: a fired order
//! reaches each station's screen (`station:{store}:{station}`) with only
//! its own lines, the kitchen bumps, the till (`orders:{store}`) sees the
//! order ready, and stock follows the order by the recipe exactly once,
//! also when the server restarts and the order-to-stock process manager
//! reads the order again.

use larder_tests::ws::WsClient;
use larder_tests::{Backend, TestApp};
use serde_json::{Value, json};

crate::for_each_backend!(orders:
    a_fired_order_reaches_its_stations_and_the_till_sees_it_ready,
    stock_follows_an_order_once_across_a_restart_that_reads_it_again,
);

/// A store with a grill and a bar, a bun and a beer keg, and a dish on
/// each station.
struct Kitchen {
    app: TestApp,
    staff: String,
    viewer: String,
    store: String,
    bun: String,
    burger: String,
    beer: String,
}

async fn kitchen(app: TestApp) -> Kitchen {
    let admin = app.token("acme", "root", "admin").await;
    let manager = app.token("acme", "maria", "manager").await;
    let staff = app.token("acme", "sam", "staff").await;
    let viewer = app.token("acme", "vic", "viewer").await;
    let store = app.create_store(&admin, "Diner").await;
    let bun = app.add_item(&manager, &store, "BUN", 50, 5).await;
    let keg = app.add_item(&manager, &store, "BEER", 100, 10).await;
    for station in ["grill", "bar"] {
        let response = app
            .client
            .put(app.url(&format!("/api/v1/stores/{store}/menu/stations/{station}")))
            .bearer_auth(&manager)
            .json(&json!({ "name": station, "warn_after_secs": 300, "late_after_secs": 600 }))
            .send()
            .await
            .expect("the server answers");
        assert_eq!(response.status(), 200);
    }
    let dish = |name: &'static str, station: &'static str, item: String| {
        let (app, manager, store) = (&app, manager.clone(), store.clone());
        async move {
            let (status, body) = app
                .post(
                    &manager,
                    &format!("/api/v1/stores/{store}/menu/items"),
                    json!({
                        "name": name, "station": station,
                        "price": { "amount_minor": 900, "currency": "EUR" },
                        "recipe": [{ "item_id": item, "quantity": 1 }],
                    }),
                )
                .await;
            assert_eq!(status, 201, "{body}");
            body["menu_item_id"].as_str().expect("an id").to_owned()
        }
    };
    let burger = dish("Burger", "grill", bun.clone()).await;
    let beer = dish("Beer", "bar", keg).await;
    Kitchen {
        app,
        staff,
        viewer,
        store,
        bun,
        burger,
        beer,
    }
}

impl Kitchen {
    /// A viewer's connection, live on `topic` from the head.
    async fn screen(&self, topic: &str) -> WsClient {
        let (mut client, _) = WsClient::authenticated(&self.app, &self.viewer).await;
        client.subscribe_from_head(&self.app, topic).await;
        client
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let (status, answer) = self.app.post(&self.staff, path, body).await;
        assert!((200..300).contains(&status), "{path}: {status} {answer}");
        answer
    }

    /// Opens a takeaway order with `burgers` burgers and a beer and fires
    /// it; returns the order id and the two line ids.
    async fn fire(&self, burgers: i64) -> (String, String, String) {
        let opened = self
            .post(
                &format!("/api/v1/stores/{}/orders", self.store),
                json!({ "service": { "kind": "takeaway" }, "currency": "EUR" }),
            )
            .await;
        let order = opened["id"].as_str().expect("an order id").to_owned();
        let lines = format!("/api/v1/orders/{order}/lines");
        let burger = self
            .post(
                &lines,
                json!({ "menu_item_id": self.burger, "quantity": burgers }),
            )
            .await["line_id"]
            .as_str()
            .expect("a line id")
            .to_owned();
        let beer = self
            .post(&lines, json!({ "menu_item_id": self.beer }))
            .await["line_id"]
            .as_str()
            .expect("a line id")
            .to_owned();
        let fired = self
            .post(&format!("/api/v1/orders/{order}/fire"), json!({}))
            .await;
        assert_eq!(fired["events"], json!(["OrderFired"]));
        (order, burger, beer)
    }

    /// An item's quantity in the read model, once it has applied
    /// `position`.
    async fn quantity(&self, item: &str, position: u64) -> i64 {
        let path = format!("/api/v1/items/{item}?min_position={position}");
        let (status, body) = self.app.get(&self.viewer, &path).await;
        assert_eq!(status, 200, "{body}");
        body["item"]["quantity"].as_i64().expect("a quantity")
    }
}

/// The event types a client receives up to and including `last`.
async fn types_until(client: &mut WsClient, last: &str) -> Vec<Value> {
    let mut events = Vec::new();
    loop {
        let frame = client.next_event().await;
        let done = frame["event"]["type"] == last;
        events.push(frame["event"].clone());
        if done {
            return events;
        }
    }
}

fn names(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["type"].as_str().unwrap_or("?"))
        .collect()
}

/// Waits for the order-to-stock process manager's next `sold` adjustment
/// on the item's topic; returns its position and the event.
async fn sold(client: &mut WsClient) -> (u64, Value) {
    loop {
        let frame = client.next_event().await;
        let event = &frame["event"];
        if event["type"] == "StockAdjusted"
            && event["data"]["reason"] == "sold"
            && event["metadata"]["actor"] == "larder:order-stock"
        {
            return (
                frame["position"].as_u64().expect("a position"),
                event.clone(),
            );
        }
    }
}

pub async fn a_fired_order_reaches_its_stations_and_the_till_sees_it_ready(backend: Backend) {
    let k = kitchen(TestApp::spawn(backend).await).await;
    let mut grill = k.screen(&format!("station:{}:grill", k.store)).await;
    let mut bar = k.screen(&format!("station:{}:bar", k.store)).await;
    let mut till = k.screen(&format!("orders:{}", k.store)).await;
    let mut stock = k.screen(&format!("item:{}", k.bun)).await;

    let (order, burger, beer) = k.fire(2).await;
    let on_grill = types_until(&mut grill, "OrderFired").await;
    assert_eq!(
        names(&on_grill),
        ["OrderOpened", "OrderLineAdded", "OrderFired"]
    );
    assert_eq!(on_grill[1]["data"]["station"], "grill", "only its own line");
    let on_bar = types_until(&mut bar, "OrderFired").await;
    assert_eq!(
        names(&on_bar),
        ["OrderOpened", "OrderLineAdded", "OrderFired"]
    );
    assert_eq!(on_bar[1]["data"]["station"], "bar");

    for line in [&burger, &beer] {
        k.post(
            &format!("/api/v1/orders/{order}/lines/{line}/ready"),
            json!({}),
        )
        .await;
    }
    let on_till = types_until(&mut till, "OrderReady").await;
    assert_eq!(
        names(&on_till),
        [
            "OrderOpened",
            "OrderLineAdded",
            "OrderLineAdded",
            "OrderFired",
            "OrderLineReady",
            "OrderLineReady",
            "OrderReady"
        ]
    );
    let on_grill = types_until(&mut grill, "OrderReady").await;
    assert_eq!(
        names(&on_grill),
        ["OrderLineReady", "OrderReady"],
        "the grill's bump, and the whole order's ready; not the bar's bump"
    );

    let (position, sale) = sold(&mut stock).await;
    assert_eq!(sale["data"]["delta"], -2, "{sale}");
    assert_eq!(k.quantity(&k.bun, position).await, 48);
}

/// Sets the order-to-stock process manager's checkpoint back to the start,
/// as if the server had stopped before it saved any.
async fn rewind_order_stock(app: &TestApp) {
    use sqlx::Connection;
    let url = &app.settings.database_url;
    let statement =
        |table: String| format!("UPDATE {table} SET position = 0 WHERE name = 'order_stock'");
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

pub async fn stock_follows_an_order_once_across_a_restart_that_reads_it_again(backend: Backend) {
    let mut k = kitchen(TestApp::spawn(backend).await).await;
    let mut stock = k.screen(&format!("item:{}", k.bun)).await;
    k.fire(2).await;
    let (position, _) = sold(&mut stock).await;
    assert_eq!(k.quantity(&k.bun, position).await, 48);
    stock.close().await;

    // The server stops; its process manager will read every order again.
    k.app.stop().await.expect("stopped");
    rewind_order_stock(&k.app).await;
    let settings = k.app.settings.clone();
    let restarted = TestApp::start(settings, None).await;
    // The first app owns the database (file or schema) and cleans it up
    // when dropped, at the end.
    let _first = std::mem::replace(&mut k.app, restarted);
    // Demo tokens are signed with a key of the server's run: mint again.
    k.staff = k.app.token("acme", "sam", "staff").await;
    k.viewer = k.app.token("acme", "vic", "viewer").await;

    // A second order after the restart: its sale comes after the first
    // order was read again (the process manager goes in log order).
    let mut stock = k.screen(&format!("item:{}", k.bun)).await;
    k.fire(3).await;
    let (position, sale) = sold(&mut stock).await;
    assert_eq!(sale["data"]["delta"], -3, "{sale}");
    assert_eq!(
        k.quantity(&k.bun, position).await,
        45,
        "50 - 2 - 3: the first order's sale was not taken twice"
    );
    let (status, history) = k
        .app
        .get(&k.viewer, &format!("/api/v1/items/{}/events", k.bun))
        .await;
    assert_eq!(status, 200, "{history}");
    let sales = history["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["type"] == "StockAdjusted" && e["data"]["reason"] == "sold")
        .count();
    assert_eq!(sales, 2, "one sale per order line: {history}");
}
