"""Reliability campaigns S22, S24, S25, S26-S29 (docs/reliability.md §2 B/C): processes sharing a store.

* S22  a reader process holds a mapped index (and a dump of the ``.log``) while a writer process
       rolls, truncates, deletes by retention or rebuilds the index: the reader never dies of SIGBUS.
* S24  a stray open+close of the lock file in the process holding the partition lock keeps it.
* S25  two writer processes and several tailing readers on one partition (one writer SIGKILLed
       mid-stream): no lost, duplicate or inconsistent offsets; no poll-skip / nonmonotonic-poll;
       a reader never sees a half-written batch, never reports corruption, never truncates.
* S26  group members, one SIGKILLed: no partition has two live owners at once (the rest of S26 is
       tests/test_groups_multiprocess.py::test_a_member_killed_with_sigkill_is_expired_long_before_
       the_session_timeout and ::test_at_least_once_under_repeated_kills_while_a_producer_writes).
* S27  a zombie (SIGSTOPped) member: the committed offsets never go backwards (the fencing itself
       is tests/test_groups_multiprocess.py::test_a_stopped_member_is_expired_and_cannot_commit_
       when_it_comes_back).
* S28  two processes commit alternately and re-read; committers SIGKILLed at random moments.
* S29  retention deletes the segment a consumer in another process is reading.

Children are this file run as a script (``python -X faulthandler test_concurrency.py CMD ...``):
a SIGBUS or SIGSEGV shows as a negative exit code and a faulthandler traceback on stderr.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from logstore import Consumer, LogStore, TopicPartition  # noqa: E402
from logstore.errors import LogStoreError, OffsetOutOfRangeError  # noqa: E402
from logstore.groups import offsets as offsets_mod  # noqa: E402
from logstore.groups.offsets import OffsetLog, decode_line  # noqa: E402

try:
    from .checker import History, Report, check, check_polls, digest
    from .conftest import iterations
except ImportError:  # run as a script (a child process)
    sys.path.insert(0, HERE)
    from checker import History, Report, check, check_polls, digest  # type: ignore[no-redef]

    def iterations(ci: int) -> int:  # type: ignore[misc]
        return ci


THIS = os.path.abspath(__file__)
WRITER = os.path.join(HERE, "writer.py")
PROCS = os.path.join(ROOT, "tests", "procs.py")
TP = TopicPartition("t", 0)
WAIT = 60  # seconds: the longest any single wait on a child may take


# --- helpers (parent side) -------------------------------------------------------------------------


def spawn(*args, env=None, stdin=True):
    """This file as a child process: ``CMD ARGS``; text pipes; faulthandler on."""
    full = dict(os.environ, **(env or {}))
    return subprocess.Popen(
        [sys.executable, "-X", "faulthandler", THIS, *map(str, args)],
        stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=full,
    )


def expect_line(proc, want, timeout=WAIT):
    """The child's next stdout line, which must start with ``want`` (a hang fails after ``timeout``)."""
    import selectors

    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    try:
        if not sel.select(timeout):
            raise AssertionError(f"child {proc.args[4:]} said nothing for {timeout}s")
    finally:
        sel.close()
    line = proc.stdout.readline()
    if not line.startswith(want):
        rest, err = proc.communicate(timeout=WAIT)
        raise AssertionError(f"expected {want!r} from {proc.args[4:]}, got {line!r}{rest!r}; stderr:\n{err}")
    return line


def finish(proc, send=None, timeout=WAIT):
    """Send ``send`` (if any), wait for the exit; returns (returncode, stdout, stderr)."""
    out, err = proc.communicate(send, timeout=timeout)
    return proc.returncode, out, err


def assert_clean_exit(code, err, what):
    """Exit 0 (SIGBUS is -7, SIGSEGV -11) and nothing on stderr that looks like a crash."""
    assert code == 0, f"{what} exited with {code} (-7 = SIGBUS):\n{err[-3000:]}"
    for bad in ("Fatal Python error", "Traceback", "FileNotFoundError", "Bus error"):
        assert bad not in err, f"{what}: {bad} on stderr:\n{err[-3000:]}"


def kill_all(procs):
    for p in procs:
        if p.poll() is None:
            p.kill()
        try:
            p.communicate(timeout=WAIT)
        except (subprocess.TimeoutExpired, ValueError):
            pass


def value_for(offset):
    """The value of record ``offset`` in the stores filled by :func:`fill` (checkable bytes)."""
    return b"%08d:" % offset + bytes([offset % 251]) * 300


def fill(store, n, per_batch=1, timestamp=None, recent=0):
    """Append records ``value_for(0..n-1)`` to t-0 in batches of ``per_batch``; the last
    ``recent`` ones in a segment of their own with the current time (retention keeps it)."""
    log = store.partition("t", 0)
    o = log.next_offset
    while o < n:
        if o == n - recent:
            log.roll()
        k = min(per_batch, n - o)
        ts = None if o >= n - recent else timestamp
        log.append_records([value_for(i) for i in range(o, o + k)], timestamps=ts)
        o += k


# --- S22: mapped index vs a writer that rolls / truncates / deletes / rebuilds -----------------------

T0 = int(time.time() * 1000) - 3_600_000  # record times: an hour ago (no time-based roll)
S22_OPS = ["roll", "truncate", "torn-tail", "retention", "rebuild", "roll-while-writer-mapped"]


def _s22_lookups(seg, n):
    """Look up every offset of the segment through its mapped indexes (the in-flight read)."""
    ok = errors = 0
    for o in range(seg.base_offset, seg.base_offset + n, 3):
        try:
            seg.index.lookup(o)  # np.searchsorted over the map
            seg.time_index.lookup(T0 + o)
            seg.find_batch(o)
            ok += 1
        except LogStoreError:
            errors += 1  # the segment changed under a read that began before: allowed, no crash
    return ok, errors


