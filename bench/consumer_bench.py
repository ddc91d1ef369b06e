"""Consumer benchmark: how fast records come back out through ``Consumer``, against DIY sqlite3 in
the same run, plus seek latency and memory while reading a multi-GB log.

Workload (the issue's): 100-byte values with 10-byte keys (``data/events.jsonl`` over and over:
offset ``o`` holds event ``o % 1850``), one partition, lz4, written by ``Producer.send()`` one
record per call with the default settings (batch.size 16384, linger 5 ms). The bench reports the
batches that produces (records per batch, read back with ``iter_batches``) and the offset index
entries per MB, against the count Kafka's index.interval.bytes rule applied batch by batch gives.

Lines (targets from the issue):
  0.batch     records per batch written by ``Producer.send()``                  (info)
  0.index     offset index entries per MB of log, and the count expected        (info; 5.NM.index:
              the same for the log of 5 when it is not the log of 1-4)
  1.iter      ``for r in consumer`` touching r.key and r.value            >= 1,200,000 records/s
  1.poll      ``consumer.poll(0)`` in a loop, same                          >= 1,200,000 records/s
  2.sqlite    DIY sqlite3 peer: table (offset INTEGER PRIMARY KEY, key, value), WAL,
              ``for row in conn.execute('SELECT key, value ... ORDER BY offset')``   peer
  2.ratio     1.iter / 2.sqlite                                             >= 1.0
  3.columns   ``poll_columns()`` (numpy columns, no object per record)      >= 5,000,000 records/s
  4.cli       ``logstore --dir D consume TOPIC -e > /dev/null``, a subprocess on 1M records,
              interpreter start-up included                                 >= 300,000 records/s
  5.NM.*      ``seek(tp, o)`` + ``poll(0)`` at random offsets of a 10M-record log (quick: 1M):
              median (target <= 50 us) and p99, with the default max_partition_fetch_bytes (1 MiB)
              and with 16384; and, as the storage floor (info),
              ``PartitionLog.read_records(o, max_records=1)`` on the same log
  6.rss       consume a ~2 GB log (quick: ~200 MB) by iteration; growth of the peak RSS from 10%
              to 90% of the way                                             < 50 MiB ("flat")

Run: ``python bench/consumer_bench.py`` (about 2.5 minutes on 2 cores) or ``--quick`` (about 30
seconds). Prints a table to stdout (progress to stderr) and writes
``bench/results/<date>-consumer[-quick].json``.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import os
import random
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for p in (REPO, os.path.join(REPO, "bench")):
    if p not in sys.path:
        sys.path.insert(0, p)  # run as a script from a checkout, installed or not

import storage_bench as sb  # noqa: E402  (machine details, percentile, cProfile helpers)

from logstore import Consumer, LogStore, PartitionLog, Producer, TopicPartition  # noqa: E402
from logstore.records.batch import iter_batches  # noqa: E402

EVENTS = os.path.join(REPO, "data", "events.jsonl")
MiB = 1 << 20
LONG_MAX = 2**63 - 1
NO_FSYNC = {"flush.messages": LONG_MAX}  # for the copy read in 6 (how it is written does not matter)

TARGET_RPS = 1_200_000
TARGET_RATIO = 1.0
TARGET_COLUMNS_RPS = 5_000_000
TARGET_CLI_RPS = 300_000
TARGET_SEEK_US = 50.0
TARGET_RSS_GROWTH_MIB = 50.0


@dataclass(frozen=True)
class Sizes:
    records: int  # 1-4: records in the partition read
    rounds: int  # 1-3: the workloads take turns, this many rounds each
    cli_rounds: int
    seek_records: int  # 5: records in the lookup log
    seek_lookups: int  # timed lookups per variant, split over ``rounds`` rounds
    seek_warmup: int  # untimed lookups per variant before the first round
    mem_bytes: int  # 6: size on disk of the log read for the memory test


FULL = Sizes(1_000_000, 5, 3, 10_000_000, 2000, 200, 2_000_000_000)
QUICK = Sizes(1_000_000, 2, 1, 1_000_000, 2000, 50, 200_000_000)


# --- results (the storage bench's table, plus a line that could not be measured) ----------------


@dataclass
class Result:
    id: str
    what: str
    value: float | None  # None: not measured (see note)
    unit: str
    target: str = "-"
    ok: bool | None = None  # None: informational
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    skipped: str = ""  # "n/a" (not available) or "ERROR"

    @property
    def verdict(self) -> str:
        if self.skipped:
            return self.skipped
        return "info" if self.ok is None else ("PASS" if self.ok else "FAIL")


fmt_value = sb.fmt_value
table = sb.table
progress = sb.progress
percentile = sb.percentile


# --- data -----------------------------------------------------------------------------------------


def load_events() -> tuple[list[bytes], list[bytes]]:
    if not os.path.exists(EVENTS):
        sys.exit(f"{EVENTS} is missing: run 'python data/generate.py' (or 'make data') first.")
    values, keys = [], []
    with open(EVENTS, encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            values.append(row["value"].encode())
            keys.append(row["key"].encode())
    return values, keys


def produce(store: LogStore, topic: str, vals: list[bytes], keys: list[bytes], n: int) -> float:
    """Write ``n`` records (offset o: event o % len(vals)) with ``Producer.send`` one per call,
    default settings; returns the seconds taken."""
    store.create_topic(topic, 1)
    t0 = time.perf_counter()
    with Producer(store) as prod:
        send = prod.send
        for v, k in itertools.islice(itertools.cycle(zip(vals, keys, strict=True)), n):
            send(topic, v, k)
        prod.flush()
    dt = time.perf_counter() - t0
    log = store.partition(topic, 0)
    if log.next_offset != n:
        raise AssertionError(f"{topic} holds {log.next_offset} records, expected {n}")
    return dt


def layout(log: PartitionLog) -> dict[str, Any]:
    """How the log is laid out: batches (records each, from the batch headers), bytes, and offset
    index entries, with the count expected from index.interval.bytes applied batch by batch (an
    entry for a batch when more than the interval was written since the last entry, as
    ``LogSegment.after_append`` and Kafka do)."""
    counts: Counter[int] = Counter()
    batches = records = size = entries = expected = 0
    interval = log.config.index_interval_bytes
    for seg in log.segments:
        with open(seg.log_path, "rb") as f:
            buf = f.read()
        end = since = 0
        for pos, h in iter_batches(buf):
            counts[h.records_count] += 1
            batches += 1
            records += h.records_count
            if since > interval:
                expected += 1
                since = 0
            since += h.size
            end = pos + h.size
        if end != len(buf):
            raise AssertionError(f"{seg.log_path}: batches end at byte {end} of {len(buf)}")
        size += len(buf)
        entries += seg.index.entries
    return {
        "segments": len(log.segments),
        "batches": batches,
        "records": records,
        "bytes": size,
        "records_per_batch_mean": records / batches,
        "records_per_batch_common": counts.most_common(4),
        "bytes_per_record": size / records,
        "bytes_per_batch_mean": size / batches,
        "index_interval_bytes": interval,
        "index_entries": entries,
        "index_entries_expected": expected,
        "index_entries_per_mb": entries / (size / 1e6),
    }


def layout_note(lay: dict[str, Any]) -> str:
    common = ", ".join(f"{c}x{k}" for k, c in lay["records_per_batch_common"])
    return (
        f"{lay['batches']:,} batches, {lay['records_per_batch_mean']:.2f} records/batch mean "
        f"(batches x records: {common}), {lay['bytes_per_batch_mean']:,.0f} B/batch; "
        f"{lay['bytes'] / 1e6:.1f} MB on disk, {lay['bytes_per_record']:.1f} B/record"
    )


def index_note(lay: dict[str, Any]) -> str:
    return (
        f"{lay['index_entries']:,} offset index entries over {lay['bytes'] / 1e6:.1f} MB; "
        f"index.interval.bytes {lay['index_interval_bytes']} applied batch by batch gives "
        f"{lay['index_entries_expected']:,}"
    )


def copy_batches(src: PartitionLog, dst: PartitionLog, target_bytes: int, per_append: int) -> int:
    """Append the batches of ``src``, in order and over again, to ``dst`` (which assigns them new
    offsets) until ``dst`` holds at least ``target_bytes``, as many whole batches per append as fit
    ``per_append`` bytes. Returns the records ``dst`` holds."""
    while True:
        for seg in src.segments:
            with open(seg.log_path, "rb") as f:
                buf = f.read()
            view = memoryview(buf)
            start = 0  # first byte not appended yet
            for pos, h in iter_batches(buf):
                end = pos + h.size
                if end - start <= per_append:
                    continue
                if pos > start:
                    dst.append(view[start:pos], validate=False)
                    start = pos
                if end - start > per_append:  # one batch larger than per_append: alone
                    dst.append(view[start:end], validate=False)
                    start = end
                if dst.size_bytes >= target_bytes:
                    return dst.next_offset
            if start < len(buf):
                dst.append(view[start:], validate=False)
            if dst.size_bytes >= target_bytes:
                return dst.next_offset


# --- workloads ------------------------------------------------------------------------------------


def iterate(store: LogStore, topic: str, n: int, touched: int) -> float:
    """``for r in consumer`` touching key and value; returns seconds. Checks count and bytes (and,
    for a topic of one partition, the position reached)."""
    consumer = Consumer(store, topic, stop_at_end=True)
    total = count = 0
    t0 = time.perf_counter()
    for r in consumer:
        total += len(r.key) + len(r.value)
        count += 1
    dt = time.perf_counter() - t0
    last = consumer.position(TopicPartition(topic, 0)) if store.partition_count(topic) == 1 else n
    consumer.close()
    if count != n or total != touched or last != n:
        raise AssertionError(f"{topic}: {count} records, {total} bytes, position {last}; expected {n}, {touched}")
    return dt


def poll_loop(store: LogStore, topic: str, n: int, touched: int) -> float:
    consumer = Consumer(store, topic, stop_at_end=True)
    poll = consumer.poll
    total = count = 0
    t0 = time.perf_counter()
    while True:
        r = poll(0)
        if r is None:
            break
        total += len(r.key) + len(r.value)
        count += 1
    dt = time.perf_counter() - t0
    consumer.close()
    if count != n or total != touched:
        raise AssertionError(f"poll(): {count} records, {total} bytes; expected {n}, {touched}")
    return dt


def columns(store: LogStore, topic: str, n: int, touched: int) -> float:
    """poll_columns until the end; touches every chunk's offsets and key/value lengths (numpy)."""
    consumer = Consumer(store, topic, stop_at_end=True)
    pc = consumer.poll_columns
    total = count = 0
    t0 = time.perf_counter()
    while True:
        chunk = pc(0)
        if chunk is None:
            break
        rec = chunk.records
        k = len(rec)
        if int(rec.offsets[0]) != count or int(rec.offsets[-1]) != count + k - 1:
            raise AssertionError(f"poll_columns: offsets {rec.offsets[0]}..{rec.offsets[-1]} at {count}")
        total += int(rec.key_lengths.sum()) + int(rec.value_lengths.sum())
        count += k
    dt = time.perf_counter() - t0
    consumer.close()
    if count != n or total != touched:
        raise AssertionError(f"poll_columns: {count} records, {total} bytes; expected {n}, {touched}")
    return dt


