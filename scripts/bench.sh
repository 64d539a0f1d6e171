#!/usr/bin/env bash
# Larder's benchmarks, each one argument away:
#
#   scripts/bench.sh latency      1 client, 100 changes/s: end-to-end latency
#   scripts/bench.sh fanout       1000 clients in one store, 100 changes/s
#   scripts/bench.sh saturation   100 clients, 500 .. 10000 changes/s
#   scripts/bench.sh idle         10,000 idle connections: memory each
#   scripts/bench.sh overhead     command latency with 0 and 1000 subscribers
#   scripts/bench.sh hot          one item, 0 / 100 / 1000 subscribers,
#                                 100 .. 5000 changes/s
#   scripts/bench.sh peers        the hot load (1000 subscribers, 100 changes/s)
#                                 on Larder, a bare relay and Nchan in turn
#                                 (Nchan when installed: Debian
#                                 `apt-get install nginx libnginx-mod-nchan`;
#                                 this script installs nothing)
#   scripts/bench.sh orders       10 stores (grill and bar screens), 200 tills,
#                                 50 orders/s: fire-to-kitchen-screen latency
#   scripts/bench.sh append       event store appends, SQLite and PostgreSQL
#   scripts/bench.sh micro        criterion micro-benchmarks of the hot paths
#   scripts/bench.sh all          all of the above, in that order
#
# Further arguments go to the benchmark (`larder-bench --help`,
# `append_bench --help`). `hot --perf-dir DIR` also records a server profile
# per step; `scripts/perf-areas.py DIR/*.data` sums it up by area. The server runs pinned to CPU 0 and the load
# generator to CPU 1 when the machine has two or more (override with
# LARDER_BENCH_SERVER_CPUS / LARDER_BENCH_CLIENT_CPUS, e.g. `0-3` and `4-7`).
# Every run is bounded in time and count, talks to 127.0.0.1 only, and
# prints a table and one JSON line. docs/benchmarks.md records the figures.
set -euo pipefail
cd "$(dirname "$0")/.."

scenario="${1:-all}"
shift || true

# 10,000 connections need 10,000 descriptors on each side.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

target_dir="${CARGO_TARGET_DIR:-target}"
server_cpus="${LARDER_BENCH_SERVER_CPUS:-}"
client_cpus="${LARDER_BENCH_CLIENT_CPUS:-}"
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  server_cpus="${server_cpus:-0}"
  client_cpus="${client_cpus:-1}"
fi

load() {
  cargo build --release --locked -q -p larder-server -p larder-bench
  local pin=()
  [ -n "$server_cpus" ] && pin=(--server-cpus "$server_cpus")
  echo "== $1 (server on CPUs ${server_cpus:-any}, load generator on CPUs ${client_cpus:-any})"
  if [ -n "$client_cpus" ]; then
    taskset -c "$client_cpus" "$target_dir/release/larder-bench" --scenario "$@" "${pin[@]}"
  else
    "$target_dir/release/larder-bench" --scenario "$@" "${pin[@]}"
  fi
}

append() {
  echo "== append"
  cargo run --release --locked -q -p larder-store --example append_bench -- --backend both "$@"
}

micro() {
  echo "== micro"
  cargo bench --locked -p larder-realtime --bench hot_paths -- "$@"
}

case "$scenario" in
  latency | fanout | saturation | idle | overhead | hot | peers | orders) load "$scenario" "$@" ;;
  append) append "$@" ;;
  micro) micro "$@" ;;
  all)
    for s in latency fanout saturation idle overhead hot orders; do load "$s" "$@"; done
    append
    micro
    ;;
  *)
    echo "unknown scenario '$scenario': latency, fanout, saturation, idle, overhead, hot, peers, orders, append, micro or all" >&2
    exit 2
    ;;
esac
