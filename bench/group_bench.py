"""Consumer-group benchmark: rebalance time across real processes, group consumption throughput
(4 member processes against 1), and commit latency.

Every member is a separate process (this script run with ``--worker member``) sharing the store
directory, with the group settings at their defaults (session_timeout_ms 45000,
heartbeat_interval_ms 3000, max_poll_interval_ms 300000, auto-commit every 5 s, roundrobin). The
members report what they do as stdout lines stamped with ``time.monotonic()`` (CLOCK_MONOTONIC,
one clock for every process on a Linux machine); the bench reads them and the group's
``groups/<group>/state.json``.

Lines (targets from the issue):
  1.rebalance  a 4th member process joins a group of 3 that are consuming a 32-partition topic
               which a feeder process keeps appending to (an 8-record batch to 8 of the partitions
               every 5 ms; the topic is written without fsync, so the feeder's data does not queue
               in front of the group's fsyncs): from the 4th process's first poll (its join) to
               the moment every one of the 4 members has delivered a record of the new
               generation; median of 5 rounds (quick: 2)                             <= 1000 ms
  1.max        the slowest of those rounds                                           (info)
  1.leave      the other half of each round: the oldest of the 4 members closes; from its close()
               to every remaining member's first record of the next generation      (info)
  1.busy       as 1.rebalance, but while all 3 members are reading a backlog: 100k records
               (quick: 60k) are appended to every partition at once, the 4th member (started
               beforehand, waiting for a line on stdin) joins 100 ms later; 3 rounds (quick: 1)
                                                                                     <= 1000 ms
  2.one        group consumption, 1 member process, 8-partition topic of 4M records (quick: 400k),
               100-byte values with 10-byte keys (``data/events.jsonl``), lz4, written by
               ``Producer.send_many(..., partition=p)``, the same count to each partition;
               ``for r in consumer`` touching len(r.value): records/s from the member taking up
               its assignment to its last record
  2.four       the same with 4 member processes in one group (2 partitions each)
  2.ratio      2.four / 2.one (the machine's os.cpu_count() is in the header)       >= 1.7
  3.commit     one member owning all 8 partitions: poll one record, ``consumer.commit()`` (every
               partition's position, fsynced), timed with perf_counter; 2000 (quick: 300) commits:
               median, and p99 below it                                              <= 2000 us
  3.record     the same with ``consumer.commit(record)`` (one partition), alternating with 3.commit
                                                                                     <= 2000 us
  3.floor      pwrite of a commit-sized line + fdatasync in the group directory (the disk's floor)
                                                                                     (info)

How the processes are run: 1 starts three members (plus the feeder), waits until the group is
Stable with them and each has delivered a record of that generation, then starts the 4th; once all
four have their first record, the oldest member closes (1.leave) and the round repeats with a new
4th member. 2 starts its members, waits until each has imported everything and opened its
consumer, then tells them all to start at once (a line on stdin): their joins come within a few ms
of each other and the group goes through a rebalance or two before it settles; the clock starts
when the first member takes up the final generation (the records read before that, usually a
handful, are counted apart). Each member stops when every partition it owns is read to its end
(its ``on_partition_eof`` calls), reports its count, value bytes and CPU time, and stays in the
group until all are done (so none leaves while others read); the counts must add up to the
topic's. Each run uses a new group (so it starts at offset 0); 1 and 4 members take turns, 3 runs
each (quick: 2). 3 runs in the bench process itself.

Run: ``python bench/group_bench.py`` (about 40 s on 2 cores) or ``--quick`` (about 15 s).
Prints a table to stdout (progress to stderr) and writes ``bench/results/<date>-groups[-quick].json``.
Child processes are killed and the bench directory removed at the end, also on errors (``--keep``
keeps the directory, ``--dir`` puts it elsewhere).
"""

from __future__ import annotations

import argparse
import json
import os
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

import consumer_bench as cb  # noqa: E402  (the Result with a "not measured" state)
import storage_bench as sb  # noqa: E402  (machine details, table, percentile, cProfile helpers)

from logstore import Consumer, LogStore, Producer, TopicPartition  # noqa: E402
from logstore.records.batch import build_batch  # noqa: E402

LONG_MAX = 2**63 - 1
NO_FSYNC = {"flush.messages": LONG_MAX}

TARGET_REBALANCE_MS = 1000.0
TARGET_RATIO = 1.7
TARGET_COMMIT_US = 2000.0

RB_PARTITIONS = 32
RB_MEMBERS = 4
RB_PREFILL = 1000  # records per partition of the rebalance topic before the members start
FEED_TICK_MS = 5  # the feeder appends an 8-record batch to FEED_PER_TICK partitions every tick
FEED_PER_TICK = 8
BURST_BATCH = 4000  # records per prebuilt batch of a burst (1.busy)
BURST_HEAD_START_S = 0.1  # 1.busy: the 4th member joins this long after a burst was appended
TP_PARTITIONS = 8
TP_MEMBERS = 4
WAIT_S = 60.0  # longest wait for any one step of a child process


@dataclass(frozen=True)
class Sizes:
    rebalance_rounds: int  # 1: joins (and leaves) measured while the members keep up with the feeder
    busy_rounds: int  # 1.busy: joins measured while the members read a backlog
    burst_per_partition: int  # 1.busy: records appended to each of the 32 partitions before a join
    records: int  # 2: records in the 8-partition topic
    tput_rounds: int  # 2: 1 member and 4 members take turns, this many runs each
    commits: int  # 3: timed commits of each kind


FULL = Sizes(5, 3, 100_000, 4_000_000, 3, 2000)
QUICK = Sizes(2, 1, 60_000, 400_000, 2, 300)

Result = cb.Result
progress = sb.progress
percentile = sb.percentile


# --- worker processes (``group_bench.py --worker KIND ...``) --------------------------------------


