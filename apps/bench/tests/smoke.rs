//! `larder-bench` against a real server: every change it drives reaches
//! every client, and it says so in its JSON line.

use larder_tests::{Backend, SECRET, TestApp};
use serde_json::Value;

async fn bench(app: &TestApp, args: &[&str]) -> Value {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_larder-bench"))
        .args(["--url", &app.address, "--jwt-secret", SECRET])
        .args(args)
        .output()
        .await
        .expect("larder-bench runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "larder-bench failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let last = stdout.lines().last().expect("output");
    serde_json::from_str(last).expect("the last line is JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_run_reports_every_delivery_exactly_once() {
    let app = TestApp::spawn_with_secret(Backend::Sqlite).await;
    let report = bench(
        &app,
        &[
            "--items",
            "3",
            "--scenario",
            "fanout",
            "--clients",
            "5",
            "--rate",
            "40",
            "--seconds",
            "1",
        ],
    )
    .await;
    let run = &report["runs"][0];
    assert_eq!(report["clean"], true, "{report}");
    let commands = run["commands"].as_u64().unwrap();
    assert_eq!(commands, 40, "{run}");
    assert_eq!(run["expected"].as_u64(), Some(commands * 5), "{run}");
    assert_eq!(run["delivered"], run["expected"], "{run}");
    for zero in ["lost", "duplicated", "out_of_order", "failed_commands"] {
        assert_eq!(run[zero], 0, "{zero}: {run}");
    }
    assert!(run["latency_ms"]["p99"].as_f64().unwrap() > 0.0, "{run}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_fails_with_a_clear_message() {
    let app = TestApp::spawn_with_secret(Backend::Sqlite).await;
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_larder-bench"))
        .args([
            "--url",
            &app.address,
            "--jwt-secret",
            "not-the-secret-but-at-least-32-bytes-long",
        ])
        .output()
        .await
        .expect("larder-bench runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("JWT secret"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_run_reports_every_step_of_every_subscriber_count() {
    let app = TestApp::spawn_with_secret(Backend::Sqlite).await;
    let report = bench(
        &app,
        &[
            "--scenario",
            "hot",
            "--subscribers",
            "3,0",
            "--steps",
            "20,40",
            "--seconds",
            "1",
        ],
    )
    .await;
    assert_eq!(report["clean"], true, "{report}");
    assert_eq!(report["items"], 1, "{report}");
    let runs = report["runs"].as_array().expect("runs");
    let plan: Vec<(u64, u64)> = runs
        .iter()
        .map(|r| {
            (
                r["subscribers"].as_u64().unwrap(),
                r["rate"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(plan, [(0, 20), (0, 40), (3, 20), (3, 40)], "{report}");
    for run in runs {
        let commands = run["commands"].as_u64().unwrap();
        assert_eq!(commands, run["rate"].as_u64().unwrap(), "{run}");
        let subscribers = run["subscribers"].as_u64().unwrap();
        assert_eq!(run["clients"], subscribers, "{run}");
        assert_eq!(
            run["expected"].as_u64(),
            Some(commands * subscribers),
            "{run}"
        );
        assert_eq!(run["delivered"], run["expected"], "{run}");
        assert_eq!(run["held"], true, "{run}");
        for zero in ["lost", "duplicated", "out_of_order", "failed_commands"] {
            assert_eq!(run[zero], 0, "{zero}: {run}");
        }
        assert!(run["command_ms"]["p99"].as_f64().unwrap() > 0.0, "{run}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_run_larder_and_the_relay_under_the_same_load() {
    let app = TestApp::spawn_with_secret(Backend::Sqlite).await;
    let report = bench(
        &app,
        &[
            "--scenario",
            "peers",
            "--peers",
            "larder,relay",
            "--relay-bin",
            env!("CARGO_BIN_EXE_larder-relay"),
            "--clients",
            "4",
            "--rate",
            "30",
            "--seconds",
            "1",
        ],
    )
    .await;
    let results = report["results"].as_array().expect("results");
    let targets: Vec<&str> = results
        .iter()
        .map(|r| r["target"].as_str().unwrap())
        .collect();
    assert_eq!(targets, ["larder", "relay"], "{report}");
    for result in results {
        let run = &result["run"];
        assert_eq!(result["held"], true, "{result}");
        assert_eq!(run["commands"], 30, "{result}");
        assert_eq!(run["expected"], 120, "{result}");
        assert_eq!(run["delivered"], run["expected"], "{result}");
        for zero in ["lost", "duplicated", "out_of_order", "failed_commands"] {
            assert_eq!(run[zero], 0, "{zero}: {result}");
        }
    }
    // The relay is started by the benchmark: its CPU time is read from /proc.
    assert!(
        results[1]["run"]["server_cpu_seconds"].as_f64().is_some(),
        "{report}"
    );
}
