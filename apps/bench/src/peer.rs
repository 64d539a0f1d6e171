//! Peers to measure Larder against in the same run: Nchan (nginx's
//! publish/subscribe module, in C) and `larder-relay` (axum + a tokio
//! broadcast channel, the floor for a Rust server). Each gets the hot load
//! Larder gets (one stream of events at a fixed rate, N WebSocket
//! subscribers), on the same CPU, and the same checks and figures.
//!
//! A peer persists nothing and authenticates nobody: the load generator
//! numbers the events itself and publishes each as a Larder-shaped `event`
//! frame (`POST /items`, the body delivered as is), one publish at a time so
//! the numbering is the publishing order.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::ValueEnum;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

use crate::{Bench, Cli, opt, server};

/// What the peer comparison runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Target {
    /// Larder itself (its `/ws`, a store subscription, REST adjustments).
    Larder,
    /// `larder-relay`: axum + tokio broadcast on one thread.
    Relay,
    /// Nchan: `apt-get install nginx libnginx-mod-nchan` (Debian).
    Nchan,
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Self::Larder => "larder",
            Self::Relay => "relay",
            Self::Nchan => "nchan",
        }
    }
}

/// Nchan's module, where Debian's `libnginx-mod-nchan` puts it.
const NCHAN_MODULE: &str = "/usr/lib/nginx/modules/ngx_nchan_module.so";

/// One nginx worker, a publisher location and a WebSocket subscriber
/// location on one channel; every path inside the run's directory.
const NCHAN_CONF: &str = r#"load_module __MODULE__;
worker_processes 1;
worker_rlimit_nofile 65536;
pid __DIR__/nginx.pid;
error_log __DIR__/error.log warn;
events { worker_connections 20000; }
http {
  access_log off;
  client_body_temp_path __DIR__/body;
  proxy_temp_path __DIR__/proxy;
  fastcgi_temp_path __DIR__/fastcgi;
  uwsgi_temp_path __DIR__/uwsgi;
  scgi_temp_path __DIR__/scgi;
  nchan_shared_memory_size 256M;
  server {
    listen 127.0.0.1:__PORT__;
    location = /items { nchan_publisher; nchan_channel_id bench; }
    location = /ws { nchan_subscriber websocket; nchan_channel_id bench; }
  }
}
"#;

/// Why a peer cannot run here, if it cannot (nothing is installed for it).
pub fn unavailable(target: Target, relay_binary: &Path) -> Option<String> {
    match target {
        Target::Larder => None,
        Target::Relay => (!relay_binary.exists()).then(|| {
            format!(
                "{} not found: `cargo build --release -p larder-bench` builds it",
                relay_binary.display()
            )
        }),
        Target::Nchan => {
            let nginx = which("nginx");
            (nginx.is_none() || !Path::new(NCHAN_MODULE).exists()).then(|| {
                "nginx with Nchan is not installed (Debian: `apt-get install -y nginx libnginx-mod-nchan`)"
                    .to_owned()
            })
        }
    }
}

fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// A running peer.
#[derive(Debug)]
pub struct PeerProcess {
    pub url: String,
    pub pid: Option<u32>,
    pub child: Child,
    pub dir: PathBuf,
}

