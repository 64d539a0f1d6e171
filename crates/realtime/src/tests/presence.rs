//! The hub against a mocked presence port: it tells the port of a user's
//! first and last connection on this node only, announces what the port
//! says changed here, and what changed on other nodes.

use tokio::sync::broadcast;

use super::*;
use crate::presence::MockPresence;

fn joined(user: &str) -> PresenceChange {
    PresenceChange {
        tenant: "acme".into(),
        store: "s1".into(),
        user: user.into(),
        state: PresenceState::Joined,
    }
}

#[tokio::test]
async fn the_port_hears_of_a_users_first_and_last_connection_on_this_node_only() {
    let env = env(RealtimeConfig::default());
    let (changes, _) = broadcast::channel(8);
    let mut port = MockPresence::new();
    let sender = changes.clone();
    port.expect_changes().returning(move || sender.subscribe());
    port.expect_join()
        .withf(|tenant, store, user| (tenant, store, user) == ("acme", "s1", "alice"))
        .times(1)
        .returning(|_, _, user| Some(joined(user)));
    port.expect_users()
        .returning(|_, _| vec!["alice".into(), "zoe-on-another-node".into()]);
    port.expect_leave()
        .withf(|tenant, store, user| (tenant, store, user) == ("acme", "s1", "alice"))
        .times(1)
        .returning(|_, _, _| None);
    env.hub.use_presence(Arc::new(port));

    let mut watcher = connect(&env.hub);
    watcher.auth("bob").await;
    watcher.subscribe("store:s1", json!({})).await;
    let mut tab1 = connect(&env.hub);
    tab1.auth("alice").await;
    let mut tab2 = connect(&env.hub);
    tab2.auth("alice").await;

    tab1.send(json!({ "type": "presence", "id": "p1", "store": "s1" }));
    assert_eq!(
        tab1.message().await["users"],
        json!(["alice", "zoe-on-another-node"])
    );
    assert_eq!(watcher.message().await["state"], "joined");
    tab2.send(json!({ "type": "presence", "id": "p2", "store": "s1" }));
    assert_eq!(tab2.message().await["type"], "presence");

    tab1.hang_up().await;
    // The port said alice is still present elsewhere: nothing to announce.
    tab2.hang_up().await;
    assert!(watcher.sync().await.is_empty());
}

#[tokio::test]
async fn a_change_made_on_another_node_is_announced_to_the_stores_room() {
    let env = env(RealtimeConfig::default());
    let (changes, _) = broadcast::channel(8);
    let mut port = MockPresence::new();
    let sender = changes.clone();
    port.expect_changes().returning(move || sender.subscribe());
    env.hub.use_presence(Arc::new(port));

    let mut watcher = connect(&env.hub);
    watcher.auth("bob").await;
    watcher.subscribe("store:s1", json!({})).await;
    let mut elsewhere = connect(&env.hub);
    elsewhere.auth("bob").await;
    elsewhere.subscribe("store:s2", json!({})).await;

    changes
        .send(PresenceChange {
            store: "s2".into(),
            ..joined("zoe")
        })
        .unwrap();
    changes
        .send(PresenceChange {
            tenant: "globex".into(),
            ..joined("mallory")
        })
        .unwrap();
    changes.send(joined("zoe")).unwrap();
    assert_eq!(
        watcher.message().await,
        json!({ "type": "presence_changed", "store": "s1", "user": "zoe", "state": "joined" }),
        "neither the other store's change nor the other tenant's"
    );
    assert_eq!(elsewhere.message().await["store"], "s2");
}

#[tokio::test]
async fn the_port_hears_each_count_and_connections_elsewhere_count_against_the_limit() {
    let env = env(RealtimeConfig {
        max_connections_per_user: 3,
        ..RealtimeConfig::default()
    });
    let (changes, _) = broadcast::channel(8);
    let counts = Arc::new(Mutex::new(Vec::new()));
    let mut port = MockPresence::new();
    port.expect_changes().returning(move || changes.subscribe());
    let heard = counts.clone();
    port.expect_connections_here()
        .returning(move |tenant, user, count| {
            heard
                .lock()
                .unwrap()
                .push((tenant.to_owned(), user.to_owned(), count))
        });
    // Another node holds one of alice's connections.
    port.expect_connections_elsewhere()
        .returning(|_, user| u32::from(user == "alice"));
    env.hub.use_presence(Arc::new(port));

    let first = signed_in(&env.hub, "alice").await;
    let second = signed_in(&env.hub, "alice").await;
    refused_one_too_many(&env.hub, "alice").await;
    first.hang_up().await;
    second.hang_up().await;
    let alice = |count| ("acme".to_owned(), "alice".to_owned(), count);
    assert_eq!(
        *counts.lock().unwrap(),
        vec![alice(1), alice(2), alice(1), alice(0)],
        "every change of alice's count here, and nothing for the refused one"
    );
}

#[tokio::test]
async fn without_a_per_user_limit_the_port_counts_nothing() {
    let (changes, _) = broadcast::channel(8);
    let mut port = MockPresence::new();
    port.expect_changes().returning(move || changes.subscribe());
    port.expect_connections_here().never();
    port.expect_connections_elsewhere().never();
    let env = env(RealtimeConfig::default());
    env.hub.use_presence(Arc::new(port));
    let mut clients = Vec::new();
    for _ in 0..3 {
        let mut client = connect(&env.hub);
        client.auth("alice").await;
        clients.push(client);
    }
    for client in clients {
        client.hang_up().await;
    }
}