def sqlite_build(path: str, vals: list[bytes], keys: list[bytes], n: int) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (offset INTEGER PRIMARY KEY, key BLOB, value BLOB)")
    m = len(vals)
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO t VALUES (?, ?, ?)", ((o, keys[o % m], vals[o % m]) for o in range(n)))
    conn.execute("COMMIT")
    return conn


def sqlite_read(conn: sqlite3.Connection, n: int, touched: int) -> float:
    total = count = 0
    t0 = time.perf_counter()
    for row in conn.execute("SELECT key, value FROM t WHERE offset >= ? ORDER BY offset", (0,)):
        total += len(row[0]) + len(row[1])
        count += 1
    dt = time.perf_counter() - t0
    if count != n or total != touched:
        raise AssertionError(f"sqlite: {count} rows, {total} bytes; expected {n}, {touched}")
    return dt


def cli_command() -> list[str]:
    exe = os.path.join(os.path.dirname(sys.executable), "logstore")
    return [exe] if os.path.exists(exe) else [sys.executable, "-m", "cli"]


def shown_command() -> list[str]:
    """cli_command() as recorded in the results: no path of this machine (relative to the
    repository inside it, else the program's name)."""

    return [sb.shown_path(part) if os.path.isabs(part) else part for part in cli_command()]


