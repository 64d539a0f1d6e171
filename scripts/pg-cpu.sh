#!/usr/bin/env bash
# Prints the CPU seconds (user + system) the local PostgreSQL has used so
# far: the postmaster, the backends it has reaped, and the live ones. Run
# it before and after a measurement; the difference is PostgreSQL's share
# (docs/benchmarks.md, "Cross-node delivery").
#
#   scripts/pg-cpu.sh
set -euo pipefail
postmaster="$(head -n1 /var/run/postgresql/*.pid 2>/dev/null | grep -E '^[0-9]+$' | head -n1 || true)"
if [ -z "$postmaster" ]; then
  postmaster="$(pgrep -o -x postgres || true)"
fi
if [ -z "$postmaster" ] || [ ! -r "/proc/$postmaster/stat" ]; then
  echo "no local PostgreSQL postmaster found" >&2
  exit 1
fi
# Fields 14-17 of /proc/PID/stat: utime, stime, and the reaped children's.
ticks="$(awk '{ print $14 + $15 + $16 + $17 }' "/proc/$postmaster/stat")"
for child in $(pgrep -P "$postmaster"); do
  ticks=$((ticks + $(awk '{ print $14 + $15 }' "/proc/$child/stat" 2>/dev/null || echo 0)))
done
awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f\n", t / hz }'