def worker_member(store_path: str, topic: str, group: str, name: str, mode: str) -> None:
    """A group member. ``mode`` "tail": read for ever (until "exit" on stdin or stdin closes);
    "gated": the same from a "go" line on stdin on; "drain": from "go" on, read until every
    partition it owns is at its end, report, then wait for "exit" (in the group, not polling).
    Prints, each stamped with time.monotonic():

        READY t cpu                   consumer created, no poll yet (cpu: process_time())
        JOIN t                        its first poll starts (that is when it joins)
        ASSIGN gen t n bytes cpu p,p  on_assign at t: n records / value bytes delivered before it
                                      (printed with the FIRST line: the generation is read then, as
                                      it may be set only once on_assign has returned)
        REVOKE gen t n                on_revoke
        FIRST gen t part offset lag   the first record delivered after an ASSIGN, and the records
                                      after it in its partition then
        DONE gen t n bytes cpu        drain: every owned partition read to its end
        LEAVE t / CLOSED t            around close()
    """
    out = sys.stdout
    lock = threading.Lock()

    def emit(*parts: Any) -> None:
        with lock:
            out.write(" ".join(map(str, parts)) + "\n")
            out.flush()

    store = LogStore(store_path)
    n = nbytes = 0
    attn = pending_first = stop = False
    assign_info: tuple[Any, ...] = ()
    assigned: set[TopicPartition] = set()
    at_end: set[TopicPartition] = set()
    go = threading.Event()
    finished = threading.Event()  # drain: read to the end (or told to exit)
    leave = threading.Event()  # told to exit, or stdin closed
    consumer: Consumer | None = None

    def on_assign(c: Consumer, parts: list[TopicPartition]) -> None:
        nonlocal attn, pending_first, assign_info
        t = time.monotonic()
        assigned.clear()
        assigned.update(parts)
        at_end.clear()
        plist = ",".join(str(tp.partition) for tp in sorted(parts)) or "-"
        assign_info = (f"{t:.6f}", n, nbytes, f"{time.process_time():.4f}", plist)
        pending_first = attn = True

    def assigned_now(gen: int) -> None:
        nonlocal pending_first
        pending_first = False
        emit("ASSIGN", gen, *assign_info)

    def on_revoke(c: Consumer, parts: list[TopicPartition]) -> None:
        emit("REVOKE", c.generation, f"{time.monotonic():.6f}", n)

    def on_eof(tp: TopicPartition, offset: int) -> None:
        if mode != "drain" or tp not in assigned or tp in at_end:
            return
        at_end.add(tp)
        if at_end >= assigned and not finished.is_set():
            t = time.monotonic()
            assert consumer is not None
            if pending_first:  # nothing delivered in this generation
                assigned_now(consumer.generation)
            emit("DONE", consumer.generation, f"{t:.6f}", n, nbytes, f"{time.process_time():.4f}")
            finished.set()
            if consumer is not None:
                consumer.wakeup()  # ends the iteration, which is waiting for data now

    def read_stdin() -> None:
        nonlocal stop, attn
        for line in sys.stdin:
            cmd = line.strip()
            if cmd == "go":
                go.set()
            elif cmd == "exit":
                break
        stop = True  # "exit", or stdin closed (the bench is gone): leave
        attn = True
        leave.set()
        go.set()
        finished.set()
        if consumer is not None:
            consumer.wakeup()

    consumer = Consumer(
        store,
        topic,
        group_id=group,
        client_id=name,
        on_assign=on_assign,
        on_revoke=on_revoke,
        on_partition_eof=on_eof,
    )
    threading.Thread(target=read_stdin, daemon=True).start()
    emit("READY", f"{time.monotonic():.6f}", f"{time.process_time():.4f}")
    if mode != "tail":
        go.wait()
    try:
        if not stop:
            emit("JOIN", f"{time.monotonic():.6f}")
        while not stop and not (mode == "drain" and finished.is_set()):
            for r in consumer:
                if attn:  # rare: cleared before stop is read, so a stop set meanwhile is seen next
                    attn = False
                    if pending_first:
                        t = time.monotonic()
                        gen = consumer.generation
                        assigned_now(gen)
                        tp = TopicPartition(r.topic, r.partition)
                        lag = consumer.end_offsets([tp])[tp] - r.offset - 1
                        emit("FIRST", gen, f"{t:.6f}", r.partition, r.offset, lag)
                    if stop:
                        break
                n += 1
                nbytes += len(r.value)
        leave.wait()  # drain: stay in the group, not polling, until every member is done
        emit("LEAVE", f"{time.monotonic():.6f}")
    finally:
        consumer.close()
        emit("CLOSED", f"{time.monotonic():.6f}")
        store.close()


def worker_feed(store_path: str, topic: str) -> None:
    """Keep appending to ``topic``: every FEED_TICK_MS an 8-record lz4 batch (prebuilt, so the
    feeder costs little CPU: the logs assign the offsets) to each of the next FEED_PER_TICK
    partitions in turn. Prints READY, then FED count at "exit" (or when stdin closes)."""
    events = sb.Events(sb.EVENTS)
    stop = threading.Event()

    def read_stdin() -> None:
        for line in sys.stdin:
            if line.strip() == "exit":
                break
        stop.set()

    threading.Thread(target=read_stdin, daemon=True).start()
    with LogStore(store_path) as store:
        count = store.partition_count(topic)
        logs = [store.partition(topic, p) for p in range(count)]
        batch = build_batch(events.values[:8], events.keys[:8], compression_type="lz4")
        print(f"READY {time.monotonic():.6f}", flush=True)
        fed = 0
        turn = 0
        tick = FEED_TICK_MS / 1000.0
        nxt = time.monotonic()
        while not stop.is_set():
            for _ in range(FEED_PER_TICK):
                logs[turn].append(batch, validate=False)
                turn = (turn + 1) % count
                fed += 8
            nxt += tick
            stop.wait(max(0.0, nxt - time.monotonic()))
        print(f"FED {fed}", flush=True)