def cli_available() -> tuple[bool, str]:
    cmd = [*cli_command(), "consume", "--help"]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, f"{' '.join(cmd)} could not run: {e}"
    if p.returncode != 0:
        first = (p.stderr.strip().splitlines() or ["?"])[-1]
        return False, f"'logstore consume' is not available in this checkout (exit {p.returncode}: {first})"
    return True, ""


def cli_run(store_dir: str, topic: str, stdout: Any) -> float:
    cmd = [*cli_command(), "--dir", store_dir, "consume", topic, "-e"]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, stdout=stdout, stderr=subprocess.PIPE, cwd=REPO)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {p.returncode}: {p.stderr.decode(errors='replace')[-500:]}")
    return dt


def seek_latencies(consumer: Consumer, tp: TopicPartition, offsets: list[int], vals: list[bytes]) -> list[float]:
    """µs per ``seek(tp, o)`` + ``poll(0)``; checks each returns offset o with its value."""
    m = len(vals)
    out = []
    clock = time.perf_counter_ns
    seek, poll = consumer.seek, consumer.poll
    for o in offsets:
        t0 = clock()
        seek(tp, o)
        r = poll(0)
        t1 = clock()
        out.append((t1 - t0) / 1000)
        if r is None or r.offset != o or r.value != vals[o % m]:
            raise AssertionError(f"seek({o}) + poll(0) returned {r!r}")
    return out


