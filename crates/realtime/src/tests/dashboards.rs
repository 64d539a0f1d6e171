//! Derived topics (dashboards): a snapshot, then `state` frames pushed by
//! the state publisher at most once per interval, however many events.

use std::sync::atomic::{AtomicU64, Ordering};

use super::*;
use crate::ports::MockStateProvider;

const INTERVAL: Duration = Duration::from_millis(1_000);

/// A state provider whose figures are "events of the store routed so far",
/// computed at the hub's position (`lag` behind it when set).
fn counting(hub_position: Arc<AtomicU64>, lag: Arc<AtomicU64>) -> MockStateProvider {
    let mut provider = MockStateProvider::new();
    provider.expect_state().returning(move |_, topic| {
        let at = hub_position
            .load(Ordering::Acquire)
            .saturating_sub(lag.load(Ordering::Acquire));
        Ok(Some((json!({ "topic": topic.to_string(), "at": at }), at)))
    });
    provider
}

struct Published {
    env: Env,
    position: Arc<AtomicU64>,
    lag: Arc<AtomicU64>,
}

fn published() -> Published {
    let env = env(RealtimeConfig::default());
    let (position, lag) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let provider = counting(position.clone(), lag.clone());
    env.hub.start_state_publisher(Arc::new(provider), INTERVAL);
    Published { env, position, lag }
}

impl Published {
    /// Commits and routes an event of `store`.
    async fn commit(&self, store: &str) {
        let at = self.env.log.commit_store(store);
        routed(&self.env.hub, at).await;
        self.position.store(at, Ordering::Release);
    }
}

/// The `state` frames received until `deadline`, with when they came.
async fn states_until(
    client: &mut Client,
    deadline: tokio::time::Instant,
) -> Vec<(tokio::time::Instant, Value)> {
    let mut states = Vec::new();
    loop {
        let next = tokio::time::timeout_at(deadline, client.output.recv()).await;
        let Ok(Some(frame)) = next else {
            return states;
        };
        if let Frame::Text(text) = frame {
            let value: Value = serde_json::from_str(&text).unwrap();
            if value["type"] == "state" {
                states.push((tokio::time::Instant::now(), value));
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_burst_of_events_gives_one_state_per_interval() {
    let p = published();
    let mut client = connect(&p.env.hub);
    client.auth("alice").await;
    let reply = client.subscribe("dashboard:s1", json!({})).await;
    assert_eq!(reply["type"], "subscribed", "{reply}");
    let start = tokio::time::Instant::now();
    // 500 events per second for 3 seconds, in steps of 10 ms, while the
    // client reads.
    let p = Arc::new(p);
    let load = tokio::spawn({
        let p = p.clone();
        async move {
            for _ in 0..300 {
                for _ in 0..5 {
                    p.commit("s1").await;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    });
    let states = states_until(&mut client, start + INTERVAL * 5).await;
    load.await.unwrap();
    // One per round at most: the new subscriber's first, then the bursts'.
    assert!(states.len() <= 5, "{} states in 5 intervals", states.len());
    assert!(
        states.len() >= 3,
        "the dashboard followed the load: {}",
        states.len()
    );
    for pair in states.windows(2) {
        assert!(
            pair[1].0 - pair[0].0 >= INTERVAL,
            "two states closer than the interval"
        );
    }
    let last = &states.last().unwrap().1;
    assert_eq!(last["topic"], "dashboard:s1");
    assert_eq!(
        last["position"], 1_500,
        "the last state caught up with the log"
    );
    assert!(
        states
            .iter()
            .all(|(_, s)| s["data"]["topic"] == "dashboard:s1")
    );
}

#[tokio::test(start_paused = true)]
async fn a_state_behind_the_event_that_made_it_stale_is_recomputed() {
    let p = published();
    let mut client = connect(&p.env.hub);
    client.auth("alice").await;
    client.subscribe("dashboard:s1", json!({})).await;
    // The read model lags: the first recompute sees position 0.
    p.lag.store(1, Ordering::Release);
    p.commit("s1").await;
    let start = tokio::time::Instant::now();
    let first = states_until(&mut client, start + INTERVAL + INTERVAL / 2).await;
    assert_eq!(first.last().unwrap().1["position"], 0);
    // It catches up: the next round pushes the figures at the event, with
    // no new event to mark it stale.
    p.lag.store(0, Ordering::Release);
    let next = states_until(&mut client, start + INTERVAL * 3).await;
    assert_eq!(next.last().unwrap().1["position"], 1, "{next:?}");
}

#[tokio::test(start_paused = true)]
async fn an_unchanged_dashboard_and_other_stores_are_not_pushed() {
    let p = published();
    let mut client = connect(&p.env.hub);
    client.auth("alice").await;
    client.subscribe("dashboard:s1", json!({})).await;
    let start = tokio::time::Instant::now();
    // The subscription's own state, at the first round.
    assert_eq!(
        states_until(&mut client, start + INTERVAL * 2).await.len(),
        1
    );
    // Another store's events do not concern this dashboard.
    p.commit("s2").await;
    assert!(
        states_until(&mut client, start + INTERVAL * 4)
            .await
            .is_empty()
    );
}

#[tokio::test(start_paused = true)]
async fn the_tenants_dashboard_follows_every_store_and_is_for_all_store_tokens() {
    let p = published();
    let mut scoped = connect(&p.env.hub);
    scoped.auth("scoped").await;
    let refused = scoped.subscribe("dashboard", json!({})).await;
    assert_eq!(refused["code"], "forbidden", "{refused}");
    let mine = scoped.subscribe("dashboard:s1", json!({})).await;
    assert_eq!(mine["type"], "subscribed", "{mine}");
    let theirs = scoped.subscribe("dashboard:s2", json!({})).await;
    assert_eq!(theirs["code"], "forbidden", "{theirs}");

    let mut all = connect(&p.env.hub);
    all.auth("alice").await;
    all.subscribe("dashboard", json!({})).await;
    let start = tokio::time::Instant::now();
    states_until(&mut all, start + INTERVAL * 2).await;
    p.commit("s2").await;
    let states = states_until(&mut all, start + INTERVAL * 4).await;
    assert_eq!(states.len(), 1, "{states:?}");
    assert_eq!(states[0].1["topic"], "dashboard");
    // No event is ever delivered on a dashboard topic.
    assert!(all.sync().await.iter().all(|m| m["type"] != "event"));
}
