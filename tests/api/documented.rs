//! The limits and defaults the documentation states are the ones the server
//! has: README's configuration table and the bounds in docs/*.md are checked
//! against the flags' defaults (clap) and the OpenAPI document, so they
//! cannot drift apart again.

use std::collections::BTreeMap;

use clap::CommandFactory;
use larder_server::Settings;
use larder_tests::{Backend, TestApp};
use serde_json::Value;

fn doc(path: &str) -> String {
    let path = format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every flag's environment variable and default, as `larder --help` has them.
fn flags() -> BTreeMap<String, (Option<String>, Option<String>)> {
    Settings::command()
        .get_arguments()
        .filter_map(|arg| {
            let long = format!("--{}", arg.get_long()?);
            let env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
            let default = arg
                .get_default_values()
                .first()
                .map(|d| d.to_string_lossy().into_owned());
            Some((long, (env, default)))
        })
        .collect()
}

fn default_of(flag: &str) -> u64 {
    flags()[flag]
        .1
        .as_deref()
        .unwrap_or_else(|| panic!("{flag} has a default"))
        .parse()
        .unwrap()
}

/// Whether `text` says `expected`, however its lines are wrapped.
fn assert_says(path: &str, text: &str, expected: &str) {
    let flat = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat(text).contains(&flat(expected)),
        "{path} should say `{expected}` (the server's actual value)"
    );
}

fn backticked(cell: &str) -> Vec<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

#[test]
fn readme_lists_every_flag_with_its_environment_variable_and_default() {
    let readme = doc("README.md");
    let flags = flags();
    let mut listed = Vec::new();
    for row in readme.lines().filter(|l| l.starts_with("| `--")) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let (names, envs, defaults) = (
            backticked(cells[1]),
            backticked(cells[2]),
            backticked(cells[3]),
        );
        for (i, name) in names.iter().enumerate() {
            let (env, default) = flags
                .get(name)
                .unwrap_or_else(|| panic!("README lists {name}, which the server does not have"));
            assert_eq!(env.as_ref(), envs.get(i), "README: environment of {name}");
            match default {
                Some(default) => {
                    assert_eq!(Some(default), defaults.get(i), "README: default of {name}")
                }
                None => assert!(
                    defaults.get(i).is_none(),
                    "README gives {name} a default it does not have"
                ),
            }
            listed.push(name.clone());
        }
    }
    for flag in flags.keys() {
        if flag != "--help" && flag != "--version" {
            assert!(
                listed.contains(flag),
                "README's configuration table misses {flag}"
            );
        }
    }
}

#[test]
fn the_real_time_limits_in_the_docs_are_the_flags_defaults() {
    let protocol = doc("docs/protocol.md");
    let path = "docs/protocol.md";
    let row = |flag: &str, value: String| format!("(`{flag}`) | {value} |");
    for (flag, unit) in [
        ("--ws-max-frame-bytes", " bytes"),
        ("--ws-outbound-queue", " frames"),
        ("--ws-max-subscriptions", ""),
        ("--ws-max-connections-per-ip", ""),
        ("--ws-heartbeat-ms", " ms"),
        ("--ws-auth-timeout-ms", " ms"),
    ] {
        let value = default_of(flag);
        let expected = if unit == " bytes" {
            row(flag, format!("{value} bytes ({} KiB)", value / 1024))
        } else {
            row(flag, format!("{value}{unit}"))
        };
        assert_says(path, &protocol, &expected);
    }
    assert_says(
        path,
        &protocol,
        &format!(
            "(`--ws-rate-per-sec`, `--ws-rate-burst`) | {}/s, burst {} |",
            default_of("--ws-rate-per-sec"),
            default_of("--ws-rate-burst")
        ),
    );
    // The welcome frame in README's example carries the heartbeat.
    assert_says(
        "README.md",
        &doc("README.md"),
        &format!("\"heartbeat_ms\":{}", default_of("--ws-heartbeat-ms")),
    );
}