def worker_main(argv: list[str]) -> int:
    kind, *args = argv
    if kind == "member":
        worker_member(*args)
    elif kind == "feed":
        worker_feed(*args)
    else:
        raise SystemExit(f"unknown worker {kind!r}")
    return 0


# --- child processes, seen from the bench ---------------------------------------------------------


class Child:
    """One worker process: its stdout lines are parsed by a reader thread into ``lines``
    (kind, fields); stderr goes to a file, shown when it fails."""

    def __init__(self, kids: Children, name: str, args: list[str]) -> None:
        self.name = name
        self.cond = kids.cond
        self.err_path = os.path.join(kids.log_dir, f"{name}.err")
        self.lines: list[tuple[str, list[str]]] = []
        self.expect_exit = False
        with open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), "--worker", *args],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                cwd=REPO,
                text=True,
                bufsize=1,
            )
        self._reader = threading.Thread(target=self._read, name=f"read-{name}", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            parts = line.split()
            if parts:
                with self.cond:
                    self.lines.append((parts[0], parts[1:]))
                    self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def send(self, cmd: str) -> None:
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(cmd + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            pass  # it is gone already

    def get(self, kind: str) -> list[list[str]]:
        with self.cond:
            return [f for k, f in self.lines if k == kind]

    def first(self, kind: str, pred: Callable[[list[str]], bool] = lambda f: True) -> list[str] | None:
        return next((f for f in self.get(kind) if pred(f)), None)

    def stderr_tail(self, chars: int = 1500) -> str:
        try:
            with open(self.err_path, encoding="utf-8", errors="replace") as f:
                return f.read()[-chars:].strip()
        except OSError:
            return ""

    def stop(self, timeout: float = 20.0) -> int | None:
        """Ask it to exit (close its consumer, leave the group) and wait; kill it if it does not."""
        self.expect_exit = True
        self.send("exit")
        try:
            self.proc.stdin.close()  # type: ignore[union-attr]
        except OSError:
            pass
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise RuntimeError(f"{self.name} did not exit within {timeout:.0f} s of 'exit'; killed it") from None


class Children:
    """Every process the bench starts: waited on with one condition, all killed at the end."""

    def __init__(self, log_dir: str) -> None:
        self.log_dir = log_dir
        os.makedirs(log_dir, exist_ok=True)
        self.cond = threading.Condition()
        self.all: list[Child] = []

    def spawn(self, name: str, *args: str) -> Child:
        child = Child(self, name, list(args))
        self.all.append(child)
        return child

    def check_alive(self) -> None:
        for c in self.all:
            rc = c.proc.poll()
            if rc is not None and not c.expect_exit:
                c.expect_exit = True  # reported once
                raise RuntimeError(f"{c.name} exited with code {rc} unexpectedly: {c.stderr_tail() or '(no stderr)'}")

    def wait(self, what: str, pred: Callable[[], Any], timeout: float = WAIT_S) -> Any:
        """Wait until ``pred()`` is truthy (re-checked on every line from a child and every 20 ms,
        as it may read files); returns its value. Raises RuntimeError on timeout or when a child
        that should be running has exited."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                got = pred()
                if got:
                    return got
                self.check_alive()
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
                self.cond.wait(min(left, 0.02))

    def kill_all(self) -> None:
        for c in self.all:
            if c.proc.poll() is None:
                try:
                    c.proc.send_signal(signal.SIGKILL)
                except OSError:
                    pass
        for c in self.all:
            try:
                c.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
            c._reader.join(5)  # it reads to the end of the pipe, which a dead process has closed
            for f in (c.proc.stdin, c.proc.stdout):
                try:
                    if f is not None:
                        f.close()
                except OSError:
                    pass


def read_state(store_path: str, group: str) -> dict[str, Any] | None:
    try:
        with open(os.path.join(store_path, "groups", group, "state.json"), encoding="utf-8") as f:
            return json.load(f)
    except (FileNotFoundError, ValueError):
        return None


def member_name(member_id: str) -> str:
    """The client_id part of a member id (``<client_id>-<uuid4>``)."""
    return member_id[: -(36 + 1)]


class RebalanceRun:
    """The processes of 1: a feeder appending to topic "rb" and the members of group
    "rebalance", which the bench adds and removes one at a time."""

    group = "rebalance"
    topic = "rb"

    def __init__(self, bench: Bench) -> None:
        self.bench = bench
        self.kids = bench.kids
        self.store = bench.store
        self.path = bench.store.path
        self.serial = 0
        self.members: list[Child] = []
        self.state: dict[str, Any] = {}

    def spawn(self, mode: str) -> Child:
        self.serial += 1
        name = f"rb{self.serial}"
        return self.kids.spawn(name, "member", self.path, self.topic, self.group, name, mode)

    def settled(self, members: list[Child], after_gen: int) -> dict[str, Any] | None:
        """The group's state when it is Stable at a generation > ``after_gen`` with exactly
        ``members``, each of which has delivered a record of that generation; else None."""
        st = read_state(self.path, self.group)
        if st is None or st["state"] != "Stable" or st["generation"] <= after_gen:
            return None
        if sorted(member_name(m) for m in st["members"]) != sorted(c.name for c in members):
            return None
        g = str(st["generation"])
        if all(c.first("FIRST", lambda f, g=g: f[0] == g) for c in members):
            return st
        return None

    def start(self) -> None:
        self.bench.produce_even(self.topic, RB_PARTITIONS, RB_PREFILL, NO_FSYNC)
        feeder = self.kids.spawn("feeder", "feed", self.path, self.topic)
        self.kids.wait("the feeder", lambda: feeder.get("READY"))
        self.members = [self.spawn("tail") for _ in range(RB_MEMBERS - 1)]
        self.state = self.kids.wait(
            f"{len(self.members)} members stable and consuming", lambda: self.settled(self.members, -1)
        )

    def join(self, new: Child, label: str, gated: bool = False, burst: int = 0) -> dict[str, Any]:
        """``new`` joins (told to by a line on stdin when ``gated``); returns the times of the
        rebalance from its join, in ms."""
        gen0 = self.state["generation"]
        if gated:
            new.send("go")
        join = float(self.kids.wait(f"{new.name} to start its first poll", lambda: new.first("JOIN"))[0])
        old, everyone = self.members, [*self.members, new]
        st = self.kids.wait(
            f"{label}: {len(everyone)} members at a new generation", lambda: self.settled(everyone, gen0)
        )
        g, g0 = str(st["generation"]), str(gen0)
        firsts = {c.name: c.first("FIRST", lambda f, g=g: f[0] == g) for c in everyone}
        assigns = {c.name: c.first("ASSIGN", lambda f, g=g: f[0] == g) for c in everyone}
        revokes = {c.name: c.first("REVOKE", lambda f, g=g0: f[0] == g) for c in old}
        if any(f is None for f in revokes.values()):
            raise AssertionError(f"{label}: not every old member gave up its partitions of generation {g0}: {revokes}")

        def ms(fields: dict[str, list[str] | None]) -> dict[str, float]:
            return {k: round((float(f[1]) - join) * 1000, 3) for k, f in fields.items() if f is not None}

        first_ms, assign_ms, revoke_ms = ms(firsts), ms(assigns), ms(revokes)
        rec = {
            "generation_before": gen0,
            "generation": st["generation"],
            "ms": max(first_ms.values()),
            "last_revoke_ms": max(revoke_ms.values()),
            "last_assign_ms": max(assign_ms.values()),
            "first_record_ms": first_ms,
            "assign_ms": assign_ms,
            "revoke_ms": revoke_ms,
            "lag_at_first": {k: int(f[4]) for k, f in firsts.items() if f is not None},
            "burst_records": burst,
        }
        progress(
            f"  {label}: join -> all {len(everyone)} consuming generation {g}: {rec['ms']:.0f} ms (last revoke "
            f"{rec['last_revoke_ms']:.0f} ms, last assign {rec['last_assign_ms']:.0f} ms)"
        )
        self.members, self.state = everyone, st
        return rec

    def leave(self, label: str) -> dict[str, Any]:
        """The oldest member closes; returns the time from its close() to the last other member's
        first record of the next generation, in ms."""
        leaving = self.members[0]
        rest = self.members[1:]
        gen0 = self.state["generation"]
        leaving.expect_exit = True
        leaving.send("exit")
        left = float(self.kids.wait(f"{leaving.name} to close", lambda: leaving.first("LEAVE"))[0])
        st = self.kids.wait(f"{label}: {len(rest)} members after a leave", lambda: self.settled(rest, gen0))
        g = str(st["generation"])
        firsts = [float(c.first("FIRST", lambda f, g=g: f[0] == g)[1]) for c in rest]  # type: ignore[index]
        leaving.stop()
        self.members, self.state = rest, st
        return {"generation": st["generation"], "ms": (max(firsts) - left) * 1000}

    def burst(self, per_partition: int) -> int:
        """Append ``per_partition`` records to every partition, a prebuilt batch to each partition
        in turn; returns the records appended."""
        ev = self.bench.events
        vals, keys = ev.columns(BURST_BATCH)
        batch = build_batch(vals[:BURST_BATCH], keys[:BURST_BATCH], compression_type="lz4")
        logs = [self.store.partition(self.topic, p) for p in range(RB_PARTITIONS)]
        per = max(1, per_partition // BURST_BATCH)
        for _ in range(per):
            for log in logs:
                log.append(batch, validate=False)
        return per * BURST_BATCH * RB_PARTITIONS


def rebalance_steps(rounds: list[dict[str, Any]]) -> str:
    revoke = statistics.median(r["last_revoke_ms"] for r in rounds)
    assign = statistics.median(r["last_assign_ms"] for r in rounds)
    gens = sorted({r["generation"] - r["generation_before"] for r in rounds})
    return (
        f"medians of the steps from the join: the last old member gave up its partitions at {revoke:.0f} ms, "
        f"the last member took up its new ones at {assign:.0f} ms; generations per join: {gens}"
    )


# --- the bench ------------------------------------------------------------------------------------


class Bench:
    def __init__(self, root: str, sizes: Sizes, quick: bool, profiles_on: bool) -> None:
        self.root = root
        self.sizes = sizes
        self.quick = quick
        self.profiles_on = profiles_on
        self.events = sb.Events(sb.EVENTS)
        self.results: list[Any] = []
        self.profiles: dict[str, dict[str, Any]] = {}
        self.details: dict[str, Any] = {}
        self.value_bytes = 0  # 2: the value bytes of the 8-partition topic
        self.store = LogStore(os.path.join(root, "store"))
        self.kids = Children(os.path.join(root, "logs"))

    def add(self, r: Any) -> Any:
        self.results.append(r)
        progress(f"  {r.id} {r.what.strip()}: {sb.fmt_value(r.value, r.unit)} {r.unit} [{r.verdict}]")
        return r

    def error(self, rid: str, what: str, unit: str, target: str, e: BaseException) -> None:
        self.add(Result(rid, what, None, unit, target, note=f"error: {e}", skipped="ERROR"))

    def columns(self, n: int, start: int = 0) -> tuple[list[bytes], list[bytes]]:
        """Values and keys of ``n`` records: the sample events over and over, from event ``start``."""
        vals, keys = self.events.values, self.events.keys
        m = len(vals)
        reps = (start % m + n) // m + 1
        s = start % m
        return (vals * reps)[s : s + n], (keys * reps)[s : s + n]

    def produce_even(self, topic: str, partitions: int, per_partition: int, config: dict[str, Any] | None) -> float:
        """Create ``topic`` and write ``per_partition`` records to each partition with
        ``Producer.send_many(..., partition=p)``; returns the seconds taken."""
        self.store.create_topic(topic, partitions, config=config)
        t0 = time.perf_counter()
        with Producer(self.store) as prod:
            for p in range(partitions):
                vals, keys = self.columns(per_partition, p * per_partition)
                prod.send_many(topic, vals, keys, partition=p)
        dt = time.perf_counter() - t0
        ends = [self.store.partition(topic, p).next_offset for p in range(partitions)]
        if ends != [per_partition] * partitions:
            raise AssertionError(f"{topic}: partitions hold {ends}, expected {per_partition} each")
        return dt

    # 1 -------------------------------------------------------------------------------------------

    def rebalance(self) -> None:
        what = f"rebalance: a 4th member joins 3 tailing a {RB_PARTITIONS}-partition topic (median)"
        target = f"<= {TARGET_REBALANCE_MS:,.0f}"
        try:
            self._rebalance(what, target)
        except (RuntimeError, AssertionError) as e:
            progress(f"  1: error: {e}")
            self.error("1.rebalance", what, "ms", target, e)
        finally:
            self.stop_children()

    def _rebalance(self, what: str, target: str) -> None:
        sz = self.sizes
        run = RebalanceRun(self)
        progress(
            f"1: topic rb: {RB_PARTITIONS} partitions x {RB_PREFILL} records (no fsync); starting the feeder and "
            f"{RB_MEMBERS - 1} members"
        )
        run.start()
        joins, leaves = [], []
        for rnd in range(sz.rebalance_rounds):
            joins.append(run.join(run.spawn("tail"), f"round {rnd + 1}"))
            leaves.append(run.leave(f"round {rnd + 1}"))
        self.details["rebalance"] = {"joins": joins, "leaves": leaves}
        times = sorted(r["ms"] for r in joins)
        med = statistics.median(times)
        self.add(
            Result(
                "1.rebalance",
                what,
                med,
                "ms",
                target,
                med <= TARGET_REBALANCE_MS,
                f"median of {len(times)} joins ({', '.join(f'{t:.0f}' for t in times)} ms), each from the new "
                f"process's first poll to the last of the 4 members' first record of the new generation; "
                f"{rebalance_steps(joins)}; a feeder process appends an 8-record batch to {FEED_PER_TICK} of the "
                f"partitions every {FEED_TICK_MS} ms; the members keep up with it",
                {"rounds_ms": [r["ms"] for r in joins]},
            )
        )
        self.add(Result("1.max", "  slowest join", times[-1], "ms", note=f"of {len(times)}"))
        lt = sorted(r["ms"] for r in leaves)
        self.add(
            Result(
                "1.leave",
                "  a member of 4 closes: to every other member's first record (median)",
                statistics.median(lt),
                "ms",
                note=f"{', '.join(f'{t:.0f}' for t in lt)} ms, from its close() call (the other half of each round)",
                extra={"rounds_ms": lt},
            )
        )
        if sz.busy_rounds:
            what = "rebalance, same, while all 3 members are reading a backlog (median)"
            try:
                self._rebalance_busy(run, what, target)
            except (RuntimeError, AssertionError) as e:
                progress(f"  1.busy: error: {e}")
                self.error("1.busy", what, "ms", target, e)

    def _rebalance_busy(self, run: RebalanceRun, what: str, target: str) -> None:
        sz = self.sizes
        joins, leaves = [], []
        for rnd in range(sz.busy_rounds):
            new = run.spawn("gated")
            self.kids.wait(f"{new.name} ready", lambda c=new: c.get("READY"))
            t0 = time.perf_counter()
            appended = run.burst(sz.burst_per_partition)
            burst_s = time.perf_counter() - t0
            time.sleep(BURST_HEAD_START_S)
            joins.append(run.join(new, f"busy round {rnd + 1}", gated=True, burst=appended))
            joins[-1]["burst_append_s"] = burst_s
            leaves.append(run.leave(f"busy round {rnd + 1}"))
        self.details["rebalance"] |= {"busy_joins": joins, "busy_leaves": leaves}
        bt = sorted(r["ms"] for r in joins)
        med = statistics.median(bt)
        lag = min(min(r["lag_at_first"].values()) for r in joins)
        append_s = statistics.median(r["burst_append_s"] for r in joins)
        lt = sorted(r["ms"] for r in leaves)
        self.add(
            Result(
                "1.busy",
                what,
                med,
                "ms",
                target,
                med <= TARGET_REBALANCE_MS,
                f"{len(bt)} joins ({', '.join(f'{t:.0f}' for t in bt)} ms); {sz.burst_per_partition:,} records were "
                f"appended to each partition (prebuilt {BURST_BATCH}-record lz4 batches, {append_s:.2f} s for all 32) "
                f"and the 4th member (started beforehand, waiting) joined {BURST_HEAD_START_S * 1000:.0f} ms later; "
                f"the fewest records any member still had to read in the partition of its first record of the new "
                f"generation: {lag:,} (> 0: still busy); {rebalance_steps(joins)}; a member closing meanwhile: "
                f"{', '.join(f'{t:.0f}' for t in lt)} ms",
                {"rounds_ms": bt, "leaves_ms": lt},
            )
        )

    # 2 -------------------------------------------------------------------------------------------

    def throughput(self) -> None:
        target = f">= {TARGET_RATIO}"
        try:
            self._throughput(target)
        except (RuntimeError, AssertionError) as e:
            progress(f"  2: error: {e}")
            self.error("2.ratio", "group consumption, 4 members / 1", "x", target, e)
        finally:
            self.stop_children()

    def ensure_tp(self) -> str:
        topic = "tp"
        if topic not in self.store.topic_names():
            n = self.sizes.records
            progress(f"writing {n:,} records with Producer.send_many, {n // TP_PARTITIONS:,} to each of 8 partitions")
            dt = self.produce_even(topic, TP_PARTITIONS, n // TP_PARTITIONS, None)
            size = sum(self.store.partition(topic, p).size_bytes for p in range(TP_PARTITIONS))
            self.details["tp_topic"] = {
                "records": n,
                "partitions": TP_PARTITIONS,
                "bytes": size,
                "write_seconds": dt,
            }
            progress(f"  {n / dt:,.0f} rec/s, {size / 1e6:.0f} MB on disk ({size / n:.1f} B/record)")
        return topic

    def drain(self, topic: str, members: int, group: str) -> dict[str, Any]:
        """One run of ``members`` processes reading the whole topic in a new group."""
        kids = self.kids
        store_path = self.store.path
        total = self.sizes.records
        run = [
            kids.spawn(f"{group}-{i}", "member", store_path, topic, group, f"{group}-{i}", "drain")
            for i in range(members)
        ]
        kids.wait(f"{members} member(s) ready", lambda: all(c.get("READY") for c in run))
        busy0 = machine_cpu_s()
        t_go = time.monotonic()
        for c in run:
            c.send("go")
        kids.wait(f"{members} member(s) done", lambda: all(c.get("DONE") for c in run), timeout=300)
        t_seen = time.monotonic()
        busy1 = machine_cpu_s()
        st = read_state(store_path, group) or {}
        for c in run:  # all at once: a member leaving makes the others rebalance, which they ignore now
            c.expect_exit = True
            c.send("exit")
        for c in run:
            c.stop()
        done = {c.name: c.get("DONE")[0] for c in run}
        final = max(int(f[0]) for f in done.values())
        if any(int(f[0]) != final for f in done.values()) or st.get("generation") != final:
            raise AssertionError(f"members finished in generations {done}; the group is at {st.get('generation')}")
        owned: list[int] = []
        per: dict[str, dict[str, Any]] = {}
        for c in run:
            a = c.first("ASSIGN", lambda f, g=final: int(f[0]) == g)
            if a is None:
                raise AssertionError(f"{c.name} did not take up generation {final}")
            d = done[c.name]
            parts = [] if a[5] == "-" else [int(x) for x in a[5].split(",")]
            owned += parts
            per[c.name] = {
                "partitions": parts,
                "assign_t": float(a[1]),
                "done_t": float(d[1]),
                "records": int(d[2]),
                "records_final_gen": int(d[2]) - int(a[2]),
                "value_bytes": int(d[3]),
                "cpu_s_final_gen": float(d[4]) - float(a[4]),
                "first_record_t": float(f[1]) if (f := c.first("FIRST", lambda f, g=a[0]: f[0] == g)) else None,
                "generations_seen": len(c.get("ASSIGN")),
            }
        if sorted(owned) != list(range(TP_PARTITIONS)):
            raise AssertionError(f"generation {final} owned partitions {sorted(owned)}")
        count = sum(p["records"] for p in per.values())
        value_bytes = sum(p["value_bytes"] for p in per.values())
        if count != total or value_bytes != self.value_bytes:
            raise AssertionError(
                f"{members} member(s) delivered {count:,} records, {value_bytes:,} value bytes; expected {total:,} "
                f"and {self.value_bytes:,}"
            )
        first_assign = min(p["assign_t"] for p in per.values())
        last_assign = max(p["assign_t"] for p in per.values())
        end = max(p["done_t"] for p in per.values())
        final_records = sum(p["records_final_gen"] for p in per.values())
        window = end - first_assign
        members_cpu = sum(float(c.get("DONE")[0][4]) - float(c.get("READY")[0][1]) for c in run)
        cpu_final = sum(p["cpu_s_final_gen"] for p in per.values())
        return {
            "members": members,
            "group": group,
            "generation": final,
            "records_final_gen": final_records,
            "records_before": total - final_records,
            "seconds": window,
            "rate": final_records / window,
            "assign_spread_s": last_assign - first_assign,
            "rate_from_last_assign": final_records / (end - last_assign),
            "go_to_end_s": end - t_go,
            "cores_busy": cpu_final / window,
            "cpu_us_per_record": cpu_final / final_records * 1e6,
            # CPU time of everything else on the machine (this bench's parent included) from "go"
            # to the bench seeing the last DONE, in cores (to 10 ms ticks); None without /proc/stat.
            "other_cores": None
            if busy0 is None or busy1 is None
            else max(0.0, (busy1 - busy0 - members_cpu) / (t_seen - t_go)),
            "finish_spread_s": end - min(p["done_t"] for p in per.values()),
            "per_member": per,
        }

    def _throughput(self, target: str) -> None:
        topic = self.ensure_tp()
        n = self.sizes.records
        self.value_bytes = sum(
            sum(map(len, self.columns(n // TP_PARTITIONS, p * (n // TP_PARTITIONS))[0])) for p in range(TP_PARTITIONS)
        )
        runs: dict[int, list[dict[str, Any]]] = {1: [], TP_MEMBERS: []}
        for rnd in range(self.sizes.tput_rounds):
            order = [1, TP_MEMBERS] if rnd % 2 == 0 else [TP_MEMBERS, 1]
            for k in order:
                progress(f"2: round {rnd + 1}/{self.sizes.tput_rounds}: {k} member process(es) read {n:,} records")
                got = self.drain(topic, k, f"tput{k}-r{rnd}")
                runs[k].append(got)
                progress(
                    f"  {got['rate']:,.0f} rec/s over {got['seconds']:.2f} s ({got['cores_busy']:.2f} cores busy; "
                    f"{got['records_before']:,} records read before the final generation {got['generation']})"
                )
        self.details["throughput"] = runs
        one = statistics.median(r["rate"] for r in runs[1])
        four = statistics.median(r["rate"] for r in runs[TP_MEMBERS])
        ratio = four / one
        per_round = [b["rate"] / a["rate"] for a, b in zip(runs[1], runs[TP_MEMBERS], strict=True)]

        def spread(rs: list[dict[str, Any]]) -> str:
            rates = sorted(r["rate"] for r in rs)
            return f"runs {rates[0]:,.0f}-{rates[-1]:,.0f} rec/s"

        cores1 = statistics.median(r["cores_busy"] for r in runs[1])
        cores4 = statistics.median(r["cores_busy"] for r in runs[TP_MEMBERS])
        us1 = statistics.median(r["cpu_us_per_record"] for r in runs[1])
        us4 = statistics.median(r["cpu_us_per_record"] for r in runs[TP_MEMBERS])

        def others(rs: list[dict[str, Any]]) -> str:
            got = sorted(r["other_cores"] for r in rs if r["other_cores"] is not None)
            if not got:
                return "the CPU use of other processes is unknown (no /proc/stat)"
            return (
                f"everything else on the machine (other processes, the bench's parent, hypervisor steal) used "
                f"{statistics.median(got):.2f} cores meanwhile (runs {got[0]:.2f}-{got[-1]:.2f})"
            )

        self.add(
            Result(
                "2.one",
                f"group consumption, 1 member process, {TP_PARTITIONS} partitions",
                one,
                "rec/s",
                note=f"median of {len(runs[1])} runs, {spread(runs[1])}; {cores1:.2f} cores busy (process CPU time / "
                f"wall time), {us1:.2f} us of CPU per record; from on_assign to the last partition's end; "
                f"{others(runs[1])}",
                extra={"runs": [r["rate"] for r in runs[1]]},
            )
        )
        before = statistics.median(r["records_before"] for r in runs[TP_MEMBERS])
        spread_ms = statistics.median(r["assign_spread_s"] for r in runs[TP_MEMBERS]) * 1000
        finish_ms = statistics.median(r["finish_spread_s"] for r in runs[TP_MEMBERS]) * 1000
        alt = statistics.median(r["rate_from_last_assign"] for r in runs[TP_MEMBERS])
        self.add(
            Result(
                "2.four",
                f"group consumption, {TP_MEMBERS} member processes, {TP_PARTITIONS // TP_MEMBERS} partitions each",
                four,
                "rec/s",
                note=f"median of {len(runs[TP_MEMBERS])} runs, {spread(runs[TP_MEMBERS])}; {cores4:.2f} cores busy, "
                f"{us4:.2f} us of CPU per record; {others(runs[TP_MEMBERS])}; "
                f"records of the final generation over the time from its first on_assign to the last member's end "
                f"(members took it up within {spread_ms:.0f} ms of each other and finished within {finish_ms:.0f} "
                f"ms; timed from the last on_assign instead: {alt:,.0f} rec/s); {before:,.0f} records were read in "
                "the generations before (median), not counted",
                extra={"runs": [r["rate"] for r in runs[TP_MEMBERS]]},
            )
        )
        cpus = os.cpu_count()
        secs4 = statistics.median(r["seconds"] for r in runs[TP_MEMBERS])
        self.add(
            Result(
                "2.ratio",
                "2.four / 2.one",
                ratio,
                "x",
                target,
                ratio >= TARGET_RATIO,
                f"ratio of the medians; per-round ratios {', '.join(f'{x:.2f}' for x in per_round)}; os.cpu_count() = "
                f"{cpus}; the 1-member run keeps {cores1:.2f} cores busy and a record costs {us4 / us1:.2f}x the CPU "
                f"time with 4 members, so with every core busy the ratio could reach about "
                f"{(cpus or 1) * us1 / (us4 * cores1):.2f} (cores busy in the 4-member runs: {cores4:.2f})"
                + (
                    f"; quick mode: a 4-member run reads for ~{secs4:.1f} s, "
                    "too short for a steady figure (the full run is the measurement)"
                    if self.quick
                    else ""
                ),
                {"per_round": per_round, "cpu_count": cpus},
            )
        )

    # 3 -------------------------------------------------------------------------------------------

    def commits(self) -> None:
        target = f"<= {TARGET_COMMIT_US:,.0f}"
        try:
            self._commits(target)
        except (RuntimeError, AssertionError) as e:
            progress(f"  3: error: {e}")
            self.error("3.commit", "consumer.commit()", "us", target, e)

    def commit_round(self, c: Consumer, count: int) -> tuple[list[float], list[float], int]:
        """``count`` x (poll, commit()) and (poll, commit(record)): us each, and how many partitions
        commit() stored."""
        clock = time.perf_counter
        all_us, rec_us = [], []
        parts = 0
        for _ in range(count):
            r = c.poll(0)
            if r is None:
                raise AssertionError("poll(0) returned None: the topic ran out")
            t0 = clock()
            got = c.commit()
            all_us.append((clock() - t0) * 1e6)
            parts = max(parts, len(got))
            r = c.poll(0)
            if r is None:
                raise AssertionError("poll(0) returned None: the topic ran out")
            t0 = clock()
            c.commit(r)
            rec_us.append((clock() - t0) * 1e6)
        last = TopicPartition(r.topic, r.partition)
        if c.committed(last) != r.offset + 1:
            raise AssertionError(f"committed({last}) is {c.committed(last)}, expected {r.offset + 1}")
        return all_us, rec_us, parts

    def _commits(self, target: str) -> None:
        topic = self.ensure_tp()
        count = self.sizes.commits
        c = Consumer(self.store, topic, group_id="commit")
        try:
            if c.poll(5.0) is None:
                raise AssertionError("the first poll returned nothing")
            if len(c.assignment()) != TP_PARTITIONS:
                raise AssertionError(f"the only member owns {sorted(c.assignment())}")
            progress(f"3: {count} x (poll + commit()) and (poll + commit(record)), one member of 8 partitions")
            self.commit_round(c, 20)  # warm-up: every partition gets a position
            all_us, rec_us, parts = self.commit_round(c, count)
            gdir = os.path.join(self.store.path, "groups", "commit")
            log_size = os.path.getsize(os.path.join(gdir, "offsets.log"))
            if self.profiles_on and self.near_miss(statistics.median(all_us)):
                progress("  profiling 3.commit")
                self.profiles["3.commit"] = {
                    "title": f"{min(count, 500)} x (poll + commit())",
                    **sb.profile(lambda: self.commit_round(c, min(count, 500)), top=10),
                }
        finally:
            c.close()
        floor = fsync_floor(gdir, count)
        self.details["commit"] = {"commit_us": all_us, "commit_record_us": rec_us, "floor_us": floor}

        def lat(rid: str, what: str, us: list[float], judged: bool, note: str) -> None:
            srt = sorted(us)
            med, p99 = statistics.median(srt), percentile(srt, 99)
            self.add(
                Result(
                    rid,
                    what,
                    med,
                    "us",
                    target if judged else "-",
                    (med <= TARGET_COMMIT_US) if judged else None,
                    f"{len(us)} calls; p90 {percentile(srt, 90):,.0f}, max {srt[-1]:,.0f} us"
                    + (f"; {note}" if note else ""),
                    {"p90_us": percentile(srt, 90), "p99_us": p99, "max_us": srt[-1]},
                )
            )
            self.add(Result(f"{rid}.p99", "    p99", p99, "us"))

        lat(
            "3.commit",
            f"consumer.commit() after a poll ({parts} partitions' positions)",
            all_us,
            True,
            "group lock (flock) + state.json check + one offsets.log line + fdatasync; the log is rewritten as a "
            f"snapshot each time it passes 1 MiB (it was {log_size / 1e3:.0f} kB at the end)",
        )
        lat("3.record", "consumer.commit(record) after a poll (1 partition)", rec_us, True, "")
        lat("3.floor", "  floor: pwrite of a 300-byte line + fdatasync, same directory", floor, False, "")

    @staticmethod
    def near_miss(value: float) -> bool:
        return value > TARGET_COMMIT_US / 1.25

    def stop_children(self) -> None:
        """Ask every child still running to exit; kill what does not."""
        for c in self.kids.all:
            if c.proc.poll() is None:
                try:
                    c.stop(timeout=10)
                except RuntimeError as e:
                    progress(f"  {e}")
        self.kids.kill_all()

    def close(self) -> None:
        self.kids.kill_all()
        self.store.close()


def machine_cpu_s() -> float | None:
    """CPU seconds every core of the machine has spent busy (not idle or waiting for I/O) since
    boot, from the first line of /proc/stat; None where it cannot be read."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = f.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def fsync_floor(directory: str, count: int) -> list[float]:
    """us per pwrite of a 300-byte line at the end of a file + fdatasync (what a commit must wait
    for at least)."""
    path = os.path.join(directory, "floor.tmp")
    line = b"x" * 299 + b"\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    out = []
    try:
        pos = 0
        for _ in range(count):
            t0 = time.perf_counter()
            os.pwrite(fd, line, pos)
            os.fdatasync(fd)
            out.append((time.perf_counter() - t0) * 1e6)
            pos += len(line)
    finally:
        os.close(fd)
        os.unlink(path)
    return out


# --- main -----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:
        return worker_main(argv[1:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller: 2 rebalance rounds, 400k records, 300 commits")
    ap.add_argument("--dir", help="directory to create the bench files in (default: the system temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the bench directory afterwards")
    ap.add_argument("--profile", action=argparse.BooleanOptionalAction, default=None, help="profile a missed 3.commit")
    ap.add_argument("--only", help="comma-separated subset of 1,2,3")
    ap.add_argument("--out", help="results JSON path (default bench/results/<date>-groups[-quick].json)")
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the finally below kills the children

    sizes = QUICK if args.quick else FULL
    profiles_on = (not args.quick) if args.profile is None else args.profile
    only = set((args.only or "1,2,3").split(","))
    root = sb.make_root("logstore-gbench-", args.dir)
    mode = "quick" if args.quick else "full"
    started = time.time()
    t_start = time.perf_counter()
    info = sb.machine(root)
    header = sb.run_header(
        "consumer-group",
        mode,
        info,
        root,
        "group settings: the defaults (session_timeout_ms 45000, heartbeat_interval_ms 3000, "
        "max_poll_interval_ms 300000, auto-commit every 5000 ms, roundrobin)",
    )
    progress(header.replace("\n", "\n    "))
    bench = Bench(root, sizes, args.quick, profiles_on)
    try:
        if "1" in only:
            bench.rebalance()
        if "2" in only:
            bench.throughput()
        if "3" in only:
            bench.commits()
    finally:
        bench.close()
        sb.remove_root(root, args.keep)
    elapsed = time.perf_counter() - t_start

    results = sorted(bench.results, key=lambda r: int(r.id.split(".")[0]))  # stable: keeps order in a group
    load_note = "the bench's own processes keep both cores busy in 2"
    load_end = sb.print_report(header, results, elapsed, info["load_average_start"], bench.profiles, load_note)
    doc = sb.run_doc("bench/group_bench.py", mode, started, elapsed, info, load_end, sizes.__dict__)
    doc |= {
        "settings": {
            "rebalance_partitions": RB_PARTITIONS,
            "rebalance_prefill_per_partition": RB_PREFILL,
            "feeder": {"tick_ms": FEED_TICK_MS, "partitions_per_tick": FEED_PER_TICK, "records_per_batch": 8},
            "throughput_partitions": TP_PARTITIONS,
            "throughput_members": TP_MEMBERS,
        },
        "results": sb.result_rows(results, digits=4),
        "details": bench.details,
        "profiles": bench.profiles,
    }
    sb.write_results(args.out or sb.default_out("-groups", args.quick), doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
