//! Menus and orders over real HTTP: a manager sets up the menu, staff take
//! an order through the kitchen to completion, refusals answer the codes
//! docs/api.md lists, and an `Idempotency-Key` adds a line once.

use larder_tests::{Backend, TestApp, read};
use serde_json::{Value, json};
use uuid::Uuid;

crate::for_each_backend!(orders:
    an_order_goes_from_the_till_through_the_kitchen_to_completion,
    refused_order_commands_answer_their_codes_and_append_nothing,
    roles_and_store_scoped_tokens_limit_menus_and_orders,
    a_line_added_with_an_idempotency_key_is_added_once,
    recipes_list_only_active_items_of_the_store,
);

/// A store with a grill station, two stock items and a burger on its menu.
struct Kitchen {
    app: TestApp,
    manager: String,
    staff: String,
    store: String,
    bun: String,
    beef: String,
    burger: String,
}

async fn put(app: &TestApp, token: &str, path: &str, body: Value) -> (u16, Value) {
    let response = app
        .client
        .put(app.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("the server answers");
    read(response).await
}

async fn patch(app: &TestApp, token: &str, path: &str, body: Value) -> (u16, Value) {
    let response = app
        .client
        .patch(app.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("the server answers");
    read(response).await
}

async fn kitchen(backend: Backend) -> Kitchen {
    let app = TestApp::spawn(backend).await;
    let admin = app.token("acme", "root", "admin").await;
    let manager = app.token("acme", "maria", "manager").await;
    let staff = app.token("acme", "sam", "staff").await;
    let store = app.create_store(&admin, "Diner").await;
    let bun = app.add_item(&manager, &store, "BUN", 50, 5).await;
    let beef = app.add_item(&manager, &store, "BEEF", 5000, 500).await;
    let (status, body) = put(
        &app,
        &manager,
        &format!("/api/v1/stores/{store}/menu/stations/grill"),
        json!({ "name": "Grill", "warn_after_secs": 300, "late_after_secs": 600 }),
    )
    .await;
    assert_eq!(
        (status, &body["events"]),
        (200, &json!(["StationSet"])),
        "{body}"
    );
    let (status, body) = app
        .post(
            &manager,
            &format!("/api/v1/stores/{store}/menu/items"),
            json!({
                "name": "Burger",
                "price": { "amount_minor": 1250, "currency": "gbp" },
                "station": "Grill",
                "recipe": [{ "item_id": bun, "quantity": 1 }, { "item_id": beef, "quantity": 180 }],
            }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["events"], json!(["MenuItemAdded"]));
    assert_eq!(body["stream"], json!(format!("menu-{store}")));
    let burger = body["menu_item_id"].as_str().expect("an id").to_owned();
    Kitchen {
        app,
        manager,
        staff,
        store,
        bun,
        beef,
        burger,
    }
}

impl Kitchen {
    /// Opens a dine-in order for two; returns its id.
    async fn open(&self) -> String {
        let (status, body) = self
            .app
            .post(
                &self.staff,
                &format!("/api/v1/stores/{}/orders", self.store),
                json!({ "service": { "kind": "dine_in", "table": "T4" }, "covers": 2, "currency": "GBP" }),
            )
            .await;
        assert_eq!(
            (status, &body["events"]),
            (201, &json!(["OrderOpened"])),
            "{body}"
        );
        body["id"].as_str().expect("an id").to_owned()
    }

    /// Adds `quantity` burgers; returns the line id.
    async fn add_burgers(&self, order: &str, quantity: i64) -> String {
        let (status, body) = self
            .app
            .post(
                &self.staff,
                &format!("/api/v1/orders/{order}/lines"),
                json!({ "menu_item_id": self.burger, "quantity": quantity, "modifiers": ["no onions"] }),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["events"], json!(["OrderLineAdded"]));
        body["line_id"].as_str().expect("a line id").to_owned()
    }

    async fn act(&self, order: &str, action: &str, body: Value) -> (u16, Value) {
        self.app
            .post(
                &self.staff,
                &format!("/api/v1/orders/{order}/{action}"),
                body,
            )
            .await
    }

    async fn order(&self, order: &str) -> Value {
        let (status, body) = self
            .app
            .get(&self.staff, &format!("/api/v1/orders/{order}"))
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }
}

pub async fn an_order_goes_from_the_till_through_the_kitchen_to_completion(backend: Backend) {
    let k = kitchen(backend).await;
    let (status, menu) = k
        .app
        .get(&k.staff, &format!("/api/v1/stores/{}/menu", k.store))
        .await;
    assert_eq!(status, 200, "{menu}");
    assert_eq!(menu["stations"][0]["key"], "grill");
    assert_eq!(
        menu["items"][0]["price"],
        json!({ "amount_minor": 1250, "currency": "GBP" })
    );
    assert_eq!(menu["items"][0]["active"], true);

    let order = k.open().await;
    let line = k.add_burgers(&order, 2).await;
    let fries = Uuid::new_v4().to_string();
    let (status, body) = k
        .app
        .post(
            &k.staff,
            &format!("/api/v1/orders/{order}/lines"),
            json!({ "line_id": fries, "menu_item_id": k.burger, "course": 2 }),
        )
        .await;
    assert_eq!((status, &body["line_id"]), (201, &json!(fries)), "{body}");

    let (status, body) = k.act(&order, "fire", json!({})).await;
    assert_eq!(
        (status, &body["events"]),
        (200, &json!(["OrderFired"])),
        "{body}"
    );
    for (line, action, events) in [
        (&line, "start", json!(["OrderLineStarted"])),
        (&line, "ready", json!(["OrderLineReady"])),
        (&fries, "ready", json!(["OrderLineReady", "OrderReady"])),
    ] {
        let (status, body) = k
            .act(&order, &format!("lines/{line}/{action}"), json!({}))
            .await;
        assert_eq!(
            (status, &body["events"]),
            (200, &events),
            "{action}: {body}"
        );
    }
    let read = k.order(&order).await;
    assert_eq!(read["order"]["status"], "ready");
    assert_eq!(read["order"]["lines"][0]["status"], "ready");
    assert_eq!(read["order"]["lines"][0]["modifiers"], json!(["no onions"]));
    assert_eq!(read["order"]["lines"][1]["course"], 2);
    assert_eq!(
        read["order"]["service"],
        json!({ "kind": "dine_in", "table": "T4" })
    );

    let (status, body) = k.act(&order, "serve", json!({})).await;
    assert_eq!(
        (status, &body["events"]),
        (200, &json!(["OrderServed"])),
        "{body}"
    );
    let (status, body) = k.act(&order, "complete", json!({})).await;
    assert_eq!(
        (status, &body["events"]),
        (200, &json!(["OrderCompleted"])),
        "{body}"
    );

    let read = k.order(&order).await;
    assert_eq!(read["order"]["status"], "completed");
    assert_eq!(
        read["order"]["total"],
        json!({ "amount_minor": 3 * 1250, "currency": "GBP" })
    );
    assert_eq!(read["version"], body["version"]);
    assert_eq!(read["position"], body["position"]);
    // The completion records the same total in the order's stream.
    let events = k
        .app
        .store
        .read_stream(&format!("order-{order}"), 1, 100)
        .await
        .expect("the order's events");
    let completed = events.last().expect("events");
    assert_eq!(completed.event_type, "OrderCompleted");
    let data = serde_json::to_value(&completed.data).expect("JSON");
    assert_eq!(data["total"]["amount_minor"], 3750, "{data}");
}

pub async fn refused_order_commands_answer_their_codes_and_append_nothing(backend: Backend) {
    let k = kitchen(backend).await;
    let order = k.open().await;
    let line = k.add_burgers(&order, 1).await;
    k.act(&order, "fire", json!({})).await;
    k.act(&order, &format!("lines/{line}/start"), json!({}))
        .await;

    let head = k.app.store.head().await.expect("head");
    let missing = Uuid::new_v4();
    for (path, body, status, code) in [
        (
            format!("lines/{line}/void"),
            json!({}),
            422,
            "line_already_started",
        ),
        (
            "lines".to_owned(),
            json!({ "menu_item_id": missing }),
            404,
            "menu_item_not_found",
        ),
        (
            format!("lines/{missing}/start"),
            json!({}),
            404,
            "line_not_found",
        ),
        ("fire".to_owned(), json!({}), 422, "nothing_to_fire"),
        ("serve".to_owned(), json!({}), 422, "order_not_ready"),
        ("complete".to_owned(), json!({}), 422, "order_not_served"),
        (
            "lines".to_owned(),
            json!({ "menu_item_id": k.burger, "quantity": 0 }),
            400,
            "invalid_quantity",
        ),
        (
            "fire".to_owned(),
            json!({ "course": 10 }),
            400,
            "invalid_course",
        ),
    ] {
        let (answered, answer) = k.act(&order, &path, body).await;
        assert_eq!(
            (answered, answer["code"].as_str()),
            (status, Some(code)),
            "{path}: {answer}"
        );
    }
    let (status, answer) = k
        .app
        .post(
            &k.staff,
            &format!("/api/v1/orders/{missing}/fire"),
            json!({}),
        )
        .await;
    assert_eq!((status, answer["code"].as_str()), (404, Some("not_found")));
    let (status, answer) = k
        .app
        .post(
            &k.staff,
            &format!("/api/v1/stores/{}/orders", k.store),
            json!({ "order_id": order, "service": { "kind": "takeaway" }, "currency": "GBP" }),
        )
        .await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (409, Some("order_already_exists")),
        "{answer}"
    );
    let (status, answer) = k
        .app
        .post(
            &k.staff,
            &format!("/api/v1/stores/{}/orders", k.store),
            json!({ "service": { "kind": "dine_in" }, "currency": "GBP" }),
        )
        .await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (400, Some("invalid_table"))
    );
    assert_eq!(
        k.app.store.head().await.expect("head"),
        head,
        "nothing appended"
    );

    // An inactive menu item is refused; active again, it is taken.
    let deactivate = format!(
        "/api/v1/stores/{}/menu/items/{}/deactivate",
        k.store, k.burger
    );
    let (status, body) = k.app.post(&k.manager, &deactivate, json!({})).await;
    assert_eq!(status, 200, "{body}");
    let (status, answer) = k
        .act(&order, "lines", json!({ "menu_item_id": k.burger }))
        .await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (422, Some("menu_item_inactive"))
    );
    let activate = deactivate.replace("deactivate", "activate");
    assert_eq!(k.app.post(&k.manager, &activate, json!({})).await.0, 200);
    k.add_burgers(&order, 1).await;
}

