"""Several real processes on one store: concurrent writers, a live reader, kill -9."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time

import pytest

from logstore import LogStore
from logstore.errors import UnknownTopicError
from logstore.storage import log as log_module

PROCS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "procs.py")


def spawn(*args, start_at=0.0):
    env = dict(os.environ, START_AT=str(start_at))
    return subprocess.Popen([sys.executable, PROCS, *map(str, args)], stdout=subprocess.PIPE, text=True, env=env)


def acks(output):
    return [tuple(map(int, ln.split()[1:])) for ln in output.splitlines() if ln.startswith("ack ")]


@pytest.fixture
def small_store(tmp_path):
    path = tmp_path / "store"
    with LogStore(path) as s:
        s.create_topic("t", 1, {"segment.bytes": 4096, "index.interval.bytes": 256})
    return path


def read_all(path):
    """Every value of t-0 in offset order, after checking the log and that offsets are contiguous."""
    with LogStore(path) as s:
        log = s.partition("t", 0)
        assert log.verify() == []
        values = []
        offset = 0
        while offset < log.next_offset:
            cols = log.read_records(offset)
            assert cols.offsets == list(range(offset, offset + len(cols)))  # contiguous
            values += [v.decode() for v in cols.values]
            offset = cols.offsets[-1] + 1
    return values


def check_exactly_once(path, tags_counts, acked):
    values = read_all(path)
    for tag, count in tags_counts.items():
        mine = [v for v in values if v.startswith(tag + "-")]
        assert mine == [f"{tag}-{i}" for i in range(count)]  # each once, in the writer's order
    for first, last, value_prefix in acked:
        assert all(values[o].startswith(value_prefix) for o in range(first, last + 1))
    return values


def test_two_writers_interleave_without_loss_or_duplication(small_store):
    start = time.time() + 1.5
    a = spawn("append", small_store, "t", 0, 1500, "A", 1, start_at=start)
    b = spawn("append", small_store, "t", 0, 1500, "B", 2, start_at=start)
    out_a, _ = a.communicate(timeout=120)
    out_b, _ = b.communicate(timeout=120)
    assert a.returncode == 0 and b.returncode == 0
    acked = [(f, la, "A-") for f, la in acks(out_a)] + [(f, la, "B-") for f, la in acks(out_b)]
    values = check_exactly_once(small_store, {"A": 1500, "B": 1500}, acked)
    assert len(values) == 3000
    # They really did interleave (both rolled segments under each other).
    firsts = [v[0] for v in values]
    assert sum(1 for x, y in itertools.pairwise(firsts) if x != y) > 10


def test_reader_in_another_process_sees_new_data_without_reopening(small_store):
    reader = spawn("follow", small_store, "t", 0, 800, 60)
    time.sleep(0.3)
    with LogStore(small_store) as s:
        log = s.partition("t", 0)
        for i in range(0, 800, 4):
            log.append_records([f"W-{j}".encode() for j in range(i, i + 4)])
    out, _ = reader.communicate(timeout=90)
    assert reader.returncode == 0
    lines = out.splitlines()
    assert lines == [f"{i} W-{i}" for i in range(800)]


def finish(proc):
    """After a kill: the rest of stdout through the same buffered file (communicate(timeout=...)
    would read the raw pipe and drop what readline() had already buffered), then reap."""
    rest = proc.stdout.read()
    proc.wait(timeout=30)
    return rest


def wait_for_acks(proc, n, timeout=60):
    """Read ack lines until ``n`` arrived; return them (the rest is read after the kill)."""
    lines = []
    deadline = time.monotonic() + timeout
    while len(lines) < n and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
    return "".join(lines)


def test_kill_9_loses_no_acknowledged_record(small_store):
    for round_ in range(3):
        w = spawn("append", small_store, "t", 0, 10**6, f"K{round_}", round_)
        head = wait_for_acks(w, 50 + 100 * round_)
        w.send_signal(signal.SIGKILL)
        out = finish(w)
        acked = acks(head + out)
        assert len(acked) >= 50
        values = read_all(small_store)
        mine = [v for v in values if v.startswith(f"K{round_}-")]
        n_acked = sum(la - f + 1 for f, la in acked)
        # Everything acknowledged is there, in order; at most one unacknowledged batch more.
        assert mine[:n_acked] == [f"K{round_}-{i}" for i in range(n_acked)]
        assert len(mine) - n_acked <= 7
        for f, _ in acked:
            assert values[f].startswith(f"K{round_}-")


def test_writer_killed_mid_stream_while_another_keeps_writing(small_store):
    start = time.time() + 1.5
    survivor = spawn("append", small_store, "t", 0, 3000, "S", 7, start_at=start)
    victim = spawn("append", small_store, "t", 0, 10**6, "V", 8, start_at=start)
    head = wait_for_acks(victim, 200)
    victim.send_signal(signal.SIGKILL)
    out_v = head + finish(victim)
    out_s, _ = survivor.communicate(timeout=120)
    assert survivor.returncode == 0
    acked_v = acks(out_v)
    with LogStore(small_store) as s:
        log = s.partition("t", 0)
        assert log.verify() == []
    values = check_exactly_once(small_store, {"S": 3000}, [(f, la, "S-") for f, la in acks(out_s)])
    n_v = sum(la - f + 1 for f, la in acked_v)
    vs = [v for v in values if v.startswith("V-")]
    assert vs[:n_v] == [f"V-{i}" for i in range(n_v)]


def test_producer_processes_on_one_topic_exactly_once(tmp_path):
    path = tmp_path / "store"
    with LogStore(path) as s:
        s.create_topic("events", 3, {"segment.bytes": 8192})
    start = time.time() + 1.5
    procs = [spawn("produce", path, "events", 3000, f"P{n}", start_at=start) for n in range(3)]
    for p in procs:
        p.communicate(timeout=180)
        assert p.returncode == 0
    with LogStore(path) as s:
        seen: dict[str, list[int]] = {}
        for part in range(3):
            log = s.partition("events", part)
            assert log.verify() == []
            cols = log.read_records(0, max_bytes=1 << 26)
            for v in cols.values:
                tag, i = v.decode().split("-")
                seen.setdefault(f"{tag}-{int(i) % 10}", []).append(int(i))
    for n in range(3):
        got = sorted(i for k, v in seen.items() if k.startswith(f"P{n}-") for i in v)
        assert got == list(range(3000))  # every record exactly once
    for key, order in seen.items():
        assert order == sorted(order), key  # one key: one partition, in send order


@pytest.mark.parametrize("mapped", [False, True], ids=["pread", "mapped"])
def test_a_reader_sees_another_handle_rewrite_the_log(small_store, monkeypatch, mapped):
    # A partition read often checks the layout generation through a map of the lock file instead
    # of a pread each time. Either way, a truncation and rewrite by another handle (another
    # process, as far as the files go) is seen on the next read: never the old bytes.
    def v(kind, i):
        return b"%s-%d " % (kind, i) * 30  # 30 records fill a few 4 KiB segments

    with LogStore(small_store) as a, LogStore(small_store) as b:
        wlog = a.partition("t", 0)
        for i in range(30):
            wlog.append_records([v(b"old", i)])
        rlog = b.partition("t", 0)
        if mapped:
            for _ in range(300):
                rlog.read_records(3, max_records=1)
            assert rlog._shared is not None  # the map is in use from here on
        else:
            monkeypatch.setattr(log_module, "_SHARED_MAPS", 0)
        assert rlog.read_records(20, max_records=1).values == [v(b"old", 20)]
        assert len(rlog.segments) > 1
        wlog.truncate_to(10)
        for i in range(10, 30):
            wlog.append_records([v(b"new", i)])
        assert rlog.read_records(20, max_records=1).values == [v(b"new", 20)]
        assert rlog.read_records(10, max_records=40).values == [v(b"new", i) for i in range(10, 30)]
        assert (rlog._shared is not None) == mapped


def test_lock_file_maps_are_bounded_and_given_back(tmp_path):
    # Partitions read often check the layout generation through a map of their lock file; at
    # most _SHARED_MAPS per process (each costs a map and a descriptor), given back on close and
    # when a log is dropped without close.
    import gc

    before = log_module._shared_maps
    with LogStore(tmp_path / "s") as s:
        s.create_topic("t", 12)
        logs = [s.partition("t", p) for p in range(12)]
        for log in logs:
            log.append_records([b"x"])
            for _ in range(300):
                log.read_records(0, max_records=1)
        mapped = [log for log in logs if log._shared is not None]
        assert len(mapped) == log_module._SHARED_MAPS - before
        assert log_module._shared_maps == log_module._SHARED_MAPS
        mapped[0].close()
        assert log_module._shared_maps == log_module._SHARED_MAPS - 1
        mapped[0].close()  # twice: nothing given back twice
        assert log_module._shared_maps == log_module._SHARED_MAPS - 1
        for _ in range(4096):
            logs[-1].read_records(0, max_records=1)  # an unmapped one asks again 4096 reads on
        assert logs[-1]._shared is not None and log_module._shared_maps == log_module._SHARED_MAPS
        del logs, mapped, log
    gc.collect()
    assert log_module._shared_maps == before


@pytest.mark.parametrize("mapped", [False, True], ids=["pread", "mapped"])
def test_a_log_held_open_across_a_delete_and_remake_says_the_topic_was_deleted(small_store, monkeypatch, mapped):
    # Another process deletes the topic and makes it again under the same name, with other
    # records. A log this process still holds must not read the new topic's segment files by
    # name under its old view (a mix of two topics): its next read says the topic was deleted.
    # The store hands out a new log, which reads the new topic.
    if not mapped:
        monkeypatch.setattr(log_module, "_SHARED_MAPS", 0)
    with LogStore(small_store) as s:
        log = s.partition("t", 0)
        for i in range(200):
            log.append_records([b"old-%d " % i * 20])
        assert len(log.segments) > 5
        for _ in range(300):
            assert log.read_records(0, max_records=1).values == [b"old-0 " * 20]  # segment 0 opened
        assert (log._shared is not None) == mapped
        out = subprocess.run(
            [sys.executable, PROCS, "remake", str(small_store), "t", "4096", "200", "new"],
            capture_output=True,
            text=True,
        )
        assert out.returncode == 0, out.stderr
        for offset in (0, 150):  # in the segment it had open, and in one it never opened
            with pytest.raises(UnknownTopicError, match="deleted since partition t-0 was opened"):
                log.read_records(offset, max_records=1)
        fresh = s.partition("t", 0)
        assert fresh is not log
        assert fresh.read_records(150, max_records=1).values == [b"new-150"]