def read_records_latencies(log: PartitionLog, offsets: list[int], vals: list[bytes]) -> list[float]:
    """µs per ``read_records(o, max_records=1)``; checks each returns offset o with its value."""
    m = len(vals)
    out = []
    clock = time.perf_counter_ns
    for o in offsets:
        t0 = clock()
        cols = log.read_records(o, max_records=1)
        t1 = clock()
        out.append((t1 - t0) / 1000)
        if cols.offsets != [o] or cols.values[0] != vals[o % m]:
            raise AssertionError(f"read_records({o}, max_records=1) returned {cols!r}")
    return out


def rss_kib() -> tuple[int, int]:
    """(VmRSS, VmHWM) of this process in KiB, from /proc/self/status; VmHWM falls back to ru_maxrss."""
    rss = hwm = 0
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1])
    except OSError:
        pass
    if not hwm:
        hwm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss, hwm


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux: write 5 to /proc/self/clear_refs), so the peak
    measured is the peak of what follows, not of the earlier measurements."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
        return True
    except OSError:
        return False


def spread(times: list[float], n: int) -> str:
    rates = sorted(n / t for t in times)
    return f"rounds {rates[0]:,.0f}-{rates[-1]:,.0f} rec/s"


# --- the bench ------------------------------------------------------------------------------------


