"""Retention: time and size rules at their boundaries, delete_records, crash points, live readers."""

from __future__ import annotations

import hashlib
import itertools
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logstore import Consumer, LogStore, TopicPartition
from logstore.config import TopicConfig
from logstore.errors import InvalidConfigError, OffsetOutOfRangeError, UnknownTopicError
from logstore.groups.admin import describe_group
from logstore.retention import choose_segments
from logstore.storage.log import SegmentInfo

T0 = 1_700_000_000_000
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fill(store, topic="t", segments=5, per_segment=3, partitions=1, **config):
    """A topic whose partitions hold ``segments`` sealed segments of ``per_segment`` one-record
    batches each (timestamps T0 + offset * 1000), plus an empty active segment."""
    cfg = {"segment.bytes": 10_000_000, **config}
    store.create_topic(topic, partitions, cfg)
    for p in range(partitions):
        log = store.partition(topic, p)
        for _ in range(segments):
            for _ in range(per_segment):
                o = log.next_offset
                log.append_records([b"v%d" % o], timestamps=T0 + o * 1000)
            log.roll()
    return store


def offsets(store, topic="t", partition=0):
    log = store.partition(topic, partition)
    return log.log_start_offset, log.next_offset, [s.base_offset for s in log.segments]


# --- the rules ------------------------------------------------------------------------------------


def test_time_retention_at_the_boundary(store):
    fill(store, **{"retention.ms": 10_000})
    # segment 0 holds offsets 0-2, largest timestamp T0 + 2000
    before = T0 + 2000 + 10_000
    assert store.apply_retention(now=before - 1)[0].segments_deleted == 0
    assert store.apply_retention(now=before)[0].segments_deleted == 0  # Kafka deletes only past it
    r = store.apply_retention(now=before + 1)[0]
    assert (r.segments_deleted, r.log_start_offset, r.reason) == (1, 3, "retention.ms")
    assert offsets(store)[0] == 3
    r = store.apply_retention(now=T0 + 8000 + 10_001)[0]  # segments 1 and 2 (largest T0+5000, T0+8000)
    assert (r.segments_deleted, r.log_start_offset) == (2, 9)


def test_retention_ms_minus_one_keeps_everything(store):
    fill(store, **{"retention.ms": -1})
    assert store.apply_retention(now=T0 * 10)[0].segments_deleted == 0


def test_size_retention_deletes_only_while_the_partition_stays_over_the_limit(store):
    fill(store, **{"retention.ms": -1})
    sizes = [s.size for s in store.partition("t", 0).segments]
    seg = sizes[0]
    total = sum(sizes)
    store.alter_topic_config("t", {"retention.bytes": total - seg + 1})  # over by less than a segment
    assert store.apply_retention(now=T0)[0].segments_deleted == 0
    store.alter_topic_config("t", {"retention.bytes": total - seg})  # over by exactly one segment
    r = store.apply_retention(now=T0)[0]
    assert (r.segments_deleted, r.bytes_freed, r.reason) == (1, seg, "retention.bytes")
    store.alter_topic_config("t", {"retention.bytes": 0})
    r = store.apply_retention(now=T0)[0]
    assert r.segments_deleted == 4 and offsets(store)[:2] == (15, 15)


def test_time_and_size_together_run_in_kafkas_order_in_one_pass(store):
    fill(store, **{"retention.ms": 10_000})
    sizes = [s.size for s in store.partition("t", 0).segments]
    store.alter_topic_config("t", {"retention.bytes": sum(sizes) - sizes[0]})  # size: the oldest one
    # time: segments 0 and 1 (largest timestamps T0+2000, T0+5000) are older than 10 s; 2 is not
    r = store.apply_retention(now=T0 + 5000 + 10_001)[0]
    assert (r.segments_deleted, r.reason, r.log_start_offset) == (2, "retention.bytes,retention.ms", 6)
    store.alter_topic_config("t", {"retention.bytes": 2 * sizes[0]})  # 3 equal segments left: over by one
    r = store.apply_retention(now=T0)[0]
    assert (r.segments_deleted, r.reason) == (1, "retention.bytes")