/// Starts `target` (not Larder) on a free port, pinned to `cpus` when given,
/// and waits until it accepts connections.
pub async fn start(
    target: Target,
    cpus: Option<&str>,
    relay_binary: &Path,
    port: u16,
) -> Result<PeerProcess> {
    let dir = std::env::temp_dir().join(format!(
        "larder-bench-{}-{}",
        target.name(),
        uuid::Uuid::new_v4()
    ));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let (program, args): (PathBuf, Vec<String>) = match target {
        Target::Larder => bail!("Larder is not a peer"),
        Target::Relay => (
            relay_binary.to_owned(),
            vec!["--bind".into(), format!("127.0.0.1:{port}")],
        ),
        Target::Nchan => {
            let conf = dir.join("nginx.conf");
            let text = NCHAN_CONF
                .replace("__MODULE__", NCHAN_MODULE)
                .replace("__DIR__", &dir.display().to_string())
                .replace("__PORT__", &port.to_string());
            std::fs::write(&conf, text)?;
            let nginx = which("nginx").context("nginx not found")?;
            let args = vec![
                "-p".into(),
                format!("{}/", dir.display()),
                "-e".into(),
                dir.join("error.log").display().to_string(),
                "-c".into(),
                conf.display().to_string(),
                "-g".into(),
                "daemon off;".into(),
            ];
            (nginx, args)
        }
    };
    let log = std::fs::File::create(dir.join("peer.log"))?;
    let mut command = match cpus {
        Some(cpus) => {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(cpus).arg(&program);
            c
        }
        None => Command::new(&program),
    };
    let child = command
        .args(&args)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", program.display()))?;
    let peer = PeerProcess {
        url: format!("http://127.0.0.1:{port}"),
        pid: child.id(),
        child,
        dir,
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        if Instant::now() > deadline {
            let log = std::fs::read_to_string(peer.dir.join("peer.log")).unwrap_or_default();
            let errors = std::fs::read_to_string(peer.dir.join("error.log")).unwrap_or_default();
            bail!("{} did not come up:\n{log}{errors}", target.name());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(peer)
}

/// A Larder-shaped `event` frame for a stock adjustment at `position`
/// (about the size of the real one), for a peer to deliver as is.
pub fn event_frame(position: u64) -> String {
    format!(
        concat!(
            r#"{{"type":"event","topic":"store:00000000-0000-4000-8000-000000000001","position":{p},"#,
            r#""event":{{"id":"00000000-0000-4000-8000-{p:012}","type":"StockAdjusted","#,
            r#""stream":"item-00000000-0000-4000-8000-000000000002","version":{p},"#,
            r#""recorded_at":"2026-01-01T00:00:00.000000Z","#,
            r#""data":{{"delta":1,"quantity":{q},"reason":"received","note":"larder-bench"}},"#,
            r#""metadata":{{"tenant":"bench","store":"00000000-0000-4000-8000-000000000001","#,
            r#""entity_type":"item","entity_id":"00000000-0000-4000-8000-000000000002","#,
            r#""actor":"bench-admin","correlation_id":null}}}}}}"#
        ),
        p = position,
        q = 1_000_000 + position,
    )
}

/// Larder and its peers under the same load, one after the other.
pub async fn run(cli: Cli) -> Result<Value> {
    let n = cli.clients.unwrap_or(1000);
    let rate = cli.rate.unwrap_or(100);
    let seconds = cli.seconds.unwrap_or(10);
    let relay = cli
        .relay_bin
        .clone()
        .unwrap_or_else(|| server::default_binary().with_file_name("larder-relay"));
    println!("{n} subscribers of one stream, {rate} events/s for {seconds} s, on each target");
    println!(
        "{:>7} {:>5} {:>7} {:>10} {:>12} {:>9} {:>9} {:>9} {:>10} {:>5} {:>5}",
        "target",
        "held",
        "ev/s",
        "delivered",
        "lost/dup/ooo",
        "dlv p50",
        "dlv p99",
        "dlv max",
        "cpu us/dlv",
        "busy%",
        "rq%"
    );
    let mut results = Vec::new();
    for target in cli.peers.clone() {
        if let Some(why) = unavailable(target, &relay) {
            println!("{:>7} skipped: {why}", target.name());
            results.push(json!({ "target": target.name(), "skipped": why }));
            continue;
        }
        let bench = match target {
            Target::Larder => Bench::start(cli.clone()).await?,
            peer => Bench::start_peer(cli.clone(), peer).await?,
        };
        let clients = bench.connect(n).await?;
        let crate::Timed {
            run,
            held,
            busy,
            queued,
        } = bench.timed_run(&clients, rate, seconds).await;
        let d = &run.delivery;
        println!(
            "{:>7} {:>5} {:>7.0} {:>10} {:>12} {:>9.3} {:>9.3} {:>9.3} {:>10} {:>5} {:>5}",
            target.name(),
            if held { "yes" } else { "no" },
            d.commands_per_sec,
            d.delivered,
            format!("{}/{}/{}", d.lost, d.duplicated, d.out_of_order),
            d.latency_ms.p50,
            d.latency_ms.p99,
            d.latency_ms.max,
            opt(run.server_cpu_us_per_delivery, 2),
            opt(busy, 0),
            opt(queued, 0),
        );
        if d.failed_commands > 0 || d.closed_clients > 0 || d.unexpected > 0 {
            println!(
                "        failed commands {}, closed clients {}, unexpected frames {}",
                d.failed_commands, d.closed_clients, d.unexpected
            );
        }
        results.push(json!({
            "target": target.name(),
            "held": held,
            "server_cpu_busy_percent": busy,
            "server_run_queue_percent": queued,
            "run": run,
        }));
        bench.finish(clients).await;
    }
    Ok(json!({
        "scenario": "peers",
        "subscribers": n,
        "rate": rate,
        "seconds": seconds,
        "results": results,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peer_frame_is_json_and_reads_as_an_event() {
        let frame = event_frame(42);
        let value: serde_json::Value = serde_json::from_str(&frame).expect("JSON");
        assert_eq!(value["position"], 42);
        assert_eq!(crate::ws::event_position(&frame), Some(42));
    }
}