def child_s22(store_path, op, n):
    """Map the active segment's indexes, wait for the parent's change, use the same (stale) maps,
    then read everything afresh through the public API."""
    n = int(n)
    read_only = op == "rebuild"  # a repair needs the partition to itself: a read-only view allows it
    with LogStore(store_path, read_only=read_only) as store:
        log = store.partition("t", 0)
        if op == "roll-while-writer-mapped":
            log.append_records([value_for(n)])  # now a writer: its active index is mapped whole
            n += 1
        seg = log.segments[-1]
        ok, errors = _s22_lookups(seg, n)
        assert ok and not errors, (ok, errors)
        assert seg.index._map is not None and seg.time_index._map is not None  # really mapped
        print("mapped", seg.index.entries, len(seg.index._map), flush=True)
        sys.stdin.readline()
        stale_ok, stale_errors = _s22_lookups(seg, n)
        # Afresh: whatever the writer did, what is readable now reads back right.
        log.refresh()
        offset, got = log.log_start_offset, 0
        while offset < log.next_offset:
            cols = log.read_records(offset)
            for o, v in zip(cols.offsets, cols.values, strict=True):
                assert v == value_for(o), o
            got += len(cols)
            offset = cols.offsets[-1] + 1
        print(json.dumps({"stale_ok": stale_ok, "stale_errors": stale_errors, "read": got}), flush=True)


def _s22_store(path, n):
    with LogStore(path, fsync="never") as s:
        # Many small index entries (several pages of them), one big active segment.
        s.create_topic("t", 1, {"index.interval.bytes": 64, "segment.bytes": 64 << 20})
        log = s.partition("t", 0)
        for o in range(n):
            log.append_records([value_for(o)], timestamps=T0 + o)
        entries = log.active_segment.index.entries
    return entries


