#!/usr/bin/env bash
# The web app and JavaScript client tests: Node unit tests of the client, then
# real Chromium against the real server (started here on a free port with a
# fresh SQLite file, stopped at the end). Installs what it needs (npm packages,
# Debian's chromium) on a fresh machine. Arguments go to e2e/run.mjs: a name
# filter, e.g. `scripts/browser-test.sh restart`. Exits non-zero if anything
# fails; nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

target_dir="${CARGO_TARGET_DIR:-target}"
# The same build of `larder` the Rust tests use: building the workspace's
# test targets resolves the same features as `cargo nextest run --workspace`
# (building `-p larder-server` alone would resolve fewer, and compile tokio,
# sqlx and the server a second time). After the tests it compiles nothing.
cargo test --workspace --no-run --locked
# Absolute: the restart script runs from the test runner's directory.
binary="$(cd "$target_dir" && pwd)/debug/larder"

work="$(mktemp -d)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
export LARDER_URL="http://127.0.0.1:$port"

cat > "$work/restart.sh" <<SCRIPT
#!/usr/bin/env bash
# Restarts the server on the same port and database; returns once it is up.
set -euo pipefail
if [ -f "$work/pid" ]; then
  kill -TERM "\$(cat "$work/pid")" 2>/dev/null || true
  for _ in \$(seq 1 300); do kill -0 "\$(cat "$work/pid")" 2>/dev/null || break; sleep 0.1; done
fi
LARDER_SHUTDOWN_RECONNECT_WINDOW_MS=1000 "$binary" --bind "127.0.0.1:$port" \
  --database-url "sqlite://$work/larder.db" --log warn >>"$work/server.log" 2>&1 &
echo \$! > "$work/pid"
for _ in \$(seq 1 300); do curl -fs "$LARDER_URL/healthz" >/dev/null 2>&1 && exit 0; sleep 0.1; done
echo "the server did not come up; log:" >&2; cat "$work/server.log" >&2; exit 1
SCRIPT
chmod +x "$work/restart.sh"
export LARDER_RESTART_CMD="$work/restart.sh"

cleanup() {
  local status=$?
  if [ -f "$work/pid" ]; then kill -TERM "$(cat "$work/pid")" 2>/dev/null || true; fi
  if [ "$status" -ne 0 ] && [ -s "$work/server.log" ]; then
    echo "== the server's log (last 40 lines)" >&2; tail -n 40 "$work/server.log" >&2
  fi
  rm -rf "$work"
}
trap cleanup EXIT

"$work/restart.sh"
echo "server up at $LARDER_URL"
apps/server/web/run-tests.sh "$@"