def test_everything_expired_keeps_the_log_end_offset_and_appends_go_on(tmp_path):
    with LogStore(tmp_path / "s") as s:
        s.create_topic("t", 1, {"retention.ms": 1000})
        s.append("t", 0, [b"a", b"b", b"c"], timestamps=T0)  # in the active segment
        r = s.apply_retention(now=T0 + 5000)[0]
        assert r.segments_deleted == 1 and r.log_start_offset == 3
        assert offsets(s) == (3, 3, [3])
        assert s.append("t", 0, [b"d"], timestamps=T0 + 6000).first_offset == 3
    with LogStore(tmp_path / "s") as s:  # and after a reopen
        log = s.partition("t", 0)
        assert (log.log_start_offset, log.next_offset) == (3, 4)
        assert s.read("t", 0, 3).values == [b"d"]
        with pytest.raises(OffsetOutOfRangeError):
            s.read("t", 0, 2)


def test_an_empty_log_has_nothing_due(store):
    store.create_topic("t", 1, {"retention.ms": 0, "retention.bytes": 0})
    assert store.apply_retention(now=T0 * 2)[0].segments_deleted == 0


@settings(max_examples=150, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 1000), min_size=1, max_size=8),
    ages=st.lists(st.integers(0, 100), min_size=8, max_size=8),
    retention_ms=st.integers(-1, 100),
    retention_bytes=st.integers(-1, 5000),
    start=st.integers(0, 80),
)
def test_chooser_matches_kafkas_rules(sizes, ages, retention_ms, retention_bytes, start):
    now = 1000
    infos = [
        SegmentInfo(i * 10, (i + 1) * 10, size, i == len(sizes) - 1, now - ages[i]) for i, size in enumerate(sizes)
    ]
    cfg = TopicConfig.from_layers({"retention.ms": retention_ms, "retention.bytes": retention_bytes})
    n, reason = choose_segments(cfg, now)(infos, start)

    # Kafka's deleteOldSegments: log start offset, then size, then time, each on what is left.
    last = len(infos) - 1 if sizes[-1] == 0 else len(infos)
    k = 0
    while k < len(infos) - 1 and k < last and infos[k + 1].base_offset <= start:
        k += 1
    if retention_bytes >= 0:
        over = sum(sizes[k:]) - retention_bytes
        while k < last and over - sizes[k] >= 0:
            over -= sizes[k]
            k += 1
    if retention_ms >= 0:
        while k < last and ages[k] > retention_ms:
            k += 1
    assert n == k
    assert bool(reason) == bool(n)


# --- delete_records ---------------------------------------------------------------------------------


def test_delete_records_moves_the_start_and_drops_whole_segments_below_it(tmp_path):
    with LogStore(tmp_path / "s") as s:
        fill(s)
        assert s.delete_records("t", 0, 7) == 7
        assert offsets(s) == (7, 15, [6, 9, 12, 15])  # 0-2 and 3-5 deleted, 6-8 kept (7 is in it)
        with pytest.raises(OffsetOutOfRangeError):
            s.read("t", 0, 6)
        assert s.read("t", 0, 7).offsets[0] == 7
        assert s.delete_records("t", 0, 5) == 7  # never backwards
        with pytest.raises(OffsetOutOfRangeError):
            s.delete_records("t", 0, 16)
        with LogStore(tmp_path / "s") as other:  # another opener sees the new start at once
            assert other.partition("t", 0).log_start_offset == 7
    with LogStore(tmp_path / "s") as s:
        assert offsets(s)[0] == 7  # checkpointed
        assert s.delete_records("t", 0, -1) == 15  # -1: up to the log end
        assert offsets(s) == (15, 15, [15])


