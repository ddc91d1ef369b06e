"""Scaling benchmark: how logstore's costs grow with partitions, segments, log size, group members
and the amount read.

Data: ``data/events.jsonl`` keys and 100-byte values over and over (record ``i`` is event
``i % 1850``), lz4, logstore's default durability (an fsync per append) unless a line says
otherwise.

Lines:
  1.P.send_many  ``Producer.send_many(topic, values, keys)`` of the same records (500,000; quick
                 100,000) into a topic of P = 1, 8, 64, 1,024 partitions (keyed: murmur2 of the
                 key), records/s
  1.P.send       ``Producer.send()`` per record + ``flush()``, same records, a topic of its own
  1.P.consume    ``for r in Consumer(store, topic, stop_at_end=True)`` over the send_many topic,
                 touching key and value
                 (the partition counts take turns in every round, the order rotating; median of 3
                 rounds, quick 1, after an untimed warm-up on a tenth of the records at 1 and 8 partitions;
                 create_topic is not timed)
  2.open         a store of 10,000 segments (100 partitions x 100 one-batch segments; quick 20 x 50),
                 in a fresh process: ``LogStore(path)``, then every partition opened and one record
                 read from each (offset 0, the oldest segment): ms, median of 3 processes (quick 1)
  2.fds          the file descriptors of that process (``/proc/self/fd``) after the import, after
                 ``LogStore(path)`` and after the reads
  3.N.*          seek latency against log size: one partition of N = 10^4, 10^5, 10^6, 10^7 records
                 (quick: up to 10^6) laid out as ``Producer.send()`` writes it (its batches of about
                 124 records, copied); ``consumer.seek(tp, o)`` + ``poll(0)`` and
                 ``PartitionLog.read_records(o, max_records=1)`` at random offsets: median of the
                 round medians, p99 pooled (5 rounds of 400 per variant and size, quick 2; 200 warm-up)
  4.M.rebalance  consumer-group rebalance time as member processes join: 1 -> 2, 2 -> 4, 4 -> 8 (the
                 new members started beforehand, told to poll at the same moment): from the first
                 new member's first poll to every member's first record of the new generation; a
                 32-partition topic a feeder process keeps appending to (group_bench.py's workers
                 and RebalanceRun, imported); median of 3 rounds (quick 1)
  5.rss          RSS sampled every 50 ms (``VmRSS`` of ``/proc/self/status``, a sampler thread)
                 while one consumer reads a ~2 GB log by iteration (quick ~200 MB; consumer_bench's
                 copy of the producer's batches): RSS at start, max and end, and the growth from 10%
                 to 90% of the read; plotted over time

Run from the repository root: ``python bench/scaling_bench.py`` (about 3 minutes on 2 cores) or
``--quick`` (under a minute). Prints a table to stdout (progress to stderr), writes
``bench/results/<date>-scaling[-quick].json`` and the plots ``<date>-scaling[-quick]-seek.png`` and
``-rss.png`` beside it. Every read is from a warm page cache (the files were just written).
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for p in (REPO, os.path.join(REPO, "bench")):
    if p not in sys.path:
        sys.path.insert(0, p)  # run as a script from a checkout, installed or not

import consumer_bench as cb  # noqa: E402  (Result, the log-building and latency helpers)
import group_bench as gb  # noqa: E402  (member/feeder processes, RebalanceRun)
import retention_bench as rb  # noqa: E402  (a store of many one-batch segments)
import storage_bench as sb  # noqa: E402  (machine details, report, results JSON)

from logstore import Consumer, LogStore, PartitionLog, Producer, TopicPartition  # noqa: E402
from logstore.records.batch import iter_batches  # noqa: E402

Result = cb.Result
progress = sb.progress
percentile = sb.percentile
MiB = 1 << 20
LONG_MAX = 2**63 - 1
NO_FSYNC = {"flush.messages": LONG_MAX}
TOPIC = "events"
SAMPLE_S = 0.05  # RSS sampling period


@dataclass(frozen=True)
class Sizes:
    records: int  # 1: records produced and consumed at every partition count
    partitions: tuple[int, ...]
    rounds: int  # 1: rounds; 3: rounds of lookups
    open_partitions: int  # 2
    open_segments: int  # 2: per partition
    open_runs: int  # 2: fresh processes
    seek_sizes: tuple[int, ...]  # 3
    seek_lookups: int  # 3: timed lookups per variant and size, split over seek_rounds
    seek_rounds: int
    seek_warmup: int
    rebalance_rounds: int  # 4
    mem_bytes: int  # 5


FULL = Sizes(500_000, (1, 8, 64, 1024), 3, 100, 100, 3, (10**4, 10**5, 10**6, 10**7), 2000, 5, 200, 3, 2_000_000_000)
QUICK = Sizes(100_000, (1, 8, 64, 1024), 1, 20, 50, 1, (10**4, 10**5, 10**6), 600, 2, 50, 1, 200_000_000)
SRC_RECORDS = 1850 * 54  # 3: the Producer.send() log copied into every size (99,900 records)
JOINS = ((1, 1), (2, 2), (4, 4))  # 4: (members, joining)


def size_label(n: int) -> str:
    return f"1e{len(str(n)) - 1}" if str(n).strip("0") == "1" else f"{n:,}"


def fd_count() -> int:
    """Open file descriptors of this process (Linux)."""
    return len(os.listdir("/proc/self/fd"))


# --- 1. produce and consume against partition count --------------------------------------------------


def produce_bulk(store: LogStore, topic: str, vals: list[bytes], keys: list[bytes]) -> float:
    with Producer(store) as prod:
        t0 = time.perf_counter()
        res = prod.send_many(topic, vals, keys)
        dt = time.perf_counter() - t0
    if int((res.offsets >= 0).sum()) != len(vals):
        raise AssertionError(f"{topic}: send_many left records without an offset")
    return dt


def produce_each(store: LogStore, topic: str, vals: list[bytes], keys: list[bytes]) -> float:
    with Producer(store) as prod:
        send = prod.send
        t0 = time.perf_counter()
        for v, k in zip(vals, keys, strict=True):
            send(topic, v, k)
        prod.flush()
        dt = time.perf_counter() - t0
    held = sum(p.end_offset for p in store.describe_topic(topic).partitions)
    if held != len(vals):
        raise AssertionError(f"{topic}: send() left {held} records of {len(vals)}")
    return dt


# --- 3. the lookup logs ----------------------------------------------------------------------------


def copy_records(src: PartitionLog, dst: PartitionLog, n: int, per_append: int) -> int:
    """Append the batches of ``src`` (whole passes, in order; ``dst`` assigns new offsets) until
    ``dst`` holds ``n`` records or a batch more, up to ``per_append`` bytes of whole batches per
    append. Returns the records ``dst`` holds."""
    batches: list[tuple[bytes, int, int, int]] = []  # (segment bytes, position, size, records)
    for seg in src.segments:
        with open(seg.log_path, "rb") as f:
            buf = f.read()
        batches += [(buf, pos, h.size, h.records_count) for pos, h in iter_batches(buf)]
    while dst.next_offset < n:
        i = 0
        while i < len(batches) and dst.next_offset < n:
            buf, start, _, _ = batches[i]
            end = start
            recs = 0
            left = n - dst.next_offset
            j = i
            while j < len(batches) and batches[j][0] is buf and recs < left:
                _, pos, size, count = batches[j]
                if j > i and pos + size - start > per_append:
                    break
                end, recs, j = pos + size, recs + count, j + 1
            dst.append(memoryview(buf)[start:end], validate=False)
            i = j
    return dst.next_offset


def touched_bytes(vals: list[bytes], keys: list[bytes], n: int) -> int:
    """Key + value bytes of records ``0..n-1`` (record o is event o % len(vals))."""
    m = len(vals)
    cycle = sum(len(v) + len(k) for v, k in zip(vals, keys, strict=True))
    full, rest = divmod(n, m)
    return full * cycle + sum(len(v) + len(k) for v, k in zip(vals[:rest], keys[:rest], strict=True))


# --- 2. a fresh process opening a store of many segments ------------------------------------------


OPEN_CHILD = """
import json, os, sys, time
sys.path.insert(0, {repo!r})
def fds():
    return len(os.listdir("/proc/self/fd"))
