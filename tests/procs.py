"""Worker processes for the multi-process tests (run as ``python tests/procs.py CMD ...``).

append STORE TOPIC PARTITION COUNT TAG SEED
    Appends COUNT records ``TAG-i`` in batches of 1-7 (seeded), printing ``ack FIRST LAST`` after
    each append returns (i.e. once it is durable).
follow STORE TOPIC PARTITION COUNT TIMEOUT
    Reads from offset 0 until COUNT records were seen, polling for new data without reopening;
    prints one line per record ``offset value`` and exits 0, or 1 on timeout.
"""

from __future__ import annotations

import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from logstore import LogStore


def append(store_path: str, topic: str, partition: str, count: str, tag: str, seed: str) -> None:
    rnd = random.Random(int(seed))
    with LogStore(store_path) as store:
        log = store.partition(topic, int(partition))
        start_at = float(os.environ.get("START_AT", "0"))
        while time.time() < start_at:  # line several writers up so they really contend
            time.sleep(0.001)
        i = 0
        n = int(count)
        while i < n:
            k = min(n - i, rnd.randint(1, 7))
            r = log.append_records([f"{tag}-{j}".encode() for j in range(i, i + k)], timestamps=1_700_000_000_000 + i)
            print(f"ack {r.first_offset} {r.last_offset}", flush=True)
            i += k


def follow(store_path: str, topic: str, partition: str, count: str, timeout: str) -> None:
    deadline = time.monotonic() + float(timeout)
    with LogStore(store_path) as store:
        log = store.partition(topic, int(partition))
        offset = 0
        n = int(count)
        out = []
        while offset < n:
            if time.monotonic() > deadline:
                sys.stdout.write("".join(out))
                sys.exit(1)
            log.refresh()
            if offset >= log.next_offset:
                time.sleep(0.002)
                continue
            cols = log.read_records(offset)
            for off, val in zip(cols.offsets, cols.values, strict=True):
                out.append(f"{off} {val.decode()}\n")
            offset = cols.offsets[-1] + 1
        sys.stdout.write("".join(out))


def produce(store_path: str, topic: str, count: str, tag: str) -> None:
    """Send COUNT records ``TAG-i`` keyed by ``TAG-(i % 10)`` through one Producer."""
    from logstore import Producer

    with LogStore(store_path) as store, Producer(store, linger_ms=1) as prod:
        start_at = float(os.environ.get("START_AT", "0"))
        while time.time() < start_at:
            time.sleep(0.001)
        for i in range(int(count)):
            prod.send(topic, f"{tag}-{i}".encode(), key=f"{tag}-{i % 10}".encode())


if __name__ == "__main__":
    {"append": append, "follow": follow, "produce": produce}[sys.argv[1]](*sys.argv[2:])