def test_a_process_that_had_the_log_open_sees_the_new_start_on_its_next_read(tmp_path):
    with LogStore(tmp_path / "s") as a, LogStore(tmp_path / "s") as b:
        fill(a)
        assert b.read("t", 0, 0).offsets[0] == 0
        a.delete_records("t", 0, 4)
        with pytest.raises(OffsetOutOfRangeError) as e:
            b.read("t", 0, 1)
        assert e.value.log_start_offset == 4


# --- safety ---------------------------------------------------------------------------------------


def tree_hashes(path):
    out = {}
    for root, _, files in os.walk(path):
        for f in files:
            p = os.path.join(root, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, path)] = hashlib.sha256(fh.read()).hexdigest()
    return out


def test_dry_run_changes_no_file(tmp_path):
    with LogStore(tmp_path / "s") as s:
        fill(s, **{"retention.ms": 1})
    with LogStore(tmp_path / "s") as s:
        s.partition("t", 0)  # opening (and closing) a store writes files of its own: not compared
        before = tree_hashes(tmp_path / "s")
        plan = s.apply_retention(dry_run=True, now=T0 * 2)
        assert plan[0].segments_deleted == 5 and plan[0].dry_run and plan[0].log_start_offset == 15
        assert tree_hashes(tmp_path / "s") == before
        assert s.apply_retention(now=T0 * 2)[0].segments_deleted == 5  # the plan was the real one


CRASHER = textwrap.dedent(
    """
    import os, signal, sys
    sys.path.insert(0, {root!r})
    from logstore import LogStore
    from logstore.storage import log as logmod
    point = sys.argv[2]
    def die(*a, **k):
        os.kill(os.getpid(), signal.SIGKILL)
    if point == "mid-rename":
        from logstore import faults
        real = os.rename
        calls = []
        def rename(a, b):
            calls.append(a)
            real(a, b)
            if len(calls) == 2:  # one segment's .log and .index renamed, its .timeindex not
                die()
        faults.install(type("Shim", (), {{"rename": staticmethod(rename)}}))
    elif point == "start-advanced":
        logmod.PartitionLog._write_shared_start = die
    elif point == "renamed":
        logmod.fsync_dir = die
    elif point == "checkpointed":
        logmod.remove_quietly = die
    s = LogStore(sys.argv[1])
    s.apply_retention(now={now})
    print("no crash")
    """
)


@pytest.mark.parametrize("point", ["start-advanced", "mid-rename", "renamed", "checkpointed"])
def test_a_crash_at_any_step_of_a_deletion_loses_and_resurrects_nothing(tmp_path, point):
    path = tmp_path / "s"
    with LogStore(path) as s:
        fill(s, **{"retention.ms": 1000})
        s.append("t", 0, [b"live"], timestamps=T0 * 10)  # the active segment is not due
    script = tmp_path / "crash.py"
    script.write_text(CRASHER.format(root=ROOT, now=T0 * 2))
    r = subprocess.run([sys.executable, str(script), str(path), point], capture_output=True, timeout=60)
    assert r.returncode == -signal.SIGKILL, r.stderr.decode()
    with LogStore(path) as s:
        log = s.partition("t", 0)
        start, end = log.log_start_offset, log.next_offset
        assert end == 16 and log.verify() == []
        # Whatever the crash left, the log is a suffix of the original: contiguous from its start,
        # every record's bytes as written, and nothing below the start comes back.
        got = []
        o = start
        while o < end:
            cols = s.read("t", 0, o)
            got += list(zip(cols.offsets, cols.values, strict=True))
            o = cols.offsets[-1] + 1
        assert [o for o, _ in got] == list(range(start, end))
        assert all(v == (b"live" if o == 15 else b"v%d" % o) for o, v in got)
        assert start == log.segments[0].base_offset or start > log.segments[0].base_offset
        assert not [f for f in os.listdir(path / "t-0") if f.endswith(".deleted")]
        # and retention finishes the job
        s.apply_retention(now=T0 * 2)
        assert offsets(s)[:2] == (15, 16)


