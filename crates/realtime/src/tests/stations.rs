//! The kitchen topics: a store's orders, and a station's part of them.

use super::*;

impl Log {
    /// Commits an order event of `store` whose data is `data`.
    fn commit_order(&self, store: &str, data: Value) -> u64 {
        let event = self.append("acme", Some(store), "order", "o1");
        let mut event = Arc::unwrap_or_clone(event);
        event.data = data.into();
        self.events.lock().unwrap()[event.position as usize - 1] = event.clone();
        let position = event.position;
        self.feed.send(Arc::new(event)).unwrap();
        position
    }
}

async fn subscribed(hub: &Hub, topic: &str, since: Option<u64>) -> Client {
    let mut client = connect(hub);
    client.auth("alice").await;
    let extra = since.map_or(json!({}), |since| json!({ "since": since }));
    let reply = client.subscribe(topic, extra).await;
    assert_eq!(reply["type"], "subscribed", "{reply}");
    client
}

/// Everything delivered so far: (position, topic).
async fn delivered(client: &mut Client) -> Vec<(u64, String)> {
    client
        .sync()
        .await
        .iter()
        .filter(|m| m["type"] == "event")
        .map(|m| {
            let topic = m["topic"].as_str().unwrap().to_owned();
            (m["position"].as_u64().unwrap(), topic)
        })
        .collect()
}

#[tokio::test]
async fn a_station_gets_its_lines_and_whole_order_events_live_and_on_resume() {
    let env = env(RealtimeConfig::default());
    let mut grill = subscribed(&env.hub, "station:s1:grill", None).await;
    let mut bar = subscribed(&env.hub, "station:s1:bar", None).await;
    let mut orders = subscribed(&env.hub, "orders:s1", None).await;

    let started = env.log.commit_order("s1", json!({ "station": "grill" }));
    let fired = env.log.commit_order(
        "s1",
        json!({ "lines": [{ "station": "bar" }, { "station": "grill" }] }),
    );
    let rushed = env.log.commit_order("s1", json!({ "order_id": "o1" }));
    env.log.commit_store("s1");
    env.log.commit_order("s2", json!({ "station": "grill" }));
    let last = env.log.commit_order("s1", json!({ "station": "salad" }));
    routed(&env.hub, last).await;

    let on = |topic: &str, positions: &[u64]| -> Vec<(u64, String)> {
        positions.iter().map(|p| (*p, topic.to_owned())).collect()
    };
    assert_eq!(
        delivered(&mut grill).await,
        on("station:s1:grill", &[started, fired, rushed])
    );
    assert_eq!(
        delivered(&mut bar).await,
        on("station:s1:bar", &[fired, rushed]),
        "not the grill's line, nor another store's"
    );
    assert_eq!(
        delivered(&mut orders).await,
        on("orders:s1", &[started, fired, rushed, last]),
        "every order event of the store, no item event"
    );

    // A bar screen that was off resumes with exactly the same events.
    let mut resumed = subscribed(&env.hub, "station:s1:bar", Some(0)).await;
    assert_eq!(
        delivered(&mut resumed).await,
        on("station:s1:bar", &[fired, rushed])
    );

    // A station with no screen left gets nothing routed to its old room.
    bar.hang_up().await;
    let after = env.log.commit_order("s1", json!({}));
    routed(&env.hub, after).await;
    assert_eq!(
        delivered(&mut grill).await,
        on("station:s1:grill", &[after])
    );
    assert_eq!(
        delivered(&mut resumed).await,
        on("station:s1:bar", &[after]),
        "the room stays while one screen remains"
    );
}

#[tokio::test]
async fn a_store_scoped_token_may_not_watch_another_stores_kitchen() {
    let env = env(RealtimeConfig::default());
    let mut client = connect(&env.hub);
    client.auth("scoped").await;
    for topic in ["station:s2:grill", "orders:s2"] {
        let reply = client.subscribe(topic, json!({})).await;
        assert_eq!(reply["type"], "error", "{topic}: {reply}");
    }
    let reply = client.subscribe("station:s1:grill", json!({})).await;
    assert_eq!(reply["type"], "subscribed", "{reply}");
}