t0 = time.perf_counter()
from logstore import LogStore
t1 = time.perf_counter()
f0 = fds()
s = LogStore({path!r})
t2 = time.perf_counter()
f1 = fds()
n = s.partition_count({topic!r})
got = 0
for p in range(n):
    got += len(s.partition({topic!r}, p).read_records(0, max_records=1).offsets)
t3 = time.perf_counter()
f2 = fds()
segments = sum(len(s.partition({topic!r}, p).segments) for p in range(n))
s.close()
print(json.dumps({{"import_s": t1 - t0, "store_s": t2 - t1, "all_s": t3 - t1, "fds_import": f0,
    "fds_store": f1, "fds_read": f2, "partitions": n, "records_read": got, "segments": segments}}))
"""


def open_in_child(path: str, topic: str) -> dict[str, Any]:
    code = OPEN_CHILD.format(repo=REPO, path=path, topic=topic)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


# --- 5. RSS over time --------------------------------------------------------------------------------


class RssSampler:
    """A thread reading this process's VmRSS every ``period`` seconds: (seconds since start, KiB,
    records counted so far by the reader)."""

    def __init__(self, period: float) -> None:
        self.period = period
        self.samples: list[tuple[float, int, int]] = []
        self.count = 0  # set by the reader now and then
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self.t0 = 0.0

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.perf_counter() - self.t0, cb.rss_kib()[0], self.count))
            self._stop.wait(self.period)

    def start(self) -> None:
        self.t0 = time.perf_counter()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append((time.perf_counter() - self.t0, cb.rss_kib()[0], self.count))


# --- the bench ---------------------------------------------------------------------------------------


class Bench:
    def __init__(self, root: str, sizes: Sizes, quick: bool) -> None:
        self.root = root
        self.sizes = sizes
        self.quick = quick
        self.vals, self.keys = cb.load_events()
        self.results: list[Result] = []
        self.details: dict[str, Any] = {}
        self.seek_points: dict[str, list[tuple[int, float, float]]] = {}  # variant -> (records, median, p99)
        self.rss: dict[str, Any] = {}
        self.src_store: LogStore | None = None

    def add(self, r: Result) -> Result:
        self.results.append(r)
        progress(f"  {r.id} {r.what.strip()}: {sb.fmt_value(r.value, r.unit)} {r.unit} [{r.verdict}]")
        return r

    def error(self, rid: str, what: str, unit: str, e: BaseException) -> None:
        progress(f"  {rid}: error: {type(e).__name__}: {e}")
        self.add(Result(rid, what, None, unit, note=f"error: {type(e).__name__}: {e}"[:400], skipped="ERROR"))

    def columns(self, n: int) -> tuple[list[bytes], list[bytes]]:
        reps = n // len(self.vals) + 1
        return (self.vals * reps)[:n], (self.keys * reps)[:n]

    # 1 ----------------------------------------------------------------------------------------------

    def partitions(self) -> None:
        sz = self.sizes
        n = sz.records
        vals, keys = self.columns(n)
        touched = touched_bytes(self.vals, self.keys, n)
        warm = n // 10

        def one(parts: int, count: int, bulk_first: bool) -> dict[str, float]:
            path = os.path.join(self.root, f"p{parts}")
            shutil.rmtree(path, ignore_errors=True)
            out: dict[str, float] = {}
            v, k = vals[:count], keys[:count]
            with LogStore(path) as store:
                t0 = time.perf_counter()
                store.create_topic("bulk", parts)
                store.create_topic("each", parts)
                out["create"] = (time.perf_counter() - t0) / 2
                steps: list[tuple[str, Callable[[], float]]] = [
                    ("send_many", lambda: produce_bulk(store, "bulk", v, k)),
                    ("send", lambda: produce_each(store, "each", v, k)),
                ]
                for name, fn in steps if bulk_first else steps[::-1]:
                    out[name] = fn()
                out["consume"] = cb.iterate(
                    store, "bulk", count, touched if count == n else touched_bytes(self.vals, self.keys, count)
                )
                out["fds"] = fd_count()
            shutil.rmtree(path, ignore_errors=True)
            return out

        progress(f"1: produce and consume {n:,} records at {', '.join(map(str, sz.partitions))} partitions")
        for parts in sz.partitions[:2]:  # untimed: imports, code paths, caches
            one(parts, warm, True)
        runs: dict[int, list[dict[str, float]]] = {p: [] for p in sz.partitions}
        order = list(sz.partitions)
        for rnd in range(sz.rounds):
            k = rnd % len(order)
            for parts in order[k:] + order[:k]:
                t0 = time.perf_counter()
                runs[parts].append(one(parts, n, rnd % 2 == 0))
                progress(f"  round {rnd + 1}: {parts} partitions in {time.perf_counter() - t0:.1f} s")
        base: dict[str, float] = {}
        for parts in sz.partitions:
            for op, what in (
                ("send_many", "Producer.send_many()"),
                ("send", "Producer.send() per record + flush()"),
                ("consume", "for r in Consumer(...), touching key and value"),
            ):
                secs = [r[op] for r in runs[parts]]
                rate = n / statistics.median(secs)
                rates = sorted(n / s for s in secs)
                base.setdefault(op, rate)
                note = (
                    f"median of {len(secs)}, rounds {rates[0]:,.0f}-{rates[-1]:,.0f} rec/s; "
                    f"{rate / base[op]:.2f}x the 1-partition rate; {n // parts:,} records per partition on average"
                )
                if op == "send_many":
                    create = statistics.median(r["create"] for r in runs[parts])
                    note += f"; create_topic (not timed) took {create * 1000:.0f} ms"
                if op == "consume":
                    fds = int(statistics.median(r["fds"] for r in runs[parts]))
                    note += f"; {fds} fds open in the process after it (two topics of {parts} partitions open)"
                self.add(
                    Result(
                        f"1.{parts}.{op}",
                        f"{what}, {parts} partitions",
                        rate,
                        "rec/s",
                        note=note,
                        extra={
                            "seconds": [round(s, 4) for s in secs],
                            "fds": [r["fds"] for r in runs[parts]],
                            "create_topic_s": [round(r["create"], 4) for r in runs[parts]],
                        },
                    )
                )

    # 2 ----------------------------------------------------------------------------------------------

    def open_store(self) -> None:
        sz = self.sizes
        path = os.path.join(self.root, "segments")
        progress(f"2: building {sz.open_partitions} partitions x {sz.open_segments} one-batch segments")
        t0 = time.perf_counter()
        rb.build(path, TOPIC, sz.open_partitions, sz.open_segments, int(time.time() * 1000))
        progress(f"  built in {time.perf_counter() - t0:.0f} s; opening it in {sz.open_runs} fresh process(es)")
        runs = [open_in_child(path, TOPIC) for _ in range(sz.open_runs)]
        shutil.rmtree(path, ignore_errors=True)
        self.details["open"] = runs
        if any(r["records_read"] != sz.open_partitions for r in runs):
            raise AssertionError(f"open: read {[r['records_read'] for r in runs]} records, expected one a partition")
        segs = runs[0]["segments"]
        store_ms = sorted(r["store_s"] * 1000 for r in runs)
        all_ms = sorted(r["all_s"] * 1000 for r in runs)
        what = f"{segs:,} segments in {sz.open_partitions} partitions"
        rng = lambda xs: f"runs {xs[0]:.1f}-{xs[-1]:.1f} ms" if len(xs) > 1 else "one run"  # noqa: E731
        self.add(
            Result(
                "2.store",
                f"LogStore(path), {what}, fresh process",
                statistics.median(store_ms),
                "ms",
                note=f"median of {len(runs)} processes, {rng(store_ms)}; importing logstore took "
                f"{statistics.median(r['import_s'] for r in runs) * 1000:.0f} ms before it (not included)",
            )
        )
        self.add(
            Result(
                "2.open",
                "  + every partition opened, one record read from each",
                statistics.median(all_ms),
                "ms",
                note=f"from LogStore(path) to the last read; {rng(all_ms)}; offset 0 of each partition (its oldest "
                "segment); warm page cache",
            )
        )
        f = runs[0]
        self.add(
            Result(
                "2.fds",
                "  file descriptors after the reads (after import / LogStore(path))",
                float(f["fds_read"]),
                "fds",
                note=f"/proc/self/fd: {f['fds_import']} after the import, {f['fds_store']} after LogStore(path), "
                f"{f['fds_read']} after opening every partition and reading (+{f['fds_read'] - f['fds_import']} for "
                f"{segs:,} segments); ulimit -n here: {resource_nofile()}",
            )
        )

    # 3 ----------------------------------------------------------------------------------------------

    def source(self) -> LogStore:
        """The store with topic "src": SRC_RECORDS records written by Producer.send() (defaults)."""
        if self.src_store is None:
            self.src_store = LogStore(os.path.join(self.root, "src"))
            progress(f"writing {SRC_RECORDS:,} records with Producer.send() to copy from")
            cb.produce(self.src_store, "src", self.vals, self.keys, SRC_RECORDS)
        return self.src_store

    def seeks(self) -> None:
        sz = self.sizes
        src = self.source().partition("src", 0)
        store = LogStore(os.path.join(self.root, "seek"))
        logs: dict[int, PartitionLog] = {}
        progress(f"3: lookup logs of {', '.join(f'{n:,}' for n in sz.seek_sizes)} records (the send() batches copied)")
        for n in sz.seek_sizes:
            topic = f"n{n}"
            store.create_topic(topic, 1, config=NO_FSYNC)
            log = store.partition(topic, 0)
            t0 = time.perf_counter()
            copy_records(src, log, n, MiB)
            log.flush()
            logs[n] = log
            dt = time.perf_counter() - t0
            progress(f"  {log.next_offset:,} records, {log.size_bytes / 1e6:.0f} MB in {dt:.1f} s")
        rng = random.Random(20231114)
        consumers: dict[int, Consumer] = {}
        for n in sz.seek_sizes:
            c = Consumer(store)
            c.assign([TopicPartition(f"n{n}", 0)])
            consumers[n] = c

        def variant(name: str, n: int) -> Callable[[list[int]], list[float]]:
            if name == "seek":
                return lambda offs: cb.seek_latencies(consumers[n], TopicPartition(f"n{n}", 0), offs, self.vals)
            return lambda offs: cb.read_records_latencies(logs[n], offs, self.vals)

        names = ("seek", "read_records")
        jobs = [(name, n) for n in sz.seek_sizes for name in names]
        for name, n in jobs:
            variant(name, n)([rng.randrange(logs[n].next_offset) for _ in range(sz.seek_warmup)])
        per_round = sz.seek_lookups // sz.seek_rounds
        lat: dict[tuple[str, int], list[list[float]]] = {j: [] for j in jobs}
        for rnd in range(sz.seek_rounds):
            k = rnd % len(jobs)
            for name, n in jobs[k:] + jobs[:k]:
                offs = [rng.randrange(logs[n].next_offset) for _ in range(per_round)]
                lat[(name, n)].append(variant(name, n)(offs))
        for c in consumers.values():
            c.close()
        for n in sz.seek_sizes:
            log = logs[n]
            lay = cb.layout(log)
            for name, what in (
                ("seek", "consumer.seek(tp, o) + poll(0)"),
                ("read_records", "  PartitionLog.read_records(o, max_records=1)"),
            ):
                rounds = lat[(name, n)]
                pooled = sorted(itertools.chain.from_iterable(rounds))
                meds = [statistics.median(r) for r in rounds]
                med, p99 = statistics.median(meds), percentile(pooled, 99)
                self.seek_points.setdefault(name, []).append((log.next_offset, med, p99))
                rid = f"3.{size_label(n)}.{name}"
                note = (
                    f"median of {len(rounds)} round medians of {len(rounds[0])} lookups, rounds "
                    f"{min(meds):.1f}-{max(meds):.1f} us; pooled p90 {percentile(pooled, 90):.1f} us"
                )
                if name == "seek":
                    note += (
                        f"; log: {log.next_offset:,} records, {lay['records_per_batch_mean']:.1f} rec/batch, "
                        f"{lay['bytes'] / 1e6:.1f} MB, {lay['segments']} segment(s), "
                        f"{lay['index_entries']:,} index entries"
                    )
                self.add(
                    Result(
                        f"{rid}.med",
                        f"{what}, {log.next_offset:,} records: median" if name == "seek" else f"{what}: median",
                        med,
                        "us",
                        note=note,
                        extra={"round_medians_us": meds, "p90_us": percentile(pooled, 90), "max_us": pooled[-1]},
                    )
                )
                self.add(Result(f"{rid}.p99", "    p99 (all rounds pooled)", p99, "us"))
            keep = ("segments", "batches", "records", "bytes", "records_per_batch_mean", "index_entries")
            self.details.setdefault("seek_logs", {})[str(n)] = {k: lay[k] for k in keep}
        path = store.path
        store.close()
        shutil.rmtree(path, ignore_errors=True)

    # 4 ----------------------------------------------------------------------------------------------

    def rebalances(self) -> None:
        sz = self.sizes
        what = "rebalance: {a} -> {b} member processes (median)"
        gbench = gb.Bench(os.path.join(self.root, "groups"), gb.QUICK, self.quick, False)
        kids = gbench.kids
        times: dict[tuple[int, int], list[dict[str, Any]]] = {j: [] for j in JOINS}
        try:
            gbench.produce_even(gb.RebalanceRun.topic, gb.RB_PARTITIONS, gb.RB_PREFILL, NO_FSYNC)
            feeder = kids.spawn("feeder", "feed", gbench.store.path, gb.RebalanceRun.topic)
            kids.wait("the feeder", lambda: feeder.get("READY"))
            progress(
                f"4: groups on a {gb.RB_PARTITIONS}-partition topic a feeder appends to; joins "
                f"{', '.join(f'{m}->{m + j}' for m, j in JOINS)}, {sz.rebalance_rounds} round(s)"
            )
            for rnd in range(sz.rebalance_rounds):
                run = gb.RebalanceRun(gbench)
                run.group = f"scale{rnd}"
                run.serial = 100 * (rnd + 1)
                run.members = [run.spawn("tail")]
                run.state = kids.wait("1 member stable and consuming", lambda r=run: r.settled(r.members, -1))
                for members, joining in JOINS:
                    news = [run.spawn("gated") for _ in range(joining)]
                    kids.wait(f"{joining} new member(s) ready", lambda ns=news: all(c.get("READY") for c in ns))
                    rec = join_many(run, news, f"round {rnd + 1}: {members} -> {members + joining}")
                    times[(members, joining)].append(rec)
                for c in run.members:
                    c.stop()
                run.members = []
        except (RuntimeError, AssertionError) as e:
            for members, joining in JOINS:
                if not times[(members, joining)] or len(times[(members, joining)]) < sz.rebalance_rounds:
                    self.error(f"4.{members + joining}.rebalance", what.format(a=members, b=members + joining), "ms", e)
                    break
        finally:
            gbench.stop_children()
            gbench.close()
        self.details["rebalance"] = {f"{m}->{m + j}": recs for (m, j), recs in times.items()}
        for (members, joining), recs in times.items():
            if not recs or len(recs) < sz.rebalance_rounds:
                continue
            ms = sorted(r["ms"] for r in recs)
            gens = sorted({r["generations"] for r in recs})
            spread = statistics.median(r["join_spread_ms"] for r in recs)
            self.add(
                Result(
                    f"4.{members + joining}.rebalance",
                    what.format(a=members, b=members + joining),
                    statistics.median(ms),
                    "ms",
                    note=f"{len(ms)} round(s): {', '.join(f'{t:.0f}' for t in ms)} ms; from the first new member's "
                    f"first poll to every member's first record of the settled generation; generations per "
                    f"rebalance {gens}; the new members' first polls were {spread:.0f} ms apart (median)",
                    extra={"rounds_ms": ms},
                )
            )

    # 5 ----------------------------------------------------------------------------------------------

    def memory(self) -> None:
        want = self.sizes.mem_bytes
        free = shutil.disk_usage(self.root).free
        note = ""
        if free < want * 2 + 512 * MiB:
            want = max(64 * MiB, (free - 512 * MiB) // 2)
            note = f"only {free / 1e9:.1f} GB free: scaled down to {want / 1e9:.1f} GB. "
            progress(note)
        src = self.source().partition("src", 0)
        mem_store = LogStore(os.path.join(self.root, "mem"))
        mem_store.create_topic("mem", 1, config=NO_FSYNC)
        log = mem_store.partition("mem", 0)
        progress(f"5: copying the producer's batches into a {want / 1e9:.1f} GB log")
        t0 = time.perf_counter()
        n = cb.copy_batches(src, log, want, MiB)
        size = log.size_bytes
        progress(
            f"  {n:,} records, {size / 1e9:.2f} GB, {len(log.segments)} segments in {time.perf_counter() - t0:.0f} s"
        )
        touched = touched_bytes(self.vals, self.keys, n)
        gc.collect()
        sampler = RssSampler(SAMPLE_S)
        consumer = Consumer(mem_store, "mem", stop_at_end=True)
        total = count = 0
        progress(f"  consuming {n:,} records by iteration, RSS sampled every {SAMPLE_S * 1000:.0f} ms")
        sampler.start()
        t0 = time.perf_counter()
        for r in consumer:
            total += len(r.key) + len(r.value)
            count += 1
            if not count & 0xFFFF:
                sampler.count = count
        dt = time.perf_counter() - t0
        sampler.count = count
        sampler.stop()
        consumer.close()
        if count != n or total != touched:
            raise AssertionError(f"memory: {count} records, {total} bytes; expected {n}, {touched}")
        samples = sampler.samples
        mib = [s[1] / 1024 for s in samples]

        def at(q: float) -> float:
            """RSS (MiB) of the first sample with at least q of the records read."""
            return next((s[1] / 1024 for s in samples if s[2] >= q * n), mib[-1])

        growth = at(0.9) - at(0.1)
        self.rss = {
            "records": n,
            "bytes": size,
            "segments": len(log.segments),
            "seconds": dt,
            "period_s": SAMPLE_S,
            "samples": [(round(t, 3), k, c) for t, k, c in samples],
        }
        self.add(
            Result(
                "5.rss.growth",
                f"RSS growth from 10% to 90% of reading a {size / 1e9:.2f} GB log",
                growth,
                "MiB",
                note=f"{note}{n:,} records in {len(log.segments)} segments read by for r in consumer; "
                f"{len(samples)} samples every {SAMPLE_S * 1000:.0f} ms; RSS MiB at 10/50/90%: "
                f"{at(0.1):.0f}/{at(0.5):.0f}/{at(0.9):.0f}",
            )
        )
        self.add(Result("5.rss.start", "  RSS at the start of the read", mib[0], "MiB"))
        self.add(Result("5.rss.max", "  RSS max while reading", max(mib), "MiB"))
        self.add(Result("5.rss.end", "  RSS at the end", mib[-1], "MiB"))
        self.add(Result("5.rate", "  for r in consumer over that log", n / dt, "rec/s", note="one pass"))
        path = mem_store.path
        mem_store.close()
        shutil.rmtree(path, ignore_errors=True)

    def close(self) -> None:
        if self.src_store is not None:
            self.src_store.close()


def join_many(run: gb.RebalanceRun, news: list[gb.Child], label: str) -> dict[str, Any]:
    """The ``news`` (gated members, ready) are told to poll at once; returns the time in ms from the
    first one's first poll to every member's first record of the settled generation (group_bench's
    RebalanceRun.join, for several joiners)."""
    kids = run.kids
    gen0 = run.state["generation"]
    for c in news:
        c.send("go")
    joins = [float(kids.wait(f"{c.name} to poll", lambda c=c: c.first("JOIN"))[0]) for c in news]
    everyone = [*run.members, *news]
    st = kids.wait(f"{label}: {len(everyone)} members at a new generation", lambda: run.settled(everyone, gen0))
    g = str(st["generation"])
    firsts = {c.name: float(c.first("FIRST", lambda f, g=g: f[0] == g)[1]) for c in everyone}  # type: ignore[index]
    join = min(joins)
    rec = {
        "ms": (max(firsts.values()) - join) * 1000,
        "generations": st["generation"] - gen0,
        "join_spread_ms": (max(joins) - join) * 1000,
        "first_record_ms": {k: round((t - join) * 1000, 3) for k, t in firsts.items()},
    }
    progress(f"  {label}: {rec['ms']:.0f} ms ({rec['generations']} generation(s))")
    run.members, run.state = everyone, st
    return rec


def resource_nofile() -> int:
    import resource

    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# --- plots -------------------------------------------------------------------------------------------


def plots(bench: Bench, stem: str) -> list[str]:
    """The seek-latency and RSS plots beside the results JSON ([] without matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        print(f"no plots: matplotlib is not installed ({e}); pip install -e '.[bench]'")
        return []
    out = []
    if bench.seek_points:
        fig, ax = plt.subplots(figsize=(8, 5))
        styles = {
            "seek": ("seek + poll(0)", "tab:blue"),
            "read_records": ("read_records(o, max_records=1)", "tab:green"),
        }
        for name, pts in bench.seek_points.items():
            label, color = styles[name]
            xs = [p[0] for p in pts]
            ax.plot(xs, [p[1] for p in pts], "-o", color=color, label=f"{label}: median")
            ax.plot(xs, [p[2] for p in pts], "--s", color=color, alpha=0.6, label=f"{label}: p99")
        ax.set_xscale("log")
        ax.set_ylim(bottom=0)
        ax.set_xlabel("records in the partition (log scale)")
        ax.set_ylabel("us per lookup")
        ax.set_title("Random-offset lookup latency against log size (warm page cache)")
        ax.grid(which="both", alpha=0.3)
        ax.legend(fontsize=8)
        out.append(sb.save_figure(fig, f"{stem}-seek.png"))
    if bench.rss:
        s = bench.rss["samples"]
        fig, ax = plt.subplots(figsize=(8, 5))
        ax.plot([x[0] for x in s], [x[1] / 1024 for x in s], color="tab:red", label="RSS (VmRSS)")
        ax.set_xlabel("seconds since the read started")
        ax.set_ylabel("RSS, MiB")
        ax.set_ylim(0, max(x[1] for x in s) / 1024 * 1.3)
        ax2 = ax.twinx()
        ax2.plot([x[0] for x in s], [x[2] / 1e6 for x in s], color="tab:gray", alpha=0.5, label="records read")
        ax2.set_ylabel("records read, millions")
        ax2.set_ylim(0, max(x[2] for x in s) / 1e6 * 1.3)
        ax.set_title(
            f"RSS while one consumer reads {bench.rss['records']:,} records ({bench.rss['bytes'] / 1e9:.2f} GB)"
        )
        ax.grid(alpha=0.3)
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, fontsize=8, loc="upper left")
        out.append(sb.save_figure(fig, f"{stem}-rss.png"))
    return out