def test_a_reader_in_another_process_finishes_or_resets_never_reads_wrong_bytes(tmp_path):
    path = tmp_path / "s"
    with LogStore(path) as s:
        fill(s, segments=40, per_segment=50, **{"retention.ms": 1000})
        s.append("t", 0, [b"end"], timestamps=T0 * 10)
    reader = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {ROOT!r})
        from logstore import LogStore, Consumer
        with LogStore({str(path)!r}) as s, Consumer(s, "t", stop_at_end=True, max_partition_fetch_bytes=2048) as c:
            for r in c:
                print(r.offset, r.value.decode(), flush=True)
                time.sleep(0.0005)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", reader], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.6)  # it is reading the oldest segments
    with LogStore(path) as s:
        r = s.apply_retention(now=T0 * 10)[0]
        assert r.segments_deleted == 40
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    rows = [ln.split() for ln in out.splitlines()]
    offs = [int(o) for o, _ in rows]
    assert offs == sorted(set(offs))  # in order, nothing twice
    assert all(v == ("end" if int(o) == 2000 else f"v{o}") for o, v in rows)  # never wrong bytes
    assert offs[-1] == 2000 and offs[0] == 0
    jumped = [b for a, b in itertools.pairwise(offs) if b != a + 1]
    assert jumped in ([], [2000])  # finished the old segments, or reset to the start (2000)


def test_a_group_behind_retention_restarts_per_its_reset_policy_and_describe_says_so(store):
    fill(store, **{"retention.ms": 1000})
    store.append("t", 0, [b"live"], timestamps=T0 * 10)
    with Consumer(store, "t", group_id="g", enable_auto_commit=False) as c:
        r = c.poll(1.0)
        c.commit(r)
    store.apply_retention(now=T0 * 10)
    d = describe_group(store, "g")
    assert d.partitions[0].current_offset == 1 and any("below the log start offset 15" in p for p in d.problems)
    with Consumer(store, "t", group_id="g", auto_offset_reset="none") as c, pytest.raises(OffsetOutOfRangeError):
        c.poll(1.0)  # its committed offset was deleted, and "none" says: raise
    with Consumer(store, "t", group_id="g") as c:
        assert c.poll(1.0).offset == 15  # earliest: the new log start


def test_background_retention_thread(tmp_path):
    with LogStore(tmp_path / "s", retention_check_interval_ms=20) as s:
        fill(s, **{"retention.ms": 1000})  # timestamps from 2023: long expired by the wall clock
        deadline = time.monotonic() + 10
        while offsets(s)[0] < 15 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert offsets(s)[0] == 15 and s.retention_errors == []
    with pytest.raises(InvalidConfigError):
        LogStore(tmp_path / "s", retention_check_interval_ms=0)


def test_alter_topic_config(store):
    store.create_topic("t", 2, {"retention.ms": "7d"})
    cfg = store.alter_topic_config("t", {"retention.ms": "3d", "retention.bytes": "1GiB"})
    assert (cfg.retention_ms, cfg.retention_bytes) == (3 * 86_400_000, 1 << 30)
    assert store.topic_config("t").retention_ms == 3 * 86_400_000
    assert store.partition("t", 0).config.retention_ms == 3 * 86_400_000
    cfg = store.alter_topic_config("t", delete=["retention.bytes"])
    assert cfg.retention_bytes == -1
    with pytest.raises(InvalidConfigError, match=r"retention\.ms"):
        store.alter_topic_config("t", {"retention.mss": 1})
    with pytest.raises(UnknownTopicError):
        store.alter_topic_config("nope", {"retention.ms": 1})


def test_retention_of_one_topic_leaves_the_others(store):
    fill(store, "a", **{"retention.ms": 1000})
    fill(store, "b", **{"retention.ms": 1000})
    results = store.apply_retention("a", now=T0 * 10)
    assert {r.topic for r in results} == {"a"}
    assert offsets(store, "b")[0] == 0 and offsets(store, "a")[0] == 15
    assert TopicPartition("a", 0) == TopicPartition(results[0].topic, results[0].partition)


# --- found in review: each failed before its fix -----------------------------------------------------


