//! Several `larder` processes on one PostgreSQL schema and one NATS server,
//! on loopback: clients on every node, commands through every node, a node
//! killed with SIGKILL under load.
//!
//! The `larder` binary must be built (`cargo build -p larder-server`; a
//! workspace test run builds it), and `nats-server` installed.

mod database_restart;
mod delivery;
mod helpers;
mod latency;
mod nats_outage;
mod read_models;