#[test]
fn the_http_bounds_in_the_docs_are_the_flags_defaults() {
    let (api, operations) = (doc("docs/api.md"), doc("docs/operations.md"));
    let body = default_of("--max-body-bytes");
    let wait = default_of("--min-position-wait-ms");
    let timeout = default_of("--request-timeout-secs");
    assert_says(
        "docs/api.md",
        &api,
        &format!("`--max-body-bytes`, {} KiB by default", body / 1024),
    );
    assert_says(
        "docs/api.md",
        &api,
        &format!("`--min-position-wait-ms`, {} s by default", wait / 1000),
    );
    assert_says(
        "docs/operations.md",
        &operations,
        &format!("| request body | {} KiB (`--max-body-bytes`)", body / 1024),
    );
    assert_says(
        "docs/operations.md",
        &operations,
        &format!("| request time | {timeout} s (`--request-timeout-secs`)"),
    );
    assert_says(
        "docs/operations.md",
        &operations,
        &format!(
            "| `min_position` wait | {} s (`--min-position-wait-ms`)",
            wait / 1000
        ),
    );
}

/// A query parameter of an operation in the OpenAPI document.
fn parameter<'a>(openapi: &'a Value, path: &str, name: &str) -> &'a Value {
    openapi["paths"][path]["get"]["parameters"]
        .as_array()
        .unwrap_or_else(|| panic!("{path} has parameters"))
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("{path} has `{name}`"))
}

/// The number after `word ` in `text`, e.g. `at most 1000`.
fn number_after(text: &str, word: &str) -> u64 {
    let rest = &text[text
        .find(word)
        .unwrap_or_else(|| panic!("`{word}` in {text}"))
        + word.len()..];
    rest.chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_wait_bounds_in_the_docs_are_the_openapi_bounds() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let openapi: Value = app
        .client
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (api, protocol, operations) = (
        doc("docs/api.md"),
        doc("docs/protocol.md"),
        doc("docs/operations.md"),
    );

    let mut most = 0;
    for (path, route) in [
        (
            "/api/v1/stores/{store_id}/items",
            "GET /api/v1/stores/{store_id}/items?",
        ),
        (
            "/api/v1/stores/{store_id}/activity",
            "GET /api/v1/stores/{store_id}/activity?",
        ),
        (
            "/api/v1/items/{item_id}/events",
            "GET /api/v1/items/{item_id}/events?",
        ),
        ("/api/v1/notifications", "GET /api/v1/notifications?"),
    ] {
        let limit = &parameter(&openapi, path, "limit")["schema"];
        let (min, max, default) = (&limit["minimum"], &limit["maximum"], &limit["default"]);
        let line = api
            .lines()
            .find(|l| l.contains(route))
            .unwrap_or_else(|| panic!("docs/api.md lists {route}"));
        assert!(
            line.contains(&format!("`limit` {min}..{max} (default {default})")),
            "docs/api.md: {route} should say `limit` {min}..{max} (default {default})"
        );
        most = most.max(max.as_u64().unwrap());
    }
    assert_says(
        "docs/operations.md",
        &operations,
        &format!("| page size | {most} items or activity entries"),
    );

    // Long-poll caps larger values, so the document states its bounds in words.
    let wait = parameter(&openapi, "/api/v1/events", "wait_ms")["description"]
        .as_str()
        .unwrap();
    let limit = parameter(&openapi, "/api/v1/events", "limit")["description"]
        .as_str()
        .unwrap();
    for (name, description) in [("limit", limit), ("wait_ms", wait)] {
        assert_says(
            "docs/protocol.md",
            &protocol,
            &format!(
                "| long-poll `{name}` | default {}, at most {} |",
                number_after(description, "default "),
                number_after(description, "at most ")
            ),
        );
    }
    assert_says(
        "docs/protocol.md",
        &protocol,
        &format!(
            "(up to `limit`: default {}, at most {})",
            number_after(limit, "default "),
            number_after(limit, "at most ")
        ),
    );
    assert_says(
        "docs/protocol.md",
        &protocol,
        &format!(
            "(default {}, at most {} ms)",
            number_after(wait, "default "),
            number_after(wait, "at most ")
        ),
    );

    // `min_position` waits as long as the flag says.
    let min_position = parameter(&openapi, "/api/v1/stores", "min_position")["description"]
        .as_str()
        .unwrap();
    assert!(
        min_position.contains(&format!(
            "at most {} s by default",
            default_of("--min-position-wait-ms") / 1000
        )),
        "the OpenAPI description of min_position: {min_position}"
    );
}