def test_a_deletion_during_a_read_in_this_process_skips_no_kept_record(store, monkeypatch):
    from logstore.storage import segment as segmod

    fill(store, segments=10, per_segment=10)
    log = store.partition("t", 0)
    real = segmod.LogSegment.read
    done = []

    def read(self, position, size):
        data = real(self, position, size)
        if not done:  # another thread deletes from the front while this read is under way
            done.append(log.delete_records(20))
        return data

    monkeypatch.setattr(segmod.LogSegment, "read", read)
    cols = log.read_records(30, max_bytes=1 << 20)
    assert done == [20]
    assert cols.offsets == list(range(30, 30 + len(cols.offsets))) and len(cols.offsets) >= 20


def test_retention_by_a_process_whose_topic_was_deleted_and_made_again_touches_nothing_new(tmp_path):
    from logstore.errors import UnknownTopicError as Gone

    with LogStore(tmp_path / "s") as a, LogStore(tmp_path / "s") as b:
        fill(a, **{"retention.ms": 1000})
        old = a.partition("t", 0)  # a has the old topic's log open
        b.delete_topic("t")
        b.create_topic("t", 1, {"retention.ms": 1000})
        b.append("t", 0, [b"new"] * 5, timestamps=T0)
        with pytest.raises(Gone):
            old.delete_oldest_segments(choose_segments(old.config, T0 * 2))
        assert b.read("t", 0, 0).values == [b"new"] * 5
        assert [r.segments_deleted for r in a.apply_retention("t", now=T0 * 2)] == [1]  # the new log
        assert b.partition("t", 0).next_offset == 5


def test_offset_for_time_while_another_process_deletes_does_not_raise(tmp_path, monkeypatch):
    with LogStore(tmp_path / "s") as a, LogStore(tmp_path / "s") as b:
        fill(a)
        log = a.partition("t", 0)  # its sealed segments' time indexes are not open yet
        real = type(log).refresh
        calls = []

        def refresh(self):
            real(self)
            if not calls:
                calls.append(b.delete_records("t", 0, 7))

        monkeypatch.setattr(type(log), "refresh", refresh)
        got = log.offset_for_time(T0)
        assert calls == [7] and got is not None and got.offset == 7


def test_truncating_below_a_mid_batch_start_moves_the_start_down_with_the_end(tmp_path):
    with LogStore(tmp_path / "s") as s:
        s.create_topic("t", 1)
        s.append("t", 0, [b"a"] * 10)
        s.append("t", 0, [b"b"] * 10)
        log = s.partition("t", 0)
        log.delete_records(15)
        log.truncate_to(17)  # takes the whole batch 10-19
        assert (log.log_start_offset, log.next_offset) == (10, 10)
        assert s.append("t", 0, [b"c"] * 3).first_offset == 10
        assert s.read("t", 0, 10).values == [b"c"] * 3
    with LogStore(tmp_path / "s") as s:
        log = s.partition("t", 0)
        assert (log.log_start_offset, log.next_offset) == (10, 13)


def test_deleting_and_making_a_topic_again_waits_for_a_retention_pass_in_progress(tmp_path):
    import threading

    with LogStore(tmp_path / "s") as a, LogStore(tmp_path / "s") as b:
        fill(a, **{"retention.ms": 1000})
        log = a.partition("t", 0)
        rules = choose_segments(log.config, T0 * 2)
        in_pass = threading.Event()

        def slow_choose(infos, start):
            in_pass.set()
            time.sleep(0.5)  # the pass holds the partition flock meanwhile
            return rules(infos, start)

        def recreate():
            in_pass.wait(5)
            b.delete_topic("t")
            b.create_topic("t", 1)
            b.append("t", 0, [b"new"] * 5)

        t = threading.Thread(target=recreate)
        t.start()
        r = log.delete_oldest_segments(slow_choose)
        t.join(10)
        assert r.segments_deleted == 5  # the old topic's segments
        assert b.read("t", 0, 0).values == [b"new"] * 5  # the new topic's data is intact