pub async fn roles_and_store_scoped_tokens_limit_menus_and_orders(backend: Backend) {
    let k = kitchen(backend).await;
    let viewer = k.app.token("acme", "vic", "viewer").await;
    let order = k.open().await;
    let line = k.add_burgers(&order, 1).await;
    let head = k.app.store.head().await.expect("head");

    // A viewer reads the menu and the order, and may do nothing else.
    let (status, _) = k.app.get(&viewer, &format!("/api/v1/orders/{order}")).await;
    assert_eq!(status, 200);
    let (status, _) = k
        .app
        .get(&viewer, &format!("/api/v1/stores/{}/menu", k.store))
        .await;
    assert_eq!(status, 200);
    for action in [
        "fire",
        &format!("lines/{line}/start"),
        &format!("lines/{line}/ready"),
    ] {
        let (status, answer) = k
            .app
            .post(
                &viewer,
                &format!("/api/v1/orders/{order}/{action}"),
                json!({}),
            )
            .await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (403, Some("forbidden")),
            "{action}"
        );
    }
    // Staff may not edit the menu.
    let (status, answer) = patch(
        &k.app,
        &k.staff,
        &format!("/api/v1/stores/{}/menu/items/{}", k.store, k.burger),
        json!({ "name": "Cheap burger" }),
    )
    .await;
    assert_eq!((status, answer["code"].as_str()), (403, Some("forbidden")));

    // A token for another store of the tenant sees neither the order nor the
    // menu: they answer like ones that do not exist.
    let admin = k.app.token("acme", "root", "admin").await;
    let other = k.app.create_store(&admin, "Annex").await;
    let scoped = k
        .app
        .token_for(json!({ "tenant": "acme", "sub": "ann", "role": "staff", "stores": [other] }))
        .await;
    let head = head.max(k.app.store.head().await.expect("head"));
    for (method, path) in [
        ("GET", format!("/api/v1/orders/{order}")),
        ("POST", format!("/api/v1/orders/{order}/fire")),
        ("POST", format!("/api/v1/orders/{order}/lines/{line}/start")),
        ("POST", format!("/api/v1/stores/{}/orders", k.store)),
        ("GET", format!("/api/v1/stores/{}/menu", k.store)),
    ] {
        let (status, answer) = match method {
            "GET" => k.app.get(&scoped, &path).await,
            _ => {
                let body = json!({ "service": { "kind": "takeaway" }, "currency": "GBP" });
                let body = if path.ends_with("/orders") {
                    body
                } else {
                    json!({})
                };
                k.app.post(&scoped, &path, body).await
            }
        };
        assert_eq!(
            (status, answer["code"].as_str()),
            (404, Some("not_found")),
            "{method} {path}"
        );
    }
    // Another tenant's token too.
    let globex = k.app.token("globex", "gus", "admin").await;
    let (status, _) = k.app.get(&globex, &format!("/api/v1/orders/{order}")).await;
    assert_eq!(status, 404);
    assert_eq!(
        k.app.store.head().await.expect("head"),
        head,
        "nothing appended"
    );
}

