#!/usr/bin/env bash
# Installs what the web tests need, runs the client's unit tests, then the
# browser tests against the server at $LARDER_URL, restarting it with
# $LARDER_RESTART_CMD for the restart scenario. Both are required: without
# them this fails (it never skips). scripts/browser-test.sh sets both.
# Exits non-zero if anything fails.
set -euo pipefail
cd "$(dirname "$0")"

# Checked first, so a missing server fails fast instead of after the installs.
if [ -z "${LARDER_URL:-}" ] || [ -z "${LARDER_RESTART_CMD:-}" ]; then
  echo "run-tests.sh: LARDER_URL and LARDER_RESTART_CMD must be set (the browser tests never skip)." >&2
  echo "  Run scripts/browser-test.sh, which builds and starts a server and sets both." >&2
  exit 2
fi

CHROMIUM="${CHROMIUM_PATH:-/usr/bin/chromium}"

echo "== npm ci"
npm ci --no-audit --no-fund

if [ ! -x "$CHROMIUM" ]; then
  echo "== installing chromium (Debian package; never a downloaded browser)"
  if [ "$(id -u)" -eq 0 ]; then apt-get update -qq && apt-get install -y -qq chromium
  else sudo apt-get update -qq && sudo apt-get install -y -qq chromium; fi
fi

echo "== unit tests (node:test)"
node --test test/

echo "== browser tests against $LARDER_URL"
node e2e/run.mjs "$@"