def _s22_change(store, op, n):
    """The writer's side of one S22 operation; returns what the reader may now read from."""
    log = store.partition("t", 0)
    if op in ("roll", "roll-while-writer-mapped"):
        log.roll()  # seals: the active index is trimmed to its entries
        log.append_records([value_for(log.next_offset)])
    elif op == "truncate":
        log.truncate_to(n // 3)  # cuts the .log; the index keeps a third of its entries
    elif op == "torn-tail":
        # A dead writer's torn batch at the end, then an append: the writer cuts the tail (and
        # the index entries past it) under the flock before writing.
        with open(log.active_segment.log_path, "ab") as f:
            f.write(b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x10\x00torn")
        log.append_records([value_for(log.next_offset)])
        log.truncate_to(n // 2)
    elif op == "retention":
        log.roll()
        store.delete_records("t", 0, log.next_offset)  # the mapped segment is deleted
        log.append_records([value_for(log.next_offset)])
    elif op == "rebuild":
        results = store.recover("t")  # every index rebuilt from the log
        assert results[0].error is None, results[0]


def test_s22_mapped_index_survives_every_change_by_another_process(tmp_path, campaign):
    import shutil

    n = 2000
    runs = faults = 0
    failures = []
    entries = _s22_store(tmp_path / "template", n)
    assert entries * 8 > 3 * 4096, entries  # the map spans pages: a shrink in place would cut one
    for op in S22_OPS:
        path = tmp_path / op
        shutil.copytree(tmp_path / "template", path)
        reader = spawn("s22", path, op, n)
        try:
            line = expect_line(reader, "mapped")
            with LogStore(path, fsync="never") as store:
                _s22_change(store, op, n)
            faults += 1
            code, out, err = finish(reader, "go\n")
        finally:
            kill_all([reader])
        runs += 1
        if code != 0 or "Fatal Python error" in err:
            failures.append((op, code, line, err[-2000:]))
            continue
        result = json.loads(out.strip().splitlines()[-1])
        assert result["stale_ok"] > 0 and result["read"] > 0, (op, result)
    campaign("S22").add(iterations=runs, faults=faults, anomalies=len(failures))
    assert not failures, "\n".join(f"{op}: exit {code} ({line.strip()})\n{err}" for op, code, line, err in failures)


def child_dump(path):
    """kafka-dump-log over a live segment: start, wait for the parent to cut the file, finish."""
    from logstore.dump import dump_file

    lines = dump_file(path, deep=True)
    for _ in range(4):
        next(lines)
    print("started", flush=True)
    sys.stdin.readline()
    print("done", sum(1 for _ in lines), flush=True)


def test_regression_dump_log_of_a_live_segment_survives_its_truncation(tmp_path, campaign):
    """``logstore dump-log`` mapped the whole ``.log``; a writer cutting the file (truncate_to, a
    torn tail) then killed the dump with SIGBUS. It reads with pread now."""
    path = tmp_path / "store"
    with LogStore(path, fsync="never") as s:
        s.create_topic("t", 1)
        fill(s, 200, per_batch=2)
        seg = s.partition("t", 0).active_segment.log_path
    dumper = spawn("dump", seg)
    try:
        expect_line(dumper, "started")
        with LogStore(path) as s:
            s.partition("t", 0).truncate_to(2)  # 60 KiB -> 700 bytes, under the dump's feet
        code, out, err = finish(dumper, "go\n")
    finally:
        kill_all([dumper])
    campaign("S22").add(iterations=1, faults=1, anomalies=int(code != 0))
    assert_clean_exit(code, err, "dump-log")
    assert out.startswith("done")


# --- S24: a stray close of the lock file keeps the lock ------------------------------------------------


def child_probe_lock(lock_path):
    import fcntl

    fd = os.open(lock_path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        print("acquired")
    except BlockingIOError:
        print("held")


def test_s24_a_stray_close_of_the_lock_file_keeps_the_partition_locked(tmp_path, campaign):
    path = tmp_path / "store"
    with LogStore(path) as s:
        s.create_topic("t", 1)
        log = s.partition("t", 0)
        lock_path = log._flock.path
        with log._flock:
            # What an in-process verify, a second store object or a curious library might do:
            # open the lock file and close it again. With POSIX (lockf) locks that drops the lock.
            with open(lock_path, "rb"):
                pass
            with LogStore(path, read_only=True, lock_timeout=1) as other:
                other.partition("t", 0).verify()
            probe = subprocess.run(
                [sys.executable, THIS, "probe-lock", lock_path], capture_output=True, text=True, timeout=WAIT
            )
        after = subprocess.run(
            [sys.executable, THIS, "probe-lock", lock_path], capture_output=True, text=True, timeout=WAIT
        )
    campaign("S24").add(iterations=1, faults=1, anomalies=int(probe.stdout.strip() != "held"))
    assert probe.stdout.strip() == "held", probe
    assert after.stdout.strip() == "acquired", after  # and it is released when it should be


# --- S25: two writers, tailing readers, a writer SIGKILLed ------------------------------------------------


def child_tail(store_path, how, out_path, end_path, timeout):
    """Tail t-0 from offset 0 until the offset in ``end_path`` (written by the parent once the
    writers are done) is reached: ``consumer`` polls a Consumer, ``direct`` reads the log. Writes
    ``offset digest`` per record to ``out_path``; prints a JSON summary."""
    deadline = time.monotonic() + float(timeout)
    fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    seen = 0
    end = None
    with LogStore(store_path) as store:
        log = store.partition("t", 0)
        consumer = None
        if how == "consumer":
            consumer = Consumer(store, auto_offset_reset="none", fetch_max_wait_ms=5)
            consumer.assign([TP])
            consumer.seek(TP, 0)
        offset = 0
        while time.monotonic() < deadline:
            if end is None and os.path.exists(end_path):
                with open(end_path) as f:
                    text = f.read().strip()
                end = int(text) if text else None
            if end is not None and offset >= end:
                break
            if consumer is not None:
                recs = consumer.consume(500, timeout=0.02)
                rows = [(r.offset, r.value) for r in recs]
            else:
                log.refresh()
                if offset >= log.next_offset:
                    time.sleep(0.002)
                    continue
                cols = log.read_records(offset)
                rows = list(zip(cols.offsets, cols.values, strict=True))
            if rows:
                os.write(fd, "".join(f"{o} {digest(v)}\n" for o, v in rows).encode())
                seen += len(rows)
                offset = rows[-1][0] + 1
        truncations = len(log.load_report.truncations)
    os.close(fd)
    print(json.dumps({"seen": seen, "end": end, "offset": offset, "truncations": truncations}), flush=True)


def _s25_round(tmp_path, rnd, round_no, report):
    path = tmp_path / f"store{round_no}"
    with LogStore(path) as s:
        # Small segments (rolls while readers tail), big batches (a kill can tear one).
        s.create_topic("t", 1, {"segment.bytes": 2 << 20, "index.interval.bytes": 4096})
    kill_one = round_no % 2 == 0
    writers = [
        subprocess.Popen(
            [
                sys.executable,
                WRITER,
                str(path),
                str(1000 * round_no + w),
                "--batches",
                str(60 if (kill_one and w == 0) else 25),
                "--max-records",
                "48",
                "--value-bytes",
                "12000",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(2)
    ]
    end_path = tmp_path / f"end{round_no}"
    readers = [
        spawn("tail", path, how, tmp_path / f"r{round_no}-{i}.out", end_path, 45, stdin=False)
        for i, how in enumerate(["consumer", "direct", "consumer"])
    ]
    killed = 0
    try:
        outs = []
        if kill_one:
            time.sleep(rnd.uniform(0.2, 0.8))
            writers[0].send_signal(signal.SIGKILL)
            killed = 1
        for w in writers:
            out, err = w.communicate(timeout=WAIT)
            assert w.returncode in (0, -signal.SIGKILL), err
            outs.append(out)
        with LogStore(path) as s:
            end = s.partition("t", 0).next_offset
        end_path.write_text(str(end))
        summaries = []
        for i, r in enumerate(readers):
            code, out, err = finish(r)
            assert_clean_exit(code, err, f"reader {i}")
            summaries.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        kill_all(writers + readers)
    history = History()
    for out in outs:
        history.parse(out.splitlines())
    final = check(history, str(path))
    for kind, examples in final.anomalies.items():
        for e in examples:
            report.add(kind, e)
    report.records += final.records
    report.acked += final.acked
    with LogStore(path) as s:
        at = {}
        log = s.partition("t", 0)
        o = 0
        while o < log.next_offset:
            cols = log.read_records(o)
            at.update((off, digest(v)) for off, v in zip(cols.offsets, cols.values, strict=True))
            o = cols.offsets[-1] + 1
    for i, summary in enumerate(summaries):
        assert summary["end"] == end and summary["offset"] == end, (i, summary)
        if summary["truncations"]:
            report.add("reader-truncated", (round_no, i, summary["truncations"]))
        polls = []
        for line in (tmp_path / f"r{round_no}-{i}.out").read_text().splitlines():
            o, d = line.split()
            polls.append(("t", 0, int(o)))
            if at.get(int(o)) != d:
                # The reader returned bytes the log does not hold there: a half-written batch, or
                # one a writer later cut as torn.
                report.add("inconsistent-offsets", ("reader", i, int(o)))
        if polls and polls[0][2] != 0:
            report.add("poll-skip", ("reader", i, "started at", polls[0][2]))
        check_polls(polls, report)
    return killed


def test_s25_two_writers_and_tailing_readers_on_one_partition(tmp_path, campaign):
    rnd = random.Random(25)
    rounds = iterations(2)
    report = Report()
    kills = 0
    for k in range(rounds):
        kills += _s25_round(tmp_path, rnd, k, report)
    campaign("S25").add(iterations=rounds, faults=kills, anomalies=report.count)
    assert report.ok, str(report)
    assert report.records > 0


# --- S26 / S27: group members -------------------------------------------------------------------------


def child_member(store_path, out_path, session_ms, hb_ms, sleep_ms, commit_every):
    """A group member of ``g`` on topic ``t`` logging, with CLOCK_MONOTONIC times (one clock for
    every process): ``ASSIGN t gen p..``, ``REVOKE t gen p..`` (after committing),
    ``REC t p o`` per record processed, ``COMMIT t p:o..`` and ``CLOSED t``. SIGTERM: clean close."""
    fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def say(line):
        os.write(fd, f"{line}\n".encode())

    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))

    def commit(c):
        try:
            done = c.commit()
        except LogStoreError as e:
            say(f"COMMIT_FAILED {time.monotonic()} {type(e).__name__}")
            return
        if done:
            say(f"COMMIT {time.monotonic()} " + " ".join(f"{tp.partition}:{om.offset}" for tp, om in done.items()))

    def on_assign(c, parts):
        say(f"ASSIGN {time.monotonic()} {c.generation} " + " ".join(str(tp.partition) for tp in parts))

    def on_revoke(c, parts):
        commit(c)
        say(f"REVOKE {time.monotonic()} {c.generation} " + " ".join(str(tp.partition) for tp in parts))

    with LogStore(store_path) as store:
        c = Consumer(
            store,
            "t",
            group_id="g",
            enable_auto_commit=False,
            session_timeout_ms=int(session_ms),
            heartbeat_interval_ms=int(hb_ms),
            fetch_max_wait_ms=10,
            on_assign=on_assign,
            on_revoke=on_revoke,
        )
        n = 0
        while not stop:
            r = c.poll(0.05)
            if r is None:
                continue
            say(f"REC {time.monotonic()} {r.partition} {r.offset}")
            time.sleep(float(sleep_ms) / 1000)
            n += 1
            if n % int(commit_every) == 0:
                commit(c)
        c.close()
    say(f"CLOSED {time.monotonic()}")


class Member:
    def __init__(self, tmp, store, name, session_ms=3000, hb_ms=100, sleep_ms=2, commit_every=10):
        self.name = name
        self.session_ms = session_ms
        self.out = tmp / f"{name}.events"
        self.proc = spawn("member", store, self.out, session_ms, hb_ms, sleep_ms, commit_every, stdin=False)
        self.killed_at = None  # CLOCK_MONOTONIC just before SIGKILL was sent

    def events(self):
        text = self.out.read_text() if self.out.exists() else ""
        return [ln.split() for ln in text.splitlines()]

    def kill(self):
        self.killed_at = time.monotonic()
        self.proc.kill()
        self.proc.wait(timeout=WAIT)

    def ownership(self):
        """partition -> [(start, end)] from its ASSIGN lines to the next REVOKE / CLOSED / death."""
        spans = defaultdict(list)
        owned: dict[int, float] = {}
        for ev in self.events():
            t = float(ev[1])
            if ev[0] == "ASSIGN":
                for p in map(int, ev[3:]):
                    owned[p] = t
            elif ev[0] in ("REVOKE", "CLOSED"):
                for p, start in owned.items():
                    spans[p].append((start, t))
                owned = {}
        end = self.killed_at if self.killed_at is not None else float("inf")
        for p, start in owned.items():
            spans[p].append((start, end))
        return spans

    def processed(self):
        return [(float(ev[1]), int(ev[2]), int(ev[3])) for ev in self.events() if ev[0] == "REC"]


def two_owners(members):
    """Anomalies: a partition owned by two live members at once, or a record processed by a
    member that did not own its partition at that moment."""
    out = []
    spans = {m.name: m.ownership() for m in members}
    partitions = {p for s in spans.values() for p in s}
    for p in partitions:
        mine = sorted((start, end, name) for name, s in spans.items() for start, end in s.get(p, []))
        for (s1, e1, n1), (s2, e2, n2) in itertools.pairwise(mine):
            if s2 < e1:
                out.append(("two-owners", p, n1, (s1, e1), n2, (s2, e2)))
    for m in members:
        own = spans[m.name]
        for t, p, o in m.processed():
            if not any(s <= t <= e for s, e in own.get(p, [])):
                out.append(("processed-without-owning", m.name, p, o, t))
    return out


def committed_history(store_path, group="g"):
    """Every commit in the group's offsets log, in file order: [(partition, offset), ...] per line."""
    path = os.path.join(store_path, "groups", group, "offsets.log")
    lines = []
    with open(path, "rb") as f:
        for raw in f.read().split(b"\n"):
            entry = decode_line(raw) if raw else None
            if entry is not None:
                lines.append([(tp[1], tp[2]) for tp in entry.get("offsets", ())])
    return lines


def regressions(store_path, group="g"):
    """Commits that moved a partition's committed offset backwards (no seek is made here)."""
    out = []
    last: dict[int, int] = {}
    for i, line in enumerate(committed_history(store_path, group)):
        for p, o in line:
            if o is not None and o < last.get(p, -1):
                out.append(("committed-offset-went-back", i, p, last[p], o))
            if o is not None:
                last[p] = max(last.get(p, -1), o)
    return out


def retention_job(path) -> None:
    """Run ``logstore retention run`` on the store at ``path`` in its own process, as cron would."""
    job = subprocess.run(
        [sys.executable, "-m", "cli.main", "--dir", str(path), "retention", "run"],
        capture_output=True,
        text=True,
        timeout=WAIT,
        cwd=ROOT,
    )
    assert job.returncode == 0, job.stderr


def wait_for(what, predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = predicate()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _group_store(tmp_path, partitions, per_partition):
    path = tmp_path / "gstore"
    with LogStore(path, fsync="never") as s:
        s.create_topic("t", partitions)
        for p in range(partitions):
            s.partition("t", p).append_records([b"%d-%d" % (p, i) for i in range(per_partition)])
    return str(path)


def test_s26_no_partition_has_two_live_owners_when_a_member_is_killed(tmp_path, campaign):
    partitions, per = 6, 250
    store = _group_store(tmp_path, partitions, per)
    members = []
    try:
        for i in range(3):
            members.append(Member(tmp_path, store, f"m{i}"))
            wait_for(f"m{i} to own partitions", lambda m=members[-1]: any(e[0] == "ASSIGN" for e in m.events()))
        wait_for("every member processing", lambda: all(m.processed() for m in members))
        victim = members[1]
        victim_parts = set(victim.ownership())
        victim.kill()
        # Its partitions go to the survivors within the session timeout plus a heartbeat.
        took = wait_for(
            "the victim's partitions to be reassigned",
            lambda: (
                set().union(
                    *(
                        {p for p, spans in m.ownership().items() if any(s > victim.killed_at for s, _ in spans)}
                        for m in members
                        if m is not victim
                    )
                )
                >= victim_parts
                and time.monotonic() - victim.killed_at
            ),
            timeout=15,
        )
        assert took < (victim.session_ms + 100) / 1000 + 3, took
        everything = {(p, o) for p in range(partitions) for o in range(per)}
        wait_for(
            "every record processed",
            lambda: everything <= {(p, o) for m in members for _, p, o in m.processed()},
            timeout=40,
        )
        for m in members:
            if m is not victim:
                m.proc.send_signal(signal.SIGTERM)
        for m in members:
            if m is not victim:
                assert m.proc.wait(timeout=WAIT) == 0, m.proc.stderr.read()
    finally:
        kill_all([m.proc for m in members])
    anomalies = two_owners(members) + regressions(store)
    campaign("S26").add(iterations=1, faults=1, anomalies=len(anomalies))
    assert not anomalies, anomalies[:5]


def test_s27_committed_offsets_never_go_back_with_a_zombie_member(tmp_path, campaign):
    store = _group_store(tmp_path, 4, 400)
    members = []
    try:
        members = [Member(tmp_path, store, "z0", session_ms=1500, hb_ms=100, sleep_ms=3, commit_every=3)]
        wait_for("z0 to process", lambda: members[0].processed())
        members.append(Member(tmp_path, store, "z1", session_ms=1500, hb_ms=100, sleep_ms=3, commit_every=3))
        wait_for("z1 to process", lambda: members[1].processed(), timeout=20)
        zombie = members[0]
        # Stopped while it is not inside a group change: a member stopped holding group.lock (a
        # commit's fdatasync, a state save) stalls every other member until it runs again, as a
        # stopped SQLite writer does; this test is about the member that wakes up, not that.
        from logstore.storage.locks import FileLock

        group_lock = FileLock(os.path.join(store, "groups", "g", "group.lock"), 20)
        try:
            with group_lock:
                zombie.proc.send_signal(signal.SIGSTOP)
        finally:
            group_lock.close()
        try:
            # Past the session timeout: z1 takes every partition and commits past the zombie.
            wait_for(
                "z1 to own everything",
                lambda: sum(1 for e in members[1].events() if e[0] == "ASSIGN" and len(e) - 3 == 4) >= 1,
                timeout=20,
            )
            time.sleep(0.5)
        finally:
            zombie.proc.send_signal(signal.SIGCONT)
            woke = time.monotonic()

        def attempts():
            return [e for e in zombie.events() if e[0] in ("COMMIT", "COMMIT_FAILED") and float(e[1]) > woke]

        first = wait_for("the zombie's first commit after it woke", attempts)[0]
        stale = [("stale-commit-accepted", first)] if first[0] == "COMMIT" else []
        wait_for("the zombie to rejoin", lambda: sum(1 for e in zombie.events() if e[0] == "ASSIGN") >= 2, timeout=20)
        time.sleep(0.3)
        for m in members:
            m.proc.send_signal(signal.SIGTERM)
        for m in members:
            assert m.proc.wait(timeout=WAIT) == 0
    finally:
        kill_all([m.proc for m in members])
    anomalies = stale + regressions(store)
    campaign("S27").add(iterations=1, faults=1, anomalies=len(anomalies))
    assert not anomalies, anomalies[:5]


# --- S28: offset commits across processes -------------------------------------------------------------


def child_committer(store_path, group, compact_bytes):
    """Commits and reads a manual-assignment group's offsets on command (stdin lines):
    ``burst P FIRST K`` commits FIRST..FIRST+K-1 to partition P one by one (``ok LAST``);
    ``read`` prints ``offsets P:O ...`` as the group has them now."""
    offsets_mod.COMPACT_BYTES = int(compact_bytes)  # compact (rename a new file in) often
    tps = [TopicPartition("t", p) for p in range(2)]
    with LogStore(store_path) as store:
        c = Consumer(store, group_id=group, enable_auto_commit=False)
        c.assign(tps)
        print("ready", flush=True)
        for line in sys.stdin:
            cmd = line.split()
            if cmd[0] == "burst":
                p, first, k = map(int, cmd[1:])
                for o in range(first, first + k):
                    c.commit(offsets={tps[p]: o})
                print(f"ok {first + k - 1}", flush=True)
            elif cmd[0] == "read":
                got = c.committed(tps)
                print("offsets " + " ".join(f"{tp.partition}:{got[tp]}" for tp in tps), flush=True)
        c.close()


def test_s28_two_processes_commit_alternately_and_always_read_the_latest(tmp_path, campaign):
    path = tmp_path / "store"
    with LogStore(path) as s:
        s.create_topic("t", 2)
    rnd = random.Random(28)
    procs = [spawn("committer", path, "g", 700) for _ in range(2)]
    anomalies = []
    steps = iterations(40)
    try:
        for p in procs:
            expect_line(p, "ready")
        model = {0: None, 1: None}
        seen = [dict(model), dict(model)]
        for _ in range(steps):
            who = rnd.randrange(2)
            part = rnd.randrange(2)
            k = rnd.randint(1, 25)
            first = (model[part] or 0) + 1
            procs[who].stdin.write(f"burst {part} {first} {k}\n")
            procs[who].stdin.flush()
            expect_line(procs[who], f"ok {first + k - 1}")
            model[part] = first + k - 1
            # The other process cached what it read before: it must see this commit now.
            other = 1 - who
            procs[other].stdin.write("read\n")
            procs[other].stdin.flush()
            line = expect_line(procs[other], "offsets")
            got = {int(a): None if b == "None" else int(b) for a, b in (x.split(":") for x in line.split()[1:])}
            for q in (0, 1):
                prev = seen[other][q]
                if got[q] != model[q]:
                    anomalies.append(("stale-read", other, q, got[q], model[q]))
                if prev is not None and (got[q] is None or got[q] < prev):
                    anomalies.append(("committed-offset-went-back", other, q, prev, got[q]))
            seen[other] = got
        for p in procs:
            p.stdin.close()
            assert p.wait(timeout=WAIT) == 0
    finally:
        kill_all(procs)
    log = OffsetLog(os.path.join(path, "groups", "g", "offsets.log"))
    final = log.read()
    anomalies += [("damaged-commit", x) for x in log.problems]
    if {tp.partition: om.offset for tp, om in final.items()} != model:
        anomalies.append(("final", final, model))
    campaign("S28").add(iterations=steps, faults=0, anomalies=len(anomalies))
    assert not anomalies, anomalies[:5]


def test_regression_offsets_log_cache_is_not_fooled_by_a_reused_inode(tmp_path, campaign, monkeypatch):
    """OffsetLog remembered (inode, bytes parsed) and, when both still matched, parsed only what
    follows. Another process compacting twice (two renames) gives the file its old inode number
    back on ext4 (freed inode numbers are handed out again at once: the S28 test above hit it);
    at the old size or beyond, the cached view was kept: a stale committed offset, or a "damaged
    commit" read from the middle of a line. Here every file of the group reports one inode
    number, so the case does not depend on the file system's allocator."""
    path = str(tmp_path / "offsets.log")
    real_fstat = os.fstat

    def fstat(fd):
        st = real_fstat(fd)
        return os.stat_result((st.st_mode, 4242, *tuple(st)[2:])) if st.st_size < 1 << 20 else st

    monkeypatch.setattr(offsets_mod.os, "fstat", fstat)
    mine, theirs = OffsetLog(path), OffsetLog(path)
    a, b = TopicPartition("t", 0), TopicPartition("t", 1)

    def commit(log, tp, o):
        log.append({"gen": -1, "member": "", "ts": 1, "offsets": [[tp.topic, tp.partition, o, ""]]})

    for o in range(1, 8):
        commit(theirs, a, o)
        commit(theirs, b, o)
    assert mine.read()[a].offset == 7
    size = os.path.getsize(path)
    theirs.compact()  # a new file (same inode number, as after two compactions on ext4)
    commit(theirs, a, 999)
    o = 200
    while os.path.getsize(path) < size:
        commit(theirs, b, o)
        o += 1
    got = mine.read()
    fresh = OffsetLog(path).read()
    campaign("S28").add(iterations=1, faults=1, anomalies=int(got != fresh or bool(mine.problems)))
    assert got == fresh, (got, fresh)
    assert got[a].offset == 999
    assert mine.problems == []


def child_commit_killer(store_path, kills, seed, compact_bytes):
    """A zygote: forks a committer, SIGKILLs it after a random 0-40 ms, checks the offsets log,
    ``kills`` times. Forked children skip Python start-up, so the kills land anywhere in a commit
    (open, write, fdatasync, compaction). Prints a JSON summary."""
    rnd = random.Random(int(seed))
    offsets_mod.COMPACT_BYTES = int(compact_bytes)
    path = os.path.join(store_path, "groups", "k", "offsets.log")
    last_seen = 0
    acked_total = 0
    anomalies = []
    for i in range(int(kills)):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the committer
            os.close(r)
            try:
                store = LogStore(store_path)
                c = Consumer(store, group_id="k", enable_auto_commit=False)
                c.assign([TP])
                o = c.committed(TP) or 0
                os.write(w, f"start {o}\n".encode())
                while True:
                    o += 1
                    c.commit(offsets={TP: o})
                    os.write(w, f"{o}\n".encode())  # acked: the commit returned
            finally:
                os._exit(1)
        os.close(w)
        time.sleep(rnd.uniform(0, 0.04))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        with os.fdopen(r, "rb") as f:
            said = f.read().decode().split("\n")
        acked = [int(x) for x in said if x and not x.startswith("start")]
        starts = [int(x.split()[1]) for x in said if x.startswith("start")]
        if starts and starts[0] != last_seen:
            anomalies.append(("start-is-not-the-last-commit", i, starts[0], last_seen))
        acked_total += len(acked)
        try:
            log = OffsetLog(path)
            got = log.read().get(TP)
        except Exception as e:  # any failure to parse is the anomaly
            anomalies.append(("does-not-parse", i, repr(e)))
            continue
        value = 0 if got is None else got.offset
        if log.problems:
            anomalies.append(("damaged-commit", i, log.problems[:2]))
        low = acked[-1] if acked else last_seen
        if not low <= value <= low + 1:  # the last acked, or the one in flight when killed
            anomalies.append(("lost-commit" if value < low else "unknown-commit", i, value, low))
        if value < last_seen:
            anomalies.append(("committed-offset-went-back", i, last_seen, value))
        last_seen = max(last_seen, value)
    print(json.dumps({"kills": int(kills), "acked": acked_total, "last": last_seen, "anomalies": anomalies}))


def test_s28_committers_sigkilled_at_random_moments_never_lose_or_tear_a_commit(tmp_path, campaign):
    path = tmp_path / "store"
    with LogStore(path) as s:
        s.create_topic("t", 1)
    kills = iterations(30)
    zygote = spawn("commit-killer", path, kills, 28, 600, env={"OPENBLAS_NUM_THREADS": "1"}, stdin=False)
    try:
        code, out, err = finish(zygote, timeout=WAIT + kills)
    finally:
        kill_all([zygote])
    assert_clean_exit(code, err, "commit killer")
    result = json.loads(out.strip().splitlines()[-1])
    campaign("S28").add(iterations=kills, faults=kills, anomalies=len(result["anomalies"]))
    assert not result["anomalies"], result["anomalies"][:5]
    assert result["acked"] > kills  # the kills did land mid-stream, not before the first commit
    with LogStore(path) as s:  # and a fresh process sees the last one
        c = Consumer(s, group_id="k", enable_auto_commit=False)
        c.assign([TP])
        assert c.committed(TP) == result["last"]
        c.close()


# --- S29: retention vs a reader on the oldest segment ------------------------------------------------


def child_s29(store_path, reset):
    """Read t-0 from 0 with a small fetch size; after a few records (segment 0 in flight, its
    bytes half read directly too), wait for the parent's retention pass, then read on to the
    end. Prints JSON: polled (offset, digest) pairs, seeks (poll indexes), errors."""
    polled, seeks, errors = [], [], []
    with LogStore(store_path) as store:
        log = store.partition("t", 0)
        seg = log.segments[0]
        head = seg.pread(seg.size // 2, 0)  # an in-flight direct read: its first half
        c = Consumer(store, auto_offset_reset=reset, max_partition_fetch_bytes=700, fetch_max_wait_ms=5)
        c.assign([TP])
        c.seek(TP, 0)
        for _ in range(3):
            r = c.poll(5)
            polled.append((r.offset, digest(r.value)))
        print("ready", flush=True)
        sys.stdin.readline()
        tail = seg.pread(seg.size - len(head), len(head))  # the fd outlives the unlink
        end = log.next_offset
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                r = c.poll(0.2)
            except OffsetOutOfRangeError as e:
                errors.append({"offset": e.offset, "log_start_offset": e.log_start_offset})
                c.seek_to_beginning(TP)  # the explicit reset
                seeks.append(len(polled))
                continue
            if r is None:
                log.refresh()
                if c.position(TP) >= log.next_offset >= end:
                    break
                continue
            polled.append((r.offset, digest(r.value)))
        c.close()
    print(
        json.dumps({"polled": polled, "seeks": seeks, "errors": errors, "segment0": digest(head + tail), "end": end}),
        flush=True,
    )


def _s29_store(path):
    with LogStore(path, fsync="never") as s:
        # Old records (2001) and 1 h retention: every closed segment is due; ~12 per segment.
        s.create_topic("t", 1, {"segment.bytes": 4096, "retention.ms": 3600_000})
        fill(s, 150, per_batch=1, timestamp=1_000_000_000_000, recent=5)
        log = s.partition("t", 0)
        assert len(log.segments) > 5
        with open(log.segments[0].log_path, "rb") as f:
            seg0 = f.read()
    return seg0


def test_s29_retention_in_another_process_deletes_the_segment_being_read(tmp_path, campaign):
    anomalies = []
    runs = 0
    for reset in ("none", "earliest"):
        path = tmp_path / reset
        seg0 = _s29_store(path)
        reader = spawn("s29", path, reset)
        try:
            expect_line(reader, "ready")
            # Retention from another process: the CLI job, as cron would run it.
            retention_job(path)
            with LogStore(path) as s:
                start = s.partition("t", 0).log_start_offset
            assert start > 10, start  # segment 0 (and more) went
            code, out, err = finish(reader, "go\n")
        finally:
            kill_all([reader])
        runs += 1
        assert_clean_exit(code, err, f"reader ({reset})")
        res = json.loads(out.strip().splitlines()[-1])
        if res["segment0"] != digest(seg0):
            anomalies.append(("in-flight-read-changed", reset))
        for o, d in res["polled"]:
            if d != digest(value_for(o)):
                anomalies.append(("inconsistent-offsets", reset, o))
        offsets = [o for o, _ in res["polled"]]
        report = Report()
        jumps = [i for i in range(1, len(offsets)) if offsets[i] != offsets[i - 1] + 1]
        if reset == "none":
            # The next fetch past the buffered chunk raised, naming the new start; the reader's
            # own seek_to_beginning is the only move.
            if len(res["errors"]) != 1 or res["errors"][0]["log_start_offset"] != start:
                anomalies.append(("expected-one-OffsetOutOfRange", res["errors"], start))
            check_polls([("t", 0, o) for o in offsets], report, seeks=res["seeks"])
        else:
            # auto_offset_reset="earliest" moved the position once, to the new start.
            if res["errors"] or len(jumps) != 1 or offsets[jumps[0]] != start:
                anomalies.append(("expected-one-reset-to-the-start", res["errors"], jumps, start))
            check_polls([("t", 0, o) for o in offsets], report, seeks=jumps)
        anomalies += [(k, v) for k, vs in report.anomalies.items() for v in vs]
        if offsets[-1] != res["end"] - 1 or offsets[:3] != [0, 1, 2]:
            anomalies.append(("did-not-read-to-the-end", offsets[:3], offsets[-1], res["end"]))
    campaign("S29").add(iterations=runs, faults=runs, anomalies=len(anomalies))
    assert not anomalies, anomalies[:5]


def child_retention_loop(store_path, started, stop):
    """Apply retention (retention.bytes) over and over until the file ``stop`` exists (two
    minutes at most), creating the file ``started`` at its first deletion; prints the passes."""
    passes = deleted = 0
    deadline = time.monotonic() + 120
    with LogStore(store_path) as store:
        while time.monotonic() < deadline and not os.path.exists(stop):
            cut = sum(r.segments_deleted for r in store.apply_retention("t"))
            if cut and not deleted:
                open(started, "w").close()
            deleted += cut
            passes += 1
            time.sleep(0.005)
    print(json.dumps({"passes": passes, "deleted": deleted}))


def child_chase(store_path, out_path, seconds, started):
    """Once retention has begun cutting (the file ``started`` exists), read t-0 from its start
    over and over for ``seconds`` while retention deletes segments under the reads; an
    OffsetOutOfRangeError moves on to the start it names. ``offset digest`` lines to out_path."""
    wait_for("retention's first cut", lambda: os.path.exists(started), timeout=60)
    deadline = time.monotonic() + float(seconds)
    resets = reads = 0
    with LogStore(store_path) as store, open(out_path, "w") as out:
        log = store.partition("t", 0)
        offset = seen_start = 0
        while time.monotonic() < deadline:
            try:
                cols = log.read_records(offset, max_bytes=2048)
            except OffsetOutOfRangeError as e:
                if e.offset >= e.log_start_offset:
                    offset = e.next_offset  # past the end: wait for the writer
                    time.sleep(0.002)
                    continue
                offset = e.log_start_offset
                resets += 1
                continue
            reads += 1
            if not len(cols):
                log.refresh()
                time.sleep(0.001)
                continue
            out.write("".join(f"{o} {digest(v)}\n" for o, v in zip(cols.offsets, cols.values, strict=True)))
            offset = cols.offsets[-1] + 1
            if random.random() < 0.05:
                # Back to a start this reader saw a while ago, where retention cuts: by now it is
                # often gone, and the read must say so (an out-of-range error naming the new start).
                offset, seen_start = seen_start, log.log_start_offset
    print(json.dumps({"resets": resets, "reads": reads}))


def test_s29_readers_chase_a_retention_job_while_a_writer_appends(tmp_path, campaign):
    path = tmp_path / "store"
    with LogStore(path) as s:
        s.create_topic("t", 1, {"segment.bytes": 8192, "retention.bytes": 24576, "index.interval.bytes": 512})
    seconds = 2.0 * iterations(1)
    # The writer's history goes to a file, not a pipe: nobody reads a pipe until the readers are
    # done, and a full pipe would stall the writer (and so retention) after its first 64 KiB.
    w_log = tmp_path / "writer.out"
    with open(w_log, "w") as w_file:
        writer = subprocess.Popen(
            [sys.executable, WRITER, str(path), "29", "--fsync", "never", "--max-records", "8", "--value-bytes", "200"],
            stdout=w_file,
            stderr=subprocess.PIPE,
            text=True,
        )
    # The readers start once retention is cutting and retention goes on until they are done, so
    # that the two overlap however slowly each process starts on a loaded machine.
    started, stop = tmp_path / "retention-started", tmp_path / "retention-stop"
    readers = [spawn("chase", path, tmp_path / f"chase{i}", seconds, started, stdin=False) for i in range(2)]
    job = spawn("retention-loop", path, started, stop, stdin=False)
    try:
        results = []
        for r in [*readers, job]:
            if r is job:
                stop.touch()
            code, out, err = finish(r, timeout=WAIT)
            assert_clean_exit(code, err, "reader or retention job")
            results.append(json.loads(out.strip().splitlines()[-1]))
        writer.send_signal(signal.SIGKILL)
        writer.communicate(timeout=WAIT)
    finally:
        kill_all([writer, *readers, job])
    history = History().parse(w_log.read_text().splitlines())
    report = Report()
    for i in range(2):
        for line in (tmp_path / f"chase{i}").read_text().splitlines():
            o, d = line.split()
            want = history.acked.get(("t", 0, int(o)))
            if want is not None and want != d:
                report.add("inconsistent-offsets", (i, int(o)))
            elif want is None and d not in history.sent:
                report.add("unknown-record", (i, int(o)))
    final = check(history, str(path))
    faults = results[-1]["deleted"]
    reads = sum(r["reads"] for r in results[:2])
    campaign("S29").add(iterations=reads, faults=faults, anomalies=report.count + final.count)
    assert report.ok, str(report)
    assert final.ok, str(final)
    assert faults > 3 and sum(r["resets"] for r in results[:2]) > 0, results  # retention really cut under them


def test_s29_a_group_lagging_behind_retention_restarts_at_the_log_start(tmp_path, campaign):
    path = tmp_path / "store"
    with LogStore(path, fsync="never") as s:
        s.create_topic("t", 1, {"segment.bytes": 4096, "retention.ms": 3600_000})
        fill(s, 120, per_batch=1, timestamp=1_000_000_000_000, recent=5)
        c = Consumer(s, group_id="lag", enable_auto_commit=False)
        c.assign([TP])
        c.commit(offsets={TP: 3})
        c.close()
    retention_job(path)
    anomalies = []
    with LogStore(path) as s:
        start = s.partition("t", 0).log_start_offset
        assert start > 3
        from logstore.groups.admin import describe_group

        describe_group(s, "lag")  # a committed offset below the log start is described, not an error
        strict = Consumer(s, "t", group_id="lag", auto_offset_reset="none", enable_auto_commit=False)
        try:
            strict.poll(5)
            anomalies.append(("no-error-under-none",))
        except OffsetOutOfRangeError as e:
            if (e.offset, e.log_start_offset) != (3, start):
                anomalies.append(("wrong-range", e.offset, e.log_start_offset, start))
        strict.close(autocommit=False)
        lenient = Consumer(s, "t", group_id="lag", auto_offset_reset="earliest", enable_auto_commit=False)
        r = lenient.poll(5)
        if r is None or r.offset != start or r.value != value_for(start):
            anomalies.append(("earliest-did-not-restart-at-the-start", r and r.offset, start))
        lenient.close(autocommit=False)
    campaign("S29").add(iterations=1, faults=1, anomalies=len(anomalies))
    assert not anomalies, anomalies


# --- children ----------------------------------------------------------------------------------------

CHILDREN = {
    "s22": child_s22,
    "dump": child_dump,
    "probe-lock": child_probe_lock,
    "tail": child_tail,
    "member": child_member,
    "committer": child_committer,
    "commit-killer": child_commit_killer,
    "s29": child_s29,
    "retention-loop": child_retention_loop,
    "chase": child_chase,
}

if __name__ == "__main__":
    CHILDREN[sys.argv[1]](*sys.argv[2:])


def test_regression_dump_log_of_a_2gib_length_field_allocated_it(tmp_path):
    """S06 in the inspection tool (found in review): ``dump-log`` read a batch's claimed length
    before checking it against the file, so a damaged length of 0x7ffffff0 allocated 2 GiB."""
    from pathlib import Path

    from logstore import LogStore

    with LogStore(tmp_path / "s") as s:
        s.create_topic("t", 1)
        for i in range(5):
            s.append("t", 0, [b"v%d" % i])
        path = s.partition("t", 0).active_segment.log_path
    raw = bytearray(Path(path).read_bytes())
    second = 12 + int.from_bytes(raw[8:12], "big")
    raw[second + 8 : second + 12] = (0x7FFFFFF0).to_bytes(4, "big")
    Path(path).write_bytes(raw)
    code = (
        "import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30)); "
        f"sys.path.insert(0, {ROOT!r}); from logstore.dump import dump_file; "
        f"lines = list(dump_file({path!r}, deep=True)); print(len(lines))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