pub async fn a_line_added_with_an_idempotency_key_is_added_once(backend: Backend) {
    let k = kitchen(backend).await;
    let order = k.open().await;
    let add = || {
        k.app
            .client
            .post(k.app.url(&format!("/api/v1/orders/{order}/lines")))
            .bearer_auth(&k.staff)
            .header("idempotency-key", "till-7:line-1")
            .json(&json!({ "menu_item_id": k.burger, "quantity": 3 }))
            .send()
    };
    let first = add().await.expect("answered");
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.expect("JSON");
    // Off the menu meanwhile: the retry is still answered as the first was.
    let deactivate = format!(
        "/api/v1/stores/{}/menu/items/{}/deactivate",
        k.store, k.burger
    );
    assert_eq!(k.app.post(&k.manager, &deactivate, json!({})).await.0, 200);
    let again = add().await.expect("answered");
    assert_eq!(again.status(), 201);
    assert_eq!(
        again
            .headers()
            .get("idempotent-replayed")
            .map(|v| v.as_bytes()),
        Some(&b"true"[..])
    );
    let again: Value = again.json().await.expect("JSON");
    assert_eq!(again, first);
    let read = k.order(&order).await;
    let lines = read["order"]["lines"].as_array().expect("lines");
    assert_eq!(lines.len(), 1, "{read}");
    assert_eq!(lines[0]["line_id"], first["line_id"]);
    assert_eq!(lines[0]["quantity"], 3);
}

