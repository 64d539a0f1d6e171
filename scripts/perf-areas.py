#!/usr/bin/env python3
"""Where a Larder server's CPU time goes, by area, from a `perf record` file.

    python3 scripts/perf-areas.py [--pid PID] hot-0-1000.data [more.data ...]

`larder-bench --scenario hot --perf-dir DIR` writes one file per step
(cpu-clock samples with DWARF call stacks). When the server is pinned the
file holds its CPUs, all processes and idle time included: `--pid` (the
`server_pid` of the benchmark's JSON line) then says how those CPUs were
shared, and the areas are of the server's samples only. Each sample is put in exactly one
area by its thread and the functions on its stack (the first rule that
matches wins, so the percentages add up to 100). Samples taken while the
kernel switched threads (`__schedule`, `finish_task_switch`) are counted
apart as well: on this virtual machine a switch costs tens of microseconds,
so hand-offs between threads are a cost of their own. docs/benchmarks.md
("Hot streams") explains the areas.
"""

import collections
import re
import subprocess
import sys

# (area, thread name prefix or None, stack pattern or None), first match wins.
RULES = [
    ("read models: SQL on sqlx's SQLite threads", "sqlx-sqlite", None),
    ("event store: writer thread (insert, commit, WAL)", "larder-sqlite-w", None),
    ("event store: checkpoint thread", "larder-sqlite-c", None),
    ("read models: projection tasks", None, r"^larder_projections::|<larder_projections::"),
    ("auth: token check (JWT)", None, r"jsonwebtoken::|larder_server::auth::"),
    ("hub: routing, frames, WebSocket writes", None, r"larder_realtime::"),
    ("command: load/fold from the store", None, r"larder_server::commands::Commands::(load|fold)"),
    ("command: append (hand-off to the writer)", None, r"append_streams|larder_store::sqlite_writer|larder_store::sql::"),
    ("command: cached state, decide, events", None, r"larder_server::commands::|larder_domain::"),
    ("event store: publish to the bus", None, r"larder_store::|larder_bus::"),
]
# What is left is the request's own plumbing: the innermost of these frames
# names it (hyper's dispatcher is at the root of every request's stack).
INNERMOST = [
    ("JSON (request body, answer)", r"serde_json::|axum::json|axum::Json"),
    ("HTTP/1: parse and write (hyper)", r"hyper::|httparse::|http::"),
    ("router and middleware (axum, tower, tower-http)", r"axum::|axum_core::|tower_http::|tower::|larder_server::"),
]
TOKIO = ("tokio: scheduler, IO driver, timers, parking", r"tokio::")
OTHER = "other"
SWITCH = re.compile(r"^(__schedule|finish_task_switch|schedule)\b")


HEADER = re.compile(r"^(.*?)\s+(\d+)/(\d+)\s*$")


def samples(path, stacks_of=None):
    """Yields (pid, thread, [function, ...] leaf first) per sample; with
    `stacks_of`, stacks of that process only (resolving every process's
    inlined frames takes long), the others with their thread alone."""
    if stacks_of is not None:
        out = subprocess.run(
            ["perf", "script", "-i", path, "-F", "comm,pid,tid", "-G"],
            check=True,
            capture_output=True,
            text=True,
            errors="replace",
        ).stdout
        for line in out.splitlines():
            header = HEADER.match(line)
            if header and int(header.group(2)) != stacks_of:
                yield int(header.group(2)), header.group(1).strip(), []
        pid_filter = ["--pid", str(stacks_of)]
    else:
        pid_filter = []
    out = subprocess.run(
        ["perf", "script", "-i", path, "-F", "comm,pid,tid,ip,sym", *pid_filter],
        check=True,
        capture_output=True,
        text=True,
        errors="replace",
    ).stdout
    pid, thread, frames = None, None, []
    for line in out.splitlines():
        if not line.strip():
            continue
        if not line[0].isspace():
            if thread is not None:
                yield pid, thread, frames
            header = HEADER.match(line)
            pid = int(header.group(2)) if header else -1
            thread = header.group(1).strip() if header else line.split()[0]
            frames = []
            continue
        parts = line.strip().split(" ", 1)
        if len(parts) == 2:
            frames.append(parts[1])
    if thread is not None:
        yield pid, thread, frames


def area(thread, frames):
    # Inlined frames lose their crate path: match on the real ones.
    real = [f for f in frames if not f.endswith("(inlined)")]
    for name, prefix, pattern in RULES:
        if prefix is not None:
            if thread.startswith(prefix):
                return name
            continue
        regex = COMPILED[pattern]
        if any(regex.search(f) for f in real):
            return name
    for f in real:
        for name, pattern in INNERMOST:
            if COMPILED[pattern].search(f):
                return name
    if any(COMPILED[TOKIO[1]].search(f) for f in real):
        return TOKIO[0]
    return OTHER


COMPILED = {p: re.compile(p) for _, _, p in RULES if p}
COMPILED.update({p: re.compile(p) for _, p in INNERMOST + [TOKIO]})


def report(path, server_pid):
    areas = collections.Counter()
    threads = collections.Counter()
    switches = collections.Counter()
    leaves = collections.Counter()
    others = collections.Counter()
    total = 0
    everything = 0
    for pid, thread, frames in samples(path, server_pid):
        everything += 1
        if server_pid is not None and pid != server_pid:
            if pid == 0:
                name = "idle"
            elif thread.startswith(":"):
                name = "(started while recording)"
            else:
                name = re.sub(r"-?\d+$", "", thread)
            others[name] += 1
            continue
        total += 1
        areas[area(thread, frames)] += 1
        kind = re.sub(r"-?\d+$", "", thread)
        threads[kind] += 1
        if any(SWITCH.match(f) for f in frames):
            switches[kind] += 1
        if frames:
            leaves[re.sub(r"\+0x[0-9a-f]+$", "", frames[0])[:90]] += 1
    if total == 0:
        print(f"{path}: no samples")
        return
    pct = lambda n: f"{100 * n / total:5.1f} %"
    print(f"== {path}: {total} samples of the server")
    if server_pid is not None:
        share = lambda n: f"{100 * n / everything:5.1f} %"
        print(f"its CPUs: {everything} samples, the server {share(total)}, idle {share(others.pop('idle', 0))}")
        for name, n in others.most_common(4):
            print(f"  other process {name:<20} {share(n)}")
        print(f"  other processes in all {share(sum(others.values()))}")
    print("area                                                  share")
    for name, n in areas.most_common():
        print(f"  {name:<50} {pct(n)}")
    print("thread                     share   of which thread switches")
    for name, n in threads.most_common():
        print(f"  {name:<22} {pct(n)}   {pct(switches[name])}")
    print(f"  all threads: thread switches {pct(sum(switches.values()))}")
    print("top functions (self)")
    for name, n in leaves.most_common(12):
        print(f"  {pct(n)}  {name}")


if __name__ == "__main__":
    args = sys.argv[1:]
    pid = None
    if len(args) >= 2 and args[0] == "--pid":
        pid, args = int(args[1]), args[2:]
    if not args:
        sys.exit(__doc__)
    for arg in args:
        report(arg, pid)
