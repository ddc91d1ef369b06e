"""Producer benchmark: how fast records get in, against DIY sqlite3 in the same run.

Workload (the issue's): 100-byte values with 10-byte keys (``data/events.jsonl`` repeated), 8
partitions, lz4, the store's default durability (``flush.messages=1``: an fsync per append).

Lines:
  p1  ``Producer.send()`` one record per call, then ``flush()``     target >= 500,000 records/s
  p2  ``Producer.send_many()`` (the bulk path)                      target >= 1,500,000 records/s
  p3  ``logstore produce`` of a 1-million-line file (a subprocess,  target >= 300,000 lines/s
      interpreter start-up included)
  s1  DIY sqlite3: one table, WAL, ``synchronous=FULL`` (fsync at commit, the same promise as
      logstore's default), ``executemany`` of every record in one transaction (its documented
      fastest path), same records
  p1/s1, p2/s1: ratios; the goal for send() is >= 1.5x.

Run: ``python bench/producer_bench.py`` (1M records) or ``--quick`` (100k). Prints a table and
writes ``bench/results/<date>-producer[-quick].json``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from logstore import LogStore, Producer  # noqa: E402


def load_events(n: int) -> tuple[list[bytes], list[bytes]]:
    with open(os.path.join(ROOT, "data", "events.jsonl"), encoding="utf-8") as f:
        events = [json.loads(line) for line in f if line.strip()]
    vals = [e["value"].encode() for e in events]
    keys = [e["key"].encode() for e in events]
    reps = n // len(vals) + 1
    return (vals * reps)[:n], (keys * reps)[:n]


def median_of(fn, rounds: int) -> tuple[float, list[float]]:
    times = sorted(fn() for _ in range(rounds))
    return times[len(times) // 2], times


def bench_send(base: str, vals: list[bytes], keys: list[bytes]) -> float:
    path = tempfile.mkdtemp(dir=base)
    with LogStore(path) as store:
        store.create_topic("events", 8)
        with Producer(store) as prod:
            t = time.perf_counter()
            send = prod.send
            for v, k in zip(vals, keys, strict=True):
                send("events", v, k)
            prod.flush()
            dt = time.perf_counter() - t
        total = sum(p.end_offset for p in store.describe_topic("events").partitions)
    assert total == len(vals), (total, len(vals))
    shutil.rmtree(path)
    return dt


def bench_bulk(base: str, vals: list[bytes], keys: list[bytes]) -> float:
    path = tempfile.mkdtemp(dir=base)
    with LogStore(path) as store:
        store.create_topic("events", 8)
        with Producer(store) as prod:
            t = time.perf_counter()
            res = prod.send_many("events", vals, keys)
            dt = time.perf_counter() - t
        assert int((res.offsets >= 0).sum()) == len(vals)
        total = sum(p.end_offset for p in store.describe_topic("events").partitions)
    assert total == len(vals)
    shutil.rmtree(path)
    return dt


def bench_cli(base: str, vals: list[bytes], lines: int) -> float:
    path = tempfile.mkdtemp(dir=base)
    src = os.path.join(base, "lines.txt")
    with open(src, "wb") as f:
        f.write(b"\n".join((vals * (lines // len(vals) + 1))[:lines]) + b"\n")
    with LogStore(path) as store:
        store.create_topic("events", 8)
    exe = os.path.join(os.path.dirname(sys.executable), "logstore")
    cmd = [exe] if os.path.exists(exe) else [sys.executable, "-m", "cli"]
    t = time.perf_counter()
    subprocess.run([*cmd, "--dir", path, "-q", "produce", "events", "--file", src], check=True, cwd=ROOT)
    dt = time.perf_counter() - t
    with LogStore(path) as store:
        total = sum(p.end_offset for p in store.describe_topic("events").partitions)
    assert total == lines, (total, lines)
    shutil.rmtree(path)
    os.unlink(src)
    return dt


def bench_sqlite(base: str, vals: list[bytes], keys: list[bytes]) -> float:
    path = os.path.join(tempfile.mkdtemp(dir=base), "q.db")
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, partition INTEGER, key BLOB, value BLOB, ts INTEGER)")
    now = time.time_ns() // 1_000_000
    t = time.perf_counter()
    rows = ((hash(k) % 8, k, v, now) for k, v in zip(keys, vals, strict=True))
    db.execute("BEGIN")
    db.executemany("INSERT INTO events (partition, key, value, ts) VALUES (?, ?, ?, ?)", rows)
    db.execute("COMMIT")
    dt = time.perf_counter() - t
    assert db.execute("SELECT count(*) FROM events").fetchone()[0] == len(vals)
    db.close()
    shutil.rmtree(os.path.dirname(path))
    return dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="100k records, 1 round (a smoke run)")
    ap.add_argument("--dir", help="where to write (default: a temp dir, removed afterwards)")
    args = ap.parse_args()
    n = 100_000 if args.quick else 1_000_000
    rounds = 1 if args.quick else 3
    base = tempfile.mkdtemp(prefix="logstore-pbench-", dir=args.dir)
    vals, keys = load_events(n)
    mode = "quick" if args.quick else "full"
    print(f"logstore producer bench, {mode} mode, {datetime.datetime.now():%Y-%m-%dT%H:%M:%S}")
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {n:,} records, 8 partitions, lz4")
    results = {}
    try:
        for name, fn in (
            ("p1", lambda: bench_send(base, vals, keys)),
            ("p2", lambda: bench_bulk(base, vals, keys)),
            ("p3", lambda: bench_cli(base, vals, n)),
            ("s1", lambda: bench_sqlite(base, vals, keys)),
        ):
            med, all_t = median_of(fn, rounds)
            results[name] = {"seconds": med, "rounds": all_t, "records_per_s": n / med}
    finally:
        shutil.rmtree(base, ignore_errors=True)
    s1 = results["s1"]["records_per_s"]
    rows = [
        ("p1", "Producer.send() one record per call + flush", results["p1"]["records_per_s"], 500_000),
        ("p2", "Producer.send_many() bulk path", results["p2"]["records_per_s"], 1_500_000),
        ("p3", "logstore produce, 1 line per record (subprocess)", results["p3"]["records_per_s"], 300_000),
        ("s1", "DIY sqlite3 WAL synchronous=FULL, executemany, 1 txn", s1, None),
    ]
    print(f"\n{'id':4} {'what':55} {'records/s':>12} {'target':>12}  result  vs sqlite")
    for rid, what, rate, target in rows:
        verdict = "info" if target is None else ("PASS" if rate >= target else "FAIL")
        tgt = "-" if target is None else f">= {target:,}"
        print(f"{rid:4} {what:55} {rate:12,.0f} {tgt:>12}  {verdict:6}  {rate / s1:5.2f}x")
    print(f"goal: send() >= 1.5x sqlite -> {results['p1']['records_per_s'] / s1:.2f}x")
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    out = {
        "when": datetime.datetime.now().isoformat(timespec="seconds"),
        "mode": "quick" if args.quick else "full",
        "records": n,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "cores": os.cpu_count(),
        "results": results,
    }
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    name = f"{datetime.date.today():%Y-%m-%d}-producer{'-quick' if args.quick else ''}.json"
    with open(os.path.join(ROOT, "bench", "results", name), "w", encoding="utf-8") as f:
        json.dump(out, f, indent=2)
    print(f"wrote bench/results/{name}")


if __name__ == "__main__":
    main()