pub async fn recipes_list_only_active_items_of_the_store(backend: Backend) {
    let k = kitchen(backend).await;
    let admin = k.app.token("acme", "root", "admin").await;
    let other = k.app.create_store(&admin, "Annex").await;
    let elsewhere = k.app.add_item(&admin, &other, "BUN", 10, 0).await;
    let (status, body) = k
        .app
        .post(
            &k.manager,
            &format!("/api/v1/items/{}/remove", k.bun),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let head = k.app.store.head().await.expect("head");
    let add = |item: &str| {
        json!({
            "name": "Slider",
            "price": { "amount_minor": 600, "currency": "GBP" },
            "station": "grill",
            "recipe": [{ "item_id": k.beef, "quantity": 90 }, { "item_id": item, "quantity": 1 }],
        })
    };
    let path = format!("/api/v1/stores/{}/menu/items", k.store);
    for (item, code) in [
        (elsewhere.clone(), "ingredient_not_in_store"),
        (Uuid::new_v4().to_string(), "ingredient_not_in_store"),
        (k.bun.clone(), "ingredient_removed"),
    ] {
        let (status, answer) = k.app.post(&k.manager, &path, add(&item)).await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (422, Some(code)),
            "{answer}"
        );
        assert_eq!(answer["details"]["item_id"], json!(item));
    }
    let change = format!("/api/v1/stores/{}/menu/items/{}", k.store, k.burger);
    let (status, answer) = patch(
        &k.app,
        &k.manager,
        &change,
        json!({ "recipe": [{ "item_id": elsewhere, "quantity": 1 }] }),
    )
    .await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (422, Some("ingredient_not_in_store"))
    );
    assert_eq!(
        k.app.store.head().await.expect("head"),
        head,
        "nothing appended"
    );

    // A change of price alone keeps the recipe, removed bun and all.
    let (status, body) = patch(
        &k.app,
        &k.manager,
        &change,
        json!({ "price": { "amount_minor": 1300, "currency": "GBP" } }),
    )
    .await;
    assert_eq!(
        (status, &body["events"]),
        (200, &json!(["MenuItemChanged"])),
        "{body}"
    );
    let (status, answer) = k
        .app
        .post(
            &k.manager,
            &path,
            json!({
                "name": "Burger again", "price": { "amount_minor": 1, "currency": "GBP" },
                "station": "fry", "recipe": [{ "item_id": k.beef, "quantity": 1 }],
            }),
        )
        .await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (422, Some("unknown_station"))
    );
}