class Bench:
    def __init__(self, root: str, sizes: Sizes, quick: bool, profiles_on: bool) -> None:
        self.root = root
        self.sizes = sizes
        self.quick = quick
        self.profiles_on = profiles_on
        self.vals, self.keys = load_events()
        self.results: list[Result] = []
        self.profiles: dict[str, dict[str, Any]] = {}
        self.layouts: dict[str, dict[str, Any]] = {}
        self.store = LogStore(os.path.join(root, "store"))

    def add(self, r: Result) -> Result:
        self.results.append(r)
        progress(f"  {r.id} {r.what.strip()}: {fmt_value(r.value, r.unit)} {r.unit} [{r.verdict}]")
        return r

    @staticmethod
    def near_miss(value: float, target: float, *, higher_is_better: bool) -> bool:
        """Missed, or within 25% of the target."""
        return value < target * 1.25 if higher_is_better else value > target / 1.25

    def maybe_profile(self, key: str, title: str, failed: bool, fn: Callable[[], Any]) -> None:
        if failed and self.profiles_on:
            progress(f"  profiling {key} ({title})")
            self.profiles[key] = {"title": title, **sb.profile(fn, top=10)}

    def index_result(self, rid: str, lay: dict[str, Any]) -> None:
        self.add(
            Result(
                rid,
                "offset index entries per MB of log",
                lay["index_entries_per_mb"],
                "/MB",
                note=index_note(lay),
                extra={k: lay[k] for k in ("index_entries", "index_entries_expected", "index_interval_bytes")},
            )
        )

    def touched(self, n: int) -> int:
        """Bytes of key + value of offsets 0..n-1."""
        m = len(self.vals)
        full, rest = divmod(n, m)
        per = sum(map(len, self.vals)) + sum(map(len, self.keys))
        return full * per + sum(map(len, self.vals[:rest])) + sum(map(len, self.keys[:rest]))

    # 1-4 ---------------------------------------------------------------------------------------

    def throughput(self) -> None:
        n, store = self.sizes.records, self.store
        progress(f"writing {n:,} records with Producer.send() (default settings) and the same rows to sqlite")
        write_s = produce(store, "events", self.vals, self.keys, n)
        lay = self.layouts["events"] = layout(store.partition("events", 0))
        self.add(
            Result(
                "0.batch",
                "records per batch written by Producer.send() (iter_batches)",
                lay["records_per_batch_mean"],
                "rec",
                note=f"{n:,} records sent in {write_s:.1f} s ({n / write_s:,.0f} rec/s incl. flush); "
                + layout_note(lay),
                extra=lay,
            )
        )
        self.index_result("0.index", lay)
        conn = sqlite_build(os.path.join(self.root, "peer.db"), self.vals, self.keys, n)
        touched = self.touched(n)
        work: dict[str, Callable[[], float]] = {
            "iter": lambda: iterate(store, "events", n, touched),
            "poll": lambda: poll_loop(store, "events", n, touched),
            "sqlite": lambda: sqlite_read(conn, n, touched),
            "columns": lambda: columns(store, "events", n, touched),
        }
        for fn in work.values():  # warm-up, untimed (and every check once)
            fn()
        times: dict[str, list[float]] = {k: [] for k in work}
        names = list(work)
        for rnd in range(self.sizes.rounds):
            progress(f"round {rnd + 1}/{self.sizes.rounds} of {' / '.join(names)}")
            k = rnd % len(names)
            for name in names[k:] + names[:k]:
                times[name].append(work[name]())
        med = {k: statistics.median(v) for k, v in times.items()}
        rate = {k: n / v for k, v in med.items()}
        per_round_ratio = statistics.median(s / i for i, s in zip(times["iter"], times["sqlite"], strict=True))
        rounds = f"median of {self.sizes.rounds} rounds"
        it = self.add(
            Result(
                "1.iter",
                "for r in consumer (touch r.key, r.value)",
                rate["iter"],
                "rec/s",
                f">= {TARGET_RPS:,}",
                rate["iter"] >= TARGET_RPS,
                f"{rounds}, {spread(times['iter'], n)}; one partition of {n:,} records",
                {"seconds": times["iter"]},
            )
        )
        self.add(
            Result(
                "1.poll",
                "consumer.poll(0) in a loop (touch r.key, r.value)",
                rate["poll"],
                "rec/s",
                f">= {TARGET_RPS:,}",
                rate["poll"] >= TARGET_RPS,
                f"{rounds}, {spread(times['poll'], n)}",
                {"seconds": times["poll"]},
            )
        )
        self.add(
            Result(
                "2.sqlite",
                "DIY sqlite3 WAL: SELECT key, value ... ORDER BY offset",
                rate["sqlite"],
                "rec/s",
                note=f"{rounds}, {spread(times['sqlite'], n)}; sqlite {sqlite3.sqlite_version}, "
                "table (offset INTEGER PRIMARY KEY, key BLOB, value BLOB), same rows",
                extra={"seconds": times["sqlite"]},
            )
        )
        ratio = rate["iter"] / rate["sqlite"]
        self.add(
            Result(
                "2.ratio",
                "1.iter / 2.sqlite",
                ratio,
                "x",
                f">= {TARGET_RATIO:.1f}",
                ratio >= TARGET_RATIO,
                f"ratio of the medians; median of the per-round ratios {per_round_ratio:.2f}; "
                f"poll()/sqlite {rate['poll'] / rate['sqlite']:.2f}",
                {"per_round_ratio_median": per_round_ratio},
            )
        )
        self.add(
            Result(
                "3.columns",
                "poll_columns(0) until the end (numpy columns)",
                rate["columns"],
                "rec/s",
                f">= {TARGET_COLUMNS_RPS:,}",
                rate["columns"] >= TARGET_COLUMNS_RPS,
                f"{rounds}, {spread(times['columns'], n)}; checks offsets and sums key/value lengths per chunk",
                {"seconds": times["columns"]},
            )
        )
        conn.close()
        self.maybe_profile(
            "1.iter",
            f"for r in consumer over {n:,} records",
            self.near_miss(it.value or 0, TARGET_RPS, higher_is_better=True),
            work["iter"],
        )
        self.maybe_profile(
            "3.columns",
            f"poll_columns over {n:,} records",
            self.near_miss(rate["columns"], TARGET_COLUMNS_RPS, higher_is_better=True),
            work["columns"],
        )
        self.cli(n)

    def cli(self, n: int) -> None:
        what = "logstore --dir D consume TOPIC -e > /dev/null (subprocess)"
        target = f">= {TARGET_CLI_RPS:,}"
        ok, why = cli_available()
        if not ok:
            self.add(Result("4.cli", what, None, "rec/s", target, note=f"not available: {why}", skipped="n/a"))
            return
        store_dir = self.store.path
        try:
            # Untimed check: every value, one per line, in offset order.
            out_path = os.path.join(self.root, "cli-out.txt")
            with open(out_path, "wb") as out:
                first_s = cli_run(store_dir, "events", out)
            m = len(self.vals)
            with open(out_path, "rb") as f:
                lines = f.read().split(b"\n")
            os.unlink(out_path)
            if lines[-1] == b"":
                lines.pop()
            if len(lines) != n or any(lines[o] != self.vals[o % m] for o in (0, 1, m, n // 2, n - 1)):
                raise RuntimeError(f"printed {len(lines):,} lines, expected the {n:,} values one per line")
            del lines
            times = []
            for _ in range(self.sizes.cli_rounds):
                with open(os.devnull, "wb") as devnull:
                    times.append(cli_run(store_dir, "events", devnull))
        except RuntimeError as e:
            self.add(Result("4.cli", what, None, "rec/s", target, note=f"error: {e}", skipped="ERROR"))
            return
        rate = n / statistics.median(times)
        self.add(
            Result(
                "4.cli",
                what,
                rate,
                "rec/s",
                target,
                rate >= TARGET_CLI_RPS,
                f"median of {len(times)} runs ({', '.join(f'{t:.2f}' for t in times)} s wall, start-up included); "
                f"the first run (untimed, output to a file and checked) took {first_s:.2f} s",
                {
                    "seconds": times,
                    "first_run_seconds": first_s,
                    "command": [*shown_command(), "--dir", "D", "consume", "events", "-e"],
                },
            )
        )

    # 5 ------------------------------------------------------------------------------------------

    def seeks(self) -> None:
        sz, store = self.sizes, self.store
        n = sz.seek_records
        label = f"{n // 1_000_000}M"
        if n == sz.records and "events" in self.layouts:
            topic = "events"  # quick mode: the log of 1-4 has the size asked for
        else:
            topic = "seek"
            progress(f"writing {n:,} records with Producer.send() for the seek lookups")
            write_s = produce(store, topic, self.vals, self.keys, n)
            progress(f"  {n / write_s:,.0f} rec/s")
            self.layouts[topic] = layout(store.partition(topic, 0))
            self.index_result(f"5.{label}.index", self.layouts[topic])
        lay = self.layouts[topic]
        log = store.partition(topic, 0)
        tp = TopicPartition(topic, 0)
        rng = random.Random(20231114)
        c_default = Consumer(store, topic)
        c_small = Consumer(store, topic, max_partition_fetch_bytes=16384)
        variants: dict[str, Callable[[list[int]], list[float]]] = {
            "default": lambda offs: seek_latencies(c_default, tp, offs, self.vals),
            "16k": lambda offs: seek_latencies(c_small, tp, offs, self.vals),
            "read_records": lambda offs: read_records_latencies(log, offs, self.vals),
        }
        per_round = sz.seek_lookups // sz.rounds
        progress(
            f"5: seek + poll(0) at random offsets of {label}: {sz.seek_warmup} warm-up, then "
            f"{sz.rounds} rounds of {per_round} per variant"
        )
        for fn in variants.values():
            fn([rng.randrange(n) for _ in range(sz.seek_warmup)])
        lat: dict[str, list[list[float]]] = {k: [] for k in variants}
        names = list(variants)
        for rnd in range(sz.rounds):
            k = rnd % len(names)
            for name in names[k:] + names[:k]:
                lat[name].append(variants[name]([rng.randrange(n) for _ in range(per_round)]))
        c_default.close()
        c_small.close()

        def lat_result(rid: str, what: str, rounds: list[list[float]], judged: bool, note: str) -> float:
            pooled = sorted(itertools.chain.from_iterable(rounds))
            meds = [statistics.median(r) for r in rounds]
            med, p99 = statistics.median(meds), percentile(pooled, 99)
            detail = {
                "lookups": len(pooled),
                "round_medians_us": meds,
                "pooled_median_us": percentile(pooled, 50),
                "p90_us": percentile(pooled, 90),
                "max_us": pooled[-1],
            }
            target = f"<= {TARGET_SEEK_US:.0f}" if judged else "-"
            note = (
                f"median of {len(rounds)} round medians ({len(rounds[0])} lookups each), rounds "
                f"{min(meds):.1f}-{max(meds):.1f} us; pooled median {detail['pooled_median_us']:.1f}, "
                f"p90 {detail['p90_us']:.1f}" + (f"; {note}" if note else "")
            )
            self.add(
                Result(f"{rid}.med", what, med, "us", target, (med <= TARGET_SEEK_US) if judged else None, note, detail)
            )
            self.add(Result(f"{rid}.p99", "    p99 (all rounds pooled)", p99, "us"))
            return med

        med_default = lat_result(
            f"5.{label}.default",
            f"seek + poll(0), {label} records, max_partition_fetch_bytes 1 MiB (default)",
            lat["default"],
            True,
            f"{sz.seek_warmup} warm-up first; log written by Producer.send(), "
            f"{lay['records_per_batch_mean']:.1f} rec/batch, {lay['index_entries_per_mb']:.0f} index entries per MB; "
            "the first poll after a seek reads one record (PartitionLog.fetch(o, max_bytes, max_records=1))",
        )
        lat_result(
            f"5.{label}.16k",
            f"seek + poll(0), {label} records, max_partition_fetch_bytes 16384",
            lat["16k"],
            True,
            "same log",
        )
        lat_result(
            f"5.{label}.read_records",
            "  PartitionLog.read_records(o, max_records=1), same log",
            lat["read_records"],
            False,
            "the storage floor: index lookup + batch scan + decode of one record",
        )

        def profile_default() -> None:
            c = Consumer(store, topic)
            seek_latencies(c, tp, [rng.randrange(n) for _ in range(500)], self.vals)
            c.close()

        self.maybe_profile(
            f"5.{label}.default",
            f"500 x seek + poll(0) on {label}, default max_partition_fetch_bytes",
            self.near_miss(med_default, TARGET_SEEK_US, higher_is_better=False),
            profile_default,
        )
        self.seek_topic = topic

    # 6 ------------------------------------------------------------------------------------------

    def memory(self) -> None:
        want = self.sizes.mem_bytes
        free = shutil.disk_usage(self.root).free
        note = ""
        if free < want * 2 + 512 * MiB:
            scaled = max(64 * MiB, (free - 512 * MiB) // 2)
            note = f"only {free / 1e9:.1f} GB free under {self.root}: scaled down from {want / 1e9:.1f} GB. "
            print(f"note: {note}", flush=True)
            progress(note)
            want = scaled
        topic = getattr(self, "seek_topic", None) or ("events" if "events" in self.layouts else None)
        if topic is None:
            topic = "events"
            progress(f"writing {self.sizes.records:,} records with Producer.send() to copy from")
            produce(self.store, topic, self.vals, self.keys, self.sizes.records)
        src = self.store.partition(topic, 0)
        progress(f"6: copying the producer's batches into a {want / 1e9:.1f} GB log (appends of up to 1 MiB)")
        mem_store = LogStore(os.path.join(self.root, "mem"))
        mem_store.create_topic("mem", 1, config=NO_FSYNC)
        log = mem_store.partition("mem", 0)
        t0 = time.perf_counter()
        n = copy_batches(src, log, want, MiB)
        size = log.size_bytes
        progress(
            f"  {n:,} records, {size / 1e9:.2f} GB, {len(log.segments)} segments in {time.perf_counter() - t0:.0f} s"
        )
        marks = [n * q // 100 for q in (10, 50, 90)]
        samples: list[tuple[int, int, int]] = []
        gc.collect()
        reset = reset_peak_rss()
        base = rss_kib()
        consumer = Consumer(mem_store, "mem", stop_at_end=True)
        total = count = 0
        nxt = marks[0]
        mark_i = 0
        progress(f"  consuming {n:,} records by iteration")
        t0 = time.perf_counter()
        for r in consumer:
            total += len(r.key) + len(r.value)
            count += 1
            if count == nxt:
                samples.append((count, *rss_kib()))
                mark_i += 1
                nxt = marks[mark_i] if mark_i < len(marks) else -1
        dt = time.perf_counter() - t0
        end = rss_kib()
        consumer.close()
        if count != n or total != self.touched(n) or len(samples) != 3:
            raise AssertionError(f"memory test: {count} records, {total} bytes, {len(samples)} samples; expected {n}")
        peak_key = "VmHWM since reset" if reset else "ru_maxrss"
        growth = (samples[2][2] - samples[0][2]) / 1024
        fmt = ", ".join(
            f"{q}% {rss / 1024:.0f}/{hwm / 1024:.0f}" for q, (_, rss, hwm) in zip((10, 50, 90), samples, strict=True)
        )
        self.add(
            Result(
                "6.rss",
                f"peak RSS growth from 10% to 90% of a {size / 1e9:.2f} GB log",
                growth,
                "MiB",
                f"< {TARGET_RSS_GROWTH_MIB:.0f}",
                growth < TARGET_RSS_GROWTH_MIB,
                f"{note}{n:,} records in {len(log.segments)} segments (the producer's batches, copied), read by "
                f"for r in consumer at {n / dt:,.0f} rec/s; RSS/peak ({peak_key}) MiB: before {base[0] / 1024:.0f}/"
                f"{base[1] / 1024:.0f}, {fmt}, end {end[0] / 1024:.0f}/{end[1] / 1024:.0f}",
                {
                    "records": n,
                    "bytes": size,
                    "seconds": dt,
                    "peak_source": peak_key,
                    "before_kib": base,
                    "samples_kib": samples,
                    "end_kib": end,
                },
            )
        )
        self.add(Result("6.rate", "  for r in consumer over that log", n / dt, "rec/s", note="one pass, info"))
        path = mem_store.path
        mem_store.close()
        shutil.rmtree(path, ignore_errors=True)

    def close(self) -> None:
        self.store.close()


# --- main -----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller: 2 rounds, 1M-record seek log, ~200 MB memory test")
    ap.add_argument("--dir", help="directory to create the bench files in (default: the system temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the bench directory afterwards")
    ap.add_argument("--profile", action=argparse.BooleanOptionalAction, default=None, help="profile missed targets")
    ap.add_argument("--only", help="comma-separated subset of 1,5,6 (1 = lines 0-4)")
    ap.add_argument("--out", help="results JSON path (default bench/results/<date>-consumer[-quick].json)")
    args = ap.parse_args(argv)

    sizes = QUICK if args.quick else FULL
    profiles_on = (not args.quick) if args.profile is None else args.profile
    only = set((args.only or "1,5,6").split(","))
    root = sb.make_root("logstore-cbench-", args.dir)
    mode = "quick" if args.quick else "full"
    started = time.time()
    t_start = time.perf_counter()
    info = sb.machine(root)
    header = sb.run_header(
        "consumer",
        mode,
        info,
        root,
        f"sqlite {sqlite3.sqlite_version}",
        "reads: warm page cache (the logs were just written)",
    )
    progress(header.replace("\n", "\n    "))
    bench = Bench(root, sizes, args.quick, profiles_on)
    try:
        if "1" in only:
            bench.throughput()
        if "5" in only:
            bench.seeks()
        if "6" in only:
            bench.memory()
    finally:
        bench.close()
        sb.remove_root(root, args.keep)
    elapsed = time.perf_counter() - t_start

    results = sorted(bench.results, key=lambda r: int(r.id.split(".")[0]))  # stable: keeps order in a group
    load_end = sb.print_report(header, results, elapsed, info["load_average_start"], bench.profiles)
    machine = info | {"sqlite": sqlite3.sqlite_version}
    doc = sb.run_doc("bench/consumer_bench.py", mode, started, elapsed, machine, load_end, sizes.__dict__)
    doc |= {"layouts": bench.layouts, "results": sb.result_rows(results), "profiles": bench.profiles}
    sb.write_results(args.out or sb.default_out("-consumer", args.quick), doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
