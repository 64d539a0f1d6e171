//! Commands: one `Idempotency-Key` per logical command, kept across its
//! retries, so the server applies it once; refusals are not retried.

use larder_client::{Command, Error};
use larder_tests::{Backend, TestApp};
use serde_json::json;

use crate::proxy::Proxy;
use crate::{client, item_events};

fn sale(item: &str) -> Command {
    Command::post(
        format!("/items/{item}/adjust"),
        &json!({ "delta": -1, "reason": "sold" }),
    )
    .expect("a command")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_sent_again_with_its_key_applies_once() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let token = app.token("acme", "alice", "admin").await;
    let store = app.create_store(&token, "Main").await;
    let item = app.add_item(&token, &store, "SOAP", 10, 0).await;
    let larder = client(&app.address, &app.address, "alice");

    let first = larder
        .command(sale(&item).key("sale-1"))
        .await
        .expect("applied");
    assert!(!first.replayed);
    assert_eq!(first.key, "sale-1");
    let again = larder
        .command(sale(&item).key("sale-1"))
        .await
        .expect("answered");
    assert!(again.replayed, "answered from the key");
    assert_eq!(again.position(), first.position());
    assert_eq!(again.body, first.body);
    assert_eq!(
        item_events(&app, &token, &item).await,
        ["ItemAdded", "StockAdjusted"]
    );
}

/// The server applies the command but its answer is lost on the way: the
/// client sends it again with the same key and gets the original answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_whose_answer_was_lost_is_retried_with_its_key_and_applied_once() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let token = app.token("acme", "alice", "admin").await;
    let store = app.create_store(&token, "Main").await;
    let item = app.add_item(&token, &store, "SOAP", 10, 0).await;
    let proxy = Proxy::start(&app.address).await;
    let larder = client(&proxy.address, &app.address, "alice");

    proxy.swallow_answers(2);
    let answer = larder.command(sale(&item)).await.expect("applied");
    assert_eq!(answer.attempts, 3, "two answers lost, the third arrives");
    assert!(answer.replayed, "the first attempt had been applied");
    assert_eq!(answer.body["version"], 2);
    assert_eq!(
        item_events(&app, &token, &item).await,
        ["ItemAdded", "StockAdjusted"],
        "applied once"
    );

    // A new logical command gets a new key: applied again.
    let next = larder.command(sale(&item)).await.expect("applied");
    assert_ne!(next.key, answer.key);
    assert!(!next.replayed);
    assert_eq!(next.attempts, 1);
    assert_eq!(next.version(), Some(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_command_is_not_retried() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let token = app.token("acme", "alice", "admin").await;
    let store = app.create_store(&token, "Main").await;
    let item = app.add_item(&token, &store, "SOAP", 1, 0).await;
    let larder = client(&app.address, &app.address, "alice");

    let too_many = Command::post(
        format!("/items/{item}/adjust"),
        &json!({ "delta": -5, "reason": "sold" }),
    )
    .expect("a command");
    match larder.command(too_many).await {
        Err(Error::Command(error)) => {
            assert_eq!(
                (error.status, error.code.as_str()),
                (422, "insufficient_stock")
            );
            assert_eq!(error.attempts, 1);
            assert!(!error.transient);
            assert_eq!(error.details["available"], 1);
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let stale = sale(&item).if_match(7);
    match larder.command(stale).await {
        Err(Error::Command(error)) => {
            assert_eq!((error.status, error.attempts), (409, 1));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(item_events(&app, &token, &item).await, ["ItemAdded"]);
}

/// Without an answer after every attempt, the command is undecided: the
/// error says so and carries the key to send it again with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_without_any_answer_is_undecided_and_keeps_its_key() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let token = app.token("acme", "alice", "admin").await;
    let store = app.create_store(&token, "Main").await;
    let item = app.add_item(&token, &store, "SOAP", 10, 0).await;
    let proxy = Proxy::start(&app.address).await;
    let larder = client(&proxy.address, &app.address, "alice");

    proxy.swallow_answers(5);
    let error = match larder.command(sale(&item)).await {
        Err(Error::Command(error)) => error,
        other => panic!("expected no answer, got {other:?}"),
    };
    assert!(error.transient);
    assert_eq!((error.status, error.attempts), (0, 5));
    let again = larder
        .command(sale(&item).key(error.key.clone()))
        .await
        .expect("answered");
    assert!(again.replayed);
    assert_eq!(
        item_events(&app, &token, &item).await,
        ["ItemAdded", "StockAdjusted"]
    );
}
