//! The `larder` binary itself: its help, the README quick start as written,
//! and a clean exit on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server {
    child: Child,
    port: u16,
    db: std::path::PathBuf,
}

impl Server {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let db = std::env::temp_dir().join(format!("larder-bin-{port}-{}.db", std::process::id()));
        let mut child = Command::new(env!("CARGO_BIN_EXE_larder"))
            .args(["--bind", &format!("127.0.0.1:{port}")])
            .args(["--database-url", &format!("sqlite://{}", db.display())])
            .args(["--log-format", "json"])
            .stderr(Stdio::piped())
            .spawn()
            .expect("the larder binary starts");
        // Wait for the "listening" log line (bounded), not for a fixed time.
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut saw_demo_warning = false;
        loop {
            let line = rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("server log");
            saw_demo_warning |= line.contains("DEMO MODE");
            if line.contains("listening") {
                break;
            }
        }
        assert!(saw_demo_warning, "demo mode is announced loudly");
        Self { child, port, db }
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not stop after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.db.display()));
        }
    }
}

#[test]
fn help_explains_every_setting() {
    let output = Command::new(env!("CARGO_BIN_EXE_larder"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for flag in [
        "--bind",
        "--database-url",
        "--jwt-secret",
        "--jwt-public-key",
        "--log",
        "--log-format",
        "LARDER_BIND",
    ] {
        assert!(help.contains(flag), "--help mentions {flag}");
    }
}

#[test]
fn the_readme_quick_start_works_as_written_and_sigterm_exits_cleanly() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let quick_start = readme
        .split("## Quick start")
        .nth(1)
        .expect("README has a Quick start");
    let script = quick_start
        .split("```sh")
        .map(|block| block.split("```").next().unwrap_or_default())
        .find(|block| block.contains("curl"))
        .expect("the quick start has curl lines");

    let mut server = Server::start();
    let script = script.replace("127.0.0.1:8080", &format!("127.0.0.1:{}", server.port));
    let output = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "quick start failed: {stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let inventory: serde_json::Value =
        serde_json::from_str(stdout.trim()).expect("the last line prints JSON");
    let item = &inventory["items"][0];
    assert_eq!(item["sku"], "FLOUR-25");
    assert_eq!(item["quantity"], 2);
    assert_eq!(item["status"], "low");

    let status = server.terminate();
    assert!(status.success(), "SIGTERM exits 0, got {status:?}");
}
