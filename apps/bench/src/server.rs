//! The server under test: spawned here (optionally pinned with `taskset`) or
//! reached at a URL, and its process figures read from `/proc`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::process::{Child, Command};

/// A Larder server the benchmark talks to.
#[derive(Debug)]
pub struct Server {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Its process id, when known (needed for memory and CPU figures).
    pub pid: Option<u32>,
    /// The HS256 secret its tokens are signed with.
    pub secret: String,
    child: Option<Child>,
    dir: Option<PathBuf>,
}

/// How to start a server.
#[derive(Debug, Clone)]
pub struct Spawn {
    pub binary: PathBuf,
    /// A `taskset -c` CPU list, e.g. `0`.
    pub cpus: Option<String>,
    /// Defaults to a fresh SQLite file in a temporary directory.
    pub database_url: Option<String>,
    /// Extra `LARDER_*` settings.
    pub env: Vec<(String, String)>,
}

impl Server {
    /// A server already running at `url`, signing with `secret`.
    pub fn external(url: String, pid: Option<u32>, secret: String) -> Self {
        Self {
            url: url.trim_end_matches('/').to_owned(),
            pid,
            secret,
            child: None,
            dir: None,
        }
    }

    /// A peer started by [`crate::peer::start`]; stopped and cleaned up
    /// like a spawned server.
    pub fn peer(peer: crate::peer::PeerProcess) -> Self {
        Self {
            url: peer.url,
            pid: peer.pid,
            secret: String::new(),
            child: Some(peer.child),
            dir: Some(peer.dir),
        }
    }

