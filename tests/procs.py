"""Worker processes for the multi-process tests (run as ``python tests/procs.py CMD ...``).

append STORE TOPIC PARTITION COUNT TAG SEED
    Appends COUNT records ``TAG-i`` in batches of 1-7 (seeded), printing ``ack FIRST LAST`` after
    each append returns (i.e. once it is durable).
group STORE TOPIC GROUP OUT
    A consumer-group member: appends ``partition offset`` to OUT for each record it processes,
    commits every COMMIT_EVERY records (after sleeping COMMIT_DELAY s) and in on_revoke, and prints
    ``ASSIGN gen member p p ...``, ``COMMITTED gen p:o ...`` and ``COMMIT_FAILED ...`` lines. SIGTERM
    closes it cleanly. Env: SESSION_MS, HB_MS, MAX_POLL_MS.
remake STORE TOPIC SEGMENT_BYTES COUNT TAG
    Deletes TOPIC, makes it again (one partition, SEGMENT_BYTES per segment) and appends COUNT
    records ``TAG-i`` to it, one per batch.
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


def remake(store_path: str, topic: str, segment_bytes: str, count: str, tag: str) -> None:
    with LogStore(store_path) as store:
        store.delete_topic(topic)
        store.create_topic(topic, 1, {"segment.bytes": int(segment_bytes)})
        for i in range(int(count)):
            store.append(topic, 0, [f"{tag}-{i}".encode()])


def produce(store_path: str, topic: str, count: str, tag: str) -> None:
    """Send COUNT records ``TAG-i`` keyed by ``TAG-(i % 10)`` through one Producer."""
    from logstore import Producer

    with LogStore(store_path) as store, Producer(store, linger_ms=1) as prod:
        start_at = float(os.environ.get("START_AT", "0"))
        while time.time() < start_at:
            time.sleep(0.001)
        for i in range(int(count)):
            prod.send(topic, f"{tag}-{i}".encode(), key=f"{tag}-{i % 10}".encode())


def group(store_path: str, topic: str, group_id: str, out_path: str) -> None:
    import signal

    from logstore import Consumer
    from logstore.errors import CommitFailedError

    env = os.environ
    stop = False

    def on_term(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    every = int(env.get("COMMIT_EVERY", "1"))
    delay = float(env.get("COMMIT_DELAY", "0"))
    fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def commit(c: Consumer) -> None:
        try:
            done = c.commit()
        except CommitFailedError as e:
            print(f"COMMIT_FAILED {c.generation} {e}", flush=True)
            return
        if done:
            print(
                f"COMMITTED {c.generation} " + " ".join(f"{tp.partition}:{om.offset}" for tp, om in done.items()),
                flush=True,
            )

    def on_assign(c: Consumer, parts: list) -> None:
        line = f"ASSIGN {c.generation} {c.member_id} " + " ".join(str(tp.partition) for tp in sorted(parts))
        print(line.rstrip(), flush=True)

    with LogStore(store_path) as store:
        c = Consumer(
            store,
            topic,
            group_id=group_id,
            enable_auto_commit=False,
            session_timeout_ms=int(env.get("SESSION_MS", "3000")),
            heartbeat_interval_ms=int(env.get("HB_MS", "200")),
            max_poll_interval_ms=int(env.get("MAX_POLL_MS", "300000")),
            fetch_max_wait_ms=20,
            on_assign=on_assign,
            on_revoke=lambda c, parts: commit(c),
        )
        n = 0
        while not stop:
            r = c.poll(0.05)
            if r is None:
                continue
            os.write(fd, f"{r.partition} {r.offset} {time.monotonic_ns()}\n".encode())
            n += 1
            if n % every == 0:
                if delay:
                    time.sleep(delay)
                commit(c)
        c.close()
    print("CLOSED", flush=True)


if __name__ == "__main__":
    {"append": append, "follow": follow, "produce": produce, "group": group, "remake": remake}[sys.argv[1]](
        *sys.argv[2:]
    )
