"""Peers benchmark: logstore against what users would pick instead, side by side in one run.

Workloads (the issue's; the same records for every peer: ``data/events.jsonl`` keys and values
repeated, record ``i`` is event ``i % 1850``):

    a  100-byte values, 10-byte keys, 8 partitions, logstore's default lz4  1,000,000 records (quick 50k)
    b  1 KiB values (the sample values run together), same keys, lz4        1,000,000 records (quick 20k)
    c  16 KiB values, same keys, no compression                                 50,000 records (quick 2k):
       the issue asks for 1M of each, but 1M 16 KiB records are 16 GB per peer and round

Operations (what each peer does for each: its ``how``, printed in the legend, and bench/README.md):

    produce       one call per record, then whatever makes it durable (send + flush, INSERT + COMMIT, ...)
    bulk produce  one call for many records (send_many, executemany, ...)
    consume       sequential read of every record touching key and value (iteration, fetchmany, ...)
    bulk consume  logstore's poll_columns (numpy columns, no object per record)
    seek          position at a random record and read it: median µs
    group consume read every record as a consumer group member and commit the position (workload a)
    time lookup   the first record at or after a timestamp: median µs (workload a)
    retention     one pass removing the records older than the middle record's timestamp (workload a)

The last three run on workload a only, on a store of their own per peer (logstore, sqlite3, Redis)
loaded untimed with record ``i`` stamped ``T0_MS + i // 10`` (ten records per millisecond).

Peers, each in the configuration its documentation gives for throughput, durability stated:

    logstore             default durability: an fsync per append (flush.messages=1; the producer's
                         sender thread group-commits the ready batches of a partition in one write)
    sqlite3 (DIY)        one table, WAL, synchronous=FULL (fsync at commit, the same class), one
                         transaction; reads with fetchmany
    persist-queue        SQLiteQueue(auto_commit=False) + task_done(), and its file Queue
    litequeue            put() per message (the README's use), and put() inside one q.transaction()
    Redis Streams        a redis-server started here on loopback, AOF appendfsync everysec and always;
                         XADD pipelined 1000 at a time, XRANGE in pages of 1000
    kafka-python codec   DefaultRecordBatchBuilder / DefaultRecordBatch on the same records, batches of
                         batch.size 16384, in memory: the pure-Python Kafka reference, no I/O
    raw file             baselines: os.write + os.fsync of preformatted 1 MiB frames (as many bytes as
                         the workload, up to 1 GiB), and a page-cache read of that file; crc32c and lz4

This VM's disk writes its first few hundred MB at a burst rate (~800 MB/s) and then about 180 MB/s
until it has rested: fsync-heavy lines depend on what ran just before them. The raw-file baseline
runs just before logstore in every round, and logstore and sqlite3 alternate which of their two
write paths goes first.

A peer whose package (or redis-server) is missing is reported as skipped with the reason. Peers
much slower than logstore run on a prefix of the records (the same data; counts in the table and
in ``Sizes``) so that the full run stays within 8 minutes on 2 cores.

Reads are from a warm page cache except the "(cold)" lines (workload a; file-based peers and the raw
file): before them every file the peer reads is evicted from the page cache, one file at a time
(fsync, then posix_fadvise DONTNEED), never the whole machine's cache through drop_caches. A cold
consume evicts once (the store or connection closed and opened again); a cold seek or time lookup
evicts before every lookup (outside the timing) the files that lookup reads, on a fresh store or
connection, with other records than the warm lookups'. Redis keeps its data in memory: skipped.

Every line has CPU % (the bench process's CPU time over the wall time of the timed part, all its
threads; Redis lines add the redis-server's utime + stime; 100 = one core) and peak RSS (VmHWM,
reset before the timed part, of the process doing the work: the bench, or the redis-server), with
its growth over the RSS at the start (the bench process holds the workload's records throughout).

Each number is the median of 3 rounds (quick: 1); the peers take turns in every round, the order
rotating, after one untimed warm-up round on fewer records; the notes give each line's min-max.
Every read checks the record count and the bytes of the keys and values; every seek checks it got
the record asked for. The targets of the issue are judged PASS/FAIL at the end (quick mode:
indicative only). Results: ``bench/results/<date>-peers[-quick].json`` and two plots beside it.

Run from the repository root: ``python bench/peers_bench.py`` (about 6 minutes) or ``--quick``
(under a minute). MB is 10^6 bytes of key + value (what the application hands over), MiB 2^20.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import random
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for p in (REPO, os.path.join(REPO, "bench")):
    if p not in sys.path:
        sys.path.insert(0, p)  # run as a script from a checkout, installed or not

import lz4.frame  # noqa: E402
import numpy as np  # noqa: E402
import storage_bench as sb  # noqa: E402  (machine details, report, results JSON, cProfile helpers)
from consumer_bench import Result, load_events, reset_peak_rss, rss_kib  # noqa: E402
from crc32c import crc32c  # noqa: E402

from logstore import Consumer, LogStore, Producer, TopicPartition  # noqa: E402

MiB = 1 << 20
TOPIC = "events"
PARTITIONS = 8
REDIS_PIPELINE = 1000  # XADDs per pipeline round trip
REDIS_PAGE = 1000  # entries per XRANGE
FETCHMANY = 1000  # sqlite rows per fetchmany
KAFKA_BATCH_SIZE = 16384  # kafka-python's (and Kafka's) default batch.size

TARGET_SEND_RPS = 500_000
TARGET_SEND_VS_SQLITE = 1.5
TARGET_BULK_RPS = 1_500_000
TARGET_CONSUME_RPS = 1_200_000
TARGET_CONSUME_VS_SQLITE = 1.0
TARGET_COLUMNS_RPS = 5_000_000
TARGET_RAW_SHARE = 0.60  # 16 KiB produce / raw write+fsync, 16 KiB consume / page-cache read
TARGET_VS_REDIS = 5.0
TARGET_VS_PERSIST_QUEUE = 100.0

OPS = (
    "produce",
    "bulk produce",
    "consume",
    "consume (cold)",
    "bulk consume",
    "seek",
    "seek (cold)",
    "group consume",
    "time lookup",
    "time lookup (cold)",
    "retention",
)
LATENCY_OPS = ("seek", "seek (cold)", "time lookup", "time lookup (cold)")  # rows in median us per lookup
EXTRA_OPS = ("group consume", "time lookup", "time lookup (cold)", "retention")  # run_extra, EXTRA_WORKLOADS only
EXTRA_WORKLOADS = ("a",)
# Cold-cache variants (COLD_WORKLOADS only): the files the peer reads are evicted from the page cache
# first (fsync, then posix_fadvise DONTNEED on each file); for lookups before every lookup.
COLD_OPS = {"consume (cold)": "consume", "seek (cold)": "seek", "time lookup (cold)": "time lookup"}
COLD_WORKLOADS = ("a",)
T0_MS = 1_700_000_000_000  # record i's timestamp in run_extra: T0_MS + i // RECORDS_PER_MS
RECORDS_PER_MS = 10
EXTRA_SEGMENTS = 32  # run_extra loads logstore's partitions in this many segments each (retention deletes whole ones)
RETENTION_MS = 7 * 86_400_000  # retention.ms in run_extra; the pass runs with now = cutoff + RETENTION_MS


@dataclass(frozen=True)
class Workload:
    key: str
    value_bytes: int
    codec: str  # logstore's (and the kafka codec's) compression
    label: str


WORKLOADS = (
    Workload("a", 100, "lz4", "100 B values, 10 B keys, 8 partitions, lz4"),
    Workload("b", 1024, "lz4", "1 KiB values, 10 B keys, 8 partitions, lz4"),
    Workload("c", 16384, "none", "16 KiB values, 10 B keys, 8 partitions, no compression"),
)


@dataclass
class Sizes:
    records: dict[str, int]  # per workload: logstore, sqlite3 and the raw file get all of them
    caps: dict[str, dict[str, int]]  # peer -> workload -> at most this many records (a prefix)
    consume_caps: dict[str, int]  # peer -> records in the queue read by its consume (litequeue)
    rounds: int
    warmup: int  # records of the untimed warm-up round (at most; and at most 16 MB)
    seeks: int  # timed lookups per peer and workload, split over the rounds
    seek_warmup: int
    cold_seeks: int  # timed cold lookups per peer (seek and time lookup), split over the rounds
    raw_mib: int  # at most this much written / read by the raw-file baseline per round
    baseline_s: float  # seconds per crc32c / lz4 measurement
    profile_share: float  # part of a workload re-run under cProfile when a target is missed


FULL = Sizes(
    records={"a": 1_000_000, "b": 1_000_000, "c": 50_000},  # c: 800 MB (1M would be 16 GB)
    caps={
        "kafka-codec": {"a": 200_000, "b": 100_000, "c": 20_000},
        "redis-everysec": {"a": 200_000, "b": 50_000, "c": 10_000},
        "redis-always": {"a": 100_000, "b": 25_000, "c": 5_000},
        "pq-sqlite": {"a": 3_000, "b": 2_000, "c": 1_000},
        "pq-file": {"a": 3_000, "b": 2_000, "c": 1_000},
        "litequeue": {"a": 20_000, "b": 20_000, "c": 5_000},
    },
    consume_caps={"litequeue": 2_000},
    rounds=3,
    warmup=10_000,
    seeks=1500,
    seek_warmup=100,
    cold_seeks=600,
    raw_mib=1024,
    baseline_s=1.0,
    profile_share=0.25,
)
QUICK = Sizes(
    records={"a": 50_000, "b": 20_000, "c": 2_000},
    caps={
        "kafka-codec": {"a": 50_000, "b": 20_000, "c": 2_000},
        "redis-everysec": {"a": 50_000, "b": 10_000, "c": 1_000},
        "redis-always": {"a": 20_000, "b": 5_000, "c": 500},
        "pq-sqlite": {"a": 500, "b": 500, "c": 200},
        "pq-file": {"a": 500, "b": 500, "c": 200},
        "litequeue": {"a": 5_000, "b": 5_000, "c": 1_000},
    },
    consume_caps={"litequeue": 500},
    rounds=1,
    warmup=2_000,
    seeks=300,
    seek_warmup=50,
    cold_seeks=100,
    raw_mib=64,
    baseline_s=0.3,
    profile_share=0.25,
)


# --- data ---------------------------------------------------------------------------------------


class Data:
    """The records of one workload: record ``i`` is event ``i % 1850`` (its key, and its value, or
    for larger values the sample values run together from that event's place, cut to size)."""

    def __init__(self, events: tuple[list[bytes], list[bytes]], value_bytes: int, n: int) -> None:
        ev_vals, ev_keys = events
        m = len(ev_vals)
        if value_bytes == len(ev_vals[0]) and all(len(v) == value_bytes for v in ev_vals):
            distinct = ev_vals
        else:
            cycle = b"".join(ev_vals)
            ring = cycle * (value_bytes // len(cycle) + 2)
            stride = len(cycle) // m
            distinct = [ring[i * stride : i * stride + value_bytes] for i in range(m)]
        reps = n // m + 1
        self.n = n
        self.vals: list[bytes] = (distinct * reps)[:n]
        self.keys: list[bytes] = (ev_keys * reps)[:n]
        sizes = np.fromiter((len(k) + len(v) for k, v in zip(self.keys, self.vals, strict=True)), np.int64, n)
        self._cum = np.concatenate(([0], np.cumsum(sizes)))
        self.parts = np.zeros(0, np.int64)  # partition of each record (logstore's routing), set later
        self.ranks = np.zeros(0, np.int64)  # offset of each record in its partition when all n are sent
        self.ts = T0_MS + np.arange(n, dtype=np.int64) // RECORDS_PER_MS  # run_extra's timestamps (ms)

    def cutoff(self, count: int) -> int:
        """The retention pass's cutoff among the first ``count`` records: the timestamp of the middle one
        (records older than it are due)."""
        return int(self.ts[count // 2])

    def touched(self, count: int) -> int:
        """Bytes of key + value of records ``0..count-1``."""
        return int(self._cum[count])

    def frame(self, size: int = MiB) -> bytes:
        """``size`` bytes of these records' keys and values run together (the raw-file baseline's frame)."""
        out = bytearray()
        i = 0
        while len(out) < size:
            out += self.keys[i] + self.vals[i]
            i += 1
        return bytes(out[:size])

    def route(self) -> None:
        """Each record's partition by logstore's default partitioner (murmur2 of the key, as Kafka's
        Java client), asked of a Producer, and its offset in that partition once all are sent in order."""
        root = tempfile.mkdtemp(prefix="logstore-peers-route-")
        try:
            with LogStore(root) as store:
                store.create_topic(TOPIC, PARTITIONS)
                with Producer(store) as prod:
                    routes = {k: prod.partition_for(TOPIC, k) for k in set(self.keys[:1850])}
        finally:
            shutil.rmtree(root, ignore_errors=True)
        self.parts = np.fromiter((routes[k] for k in self.keys), np.int64, self.n)
        self.ranks = np.zeros(self.n, np.int64)
        for p in range(PARTITIONS):
            idx = np.flatnonzero(self.parts == p)
            self.ranks[idx] = np.arange(len(idx))


# --- peers --------------------------------------------------------------------------------------


class Skip(Exception):
    """A peer that cannot run here; the message is the reason."""


@dataclass
class Outcome:
    """One round of one peer: seconds per operation, µs per lookup, CPU and peak RSS of each timed
    part, and a few facts for the notes."""

    seconds: dict[str, float] = field(default_factory=dict)
    seek_us: list[float] = field(default_factory=list)
    time_us: list[float] = field(default_factory=list)  # run_extra: µs per lookup by timestamp
    lat_us: dict[str, list[float]] = field(default_factory=dict)  # the cold lookups: op -> µs per lookup
    cpu: dict[str, float] = field(default_factory=dict)  # op -> CPU seconds / wall seconds of the timed part
    rss: dict[str, tuple[int, int]] = field(default_factory=dict)  # op -> (peak KiB, KiB at the start)
    facts: dict[str, Any] = field(default_factory=dict)

    def meter(self, op: str, pid: int | None = None, timed: bool = True) -> Meter:
        return Meter(self, op, pid, timed)


CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu_s(pid: int) -> float:
    """utime + stime of process ``pid`` in seconds (all its threads), from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / CLK_TCK  # fields 14 and 15 of stat(5)


def proc_rss_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of process ``pid`` in KiB."""
    rss = hwm = 0
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    return rss, hwm


def reset_peak_rss_pid(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
        return True
    except OSError:
        return False


class Meter:
    """Times one operation's timed part and records its CPU % and peak RSS in an Outcome.

    CPU: this process's CPU time (``time.process_time``: every thread, user + system) over the wall
    time, plus, with ``pid`` (a redis-server), that process's utime + stime over the same span; 1.0
    is one core busy. Peak RSS: the high-water mark (VmHWM) of the process doing the work, reset at
    the start (``clear_refs``), read at the end: this process, or with ``pid`` the server. Time spent
    in ``outside()`` (the cold lookups' evictions) counts in neither the wall nor the CPU time."""

    def __init__(self, out: Outcome, op: str, pid: int | None, timed: bool) -> None:
        self.out, self.op, self.pid, self.timed = out, op, pid, timed
        self.skip_wall = self.skip_cpu = 0.0

    def __enter__(self) -> Meter:
        if self.pid:
            reset_peak_rss_pid(self.pid)
            self.rss0 = proc_rss_kib(self.pid)[0]
            self.srv0 = proc_cpu_s(self.pid)
        else:
            reset_peak_rss()
            self.rss0 = rss_kib()[0]
        self.cpu0 = time.process_time()
        self.t0 = time.perf_counter()
        return self

    @contextlib.contextmanager
    def outside(self) -> Any:
        w, c = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.skip_cpu += time.process_time() - c
            self.skip_wall += time.perf_counter() - w

    def __exit__(self, et: Any, ev: Any, tb: Any) -> None:
        wall = time.perf_counter() - self.t0 - self.skip_wall
        cpu = time.process_time() - self.cpu0 - self.skip_cpu
        if et is not None:
            return
        if self.pid:
            cpu += proc_cpu_s(self.pid) - self.srv0
            hwm = proc_rss_kib(self.pid)[1]
        else:
            hwm = rss_kib()[1]
        if self.timed:
            self.out.seconds[self.op] = wall
        if wall > 0:
            self.out.cpu[self.op] = cpu / wall
        self.out.rss[self.op] = (hwm, self.rss0)


def evict(*paths: str, sync: bool = True) -> int:
    """Drop ``paths`` (files, or every file under a directory) from the page cache: fsync each (so
    every page is clean), then posix_fadvise(POSIX_FADV_DONTNEED), which drops its clean pages (not
    those mapped by a process). ``sync=False`` for files already evicted once and only read since
    (the cold lookups' per-lookup eviction). Returns the number of files. The per-file way of a cold
    cache: /proc/sys/vm/drop_caches would empty the whole machine's page cache."""
    files = []
    for p in paths:
        if os.path.isdir(p):
            for d, _, names in os.walk(p):
                files += [os.path.join(d, n) for n in names]
        elif os.path.exists(p):
            files.append(p)
    for f in files:
        try:
            fd = os.open(f, os.O_RDONLY)
        except FileNotFoundError:  # removed meanwhile (a WAL at close)
            continue
        try:
            if sync:
                os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    return len(files)


class Peer:
    name = ""
    label = ""
    durability = ""  # short, for the table
    durability_long = ""  # for the legend and the JSON
    how: dict[str, str] = {}  # noqa: RUF012  (op -> what it does; the ops this peer has)
    package = ""  # the import it needs ("" none)
    # Set per round by the bench: run the bulk write before the per-record one. This VM's disk writes
    # its first few hundred MB at a burst rate, then slower, so whichever goes first is favoured; the
    # order alternates from round to round.
    flip = False
    # Set per round by the bench: whether to run the cold-cache variants (COLD_OPS), and the records
    # their lookups ask for (other than the warm lookups', whose pages the peer may cache itself).
    cold = False
    cold_lookups: list[int] = []  # noqa: RUF012
    cold_skip = ""  # why this peer has no cold-cache lines ("" it has them where it has the warm op)

    def available(self) -> str:
        """'' when the peer can run here, else why not."""
        if not self.package:
            return ""
        try:
            importlib.import_module(self.package)
        except ImportError as e:
            return f"python package {self.package!r} not installed ({e}); pip install -e '.[bench]'"
        return ""

    def run(self, root: str, wl: Workload, data: Data, count: int, lookups: list[int]) -> Outcome:
        raise NotImplementedError

    def run_extra(self, root: str, wl: Workload, data: Data, count: int, lookups: list[int]) -> Outcome:
        """The operations of EXTRA_OPS on the first ``count`` records, stamped ``data.ts`` (loaded
        untimed by the peer's bulk path): group consume, lookups by the timestamps of the records
        ``lookups`` (each checked), and one retention pass dropping the records older than
        ``data.cutoff(count)`` (facts["retention_removed"]: how many it removed)."""
        raise NotImplementedError


def first_at(ts: np.ndarray, target: int) -> int:
    """Index of the first of the ascending timestamps ``ts`` that is >= ``target``."""
    return int(np.searchsorted(ts, target, side="left"))


def check(what: str, count: int, total: int, want_count: int, want_total: int) -> None:
    if count != want_count or total != want_total:
        raise AssertionError(f"{what}: {count} records, {total} bytes; expected {want_count}, {want_total}")


def drain_queue(q: Any, count: int, op: str, what: str, out: Outcome, data: Data) -> None:
    """Timed: ``count`` non-blocking gets from a persist-queue queue of (key, value) tuples,
    touching both, then one ``task_done()``; checks what was read."""
    get = q.get
    total = n = 0
    with out.meter(op):
        for _ in range(count):
            k, v = get(block=False)
            total += len(k) + len(v)
            n += 1
        q.task_done()
    check(f"{what} {op}", n, total, count, data.touched(count))


def fresh(root: str, name: str) -> str:
    path = os.path.join(root, name)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


class LogstorePeer(Peer):
    name = "logstore"
    label = "logstore"
    durability = "fsync per append"
    durability_long = (
        "logstore's default (LogStore fsync='always', topic flush.messages=1): every append is fsynced "
        "before it is acknowledged; the producer's sender thread appends all ready batches of a "
        "partition in one write, so one fsync covers them (group commit)"
    )
    how = {  # noqa: RUF012
        "produce": "Producer.send(topic, value, key) per record, then flush()",
        "bulk produce": "Producer.send_many(topic, values, keys)",
        "consume": "for r in Consumer(store, topic, stop_at_end=True), touching r.key and r.value",
        "bulk consume": "Consumer.poll_columns(0) until None, summing key/value lengths (numpy)",
        "seek": "consumer.seek(tp, o) + consumer.poll(0) (one consumer per partition)",
        "group consume": "for r in Consumer(store, topic, group_id=g, stop_at_end=True) (one member: joins, is "
        "assigned all 8 partitions, reads them), then consumer.commit() (fsynced); the default auto-commit "
        "every 5 s does not fire in so short a run",
        "time lookup": "consumer.seek_to_time(ts, tp) + consumer.poll(0) in the partition of a random record "
        "(offset_for_time through the time index, then the record); the note has offset_for_time alone",
        "retention": f"store.apply_retention(topic, now=cutoff + retention.ms): deletes each partition's whole "
        f"segments whose newest record is older than the cutoff (rename, directory fsync, unlink); the "
        f"records were loaded by send(value, key, timestamp=ts) (the producer's default batches) in "
        f"{EXTRA_SEGMENTS} parts, every partition rolled after each, so each holds {EXTRA_SEGMENTS} segments",
    }

    def run(self, root: str, wl: Workload, data: Data, count: int, lookups: list[int]) -> Outcome:
        out = Outcome()
        vals, keys = data.vals[:count], data.keys[:count]
        touched = data.touched(count)
        if self.flip:
            self._bulk(root, wl, vals, keys, out)
        path = fresh(root, "logstore")
        with LogStore(path) as store:
            store.create_topic(TOPIC, PARTITIONS)
            with Producer(store, compression_type=wl.codec) as prod:
                send = prod.send
                with out.meter("produce"):
                    for v, k in zip(vals, keys, strict=True):
                        send(TOPIC, v, k)
                    prod.flush()
            ends = [p.end_offset for p in store.describe_topic(TOPIC).partitions]
            if sum(ends) != count:
                raise AssertionError(f"send(): the topic holds {sum(ends)} records, expected {count}")
            if not self.flip:
                self._bulk(root, wl, vals, keys, out)
            self._iterate(store, count, touched, out)
            self._columns(store, count, touched, out)
            out.seek_us = self._seeks(store, data, lookups, out)
        if self.cold:
            # The store closed (its index maps unmapped), every file evicted, then opened again: the
            # open reads its metadata and maps the indexes, the records come from the disk.
            out.facts["cold_files"] = evict(path)
            with LogStore(path) as store:
                self._iterate(store, count, touched, out, "consume (cold)")
            with LogStore(path) as store:  # fresh consumers: nothing of the cold read cached in them
                evict(path)
                out.lat_us["seek (cold)"] = self._seeks(store, data, self.cold_lookups, out, path)
        shutil.rmtree(path, ignore_errors=True)
        return out

    @staticmethod
    def _bulk(root: str, wl: Workload, vals: list[bytes], keys: list[bytes], out: Outcome) -> None:
        path = fresh(root, "logstore-bulk")
        with LogStore(path) as store:
            store.create_topic(TOPIC, PARTITIONS)
            with Producer(store, compression_type=wl.codec) as prod, out.meter("bulk produce"):
                res = prod.send_many(TOPIC, vals, keys)
            if int((res.offsets >= 0).sum()) != len(vals):
                raise AssertionError("send_many() left records without an offset")
            if sum(p.end_offset for p in store.describe_topic(TOPIC).partitions) != len(vals):
                raise AssertionError("send_many(): wrong record count in the topic")
        shutil.rmtree(path, ignore_errors=True)

    @staticmethod
    def _iterate(store: LogStore, count: int, touched: int, out: Outcome | None = None, op: str = "consume") -> None:
        out = out or Outcome()
        consumer = Consumer(store, TOPIC, stop_at_end=True)
        total = n = 0
        with out.meter(op):
            for r in consumer:
                total += len(r.key) + len(r.value)
                n += 1
        consumer.close()
        check("logstore iteration", n, total, count, touched)

    @staticmethod
    def _columns(store: LogStore, count: int, touched: int, out: Outcome | None = None) -> None:
        out = out or Outcome()
        consumer = Consumer(store, TOPIC, stop_at_end=True)
        pc = consumer.poll_columns
        total = n = 0
        with out.meter("bulk consume"):
            while True:
                chunk = pc(0)
                if chunk is None:
                    break
                rec = chunk.records
                total += int(rec.key_lengths.sum()) + int(rec.value_lengths.sum())
                n += len(rec)
        consumer.close()
        check("logstore poll_columns", n, total, count, touched)

    @staticmethod
    def _seeks(store: LogStore, data: Data, lookups: list[int], out: Outcome, cold: str = "") -> list[float]:
        """seek + poll(0) of each record in ``lookups``; with ``cold`` (the store's directory) every
        file under it is evicted from the page cache before each lookup (outside the timing)."""
        consumers = {}
        for p in range(PARTITIONS):
            c = Consumer(store)
            c.assign([TopicPartition(TOPIC, p)])
            consumers[p] = c
        tps = {p: TopicPartition(TOPIC, p) for p in range(PARTITIONS)}
        lat = []
        clock = time.perf_counter_ns
        try:
            with out.meter("seek (cold)" if cold else "seek", timed=False) as m:
                for i in lookups:
                    p, o = int(data.parts[i]), int(data.ranks[i])
                    c, tp = consumers[p], tps[p]
                    if cold:  # the partition's files: the only ones this lookup reads
                        with m.outside():
                            evict(os.path.join(cold, f"{TOPIC}-{p}"), sync=False)
                    t0 = clock()
                    c.seek(tp, o)
                    r = c.poll(0)
                    t1 = clock()
                    lat.append((t1 - t0) / 1000)
                    if r is None or r.partition != p or r.offset != o or r.value != data.vals[i]:
                        raise AssertionError(f"seek({p}, {o}) + poll(0) returned {r!r}")
        finally:
            for c in consumers.values():
                c.close()
        return lat

    def run_extra(self, root: str, wl: Workload, data: Data, count: int, lookups: list[int]) -> Outcome:
        out = Outcome()
        path = fresh(root, "logstore-extra")
        ts = data.ts[:count]
        parts = data.parts[:count]
        with LogStore(path) as store:
            store.create_topic(TOPIC, PARTITIONS, config={"retention.ms": RETENTION_MS})
            tsl = ts.tolist()
            with Producer(store, compression_type=wl.codec) as prod:
                send = prod.send
                step = -(-count // EXTRA_SEGMENTS)
                for s in range(0, count, step):
                    e = min(count, s + step)
                    for v, k, t in zip(data.vals[s:e], data.keys[s:e], tsl[s:e], strict=True):
                        send(TOPIC, v, k, timestamp=t)
                    prod.flush()
                    for p in range(PARTITIONS):
                        store.partition(TOPIC, p).roll()
            # group consume
            touched = data.touched(count)
            with out.meter("group consume"):
                t0 = time.perf_counter()
                consumer = Consumer(store, TOPIC, group_id="bench", stop_at_end=True)
                it = iter(consumer)
                r = next(it)  # the join: the group's first generation, all 8 partitions assigned to this member
                first_s = time.perf_counter() - t0
                total, n = len(r.key) + len(r.value), 1
                for r in it:
                    total += len(r.key) + len(r.value)
                    n += 1
                t1 = time.perf_counter()
                consumer.commit()
            out.facts["group_join_ms"] = round(first_s * 1000, 1)
            out.facts["group_commit_ms"] = round((time.perf_counter() - t1) * 1000, 2)
            committed = consumer.committed(TopicPartition(TOPIC, 0))
            consumer.close(autocommit=False)
            check("logstore group consume", n, total, count, touched)
            if committed is None:
                raise AssertionError("logstore group consume: nothing committed for partition 0")
            # lookup by timestamp
            stamps = {p: ts[parts == p] for p in range(PARTITIONS)}
            logs = {p: store.partition(TOPIC, p) for p in range(PARTITIONS)}
            clock = time.perf_counter_ns
            oft: list[float] = []
            for op, which in (("time lookup", lookups), ("time lookup (cold)", self.cold_lookups if self.cold else [])):
                if not which:
                    continue
                if op != "time lookup":
                    evict(path)
                consumers = {}
                for p in range(PARTITIONS):
                    c = Consumer(store)
                    c.assign([TopicPartition(TOPIC, p)])
                    consumers[p] = c
                lat = out.time_us if op == "time lookup" else out.lat_us.setdefault(op, [])
                try:
                    with out.meter(op, timed=False) as m:
                        for i in which:
                            p, target = int(parts[i]), int(ts[i])
                            want = first_at(stamps[p], target)
                            c, tp = consumers[p], TopicPartition(TOPIC, p)
                            if op != "time lookup":  # the partition's files: the only ones it reads
                                with m.outside():
                                    evict(os.path.join(path, f"{TOPIC}-{p}"), sync=False)
                            t0n = clock()
                            c.seek_to_time(target, tp)
                            r = c.poll(0)
                            lat.append((clock() - t0n) / 1000)
                            if r is None or r.offset != want or r.timestamp != target:
                                raise AssertionError(
                                    f"seek_to_time({target}) in {p} returned {r!r}, expected offset {want}"
                                )
                            if op != "time lookup":
                                continue
                            with m.outside():
                                t0n = clock()
                                found = logs[p].offset_for_time(target)
                                oft.append((clock() - t0n) / 1000)
                            if found is None or found.offset != want:
                                raise AssertionError(f"offset_for_time({target}) in {p} returned {found!r}")
                finally:
                    for c in consumers.values():
                        c.close()
            out.facts["offset_for_time_us"] = round(statistics.median(oft), 2) if oft else None
            # retention
            segments = sum(len(logs[p].segments) for p in range(PARTITIONS))
            with out.meter("retention"):
                res = store.apply_retention(TOPIC, now=data.cutoff(count) + RETENTION_MS)
            removed = sum(r.log_start_offset for r in res)
            if any(r.log_start_offset > first_at(stamps[r.partition], data.cutoff(count)) for r in res):
                raise AssertionError("logstore retention removed records newer than the cutoff")
            out.facts["retention_removed"] = removed
            out.facts["retention_segments"] = f"{sum(r.segments_deleted for r in res)} of {segments}"
        shutil.rmtree(path, ignore_errors=True)
        return out


class SqlitePeer(Peer):
    name = "sqlite3"
    label = "sqlite3 (DIY)"
    durability = "WAL, sync=FULL"
    durability_long = (
        "PRAGMA journal_mode=WAL, synchronous=FULL: the WAL is fsynced at every COMMIT (the same class as "
        "logstore's fsync per append); one transaction per run, so one commit"
    )
    how = {  # noqa: RUF012
        "produce": "BEGIN; cursor.execute(INSERT ...) per record; COMMIT",
        "bulk produce": "BEGIN; executemany(INSERT ...) of every record; COMMIT (its documented fastest path)",
        "consume": f"SELECT key, value ... WHERE id > ? ORDER BY id, fetchmany({FETCHMANY}), touching both",
        "seek": "SELECT key, value FROM log WHERE id = ? (the rowid), fetchone",
        "group consume": "DIY: SELECT pos FROM offsets WHERE grp = ?; SELECT ... WHERE id > pos ORDER BY id, "
        f"fetchmany({FETCHMANY}); then BEGIN; INSERT OR REPLACE INTO offsets; COMMIT (fsync). One reader: no "
        "membership, no sharing of the work between readers",
        "time lookup": "SELECT id, ts, key, value FROM log WHERE ts >= ? ORDER BY ts LIMIT 1 (index on ts)",
        "retention": "BEGIN; DELETE FROM log WHERE ts < cutoff; COMMIT; PRAGMA wal_checkpoint(TRUNCATE) "
        "(the freed pages stay in the file for reuse; no VACUUM)",
    }
    SQL_INSERT = "INSERT INTO log (key, value) VALUES (?, ?)"

    @staticmethod
    def _open(path: str) -> sqlite3.Connection:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("CREATE TABLE IF NOT EXISTS log (id INTEGER PRIMARY KEY, key BLOB, value BLOB)")
        return conn

    def _bulk(self, path: str, keys: list[bytes], vals: list[bytes], out: Outcome) -> None:
        bulk = self._open(path)
        with out.meter("bulk produce"):
            bulk.execute("BEGIN")
            bulk.executemany(self.SQL_INSERT, zip(keys, vals, strict=True))
            bulk.execute("COMMIT")
        if bulk.execute("SELECT count(*) FROM log").fetchone()[0] != len(keys):
            raise AssertionError("sqlite executemany: wrong row count")
        bulk.close()
        os.unlink(path)

    def run(self, root: str, wl: Workload, data: Data, count: int, lookups: list[int]) -> Outcome:
        out = Outcome()
        vals, keys = data.vals[:count], data.keys[:count]
        d = fresh(root, "sqlite")
        if self.flip:
            self._bulk(os.path.join(d, "bulk.db"), keys, vals, out)
        conn = self._open(os.path.join(d, "log.db"))
        cur = conn.cursor()
        execute = cur.execute
        sql = self.SQL_INSERT
        with out.meter("produce"):
            execute("BEGIN")
            for k, v in zip(keys, vals, strict=True):
                execute(sql, (k, v))
            execute("COMMIT")
        if not self.flip:
            self._bulk(os.path.join(d, "bulk.db"), keys, vals, out)
        out.facts["synchronous"] = conn.execute("PRAGMA synchronous").fetchone()[0]
        self._scan(conn, count, data, out, "consume")
        self._lookups(conn, lookups, vals, out, "seek", out.seek_us)
        conn.close()
        if self.cold:
            # Closed (the last connection checkpoints the WAL into log.db and deletes it), every file
            # of the directory evicted, opened again: sqlite's own page cache starts empty too.
            out.facts["cold_files"] = evict(d)
            conn = self._open(os.path.join(d, "log.db"))
            self._scan(conn, count, data, out, "consume (cold)")
            conn.close()
            conn = self._open(os.path.join(d, "log.db"))  # a fresh connection: an empty sqlite page cache
            evict(d)
            self._lookups(
                conn, self.cold_lookups, vals, out, "seek (cold)", out.lat_us.setdefault("seek (cold)", []), d
            )
            conn.close()
        shutil.rmtree(d, ignore_errors=True)
        return out

    @staticmethod
    def _scan(conn: sqlite3.Connection, count: int, data: Data, out: Outcome, op: str) -> None:
        total = n = 0
        with out.meter(op):
            c = conn.execute("SELECT key, value FROM log WHERE id > ? ORDER BY id", (0,))
            c.arraysize = FETCHMANY
            fetch = c.fetchmany
            while True:
                rows = fetch()
                if not rows:
                    break
                for k, v in rows:
                    total += len(k) + len(v)
                n += len(rows)
        check("sqlite fetchmany", n, total, count, data.touched(count))

    @staticmethod
    def _lookups(
        conn: sqlite3.Connection,
        lookups: list[int],
        vals: list[bytes],
        out: Outcome,
        op: str,
        lat: list[float],
        cold: str = "",
    ) -> None:
        """Row ``i + 1`` for each ``i``; with ``cold`` (the db's directory) its files are evicted from
        the page cache before each lookup, outside the timing (sqlite's own page cache stays: it is
        the connection's, as logstore's maps of its indexes are the store's)."""
        clock = time.perf_counter_ns
        one = "SELECT key, value FROM log WHERE id = ?"
        with out.meter(op, timed=False) as m:
            for i in lookups:
                if cold:
                    with m.outside():
                        evict(cold, sync=False)
                t0n = clock()
                row = conn.execute(one, (i + 1,)).fetchone()
                lat.append((clock() - t0n) / 1000)
                if row is None or row[1] != vals[i]:
                    raise AssertionError(f"sqlite: row {i + 1} is {row!r}")

    def run_extra(self, root: str, wl: Workload, data: Data, count: int, lookups: list[int]) -> Outcome:
        out = Outcome()
        d = fresh(root, "sqlite-extra")
        ts = data.ts[:count]
        conn = self._open(os.path.join(d, "extra.db"))
        conn.execute("DROP TABLE log")
        conn.execute("CREATE TABLE log (id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, key BLOB, value BLOB)")
        conn.execute("CREATE INDEX log_ts ON log (ts)")
        conn.execute("CREATE TABLE offsets (grp TEXT PRIMARY KEY, pos INTEGER NOT NULL)")
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO log (ts, key, value) VALUES (?, ?, ?)",
            zip(ts.tolist(), data.keys[:count], data.vals[:count], strict=True),
        )
        conn.execute("COMMIT")
        # group consume: a DIY committed position
        with out.meter("group consume"):
            row = conn.execute("SELECT pos FROM offsets WHERE grp = ?", ("bench",)).fetchone()
            pos = row[0] if row else 0
            c = conn.execute("SELECT id, key, value FROM log WHERE id > ? ORDER BY id", (pos,))
            c.arraysize = FETCHMANY
            fetch = c.fetchmany
            total = n = 0
            last = pos
            while True:
                rows = fetch()
                if not rows:
                    break
                for _, k, v in rows:
                    total += len(k) + len(v)
                n += len(rows)
                last = rows[-1][0]
            conn.execute("BEGIN")
            conn.execute("INSERT OR REPLACE INTO offsets (grp, pos) VALUES (?, ?)", ("bench", last))
            conn.execute("COMMIT")
        check("sqlite DIY group consume", n, total, count, data.touched(count))
        # lookup by timestamp (cold: on a fresh connection, the files evicted before each lookup)
        clock = time.perf_counter_ns
        one = "SELECT id, ts, key, value FROM log WHERE ts >= ? ORDER BY ts LIMIT 1"
        for op, which in (("time lookup", lookups), ("time lookup (cold)", self.cold_lookups if self.cold else [])):
            if not which:
                continue
            if op != "time lookup":
                conn.close()
                conn = sqlite3.connect(os.path.join(d, "extra.db"), isolation_level=None)
                conn.execute("PRAGMA synchronous=FULL")
                evict(d)
            lat = out.time_us if op == "time lookup" else out.lat_us.setdefault(op, [])
            with out.meter(op, timed=False) as m:
                for i in which:
                    target = int(ts[i])
                    if op != "time lookup":
                        with m.outside():
                            evict(d, sync=False)
                    t0n = clock()
                    got = conn.execute(one, (target,)).fetchone()
                    lat.append((clock() - t0n) / 1000)
                    want = first_at(ts, target)
                    if got is None or got[0] != want + 1 or got[1] != target or got[3] != data.vals[want]:
                        raise AssertionError(f"sqlite: ts >= {target} gave {got!r:.80}, expected row {want + 1}")
        # retention
        cutoff = data.cutoff(count)
        with out.meter("retention"):
            conn.execute("BEGIN")
            removed = conn.execute("DELETE FROM log WHERE ts < ?", (cutoff,)).rowcount
            conn.execute("COMMIT")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        if removed != first_at(ts, cutoff):
            raise AssertionError(f"sqlite retention removed {removed} rows, expected {first_at(ts, cutoff)}")
        out.facts["retention_removed"] = removed
        conn.close()
        shutil.rmtree(d, ignore_errors=True)
        return out


class PersistQueueSqlitePeer(Peer):
    name = "pq-sqlite"
    label = "persist-queue SQLiteQueue"
    durability = "WAL, fsync per put"
    durability_long = (
        "SQLiteQueue(path, auto_commit=False): journal_mode=WAL, sqlite's default synchronous (read back "
        "per run: 2 = FULL). auto_commit=False only defers the deletes of get(); every put() still runs in "
        "the connection's context manager, which commits, so every put is a commit (an fsync of the WAL)"
    )
    how = {  # noqa: RUF012
        "produce": "q.put((key, value)) per record (pickled), then q.task_done()",
        "consume": "q.get(block=False) per record, touching key and value, then one q.task_done() (commit)",
    }
    package = "persistqueue"

    def run(self, root: str, wl: Workload, data: Data, count: int, lookups: list[int]) -> Outcome:
        import persistqueue

        out = Outcome()
        d = fresh(root, "pq-sqlite")
        q = persistqueue.SQLiteQueue(d, auto_commit=False)
        out.facts["synchronous"] = q._putter.execute("PRAGMA synchronous").fetchone()[0]  # the peer's own handle
        put = q.put
        with out.meter("produce"):
            for k, v in zip(data.keys[:count], data.vals[:count], strict=True):
                put((k, v))
            q.task_done()
        if self.cold:  # a copy of the queue for the cold read (closed first, so the copy is consistent)
            q.close()
            shutil.copytree(d, d + "-cold")
            q = persistqueue.SQLiteQueue(d, auto_commit=False)
        for op, path in (("consume", d), ("consume (cold)", d + "-cold")):
            if op != "consume":
                if not self.cold:
                    break
                q.close()
                out.facts["cold_files"] = evict(path)
                q = persistqueue.SQLiteQueue(path, auto_commit=False)
            drain_queue(q, count, op, "persist-queue SQLiteQueue", out, data)
        q.close()
        shutil.rmtree(d, ignore_errors=True)
        shutil.rmtree(d + "-cold", ignore_errors=True)
        return out


class PersistQueueFilePeer(Peer):
    name = "pq-file"
    label = "persist-queue Queue (files)"
    durability = "flush/put, fsync/100"
    durability_long = (
        "persist-queue's file Queue (chunksize 100, autosave=False): every put() flushes the record to the "
        "OS and rewrites the info file (temp file + rename, no fsync); a chunk file is fsynced when its "
        "100 records are complete"
    )
    how = {  # noqa: RUF012
        "produce": "q.put((key, value)) per record (pickled)",
        "consume": "q.get(block=False) per record, touching key and value, then one q.task_done()",
    }
    package = "persistqueue"

    def run(self, root: str, wl: Workload, data: Data, count: int, lookups: list[int]) -> Outcome:
        import persistqueue

        out = Outcome()
        d = fresh(root, "pq-file")
        q = persistqueue.Queue(os.path.join(d, "q"), tempdir=d)
        put = q.put
        with out.meter("produce"):
            for k, v in zip(data.keys[:count], data.vals[:count], strict=True):
                put((k, v))
        cold = d + "-cold"
        if self.cold:  # a copy of the queue's files for the cold read (every put() was flushed)
            shutil.copytree(os.path.join(d, "q"), os.path.join(cold, "q"))
        for op in ("consume", "consume (cold)"):
            if op != "consume":
                if not self.cold:
                    break
                del q
                out.facts["cold_files"] = evict(cold)
                q = persistqueue.Queue(os.path.join(cold, "q"), tempdir=cold)
            drain_queue(q, count, op, "persist-queue Queue", out, data)
        del q
        shutil.rmtree(d, ignore_errors=True)
        shutil.rmtree(cold, ignore_errors=True)
        return out


class LiteQueuePeer(Peer):
    name = "litequeue"
    label = "litequeue"
    durability = "WAL, sync=NORMAL"
    durability_long = (
        "LiteQueue(path) sets journal_mode=WAL and synchronous=NORMAL itself: each put() is its own "
        "transaction (autocommit), and NORMAL does not fsync at commit (the WAL is fsynced at checkpoints), "
        "so a power loss can lose the last commits; weaker than logstore's default"
    )
    how = {  # noqa: RUF012
        "produce": "q.put(key + b'\\0' + value) per message (the README's use: one transaction each)",
        "bulk produce": "the same put() calls inside one q.transaction() (public method, not in the README)",
        "consume": "q.pop() + q.done(message_id) per message, splitting key and value",
    }
    package = "litequeue"

    def __init__(self, consume_cap: int) -> None:
        self.consume_cap = consume_cap

    def run(self, root: str, wl: Workload, data: Data, count: int, lookups: list[int]) -> Outcome:
        import litequeue

        out = Outcome()
        d = fresh(root, "litequeue")
        vals, keys = data.vals[:count], data.keys[:count]
        q = litequeue.LiteQueue(os.path.join(d, "q.db"))
        put = q.put
        with out.meter("produce"):
            for k, v in zip(keys, vals, strict=True):
                put(k + b"\0" + v)
        q.close()
        q = litequeue.LiteQueue(os.path.join(d, "bulk.db"))
        put = q.put
        with out.meter("bulk produce"), q.transaction():
            for k, v in zip(keys, vals, strict=True):
                put(k + b"\0" + v)
        q.close()
        # pop() picks the oldest ready message with ORDER BY over the queue on every call, so its cost
        # grows with the queue: consume is measured on a queue of consume_cap messages.
        m = min(count, self.consume_cap)
        q = litequeue.LiteQueue(os.path.join(d, "consume.db"))
        with q.transaction():
            for k, v in zip(keys[:m], vals[:m], strict=True):
                q.put(k + b"\0" + v)
        if self.cold:  # a copy for the cold read (closed first: the WAL checkpointed, the copy consistent)
            q.close()
            os.makedirs(os.path.join(d, "cold"))
            shutil.copy(os.path.join(d, "consume.db"), os.path.join(d, "cold", "consume.db"))
            q = litequeue.LiteQueue(os.path.join(d, "consume.db"))
        for op in ("consume", "consume (cold)"):
            if op != "consume":
                if not self.cold:
                    break
                q.close()
                out.facts["cold_files"] = evict(os.path.join(d, "cold"))
                q = litequeue.LiteQueue(os.path.join(d, "cold", "consume.db"))
            pop, done = q.pop, q.done
            total = n = 0
            with out.meter(op):
                for _ in range(m):
                    msg = pop()
                    k, _, v = msg.data.partition(b"\0")
                    total += len(k) + len(v)
                    done(msg.message_id)
                    n += 1
            check(f"litequeue pop {op}", n, total, m, data.touched(m))
        out.facts["consume_records"] = m
        q.close()
        shutil.rmtree(d, ignore_errors=True)
        return out


class RedisPeer(Peer):
    package = "redis"

    def __init__(self, appendfsync: str) -> None:
        self.appendfsync = appendfsync
        self.name = f"redis-{appendfsync}"
        self.label = f"Redis Streams, AOF {appendfsync}"
        self.durability = f"AOF fsync {appendfsync}"
        self.durability_long = (
            f"redis-server (started here, loopback, one stream), appendonly yes, appendfsync {appendfsync}"
            + (
                ": the AOF is fsynced once a second in the background; up to a second of writes can be lost"
                if appendfsync == "everysec"
                else ": the AOF is fsynced before the replies to each event-loop pass (a pipeline of XADDs "
                "shares an fsync), the same class as logstore's default"
            )
            + "; RDB snapshots and AOF rewrites off"
        )
        self.how = {
            "produce": f"XADD events * k <key> v <value>, pipelined {REDIS_PIPELINE} at a time (redis-py + hiredis)",
            "consume": f"XRANGE in pages of {REDIS_PAGE} (exclusive start after the last id), touching both fields",
            "seek": "XRANGE events <id> <id> COUNT 1 (ids kept from the XADD replies)",
            "group consume": f"XGROUP CREATE, then XREADGROUP COUNT {REDIS_PAGE} and XACK of the page's ids, "
            "pipelined (the ack of a page goes with the next read: one round trip a page)",
            "time lookup": "XRANGE events <ms> + COUNT 1 (entries added with ids <ms>-<seq>)",
            "retention": "XTRIM events MINID = <cutoff ms> (exact; the approximate ~ form trims whole "
            "macro-nodes and at most 100 x stream-node-max-entries per call)",
        }
        self.version = ""
        self.pid: int | None = None  # the running redis-server's
        self.cold_skip = (
            "Redis keeps the stream in memory (the AOF is read only at startup): no page-cache read to make cold"
        )

    def available(self) -> str:
        why = super().available()
        if why:
            return why
        exe = shutil.which("redis-server")
        if exe is None:
            return "redis-server not found on PATH (on Debian: apt-get install -y redis-server)"
        try:
            p = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=10)
            self.version = p.stdout.strip()
        except (OSError, subprocess.TimeoutExpired) as e:
            return f"redis-server --version failed: {e}"
        return ""

    @contextlib.contextmanager
    def server(self, root: str) -> Any:
        import redis

        d = fresh(root, self.name)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        cmd = [
            shutil.which("redis-server") or "redis-server",
            "--port", str(port), "--bind", "127.0.0.1", "--protected-mode", "yes",
            "--dir", d, "--logfile", os.path.join(d, "redis.log"), "--daemonize", "no",
            "--save", "", "--appendonly", "yes", "--appendfsync", self.appendfsync,
            "--auto-aof-rewrite-percentage", "0",
        ]  # fmt: skip
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.pid = proc.pid
        client = redis.Redis(host="127.0.0.1", port=port)
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    client.ping()
                    break
                except redis.ConnectionError as e:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        with open(os.path.join(d, "redis.log"), errors="replace") as f:
                            log = f.read()[-400:]
                        raise Skip(f"redis-server did not start ({e}); log: {log}") from None
                    time.sleep(0.02)
            yield client
        finally:
            client.close()
            # SIGTERM to the server this bench started (its own handle): a clean shutdown. (SHUTDOWN
            # through redis-py costs seconds of reconnect retries.)
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
            shutil.rmtree(d, ignore_errors=True)

    def run(self, root: str, wl: Workload, data: Data, count: int, lookups: list[int]) -> Outcome:
        out = Outcome()
        vals, keys = data.vals[:count], data.keys[:count]
        with self.server(root) as r:
            ids: list[bytes] = []
            pid = self.pid
            with out.meter("produce", pid):
                for s in range(0, count, REDIS_PIPELINE):
                    pipe = r.pipeline(transaction=False)
                    xadd = pipe.xadd
                    for k, v in zip(keys[s : s + REDIS_PIPELINE], vals[s : s + REDIS_PIPELINE], strict=True):
                        xadd(TOPIC, {b"k": k, b"v": v})
                    ids.extend(pipe.execute())
            total = n = 0
            low: bytes | str = "-"
            xrange = r.xrange
            with out.meter("consume", pid):
                while True:
                    page = xrange(TOPIC, min=low, max="+", count=REDIS_PAGE)
                    if not page:
                        break
                    for _, f in page:
                        total += len(f[b"k"]) + len(f[b"v"])
                    n += len(page)
                    low = b"(" + page[-1][0]
            check("redis XRANGE", n, total, count, data.touched(count))
            clock = time.perf_counter_ns
            with out.meter("seek", pid, timed=False):
                for i in lookups:
                    t0n = clock()
                    got = xrange(TOPIC, min=ids[i], max=ids[i], count=1)
                    out.seek_us.append((clock() - t0n) / 1000)
                    if len(got) != 1 or got[0][1][b"v"] != vals[i]:
                        raise AssertionError(f"redis: XRANGE {ids[i]!r} returned {got!r}")
            info = r.info("persistence")
            out.facts["aof_enabled"] = info.get("aof_enabled")
        return out

    def run_extra(self, root: str, wl: Workload, data: Data, count: int, lookups: list[int]) -> Outcome:
        out = Outcome()
        vals, keys = data.vals[:count], data.keys[:count]
        ts = data.ts[:count]
        tsl = ts.tolist()
        with self.server(root) as r:
            for s in range(0, count, REDIS_PIPELINE):
                pipe = r.pipeline(transaction=False)
                for i in range(s, min(count, s + REDIS_PIPELINE)):
                    pipe.xadd(TOPIC, {b"k": keys[i], b"v": vals[i]}, id=f"{tsl[i]}-{i % RECORDS_PER_MS}")
                pipe.execute()
            # group consume
            pid = self.pid
            with out.meter("group consume", pid):
                r.xgroup_create(TOPIC, "bench", id="0")
                total = n = acked = 0
                ids: list[bytes] = []
                while True:
                    pipe = r.pipeline(transaction=False)
                    if ids:
                        pipe.xack(TOPIC, "bench", *ids)
                    pipe.xreadgroup("bench", "c1", {TOPIC: ">"}, count=REDIS_PAGE)
                    res = pipe.execute()
                    if ids:
                        acked += res[0]
                    resp = res[-1]
                    page = resp[0][1] if resp else []
                    if not page:
                        break
                    for _, f in page:
                        total += len(f[b"k"]) + len(f[b"v"])
                    n += len(page)
                    ids = [e[0] for e in page]
            check("redis XREADGROUP", n, total, count, data.touched(count))
            if acked != count:
                raise AssertionError(f"redis XACK acknowledged {acked} of {count}")
            # lookup by timestamp
            clock = time.perf_counter_ns
            xrange = r.xrange
            with out.meter("time lookup", pid, timed=False):
                for i in lookups:
                    target = int(ts[i])
                    t0n = clock()
                    got = xrange(TOPIC, min=str(target), max="+", count=1)
                    out.time_us.append((clock() - t0n) / 1000)
                    want = first_at(ts, target)
                    if len(got) != 1 or got[0][0] != f"{target}-0".encode() or got[0][1][b"v"] != vals[want]:
                        raise AssertionError(f"redis: XRANGE {target} + COUNT 1 returned {got!r:.80}")
            # retention
            cutoff = data.cutoff(count)
            with out.meter("retention", pid):
                removed = r.xtrim(TOPIC, minid=str(cutoff), approximate=False)
            if removed != first_at(ts, cutoff):
                raise AssertionError(f"redis XTRIM removed {removed}, expected {first_at(ts, cutoff)}")
            out.facts["retention_removed"] = removed
        return out


class KafkaCodecPeer(Peer):
    name = "kafka-codec"
    label = "kafka-python codec"
    durability = "none (memory)"
    durability_long = (
        "kafka-python's record codec alone (DefaultRecordBatchBuilder / DefaultRecordBatch), in memory: "
        "no file, no fsync: what encoding and decoding Kafka's format costs in pure Python"
    )
    how = {  # noqa: RUF012
        "produce": f"DefaultRecordBatchBuilder.append per record, build() at batch.size {KAFKA_BATCH_SIZE} "
        "(lz4 as logstore for a/b, none for c)",
        "consume": "for rec in DefaultRecordBatch(buf) over the built batches, touching rec.key and rec.value",
    }
    package = "kafka.record.default_records"
    cold_skip = "in memory: no file to read"

    def run(self, root: str, wl: Workload, data: Data, count: int, lookups: list[int]) -> Outcome:
        from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

        out = Outcome()
        codec = DefaultRecordBatchBuilder.CODEC_LZ4 if wl.codec == "lz4" else DefaultRecordBatchBuilder.CODEC_NONE

        def builder() -> DefaultRecordBatchBuilder:
            return DefaultRecordBatchBuilder(2, codec, False, -1, -1, -1, KAFKA_BATCH_SIZE)

        ts = time.time_ns() // 1_000_000
        batches: list[bytes] = []
        with out.meter("produce"):
            b = builder()
            off = 0
            for k, v in zip(data.keys[:count], data.vals[:count], strict=True):
                if b.append(off, ts, k, v, []) is None:
                    batches.append(b.build())
                    b = builder()
                    off = 0
                    b.append(off, ts, k, v, [])
                off += 1
            batches.append(b.build())
        total = n = 0
        with out.meter("consume"):
            for buf in batches:
                for rec in DefaultRecordBatch(buf):
                    total += len(rec.key) + len(rec.value)
                    n += 1
        check("kafka-python DefaultRecordBatch", n, total, count, data.touched(count))
        out.facts["batches"] = len(batches)
        return out


class RawFilePeer(Peer):
    name = "raw-file"
    label = "raw file (baseline)"
    durability = "fsync per 1 MiB"
    durability_long = (
        "os.write of a preformatted 1 MiB frame (these records' bytes) then os.fsync, frame after frame, as many "
        "bytes as the workload's records (at most raw_mib); it runs just before logstore in every round"
    )
    how = {  # noqa: RUF012
        "produce": "os.write(fd, 1 MiB frame) + os.fsync(fd) per frame (records/s: the same bytes as records)",
        "consume": "a page-cache read of that file: f.readinto(1 MiB buffer) to the end",
        "consume (cold)": "the same read after the file was evicted from the page cache (fsync + "
        "posix_fadvise DONTNEED): a disk read",
    }

    def __init__(self, raw_mib: int) -> None:
        self.raw_mib = raw_mib

    def run(self, root: str, wl: Workload, data: Data, count: int, lookups: list[int]) -> Outcome:
        out = Outcome()
        per_record = data.touched(count) / count
        frames = max(1, min(self.raw_mib, int(data.touched(count) // MiB)))
        frame = data.frame(MiB)
        d = fresh(root, "raw")
        path = os.path.join(d, "raw.bin")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            with out.meter("produce"):
                for _ in range(frames):
                    if os.write(fd, frame) != MiB:
                        raise AssertionError("short write")
                    os.fsync(fd)
        finally:
            os.close(fd)
        # As seconds for the records of this workload that the same bytes hold.
        records = frames * MiB / per_record
        out.seconds["produce"] *= count / records
        buf = bytearray(MiB)
        view = memoryview(buf)
        for op in ("consume", "consume (cold)") if self.cold else ("consume",):
            if op != "consume":
                evict(path)
            got = 0
            with open(path, "rb", buffering=0) as f, out.meter(op):
                readinto = f.readinto
                while True:
                    k = readinto(view)
                    if not k:
                        break
                    got += k
            if got != frames * MiB:
                raise AssertionError(f"raw read {got} bytes of {frames * MiB}")
            out.seconds[op] *= count / records
        out.facts["mib"] = frames
        shutil.rmtree(d, ignore_errors=True)
        return out


# --- the bench ----------------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the peers table: a peer doing an operation on a workload."""

    id: str
    workload: str
    op: str
    peer: str
    durability: str
    records: int | None
    rate: float | None  # records/s (seek: lookups/s)
    mbs: float | None
    us: float | None  # µs per record (seek: median µs per lookup)
    vs: float | None  # logstore's speed / this peer's (>1: logstore is faster)
    note: str = ""
    skipped: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    cpu: float | None = None  # CPU % of the timed part (median round; 100 = one core), Redis: + the server's
    peak_mib: float | None = None  # peak RSS of the process doing the work (highest round), MiB
    grow_mib: float | None = None  # that peak minus its RSS at the start of the timed part (highest round)


def fmt(x: float | None, kind: str) -> str:
    if x is None:
        return "-"
    if kind == "rate":
        return f"{x:,.0f}"
    if kind == "us":
        return f"{x:,.2f}" if x < 10 else f"{x:,.1f}"
    if kind == "x":
        return f"{x:,.2f}" if x < 100 else f"{x:,.0f}"
    return f"{x:,.1f}"


def peer_table(rows: list[Row]) -> str:
    head = (
        "id",
        "op",
        "peer",
        "durability",
        "records",
        "rec/s",
        "MB/s",
        "us/rec",
        "logstore/peer",
        "CPU%",
        "RSS MiB",
        "+MiB",
    )
    body = []
    for r in rows:
        if r.skipped:
            body.append((r.id, r.op, r.peer, r.durability, "-", r.skipped, "-", "-", "-", "-", "-", "-"))
            continue
        body.append(
            (
                r.id,
                r.op,
                r.peer,
                r.durability,
                f"{r.records:,}" if r.records else "-",
                fmt(r.rate, "rate"),
                fmt(r.mbs, "mbs"),
                fmt(r.us, "us"),
                fmt(r.vs, "x"),
                "-" if r.cpu is None else f"{r.cpu:.0f}",
                "-" if r.peak_mib is None else f"{r.peak_mib:,.0f}",
                "-" if r.grow_mib is None else f"{r.grow_mib:,.0f}",
            )
        )
    widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]
    right = {4, 5, 6, 7, 8, 9, 10, 11}
    lines = []
    last_wl = None
    for j, row in enumerate([head, *body]):
        if j and rows[j - 1].workload != last_wl:
            last_wl = rows[j - 1].workload
            wl = next(w for w in WORKLOADS if w.key == last_wl)
            lines.append(f"-- workload {wl.key}: {wl.label}")
        cells = [c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


class Bench:
    def __init__(self, root: str, sizes: Sizes, quick: bool, profiles_on: bool, only: set[str]) -> None:
        self.root = root
        self.sizes = sizes
        self.quick = quick
        self.profiles_on = profiles_on
        self.events = load_events()
        self.peers: list[Peer] = [
            LogstorePeer(),
            SqlitePeer(),
            RedisPeer("everysec"),
            RedisPeer("always"),
            PersistQueueSqlitePeer(),
            PersistQueueFilePeer(),
            LiteQueuePeer(sizes.consume_caps["litequeue"]),
            KafkaCodecPeer(),
            RawFilePeer(sizes.raw_mib),
        ]
        self.peers = [p for p in self.peers if not only or p.name in only or p.name == "logstore"]
        self.skipped: dict[str, str] = {}
        for p in self.peers:
            why = p.available()
            if why:
                self.skipped[p.name] = why
                sb.progress(f"skipping {p.label}: {why}")
        self.rows: list[Row] = []
        self.results: list[Result] = []
        self.profiles: dict[str, dict[str, Any]] = {}
        self.errors: dict[tuple[str, str], str] = {}  # (workload, peer) -> error
        # (workload, op, peer) -> per-round seconds / per-round seek latencies
        self.seconds: dict[tuple[str, str, str], list[float]] = {}
        self.lat_rounds: dict[tuple[str, str, str], list[list[float]]] = {}  # (wl, op, peer): µs per lookup
        self.cpu: dict[tuple[str, str, str], list[float]] = {}  # (wl, op, peer): CPU s / wall s per round
        self.rss: dict[tuple[str, str, str], list[tuple[int, int]]] = {}  # (peak KiB, start KiB) per round
        self.counts: dict[tuple[str, str], int] = {}
        self.facts: dict[tuple[str, str], dict[str, Any]] = {}
        self.data: dict[str, Data] = {}

    def count_for(self, peer: Peer, wl: Workload) -> int:
        n = self.sizes.records[wl.key]
        return min(n, self.sizes.caps.get(peer.name, {}).get(wl.key, n))

    # one workload ---------------------------------------------------------------------------------

    def workload(self, wl: Workload) -> None:
        sz = self.sizes
        n = sz.records[wl.key]
        t_wl = time.perf_counter()
        sb.progress(f"workload {wl.key}: {wl.label}, {n:,} records; preparing the data")
        data = Data(self.events, wl.value_bytes, n)
        data.route()
        self.data[wl.key] = data
        rng = random.Random(20231114 + ord(wl.key))
        runnable = [p for p in self.peers if p.name not in self.skipped]
        per_round = max(1, sz.seeks // sz.rounds)
        cold_round = max(1, sz.cold_seeks // sz.rounds)
        warm_bytes = 16_000_000 // (wl.value_bytes + 10)
        for p in runnable:  # warm-up round, untimed: imports, caches, code paths
            count = min(self.count_for(p, wl), sz.warmup, max(100, warm_bytes))
            lookups = [rng.randrange(count) for _ in range(sz.seek_warmup)]
            p.cold = wl.key in COLD_WORKLOADS and not p.cold_skip
            p.cold_lookups = [rng.randrange(count) for _ in range(min(20, cold_round))]
            try:
                p.run(self.root, wl, data, count, lookups)
            except Exception as e:  # a peer that fails is reported, not dropped
                self.fail(wl, p, e)
            if self.has_extra(p, wl):
                try:
                    p.run_extra(self.root, wl, data, count, lookups)
                except Exception as e:
                    self.fail(wl, p, e, extra=True)
        for rnd in range(sz.rounds):
            k = rnd % len(runnable)
            order = runnable[k:] + runnable[:k]
            sb.progress(f"  round {rnd + 1}/{sz.rounds}: {' / '.join(p.name for p in order)}")
            for p in order:
                count = self.count_for(p, wl)
                p.flip = rnd % 2 == 1
                for extra in (False, True):
                    if (wl.key, p.name + ("+extra" if extra else "")) in self.errors:
                        continue
                    if extra and not self.has_extra(p, wl):
                        continue
                    lookups = [rng.randrange(count) for _ in range(per_round)]
                    p.cold_lookups = [rng.randrange(count) for _ in range(cold_round)]
                    t0 = time.perf_counter()
                    try:
                        run = p.run_extra if extra else p.run
                        out = run(self.root, wl, data, count, lookups)
                    except Exception as e:
                        self.fail(wl, p, e, extra=extra)
                        continue
                    self.counts[(wl.key, p.name)] = count
                    for op, s in out.seconds.items():
                        self.seconds.setdefault((wl.key, op, p.name), []).append(s)
                    for op, lat in (("seek", out.seek_us), ("time lookup", out.time_us), *out.lat_us.items()):
                        if lat:
                            self.lat_rounds.setdefault((wl.key, op, p.name), []).append(lat)
                    for op, c in out.cpu.items():
                        self.cpu.setdefault((wl.key, op, p.name), []).append(c)
                    for op, m in out.rss.items():
                        self.rss.setdefault((wl.key, op, p.name), []).append(m)
                    self.facts.setdefault((wl.key, p.name), {}).update(out.facts)
                    what = " (group consume, time lookup, retention)" if extra else ""
                    sb.progress(f"    {p.name}{what}: {count:,} records, {time.perf_counter() - t0:.1f} s")
        self.make_rows(wl, data)
        sb.progress(f"workload {wl.key} done in {time.perf_counter() - t_wl:.0f} s")

    def fail(self, wl: Workload, p: Peer, e: BaseException, extra: bool = False) -> None:
        why = str(e) if isinstance(e, Skip) else f"{type(e).__name__}: {e}"
        self.errors[(wl.key, p.name + ("+extra" if extra else ""))] = why[:300]
        what = " (group consume, time lookup, retention)" if extra else ""
        sb.progress(f"    {p.name}{what} failed on workload {wl.key}: {why[:300]}")

    @staticmethod
    def has_extra(p: Peer, wl: Workload) -> bool:
        """Whether ``p`` runs EXTRA_OPS (``run_extra``) on ``wl``."""
        return wl.key in EXTRA_WORKLOADS and any(op in p.how for op in EXTRA_OPS)

    # rows --------------------------------------------------------------------------------------------

    def rate(self, wl: str, op: str, peer: str) -> float | None:
        """Records/s of an operation (the median round), None when it was not measured."""
        secs = self.seconds.get((wl, op, peer))
        if not secs:
            return None
        return self.op_count(wl, op, peer) / statistics.median(secs)

    def op_count(self, wl: str, op: str, peer: str) -> int:
        """Records an operation handled per round (litequeue's consume reads a smaller queue; a
        retention pass removes part of the records)."""
        count = self.counts[(wl, peer)]
        if op in ("consume", "consume (cold)"):
            return self.facts.get((wl, peer), {}).get("consume_records", count)
        if op == "retention":
            return self.facts.get((wl, peer), {}).get("retention_removed", count)
        return count

    def lat_median(self, wl: str, op: str, peer: str) -> float | None:
        rounds = self.lat_rounds.get((wl, op, peer))
        if not rounds:
            return None
        return statistics.median(statistics.median(r) for r in rounds)

    def make_rows(self, wl: Workload, data: Data) -> None:
        for op in OPS:
            if op in EXTRA_OPS and wl.key not in EXTRA_WORKLOADS:
                continue
            warm_op = COLD_OPS.get(op)
            if warm_op and wl.key not in COLD_WORKLOADS:
                continue
            base_rate = self.rate(wl.key, op, "logstore")
            base_us = self.lat_median(wl.key, op, "logstore")
            for p in self.peers:
                if op not in p.how and not (warm_op and warm_op in p.how):
                    continue
                rid = f"{wl.key}.{op.replace(' (cold)', '-cold').replace(' ', '-')}.{p.name}"
                key = p.name + ("+extra" if op in EXTRA_OPS else "")
                why = self.skipped.get(p.name) or self.errors.get((wl.key, key))
                if warm_op and p.cold_skip and not why:
                    self.rows.append(
                        Row(rid, wl.key, op, p.label, p.durability, None, None, None, None, None, p.cold_skip, "n/a")
                    )
                    continue
                measured = self.seconds.get((wl.key, op, p.name)) or self.lat_rounds.get((wl.key, op, p.name))
                if not why and not measured:
                    why = "not measured"
                if why:
                    verdict = "n/a" if p.name in self.skipped else "ERROR"
                    self.rows.append(
                        Row(rid, wl.key, op, p.label, p.durability, None, None, None, None, None, why, verdict)
                    )
                    continue
                count = self.op_count(wl.key, op, p.name)
                if not count:  # a retention pass that found nothing due
                    why = f"{op}: no records (nothing was due)"
                    self.rows.append(
                        Row(rid, wl.key, op, p.label, p.durability, None, None, None, None, None, why, "ERROR")
                    )
                    continue
                per_record = data.touched(count) / count
                if op in LATENCY_OPS:
                    rounds = self.lat_rounds[(wl.key, op, p.name)]
                    meds = [statistics.median(r) for r in rounds]
                    med = statistics.median(meds)
                    pooled = sorted(x for r in rounds for x in r)
                    vs = med / base_us if base_us else None
                    note = (
                        f"median of {len(rounds)} round medians of {len(rounds[0])} lookups, rounds "
                        f"{min(meds):.1f}-{max(meds):.1f} us; p99 {sb.percentile(pooled, 99):.1f} us; "
                        f"record range {count:,}"
                    )
                    if op == "time lookup" and self.facts.get((wl.key, p.name), {}).get("offset_for_time_us"):
                        oft = self.facts[(wl.key, p.name)]["offset_for_time_us"]
                        note += f"; PartitionLog.offset_for_time alone: {oft:.1f} us (median of the last round)"
                    extra = {
                        "round_medians_us": [round(x, 2) for x in meds],
                        "p90_us": sb.percentile(pooled, 90),
                        "p99_us": sb.percentile(pooled, 99),
                    }
                    self.rows.append(
                        Row(rid, wl.key, op, p.label, p.durability, count, 1e6 / med, None, med, vs, note, "", extra)
                    )
                    self.add_usage(self.rows[-1], (wl.key, op, p.name))
                    continue
                secs = self.seconds[(wl.key, op, p.name)]
                rate = count / statistics.median(secs)
                rates = sorted(count / s for s in secs)
                vs = base_rate / rate if base_rate else None
                note = f"median of {len(secs)}, rounds {rates[0]:,.0f}-{rates[-1]:,.0f} rec/s"
                if op == "retention":
                    held = self.counts[(wl.key, p.name)]
                    ms = sorted(x * 1000 for x in secs)
                    segs = self.facts[(wl.key, p.name)].get("retention_segments")
                    whole = f"; whole segments only: {segs} segments" if segs else ""
                    note = (
                        f"one pass removing {count:,} of {held:,} records (those older than the middle record's "
                        f"timestamp{whole}), {statistics.median(ms):.1f} ms (median of {len(ms)}, rounds "
                        f"{ms[0]:.1f}-{ms[-1]:.1f} ms)"
                    )
                elif count < data.n:
                    note += f"; the first {count:,} of the {data.n:,} records"
                if p.name == "raw-file":
                    mib = self.facts.get((wl.key, p.name), {}).get("mib")
                    note += f"; {mib} MiB per round, as records of {per_record:,.0f} B"
                self.rows.append(
                    Row(
                        rid,
                        wl.key,
                        op,
                        p.label,
                        p.durability,
                        count,
                        rate,
                        rate * per_record / 1e6,
                        1e6 / rate,
                        vs,
                        note,
                        "",
                        {"seconds": [round(s, 5) for s in secs], "bytes_per_record": per_record},
                    )
                )
                self.add_usage(self.rows[-1], (wl.key, op, p.name))

    def add_usage(self, row: Row, key: tuple[str, str, str]) -> None:
        """CPU % (median round) and peak RSS (highest round) of a row's timed parts; per round in its detail."""
        cpu, rss = self.cpu.get(key), self.rss.get(key)
        if cpu:
            row.cpu = 100 * statistics.median(cpu)
            row.extra["cpu_pct_rounds"] = [round(100 * c, 1) for c in cpu]
        if rss:
            row.peak_mib = max(pk for pk, _ in rss) / 1024
            row.grow_mib = max(0, max(pk - st for pk, st in rss)) / 1024
            row.extra["peak_rss_kib_rounds"] = [pk for pk, _ in rss]
            row.extra["start_rss_kib_rounds"] = [st for _, st in rss]
            row.extra["rss_process"] = "redis-server" if key[2].startswith("redis") else "bench"

    # baselines and targets ---------------------------------------------------------------------------

    def baselines(self) -> None:
        sb.progress("baselines: crc32c and lz4 on 1 MiB of sample records")
        data = self.data.get("a") or Data(self.events, 100, 20_000)
        buf = data.frame(MiB)
        secs = self.sizes.baseline_s

        def lz4c(b: bytes) -> bytes:  # logstore's frame settings: 64 KiB independent blocks, no checksums
            return lz4.frame.compress(
                b, block_size=lz4.frame.BLOCKSIZE_MAX64KB, block_linked=False, content_checksum=False
            )

        packed = lz4c(buf)
        self.results += [
            Result(
                "base.crc32c", "crc32c (crc32c package), 1 MiB", sb.throughput(lambda: crc32c(buf), MiB, secs), "MB/s"
            ),
            Result(
                "base.lz4c",
                "lz4 compress 1 MiB of workload a's records",
                sb.throughput(lambda: lz4c(buf), MiB, secs),
                "MB/s",
                note=f"ratio {len(buf) / len(packed):.2f}x, 64 KiB independent blocks (logstore's frame)",
            ),
            Result(
                "base.lz4d",
                "lz4 decompress to 1 MiB",
                sb.throughput(lambda: lz4.frame.decompress(packed), MiB, secs),
                "MB/s",
            ),
        ]
        for wl in WORKLOADS:
            for op, what in (("produce", "raw write+fsync, 1 MiB frames"), ("consume", "page-cache read of that file")):
                r = self.rate(wl.key, op, "raw-file")
                if r is None or wl.key not in self.data:
                    continue
                d = self.data[wl.key]
                count = self.counts[(wl.key, "raw-file")]
                self.results.append(
                    Result(f"base.{wl.key}.{'write' if op == 'produce' else 'read'}", f"{what} ({wl.key})",
                           r * d.touched(count) / count / 1e6, "MB/s",
                           note=f"median of {len(self.seconds[(wl.key, op, 'raw-file')])} rounds")
                )  # fmt: skip

    def targets(self) -> None:
        R = self.rate
        what_wl = "workload a"

        def judged(rid: str, what: str, value: float | None, unit: str, target: float, why_missing: str, note: str):
            tgt = f">= {target:,.0f}" if unit == "rec/s" else f">= {target:.2f}"
            if value is None:
                self.results.append(Result(rid, what, None, unit, tgt, note=why_missing, skipped="n/a"))
                return None
            r = Result(rid, what, value, unit, tgt, value >= target, note)
            self.results.append(r)
            return r

        def missing(wl: str, peer: str) -> str:
            return self.skipped.get(peer) or self.errors.get((wl, peer)) or "not measured"

        send, bulk = R("a", "produce", "logstore"), R("a", "bulk produce", "logstore")
        it, cols = R("a", "consume", "logstore"), R("a", "bulk consume", "logstore")
        judged("t.send", f"send() + flush, {what_wl}", send, "rec/s", TARGET_SEND_RPS, missing("a", "logstore"), "")
        sq = [(R("a", op, "sqlite3"), op) for op in ("produce", "bulk produce") if R("a", op, "sqlite3")]
        best = max(sq) if sq else None
        judged(
            "t.send/sqlite",
            "send() / DIY sqlite3's faster write path",
            send / best[0] if send and best else None,
            "x",
            TARGET_SEND_VS_SQLITE,
            missing("a", "sqlite3"),
            f"sqlite3 {best[1]} ({best[0]:,.0f} rec/s) was its faster path" if best else "",
        )
        judged("t.bulk", f"send_many(), {what_wl}", bulk, "rec/s", TARGET_BULK_RPS, missing("a", "logstore"), "")
        judged(
            "t.consume", f"for r in consumer, {what_wl}", it, "rec/s", TARGET_CONSUME_RPS, missing("a", "logstore"), ""
        )
        sr = R("a", "consume", "sqlite3")
        judged(
            "t.consume/sqlite",
            "consume / DIY sqlite3 fetchmany reads",
            it / sr if it and sr else None,
            "x",
            TARGET_CONSUME_VS_SQLITE,
            missing("a", "sqlite3"),
            f"sqlite3 {sr:,.0f} rec/s" if sr else "",
        )
        judged(
            "t.columns", f"poll_columns(), {what_wl}", cols, "rec/s", TARGET_COLUMNS_RPS, missing("a", "logstore"), ""
        )
        for op, name, what in (
            ("produce", "write", "16 KiB send() MB/s / raw write+fsync MB/s (c)"),
            ("consume", "read", "16 KiB consume MB/s / page-cache read MB/s (c)"),
        ):
            ls = self.seconds.get(("c", op, "logstore"))
            raw = self.seconds.get(("c", op, "raw-file"))
            value = note = None
            if ls and raw:
                # Same records per second as the same bytes per second: the raw line is in records of c.
                lc, rc = self.counts[("c", "logstore")], self.counts[("c", "raw-file")]
                per_round = sorted((lc / a) / (rc / b) for a, b in zip(ls, raw, strict=False))
                value = (lc / statistics.median(ls)) / (rc / statistics.median(raw))
                bulk_op = "bulk produce" if op == "produce" else "bulk consume"
                bulk_ratio = (R("c", bulk_op, "logstore") or 0) / (rc / statistics.median(raw))
                note = (
                    f"ratio of the medians; per round {per_round[0]:.2f}-{per_round[-1]:.2f} (raw measured in the "
                    f"same round); {'send_many' if op == 'produce' else 'poll_columns'} reaches {bulk_ratio:.2f}"
                )
            judged(f"t.16k.{name}", what, value, "x", TARGET_RAW_SHARE, missing("c", "raw-file"), note or "")
        for peer, target in (
            ("redis-everysec", TARGET_VS_REDIS),
            ("redis-always", TARGET_VS_REDIS),
            ("pq-sqlite", TARGET_VS_PERSIST_QUEUE),
            ("pq-file", TARGET_VS_PERSIST_QUEUE),
        ):
            pr = R("a", "produce", peer)
            label = next((p.label for p in self.peers if p.name == peer), peer)
            judged(
                f"t.send/{peer}",
                f"send() / {label} produce",
                send / pr if send and pr else None,
                "x",
                target,
                missing("a", peer),
                f"{label}: {pr:,.0f} rec/s on the first {self.counts[('a', peer)]:,} records" if pr else "",
            )

    # profiles ----------------------------------------------------------------------------------------

    def profile_misses(self) -> None:
        if not self.profiles_on:
            return
        share = self.sizes.profile_share
        missed = {r.id for r in self.results if r.ok is False}
        plans: list[tuple[str, str, str, Callable[[str, Workload, Data, int], None]]] = []
        if missed & {"t.send", "t.send/sqlite", "t.send/redis-everysec", "t.send/redis-always"}:
            plans.append(("a.produce", "a", "send() + flush (main thread only)", self._prof_send))
        if "t.bulk" in missed:
            plans.append(("a.bulk-produce", "a", "send_many() (main thread only)", self._prof_bulk))
        if missed & {"t.consume", "t.consume/sqlite"}:
            plans.append(("a.consume", "a", "for r in consumer", self._prof_iter))
        if "t.columns" in missed:
            plans.append(("a.bulk-consume", "a", "poll_columns()", self._prof_columns))
        if "t.16k.write" in missed:
            plans.append(("c.produce", "c", "send() + flush of 16 KiB values (main thread only)", self._prof_send))
        if "t.16k.read" in missed:
            plans.append(("c.consume", "c", "for r in consumer, 16 KiB values", self._prof_iter))
        for key, wlk, title, fn in plans:
            wl = next(w for w in WORKLOADS if w.key == wlk)
            data = self.data.get(wlk)
            if data is None:
                continue
            count = max(1000, int(data.n * share))
            sb.progress(f"profiling {key}: {title}, {count:,} records")
            self.profiles[key] = {"title": f"{title}, {count:,} records", **fn(self.root, wl, data, count)}

    @staticmethod
    def _store_with_data(root: str, wl: Workload, data: Data, count: int) -> LogStore:
        path = fresh(root, "prof")
        store = LogStore(path)
        store.create_topic(TOPIC, PARTITIONS)
        with Producer(store, compression_type=wl.codec) as prod:
            prod.send_many(TOPIC, data.vals[:count], data.keys[:count])
        return store

    def _prof_send(self, root: str, wl: Workload, data: Data, count: int) -> dict[str, Any]:
        path = fresh(root, "prof")
        with LogStore(path) as store:
            store.create_topic(TOPIC, PARTITIONS)
            with Producer(store, compression_type=wl.codec) as prod:
                send = prod.send

                def work() -> None:
                    for v, k in zip(data.vals[:count], data.keys[:count], strict=True):
                        send(TOPIC, v, k)
                    prod.flush()

                prof = sb.profile(work, top=10)
        shutil.rmtree(path, ignore_errors=True)
        return prof

    def _prof_bulk(self, root: str, wl: Workload, data: Data, count: int) -> dict[str, Any]:
        path = fresh(root, "prof")
        with LogStore(path) as store:
            store.create_topic(TOPIC, PARTITIONS)
            with Producer(store, compression_type=wl.codec) as prod:
                prof = sb.profile(lambda: prod.send_many(TOPIC, data.vals[:count], data.keys[:count]), top=10)
        shutil.rmtree(path, ignore_errors=True)
        return prof

    def _prof_iter(self, root: str, wl: Workload, data: Data, count: int) -> dict[str, Any]:
        store = self._store_with_data(root, wl, data, count)
        try:
            return sb.profile(lambda: LogstorePeer._iterate(store, count, data.touched(count)), top=10)
        finally:
            store.close()
            shutil.rmtree(os.path.join(root, "prof"), ignore_errors=True)

    def _prof_columns(self, root: str, wl: Workload, data: Data, count: int) -> dict[str, Any]:
        store = self._store_with_data(root, wl, data, count)
        try:
            return sb.profile(lambda: LogstorePeer._columns(store, count, data.touched(count)), top=10)
        finally:
            store.close()
            shutil.rmtree(os.path.join(root, "prof"), ignore_errors=True)

    # report ------------------------------------------------------------------------------------------

    def legend(self) -> str:
        lines = ["peers (durability; what each operation is):"]
        for p in self.peers:
            lines.append(f"  {p.label} [{p.name}]: {p.durability_long}")
            if p.name in self.skipped:
                lines.append(f"    SKIPPED: {self.skipped[p.name]}")
            for op, how in p.how.items():
                lines.append(f"    {op}: {how}")
        lines.append(
            "  logstore/peer: logstore's records/s over the peer's (seek: the peer's median us over logstore's); "
            "> 1 means logstore is faster"
        )
        lines.append(
            "  CPU%: CPU time / wall time of the timed part (median round; 100 = one core): the bench process "
            "(time.process_time, all threads), plus for Redis the redis-server's utime + stime (/proc/<pid>/stat)"
        )
        lines.append(
            "  RSS MiB: peak resident set (VmHWM, reset before the timed part; highest round) of the process "
            "doing the work: the bench process (it also holds the workload's records), for Redis the "
            "redis-server; +MiB: that peak minus the process's RSS at the start of the timed part"
        )
        lines.append(
            "  (cold): workload a, before the timed part every file the peer reads is evicted from the page "
            "cache (fsync + posix_fadvise DONTNEED per file): consume once, on a store / connection opened "
            "again; seek and time lookup before every lookup (the partition's files for logstore, the db's "
            "for sqlite3; without the fsync, outside the timing), on fresh consumers / connection; memory the "
            "process maps (logstore's indexes, sqlite's -shm) or caches itself (sqlite's page cache) stays"
        )
        return "\n".join(lines)

    def row_notes(self) -> str:
        lines = ["notes:"]
        for r in self.rows:
            if r.note:
                lines.append(f"  {r.id}: {r.note}")
        for (wl, peer), facts in sorted(self.facts.items()):
            shown = {k: v for k, v in facts.items() if v is not None}
            if shown:
                lines.append(f"  {wl}.{peer} facts: {', '.join(f'{k}={v}' for k, v in shown.items())}")
        return "\n".join(lines)


# --- plots --------------------------------------------------------------------------------------


def plots(bench: Bench, stem: str) -> list[str]:
    """Two PNGs beside the results JSON; returns their paths ([] without matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        sb.progress(f"no plots: matplotlib is not installed ({e}); pip install -e '.[bench]'")
        return []
    out = []
    peers = [p for p in bench.peers if p.name not in bench.skipped]
    colors = {p.name: plt.get_cmap("tab10")(i % 10) for i, p in enumerate(bench.peers)}
    ops = [op for op in OPS if op not in LATENCY_OPS]
    # 1. workload a: records/s by peer and operation (log scale)
    fig, ax = plt.subplots(figsize=(11, 5.5))
    width = 0.8 / max(1, len(peers))
    for j, p in enumerate(peers):
        xs, ys = [], []
        for i, op in enumerate(ops):
            r = bench.rate("a", op, p.name) if op in p.how else None
            if r:
                xs.append(i + (j - (len(peers) - 1) / 2) * width)
                ys.append(r)
        if xs:
            ax.bar(xs, ys, width, label=f"{p.label}: {p.durability}", color=colors[p.name])
    ax.set_yscale("log")
    ax.set_xticks(range(len(ops)), ops)
    ax.set_ylabel("records/s (log scale)")
    n = bench.sizes.records["a"]
    ax.set_title(f"Workload a: {n:,} records of 100 B values + 10 B keys (slow peers on a prefix)")
    ax.grid(axis="y", which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    out.append(sb.save_figure(fig, f"{stem}-throughput-a.png"))
    # 2. MB/s against value size, produce and consume
    fig, axes = plt.subplots(1, 2, figsize=(12, 5), sharey=True)
    sizes = {w.key: w.value_bytes for w in WORKLOADS if w.key in bench.data}
    for ax, op, bulk in ((axes[0], "produce", "bulk produce"), (axes[1], "consume", "bulk consume")):
        for p in peers:
            for o, style in ((op, "-"), (bulk, "--")):
                if o not in p.how or (o == bulk and p.name != "logstore"):
                    continue
                pts = []
                for wk, vb in sizes.items():
                    r = bench.rate(wk, o, p.name)
                    if r:
                        d = bench.data[wk]
                        c = bench.op_count(wk, o, p.name)
                        pts.append((vb, r * d.touched(c) / c / 1e6))
                if pts:
                    xs, ys = zip(*pts, strict=True)
                    label = p.label
                    if p.name == "logstore":
                        label += " bulk (send_many / poll_columns)" if o == bulk else " (send() / iteration)"
                    ax.plot(xs, ys, style, marker="o", color=colors[p.name], label=label)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(list(sizes.values()), [f"{v:,} B" for v in sizes.values()])
        ax.set_xlabel("value size (10 B keys)")
        ax.set_title(f"{op}: MB/s of key + value")
        ax.grid(which="both", alpha=0.3)
    axes[0].set_ylabel("MB/s (log scale)")
    axes[1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    out.append(sb.save_figure(fig, f"{stem}-value-size.png"))
    return out


# --- main ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke run: 50k/20k/2k records, 1 round, under a minute")
    ap.add_argument("--dir", help="directory to create the bench files in (default: the system temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the bench directory afterwards")
    ap.add_argument("--profile", action=argparse.BooleanOptionalAction, default=None, help="profile missed targets")
    ap.add_argument("--workloads", default="a,b,c", help="comma-separated subset of a,b,c")
    ap.add_argument("--peers", help="comma-separated subset of the peers' names (logstore always runs)")
    ap.add_argument("--out", help="results JSON path (default bench/results/<date>-peers[-quick].json)")
    args = ap.parse_args(argv)

    sizes = QUICK if args.quick else FULL
    profiles_on = (not args.quick) if args.profile is None else args.profile
    chosen = [w for w in WORKLOADS if w.key in set(args.workloads.split(","))]
    only = set(args.peers.split(",")) if args.peers else set()
    root = sb.make_root("logstore-peers-", args.dir)
    mode = "quick" if args.quick else "full"
    started = time.time()
    t_start = time.perf_counter()
    info = sb.machine(root)
    bench = Bench(root, sizes, args.quick, profiles_on, only)
    versions = {
        "sqlite": sqlite3.sqlite_version,
        **{d: sb_version(d) for d in ("persist-queue", "litequeue", "redis", "hiredis", "kafka-python", "matplotlib")},
    }
    redis_server = next((p.version for p in bench.peers if isinstance(p, RedisPeer) and p.version), "")
    header = sb.run_header(
        "peers",
        mode,
        info,
        root,
        f"peers: sqlite {versions['sqlite']}, persist-queue {versions['persist-queue']}, "
        f"litequeue {versions['litequeue']}, redis-py {versions['redis']} (hiredis {versions['hiredis']}), "
        f"{redis_server or 'redis-server: not found'}, kafka-python {versions['kafka-python']}",
        f"{sizes.rounds} round(s) per line after an untimed warm-up",
        f"reads: {cache_note()}",
    )
    sb.progress(header.replace("\n", "\n    "))
    try:
        for wl in chosen:
            bench.workload(wl)
        bench.baselines()
        bench.targets()
        bench.profile_misses()
    finally:
        sb.remove_root(root, args.keep)
    elapsed = time.perf_counter() - t_start

    body = f"{header}\n\n{peer_table(bench.rows)}\n\n{bench.row_notes()}\n\n{bench.legend()}\n\ntargets and baselines:"
    if args.quick:
        body += " (quick mode: small counts, one round; indicative only)"
    load_end = sb.print_report(body, bench.results, elapsed, info["load_average_start"], bench.profiles)
    machine = info | {"peer_versions": versions, "redis_server": redis_server, "page_cache": cache_note()}
    doc = sb.run_doc("bench/peers_bench.py", mode, started, elapsed, machine, load_end, sizes.__dict__)
    doc |= {
        "workloads": [w.__dict__ | {"records": sizes.records[w.key]} for w in chosen],
        "peers": [
            {
                "name": p.name,
                "label": p.label,
                "durability": p.durability_long,
                "operations": p.how,
                "skipped": bench.skipped.get(p.name, ""),
                "errors": {wl: e for (wl, name), e in bench.errors.items() if name == p.name},
            }
            for p in bench.peers
        ],
        "rows": [
            {
                "id": r.id,
                "workload": r.workload,
                "op": r.op,
                "peer": r.peer,
                "durability": r.durability,
                "records": r.records,
                "records_per_s": r.rate,
                "mb_per_s": r.mbs,
                "us_per_record": r.us,
                "logstore_over_peer": r.vs,
                "cpu_pct": r.cpu,
                "peak_rss_mib": r.peak_mib,
                "rss_growth_mib": r.grow_mib,
                "note": r.note,
                "skipped": r.skipped,
                **({"detail": r.extra} if r.extra else {}),
            }
            for r in bench.rows
        ],
        "results": sb.result_rows(bench.results),
        "profiles": bench.profiles,
    }
    out = args.out or sb.default_out("-peers", args.quick)
    stem = out[:-5] if out.endswith(".json") else out
    doc["plots"] = [sb.shown_path(p) for p in plots(bench, stem)]
    sb.write_results(out, doc)
    return 0


def cache_note() -> str:
    """Which reads are warm and which cold, and how the cold ones are made."""
    knob = "/proc/sys/vm/drop_caches"
    writable = os.path.exists(knob) and os.access(knob, os.W_OK)
    return (
        "warm page cache (every file read was just written) except the '(cold)' lines of workload a: before "
        "them the bench evicts each file the peer reads (fsync + posix_fadvise DONTNEED per file; consume: "
        "once, the store reopened; seek / time lookup: before every lookup, outside the timing). "
        f"{knob} ({'writable here' if writable else 'not writable here'}) is never written: it would empty "
        "the whole machine's page cache. Redis keeps its data in memory: no cold lines"
    )


def sb_version(dist: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


if __name__ == "__main__":
    sys.exit(main())
