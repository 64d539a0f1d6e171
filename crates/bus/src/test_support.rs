//! A `nats-server` of one's own, for tests and measurements (cargo feature
//! `test-support`): started on ports it picks itself, on 127.0.0.1, killed
//! when dropped, and able to stop and start again on the same ports (an
//! outage). The binary is `LARDER_NATS_SERVER`, else
//! `/usr/sbin/nats-server` (Debian's package), else `nats-server` on the
//! `PATH`.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a start may take before it is a failure.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A running (or stopped) `nats-server`.
#[derive(Debug)]
pub struct NatsServer {
    port: u16,
    monitor: u16,
    child: Option<Child>,
}

impl NatsServer {
    /// Starts a server on ports it picks itself (`-p -1 -m -1`), read back
    /// from the ports file it writes: ports picked here and bound by the
    /// server later could be taken meanwhile by another test's server.
    /// Panics with what to install when the binary is missing.
    pub fn start() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "larder-nats-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        std::fs::create_dir_all(&dir).expect("a folder for the ports file");
        let mut child = spawn(&["-p", "-1", "-m", "-1", "--ports_file_dir"], Some(&dir));
        let ports = dir.join(format!("nats-server_{}.ports", child.id()));
        let deadline = Instant::now() + START_TIMEOUT;
        // {"nats":["nats://127.0.0.1:34737"],"monitoring":["http://127.0.0.1:8222"]}
        let (port, monitor) = loop {
            let read = std::fs::read_to_string(&ports).ok().and_then(|text| {
                Some((port_after(&text, "nats://")?, port_after(&text, "http://")?))
            });
            if let Some(found) = read {
                break found;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("nats-server exited at start: {status}");
            }
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(10));
        };
        let _ = std::fs::remove_dir_all(&dir);
        Self {
            port,
            monitor,
            child: Some(child),
        }
    }

    /// Its client URL, `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Its monitoring port (`/connz`, `/varz`).
    pub fn monitor_port(&self) -> u16 {
        self.monitor
    }

    /// Stops it (SIGKILL): its clients lose their connections.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same ports; returns once it accepts
    /// connections.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "nats-server is already running");
        let (port, monitor) = (self.port.to_string(), self.monitor.to_string());
        self.child = Some(spawn(&["-p", &port, "-m", &monitor], None));
        let deadline = Instant::now() + START_TIMEOUT;
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nats-server did not listen on {} again",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("LARDER_NATS_SERVER") {
        return path.into();
    }
    let debian = Path::new("/usr/sbin/nats-server");
    if debian.exists() {
        debian.into()
    } else {
        "nats-server".into()
    }
}

fn spawn(args: &[&str], ports_dir: Option<&Path>) -> Child {
    let binary = binary();
    let mut command = Command::new(&binary);
    command.args(["-a", "127.0.0.1"]).args(args);
    if let Some(dir) = ports_dir {
        command.arg(dir);
    }
    command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "starting {} (install nats-server, or set LARDER_NATS_SERVER): {e}",
                binary.display()
            )
        })
}

/// The port in the first `<scheme>127.0.0.1:<port>` of `text`.
fn port_after(text: &str, scheme: &str) -> Option<u16> {
    let start = text.find(scheme)? + scheme.len();
    let rest = &text[start..];
    let colon = rest.find(':')? + 1;
    let end = rest[colon..]
        .find(|c: char| !c.is_ascii_digit())
        .map_or(rest.len(), |n| colon + n);
    rest[colon..end].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::port_after;

    #[test]
    fn ports_are_read_from_the_ports_file() {
        let text = r#"{"nats":["nats://127.0.0.1:34737"],"monitoring":["http://127.0.0.1:8222"]}"#;
        assert_eq!(port_after(text, "nats://"), Some(34737));
        assert_eq!(port_after(text, "http://"), Some(8222));
        assert_eq!(port_after("{}", "nats://"), None);
    }
}