    /// Starts `spawn.binary` on a free 127.0.0.1 port and waits until
    /// `/healthz` answers.
    pub async fn spawn(spawn: &Spawn) -> Result<Self> {
        if !spawn.binary.exists() {
            bail!(
                "server binary {} not found: build it with `cargo build --release -p larder-server` or pass --server-bin",
                spawn.binary.display()
            );
        }
        let dir = std::env::temp_dir().join(format!("larder-bench-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let port = free_port()?;
        let secret = format!("bench-{}-{}", uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        let database_url = spawn
            .database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", dir.join("larder.db").display()));
        let log = std::fs::File::create(dir.join("server.log"))?;

        let mut command = match &spawn.cpus {
            Some(cpus) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(cpus).arg(&spawn.binary);
                c
            }
            None => Command::new(&spawn.binary),
        };
        command
            .arg("--bind")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--database-url")
            .arg(&database_url)
            .arg("--log")
            .arg("warn")
            .env("LARDER_JWT_SECRET", &secret)
            .env("LARDER_WS_MAX_CONNECTIONS_PER_IP", "1000000")
            .envs(spawn.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        let child = command
            .spawn()
            .with_context(|| format!("starting {}", spawn.binary.display()))?;
        let server = Self {
            url: format!("http://127.0.0.1:{port}"),
            pid: child.id(),
            secret,
            child: Some(child),
            dir: Some(dir),
        };
        server.wait_healthy(Duration::from_secs(30)).await?;
        Ok(server)
    }

    async fn wait_healthy(&self, within: Duration) -> Result<()> {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + within;
        loop {
            if let Ok(response) = http.get(format!("{}/healthz", self.url)).send().await {
                if response.status().is_success() {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "the server at {} did not come up:\n{}",
                    self.url,
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The last lines of a spawned server's log.
    pub fn log_tail(&self) -> String {
        let Some(dir) = &self.dir else {
            return String::new();
        };
        let text = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Resident memory in bytes.
    pub fn rss(&self) -> Option<u64> {
        self.pid.and_then(|pid| rss_bytes(pid).ok())
    }

    /// User + system CPU seconds used so far, by the process and its
    /// children alive now (nginx serves from a worker process).
    pub fn cpu_seconds(&self) -> Option<f64> {
        let pid = self.pid?;
        let own = cpu_seconds(pid).ok()?;
        Some(
            own + children(pid)
                .into_iter()
                .filter_map(|c| cpu_seconds(c).ok())
                .sum::<f64>(),
        )
    }

    /// Seconds its threads (and its children's) spent ready to run but
    /// waiting for a CPU, so far (`/proc/PID/task/*/schedstat`, second
    /// field; threads that ended are not counted).
    pub fn run_queue_seconds(&self) -> Option<f64> {
        let pid = self.pid?;
        let own = run_queue_seconds(pid).ok()?;
        Some(
            own + children(pid)
                .into_iter()
                .filter_map(|c| run_queue_seconds(c).ok())
                .sum::<f64>(),
        )
    }

    /// Stops a spawned server (SIGTERM, then SIGKILL after 10 s) and removes
    /// its files.
    pub async fn stop(mut self) {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                let _ = Command::new("kill")
                    .arg("-TERM")
                    .arg(pid.to_string())
                    .status()
                    .await;
            }
            if tokio::time::timeout(Duration::from_secs(10), child.wait())
                .await
                .is_err()
            {
                let _ = child.kill().await;
            }
        }
        if let Some(dir) = self.dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A `perf record` of the server, sampling CPU time (`cpu-clock`, so it
/// works in virtual machines without hardware counters) with call stacks
/// unwound from DWARF (the release profile keeps line tables, not frame
/// pointers).
#[derive(Debug)]
pub struct Recording {
    child: Child,
    file: PathBuf,
}

impl Recording {
    /// Starts recording into `file`: the server's CPUs when it is pinned
    /// (`cpus`, a `-C` list), else its process `pid`. Per CPU is preferred:
    /// a per-process sampling timer is switched with every thread switch,
    /// and the server switches threads so often that this slowed it to a
    /// third here. The file then also holds the other processes and the
    /// idle time of those CPUs (`scripts/perf-areas.py --pid` sorts them).
    pub fn start(pid: u32, cpus: Option<&str>, file: &Path) -> Result<Self> {
        let mut command = Command::new("perf");
        command
            .args(["record", "-q", "-e", "cpu-clock", "-F", "499"])
            .args(["--call-graph", "dwarf,32768"]);
        match cpus {
            Some(cpus) => command.arg("-C").arg(cpus),
            None => command.arg("-p").arg(pid.to_string()),
        };
        let child = command
            .arg("-o")
            .arg(file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting `perf record` (Debian: apt-get install linux-perf)")?;
        Ok(Self {
            child,
            file: file.to_owned(),
        })
    }

    /// Stops the recording (SIGINT, as perf expects) and waits, at most
    /// 60 s, for it to write its file.
    pub async fn stop(mut self) -> Result<PathBuf> {
        if let Some(pid) = self.child.id() {
            let _ = Command::new("kill")
                .arg("-INT")
                .arg(pid.to_string())
                .status()
                .await;
        }
        if tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
            bail!("`perf record` did not finish writing within 60 s");
        }
        // perf's exit status after SIGINT varies by version: the file says
        // whether it recorded.
        if std::fs::metadata(&self.file).map_or(true, |m| m.len() == 0) {
            bail!("`perf record` wrote no {}", self.file.display());
        }
        Ok(self.file)
    }
}

/// The processes whose parent is `pid`.
fn children(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&candidate| {
            std::fs::read_to_string(format!("/proc/{candidate}/stat"))
                .ok()
                .and_then(|stat| {
                    let rest = &stat[stat.rfind(')')? + 1..];
                    rest.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(pid)
        })
        .collect()
}

pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// `VmRSS` of a process, in bytes.
pub fn rss_bytes(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .context("no VmRSS line")?;
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .context("malformed VmRSS")?
        .parse()?;
    Ok(kb * 1024)
}

/// User + system CPU time of a process, in seconds (`/proc/PID/stat` fields
/// 14 and 15, in clock ticks).
pub fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces; the fields after its ')'
    // start at field 3.
    let rest = &stat[stat.rfind(')').context("malformed stat")? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11).context("no utime")?.parse()?;
    let stime: u64 = fields.get(12).context("no stime")?.parse()?;
    Ok((utime + stime) as f64 / clock_ticks())
}

/// The sum over a process's threads of their run-queue wait, in seconds.
pub fn run_queue_seconds(pid: u32) -> Result<f64> {
    let mut nanos = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let path = task?.path().join("schedstat");
        // A thread may end between listing and reading: skip it.
        let Ok(stat) = std::fs::read_to_string(path) else {
            continue;
        };
        nanos += stat
            .split_whitespace()
            .nth(1)
            .context("malformed schedstat")?
            .parse::<u64>()?;
    }
    Ok(nanos as f64 / 1e9)
}

fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// The soft limit on open files of this process.
pub fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// The default server binary: `larder` next to this one.
pub fn default_binary() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .unwrap_or_default()
        .join("larder")
}