/// Long-poll's page bounds, as the document states them, are what it does:
/// the default page and the cap on a larger `limit`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_pages_are_as_large_as_documented() {
    use larder_store::{ExpectedVersion, Metadata, NewEvent};
    let app = TestApp::spawn(Backend::Sqlite).await;
    let openapi: Value = app
        .client
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let limit = parameter(&openapi, "/api/v1/events", "limit")["description"]
        .as_str()
        .unwrap();
    let (default, most) = (
        number_after(limit, "default "),
        number_after(limit, "at most "),
    );

    // More stock adjustments than the largest page, written in one append.
    let token = app.token("acme", "alice", "admin").await;
    let store = app.create_store(&token, "Main").await;
    let item = app.add_item(&token, &store, "RICE", 0, 0).await;
    let metadata = Metadata {
        tenant: "acme".into(),
        store: Some(store.clone()),
        entity_type: "item".into(),
        entity_id: item.clone(),
        ..Metadata::default()
    };
    let events = (1..=most + 1)
        .map(|quantity| {
            let data = serde_json::json!({ "item_id": item, "store_id": store, "delta": 1,
                "quantity": quantity, "reason": "received", "note": null });
            NewEvent::new("StockAdjusted", 1, data, metadata.clone())
        })
        .collect();
    app.store
        .append(&format!("item-{item}"), ExpectedVersion::Exact(1), events)
        .await
        .unwrap();

    for (query, expected) in [
        (String::new(), default),
        (format!("&limit={}", most * 5), most),
    ] {
        let (status, body) = app
            .get(
                &token,
                &format!("/api/v1/events?topics=tenant&since=0&wait_ms=0{query}"),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body["events"].as_array().unwrap().len() as u64,
            expected,
            "a page of {query:?}"
        );
    }
}

/// The `Command-Id` bound in docs/api.md and docs/protocol.md is the one the
/// OpenAPI document states on every command, and the waiting `executed`
/// frames' bound in docs/protocol.md is the hub's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_id_bounds_in_the_docs_are_the_servers() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let openapi: Value = app
        .client
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut commands = 0;
    let mut patterns = std::collections::BTreeSet::new();
    for (path, item) in openapi["paths"].as_object().unwrap() {
        let Some(parameters) = item["post"]["parameters"].as_array() else {
            continue;
        };
        if let Some(command_id) = parameters.iter().find(|p| p["name"] == "Command-Id") {
            assert_eq!(command_id["in"], "header", "{path}");
            patterns.insert(command_id["schema"]["pattern"].as_str().unwrap().to_owned());
            commands += 1;
        } else {
            assert!(
                !path.starts_with("/api/v1/stores") && !path.starts_with("/api/v1/items/"),
                "the command {path} takes a Command-Id"
            );
        }
    }
    assert!(commands >= 9, "{commands} commands take a Command-Id");
    let pattern = patterns.pop_first().unwrap();
    assert!(patterns.is_empty(), "one pattern for every command");
    let most = number_after(&pattern, ",");
    let (api, protocol) = (doc("docs/api.md"), doc("docs/protocol.md"));
    let rule = format!("1 to {most} ASCII letters, digits, `-`, `_`, `.` or `:`");
    assert_says("docs/api.md", &api, &rule);
    assert_says("docs/protocol.md", &protocol, &rule);
    assert_says("docs/api.md", &api, &format!("over {most} characters"));

    let waiting = larder_realtime::MAX_WAITING_COMMAND_FRAMES;
    let spelled = format!("{},{:03}", waiting / 1000, waiting % 1000);
    assert_says(
        "docs/protocol.md",
        &protocol,
        &format!("(`MAX_WAITING_COMMAND_FRAMES`) | {spelled} per server |"),
    );
    assert_says(
        "docs/protocol.md",
        &protocol,
        &format!("At most {spelled} `executed` frames wait"),
    );
}

/// The API's notification kinds and priorities are written out for the
/// OpenAPI document beside the domain's enums: they must name the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_notification_kinds_and_priorities_in_the_openapi_document_are_the_domains() {
    use larder_domain::{NotificationKind, Priority};
    let app = TestApp::spawn(Backend::Sqlite).await;
    let openapi: Value = app
        .client
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names = |schema: &str| -> Vec<Value> {
        openapi["components"]["schemas"][schema]["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("{schema} lists its values"))
            .clone()
    };
    let kinds: Vec<Value> = NotificationKind::ALL
        .iter()
        .map(|kind| serde_json::to_value(kind).unwrap())
        .collect();
    assert_eq!(names("KindName"), kinds);
    let priorities = names("PriorityName");
    assert_eq!(priorities.len(), 4, "{priorities:?}");
    for name in priorities {
        serde_json::from_value::<Priority>(name.clone())
            .unwrap_or_else(|e| panic!("{name} is not a priority: {e}"));
    }
}