# --- main --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke run: smaller sizes, one round, under a minute")
    ap.add_argument("--dir", help="directory to create the bench files in (default: the system temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the bench directory afterwards")
    ap.add_argument("--only", help="comma-separated subset of 1,2,3,4,5")
    ap.add_argument("--out", help="results JSON path (default bench/results/<date>-scaling[-quick].json)")
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the finally below stops the children

    sizes = QUICK if args.quick else FULL
    only = set((args.only or "1,2,3,4,5").split(","))
    root = sb.make_root("logstore-scaling-", args.dir)
    mode = "quick" if args.quick else "full"
    started = time.time()
    t_start = time.perf_counter()
    info = sb.machine(root)
    header = sb.run_header("scaling", mode, info, root, "reads: warm page cache (every log was just written)")
    progress(header.replace("\n", "\n    "))
    bench = Bench(root, sizes, args.quick)
    sections: list[tuple[str, str, Callable[[], None]]] = [
        ("1", "produce/consume vs partitions", bench.partitions),
        ("2", "open a store of many segments", bench.open_store),
        ("3", "seek vs log size", bench.seeks),
        ("4", "rebalance vs members", bench.rebalances),
        ("5", "RSS while consuming", bench.memory),
    ]
    try:
        for key, what, fn in sections:
            if key not in only:
                continue
            t0 = time.perf_counter()
            try:
                fn()
            except (RuntimeError, AssertionError, OSError, subprocess.CalledProcessError) as e:
                bench.error(f"{key}.error", what, "-", e)
            progress(f"section {key} ({what}) took {time.perf_counter() - t0:.0f} s")
    finally:
        bench.close()
        sb.remove_root(root, args.keep)
    elapsed = time.perf_counter() - t_start

    load_note = "the bench's own member processes keep both cores busy in 4"
    load_end = sb.print_report(header, bench.results, elapsed, info["load_average_start"], {}, load_note)
    doc = sb.run_doc("bench/scaling_bench.py", mode, started, elapsed, info, load_end, sizes.__dict__)
    doc |= {"results": sb.result_rows(bench.results, digits=4), "details": bench.details, "rss": bench.rss}
    out = args.out or sb.default_out("-scaling", args.quick)
    stem = out[:-5] if out.endswith(".json") else out
    doc["plots"] = [sb.shown_path(p) for p in plots(bench, stem)]
    sb.write_results(out, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
