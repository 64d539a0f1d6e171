#!/usr/bin/env python3
"""What permessage-deflate would save and cost on Larder's event frames.

Reads a long-poll answer (`GET /api/v1/events?...`, saved to a file) and
prints, for its first `StockAdjusted` frame: the frame's size, its size
deflated alone (no context takeover) and with context takeover over the
following frames, and zlib's CPU time per frame with context takeover. zlib here is
the C library, the same algorithm a Rust deflate would run.

    python3 scripts/deflate-estimate.py frames.json
"""
import json
import sys
import time
import zlib

SYNC_TAIL = 4  # permessage-deflate drops the 00 00 ff ff of a sync flush


def frames(path):
    with open(path) as f:
        answer = json.load(f)
    return [json.dumps(e, separators=(",", ":")).encode() for e in answer["events"]]


def deflate(compressor, frame):
    return compressor.compress(frame) + compressor.flush(zlib.Z_SYNC_FLUSH)


def main():
    adjusted = [f for f in frames(sys.argv[1]) if b'"StockAdjusted"' in f]
    if not adjusted:
        sys.exit("no StockAdjusted frame in the answer")
    first = adjusted[0]
    alone = len(deflate(zlib.compressobj(6, zlib.DEFLATED, -15), first)) - SYNC_TAIL
    shared = zlib.compressobj(6, zlib.DEFLATED, -15)
    takeover = [len(deflate(shared, f)) - SYNC_TAIL for f in adjusted]
    print(f"frame: {len(first)} bytes")
    print(f"deflated alone (no context takeover): {alone} bytes")
    print(f"with context takeover, frame by frame: {takeover}")

    n = 100_000
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    start = time.perf_counter()
    for _ in range(n):
        deflate(compressor, first)
    kept = (time.perf_counter() - start) / n * 1e6
    print(f"CPU per frame and recipient, with context takeover: {kept:.2f} us")


if __name__ == "__main__":
    main()
