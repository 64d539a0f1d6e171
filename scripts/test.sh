#!/usr/bin/env bash
# Larder's one test command: sets up what the tests need on this machine and
# runs every test (formatting, lints, unit, conformance, integration, docs).
#
#   scripts/test.sh
#
# PostgreSQL: the tests use LARDER_TEST_DATABASE_URL, by default
# postgres://postgres@127.0.0.1:5432/test. If it is not answering and a local
# cluster is installed, it is started. If it still does not answer, the run
# fails: the PostgreSQL tests never skip.
set -euo pipefail
cd "$(dirname "$0")/.."

export LARDER_TEST_DATABASE_URL="${LARDER_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
say() { printf '\n==> %s\n' "$*"; }

pg_up() { pg_isready -q -d "$LARDER_TEST_DATABASE_URL" 2>/dev/null; }

say "PostgreSQL"
if ! command -v pg_isready >/dev/null; then
  echo "pg_isready not found: install PostgreSQL client tools (Debian: apt-get install postgresql-client)" >&2
  exit 1
fi
if ! pg_up; then
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    for version in $(ls /etc/postgresql); do
      echo "starting local PostgreSQL $version cluster 'main'"
      pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    done
  fi
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
fi
if ! pg_up; then
  echo "PostgreSQL is not reachable at $LARDER_TEST_DATABASE_URL." >&2
  echo "Start it (or set LARDER_TEST_DATABASE_URL); the PostgreSQL tests cannot be skipped." >&2
  exit 1
fi
echo "PostgreSQL is up at $LARDER_TEST_DATABASE_URL"
# Each test makes its own schema and drops it when it ends, so runs on one
# database never touch each other's schemas.

say "nats-server"
# The bus conformance suite, the presence tests and the cluster tests start
# nats-servers of their own on free ports (LARDER_NATS_SERVER names the
# binary; larder_bus::test_support::NatsServer).
if [ -z "${LARDER_NATS_SERVER:-}" ]; then
  if [ -x /usr/sbin/nats-server ]; then
    export LARDER_NATS_SERVER=/usr/sbin/nats-server
  elif command -v nats-server >/dev/null; then
    export LARDER_NATS_SERVER="$(command -v nats-server)"
  elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing nats-server (Debian package)"
    apt-get update -qq && apt-get install -y -qq nats-server >/dev/null
    export LARDER_NATS_SERVER=/usr/sbin/nats-server
  else
    echo "nats-server not found: install it (Debian: apt-get install nats-server)" >&2
    exit 1
  fi
fi
echo "nats-server: $LARDER_NATS_SERVER"

say "cargo fmt --check"
cargo fmt --all -- --check

say "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

say "tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
  say "doc tests"
  cargo test --workspace --locked --doc
else
  echo "cargo-nextest not found; using cargo test"
  cargo test --workspace --locked --no-fail-fast
fi

say "the API against its OpenAPI document (Schemathesis)"
scripts/api-contract.sh

say "web app and JavaScript client (Node unit tests, real Chromium)"
scripts/browser-test.sh

say "all tests passed"
