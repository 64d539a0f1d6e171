//! Several `larder` processes on one PostgreSQL schema and one NATS server,
//! on loopback: clients on every node, commands through every node, and
//! the failures a cluster lives through, each under load:
//! - `delivery`: every client on every node gets every event once, in one
//!   order; also when a node is killed with SIGKILL;
//! - `nats_outage`: NATS stopped for 10 s, then started again on its port:
//!   delivery goes on by polling the store, and is fast again once the
//!   nodes reconnected;
//! - `database_restart`: PostgreSQL (an instance of the test's own, made
//!   with initdb) stopped and started: 503 `unavailable` and not ready
//!   meanwhile, nothing acknowledged lost, the nodes recover by themselves;
//! - `rolling_restart`: each node in turn stopped with SIGTERM and started
//!   again: no event lost or repeated, commands accepted throughout;
//! - `read_models`: read-your-writes through any node;
//! - `limits`: the per-user connection limit counts every node;
//! - `latency`: cross-node delivery latency (a measurement, ignored).
//!
//! The `larder` binary must be built (`cargo build -p larder-server`; a
//! workspace test run builds it), and `nats-server` and PostgreSQL's server
//! programs (`initdb`, `pg_ctl`; `LARDER_PG_BIN` names their folder)
//! installed. Run as root, the tests run PostgreSQL's programs as the
//! `postgres` user. The nodes' logs (`{schema}-{port}.log` in the temporary
//! folder) are removed when a test passes, and named when it fails.

mod database_restart;
mod delivery;
mod helpers;
mod latency;
mod limits;
mod nats_outage;
mod read_models;
mod rolling_restart;
