"""Consumer: assignment, positioning (offset, time, reset policies), fair bounded reads, live
following (also across processes), bad input, corruption, and a property test against read_records."""

from __future__ import annotations

import datetime as dt
import os
import struct
import subprocess
import sys
import tempfile
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logstore import (
    ColumnChunk,
    Consumer,
    CorruptRecordError,
    InvalidConfigError,
    LogClosedError,
    LogStore,
    NoOffsetForPartitionError,
    NotAssignedError,
    OffsetAndTimestamp,
    OffsetOutOfRangeError,
    Producer,
    Record,
    TopicPartition,
    UnknownPartitionError,
    UnknownTopicError,
)
from logstore.records import build_batch, iter_batches
from logstore.records.batch import RECORD_BATCH_OVERHEAD
from logstore.storage.files import LOG_START_OFFSET_CHECKPOINT, write_checkpoint

PROCS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "procs.py")
TP0 = TopicPartition("t", 0)
T0 = 1_700_000_000_000  # ms


def fill(store, sizes, topic="t", partition=0, ts=None):
    """Append one batch per entry of ``sizes``; record at offset o has value b"v<o>", key b"k<o>" and
    timestamp ``ts(o)`` (default T0 + o). Returns the batches' (first, last) offsets."""
    ts = ts or (lambda o: T0 + o)
    out = []
    log = store.partition(topic, partition)
    for n in sizes:
        first = log.next_offset
        offs = range(first, first + n)
        r = store.append(
            topic,
            partition,
            [b"v%d" % o for o in offs],
            keys=[b"k%d" % o for o in offs],
            timestamps=[ts(o) for o in offs],
        )
        assert (r.first_offset, r.last_offset) == (first, first + n - 1)
        out.append((r.first_offset, r.last_offset))
    return out


def offsets(records):
    return [r.offset for r in records]


def reference(store, topic, partition, start):
    """Every record of a partition from ``start`` on, through read_records (the reference reader)."""
    log = store.partition(topic, partition)
    offs, keys, values = [], [], []
    offset = start
    while offset < log.next_offset:
        cols = log.read_records(offset, max_bytes=1 << 22)
        offs += cols.offsets
        keys += cols.keys
        values += cols.values
        offset = cols.offsets[-1] + 1
    return offs, keys, values


@pytest.fixture
def t20(store):
    """Topic t (1 partition) with 20 records in batches of 3, 5, 1, 7, 4 (offsets 0-2, 3-7, 8, 9-15, 16-19)."""
    store.create_topic("t", 1)
    fill(store, [3, 5, 1, 7, 4])
    return store


# --- the record ---------------------------------------------------------------------------------


def test_record_fields_are_immutable_and_complete(t20):
    with Consumer(t20, "t") as c:
        r = c.poll(1.0)
    assert isinstance(r, Record)
    assert (r.topic, r.partition, r.offset, r.timestamp, r.timestamp_type) == ("t", 0, 0, T0, "create")
    assert (r.key, r.value, r.headers) == (b"k0", b"v0", ())
    assert r.datetime == dt.datetime.fromtimestamp(T0 / 1000, dt.timezone.utc)
    assert r.datetime.tzinfo is not None
    assert r.topic_partition == TP0
    with pytest.raises(AttributeError):
        r.value = b"other"
    with pytest.raises(TypeError):
        r[6] = b"other"
    hash(r)  # hashable, as an immutable value is


def test_headers_and_null_keys_and_values_round_trip(store):
    store.create_topic("t", 1)
    hdrs = [[("a", b"1"), ("b", None), ("a", b"")], None, [("x", b"\x00\xff")]]
    store.append("t", 0, [b"one", None, b""], keys=[None, b"k", b""], headers=hdrs, timestamps=T0)
    with Producer(store, linger_ms=0) as prod:
        prod.send("t", None, key=None, partition=0, headers={"h": b"v", "n": None}, timestamp=T0 + 5).get(10)
    with Consumer(store, "t", stop_at_end=True) as c:
        rs = list(c)
    assert [(r.key, r.value) for r in rs] == [(None, b"one"), (b"k", None), (b"", b""), (None, None)]
    assert rs[0].headers == (("a", b"1"), ("b", None), ("a", b""))
    assert rs[1].headers == ()
    assert rs[2].headers == (("x", b"\x00\xff"),)
    assert rs[3].headers == (("h", b"v"), ("n", None))
    assert [r.timestamp for r in rs] == [T0, T0, T0, T0 + 5]
    assert all(isinstance(r.key, (bytes, type(None))) and isinstance(r.value, (bytes, type(None))) for r in rs)


def test_log_append_time_topic_gives_log_append_timestamps(tmp_path, clock):
    with LogStore(tmp_path / "s", clock=clock) as s:
        s.create_topic("la", 1, {"message.timestamp.type": "LogAppendTime"})
        s.create_topic("ct", 1)
        for topic in ("la", "ct"):
            s.append(topic, 0, [b"a", b"b"], timestamps=[1000, 2000])
        with Consumer(s, "la", "ct", stop_at_end=True) as c:
            rs = {(r.topic, r.offset): r for r in c}
    now_ms = int(clock.t * 1000)
    for o in (0, 1):
        la = rs[("la", o)]
        assert la.timestamp_type == "log_append"
        assert la.timestamp == now_ms  # the append time, not the producer's 1000 / 2000
        assert la.datetime == dt.datetime.fromtimestamp(now_ms / 1000, dt.timezone.utc)
        assert rs[("ct", o)].timestamp_type == "create"
    assert [rs[("ct", o)].timestamp for o in (0, 1)] == [1000, 2000]
    with LogStore(tmp_path / "s", clock=clock) as s, Consumer(s, "la") as c:
        tp = TopicPartition("la", 0)
        c.seek_to_time(1500)  # by the append time: both records are newer than the producer's times
        assert c.position(tp) == 0
        c.seek_to_time(now_ms)
        assert c.position(tp) == 0
        c.seek_to_time(now_ms + 1)
        assert c.position(tp) == 2


def test_record_without_timestamp_has_no_datetime():
    r = Record("t", 0, 0, -1, "create", None, None, ())
    assert r.datetime is None


# --- replay by offset ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        (0, list(range(20))),  # the beginning
        (4, list(range(4, 20))),  # the middle of batch 3-7
        (10, list(range(10, 20))),  # the middle of batch 9-15
        (8, list(range(8, 20))),  # a one-record batch
        (19, [19]),  # the last offset
        (20, []),  # the end
    ],
)
def test_replay_from_offset(t20, start, expected):
    with Consumer(t20, stop_at_end=True) as c:
        c.assign([TP0])
        c.seek(TP0, start)  # right after assign, before any poll
        assert c.position(TP0) == start
        rs = list(c)
        assert offsets(rs) == expected
        assert [r.value for r in rs] == [b"v%d" % o for o in expected]
        assert [r.key for r in rs] == [b"k%d" % o for o in expected]
        assert c.position(TP0) == 20


def test_replay_from_end_sees_only_new_records(t20):
    with Consumer(t20, "t") as c:
        c.seek_to_end()
        assert c.position(TP0) == 20
        assert c.poll(0.05) is None
        fill(t20, [2])
        assert offsets(c.consume(10, timeout=2.0)) == [20, 21]
        c.seek_to_beginning(TP0)
        assert c.position(TP0) == 0
        assert c.poll(1.0).offset == 0


def test_seek_accepts_a_tuple_and_poll_consume_mix(t20):
    with Consumer(t20, "t") as c:
        c.seek(("t", 0), 2)
        assert c.poll(1.0).offset == 2
        got = c.consume(4, timeout=1.0)
        assert offsets(got) == [3, 4, 5, 6]
        assert c.position(TP0) == 7
        assert c.poll(1.0).offset == 7
        assert offsets(c.consume(100, timeout=0.5)) == list(range(8, 20))
        t = time.monotonic()
        assert c.consume(5, timeout=0.2) == []
        assert 0.15 <= time.monotonic() - t < 2.0


# --- replay by time -------------------------------------------------------------------------------


@pytest.fixture
def timed(store):
    """t-0: offsets 0..9 with timestamps 1000, 1010, ..., 1090 in batches of 4, 4, 2."""
    store.create_topic("t", 1)
    fill(store, [4, 4, 2], ts=lambda o: 1000 + 10 * o)
    return store


@pytest.mark.parametrize(
    ("when", "first"),
    [
        (0, 0),  # before the data
        (1000, 0),  # exactly the first
        (1050, 5),  # exactly a record inside a batch
        (1051, 6),  # between two records of one batch
        (1075, 8),  # between two batches (7 is 1070 in batch 4-7, 8 is 1080 in batch 8-9)
        (1090, 9),  # exactly the last
        (1091, 10),  # after the data: the end
    ],
)
def test_seek_to_time(timed, when, first):
    with Consumer(timed, "t", stop_at_end=True) as c:
        c.seek_to_time(when)
        assert c.position(TP0) == first
        rs = list(c)
        assert offsets(rs) == list(range(first, 10))
        assert all(r.timestamp >= when for r in rs)
        expected = None if first == 10 else OffsetAndTimestamp(first, 1000 + 10 * first)
        assert c.offsets_for_times({TP0: when}) == {TP0: expected}


def test_seek_to_time_takes_a_datetime(timed):
    with Consumer(timed, "t") as c:
        c.seek_to_time(dt.datetime.fromtimestamp(1.051, dt.timezone.utc))
        assert c.position(TP0) == 6
        c.seek_to_time(dt.datetime(1970, 1, 1, 0, 0, 1, 75000))  # naive: UTC
        assert c.position(TP0) == 8
        assert c.poll(1.0).offset == 8


def test_seek_to_time_with_out_of_order_timestamps_finds_first_offset(store):
    # Timestamps not monotonic across and within batches: the answer is the first offset (in log
    # order) whose timestamp is >= the one asked for, as Kafka's ListOffsets.
    store.create_topic("t", 1)
    ts = [100, 500, 200, 300, 250, 900, 50, 400]
    store.append("t", 0, [b"a", b"b", b"c"], timestamps=ts[:3])
    store.append("t", 0, [b"d", b"e"], timestamps=ts[3:5])
    store.append("t", 0, [b"f", b"g", b"h"], timestamps=ts[5:])
    with Consumer(store, "t") as c:
        for when in (0, 100, 150, 260, 450, 500, 501, 900, 901):
            want = next((o for o, t in enumerate(ts) if t >= when), 8)
            c.seek_to_time(when, TP0)
            assert c.position(TP0) == want, when
            r = c.poll(0.01)
            assert (r.offset if r else 8) == want


# --- watermarks and offset queries ----------------------------------------------------------------


def test_beginning_end_and_watermark_offsets(t20):
    t20.create_topic("u", 2)
    fill(t20, [4], topic="u", partition=1)
    with Consumer(t20, "t") as c:
        tps = [TP0, TopicPartition("u", 0), TopicPartition("u", 1)]
        assert c.beginning_offsets(tps) == dict.fromkeys(tps, 0)
        assert c.end_offsets(tps) == {tps[0]: 20, tps[1]: 0, tps[2]: 4}
        assert c.get_watermark_offsets(TP0) == (0, 20)
        fill(t20, [3])
        assert c.get_watermark_offsets(TP0) == (0, 23)
        assert c.end_offsets([TP0]) == {TP0: 23}
        with pytest.raises(UnknownTopicError):
            c.end_offsets([TopicPartition("nope", 0)])
        with pytest.raises(UnknownPartitionError):
            c.get_watermark_offsets(TopicPartition("u", 2))


# --- auto_offset_reset and out-of-range positions -------------------------------------------------


def test_default_reset_is_earliest_and_latest_starts_at_end(t20):
    with Consumer(t20, "t") as c:
        assert c.position(TP0) == 0
        assert c.poll(1.0).offset == 0
    with Consumer(t20, "t", auto_offset_reset="latest") as c:
        assert c.position(TP0) == 20
        assert c.poll(0.05) is None
        fill(t20, [1])
        assert c.poll(2.0).offset == 20


def test_reset_none_without_position_raises_no_offset(t20):
    with Consumer(t20, auto_offset_reset="none") as c:
        c.assign([TP0])
        with pytest.raises(NoOffsetForPartitionError) as e:
            c.poll(0.1)
        assert (e.value.topic, e.value.partition) == ("t", 0)
        with pytest.raises(NoOffsetForPartitionError):
            c.position(TP0)
        c.seek(TP0, 5)
        assert c.poll(1.0).offset == 5


@pytest.mark.parametrize(("policy", "next_offset"), [("earliest", 0), ("latest", 20), ("none", None)])
def test_position_past_the_end_under_each_policy(t20, policy, next_offset):
    with Consumer(t20, "t", auto_offset_reset=policy) as c:
        c.seek(TP0, 20)  # exactly the end is in range: nothing to read yet, no error
        assert c.poll(0.05) is None
        c.seek(TP0, 25)
        if next_offset is None:
            for _ in range(2):  # raises again: the position is not silently moved
                with pytest.raises(OffsetOutOfRangeError) as e:
                    c.poll(0.05)
                assert (e.value.offset, e.value.log_start_offset, e.value.next_offset) == (25, 0, 20)
            c.seek(TP0, 19)
            assert c.poll(1.0).offset == 19
        elif next_offset == 20:
            assert c.poll(0.05) is None
            assert c.position(TP0) == 20
            fill(t20, [1])
            assert c.poll(2.0).offset == 20
        else:
            assert c.poll(1.0).offset == next_offset


def _retained_store(path, start):
    """A store whose t-0 holds offsets 0..39 (batches of 4, several segments) with the log start
    offset raised to ``start`` as retention (or DeleteRecords) does: through the store's
    log-start-offset checkpoint, which PartitionLog takes as its log_start_offset on open. Returns
    the store's path (closed)."""
    with LogStore(path) as s:
        s.create_topic("t", 1, {"segment.bytes": 300})
        fill(s, [4] * 10)
        assert len(s.partition("t", 0).segments) > 2
    write_checkpoint(os.path.join(path, LOG_START_OFFSET_CHECKPOINT), {("t", 0): start})
    return path


def test_log_start_offset_checkpoint_is_honoured(tmp_path):
    # Guards the simulation the retention tests below rely on.
    path = _retained_store(tmp_path / "s", 14)
    with LogStore(path) as s:
        log = s.partition("t", 0)
        assert log.log_start_offset == 14
        with pytest.raises(OffsetOutOfRangeError):
            log.read_records(5)


@pytest.mark.parametrize(("policy", "expected"), [("earliest", 14), ("latest", 40), ("none", None)])
def test_position_deleted_by_retention_under_each_policy(tmp_path, policy, expected):
    path = _retained_store(tmp_path / "s", 14)  # 14 is inside batch 12-15
    with LogStore(path) as s, Consumer(s, "t", auto_offset_reset=policy) as c:
        assert c.get_watermark_offsets(TP0) == (14, 40)
        assert c.beginning_offsets([TP0]) == {TP0: 14}
        c.seek(TP0, 5)  # below the log start: retention deleted it
        if expected is None:
            with pytest.raises(OffsetOutOfRangeError) as e:
                c.poll(0.05)
            assert (e.value.offset, e.value.log_start_offset, e.value.next_offset) == (5, 14, 40)
        else:
            rs = c.consume(100, timeout=0.2)
            assert offsets(rs) == list(range(expected, 40))  # 12 and 13 (same batch as 14) not delivered
        # without any position: earliest starts at the log start, not at the first batch
        c.seek_to_beginning()
        assert c.position(TP0) == 14
        assert c.poll(1.0).offset == 14


def test_first_segment_deleted_by_retention(tmp_path):
    # Retention proper: the oldest segment's files are gone (store closed meanwhile).
    path = tmp_path / "s"
    with LogStore(path) as s:
        s.create_topic("t", 1, {"segment.bytes": 300})
        fill(s, [4] * 10)
        first, second = s.partition("t", 0).segments[:2]
        doomed = [first.log_path, first.index_path, first.timeindex_path]
        start = second.base_offset
    assert start > 0
    for f in doomed:
        os.remove(f)
    with LogStore(path) as s:
        with Consumer(s, "t") as c:
            assert c.get_watermark_offsets(TP0) == (start, 40)
            assert c.position(TP0) == start
            c.seek(TP0, 1)
            assert offsets(c.consume(100, timeout=0.2)) == list(range(start, 40))
        with Consumer(s, "t", auto_offset_reset="none") as c:
            c.seek(TP0, 1)
            with pytest.raises(OffsetOutOfRangeError) as e:
                c.poll(0.05)
            assert (e.value.log_start_offset, e.value.next_offset) == (start, 40)


@pytest.mark.parametrize(("policy", "expected"), [("earliest", 50), ("latest", 100), ("none", None)])
def test_log_start_moves_past_a_live_position(store, policy, expected):
    # Retention deletes what the consumer was about to read while it is reading. There is no
    # retention yet: raise the live PartitionLog's log_start_offset (what it would do) directly.
    store.create_topic("t", 1)
    fill(store, [10] * 10)
    with Consumer(store, "t", auto_offset_reset=policy, max_partition_fetch_bytes=1) as c:
        c.seek(TP0, 0)
        assert offsets(c.consume(10, timeout=1.0)) == list(range(10))  # exactly one batch (one chunk)
        assert c.position(TP0) == 10
        store.partition("t", 0).log_start_offset = 50
        if expected is None:
            with pytest.raises(OffsetOutOfRangeError) as e:
                c.poll(0.05)
            assert (e.value.offset, e.value.log_start_offset, e.value.next_offset) == (10, 50, 100)
        else:
            assert offsets(c.consume(1000, timeout=0.2)) == list(range(expected, 100))


# --- several partitions ---------------------------------------------------------------------------


def test_several_partitions_interleave_fairly_in_offset_order(store):
    store.create_topic("t", 3)
    for p in range(3):
        fill(store, [5] * 8, partition=p)  # 40 records each, batches of 5
    with Consumer(store, "t", stop_at_end=True, max_partition_fetch_bytes=1) as c:  # one batch per chunk
        rs = list(c)
    assert len(rs) == 120
    for p in range(3):
        mine = [r for r in rs if r.partition == p]
        assert offsets(mine) == list(range(40))
        assert [r.value for r in mine] == [b"v%d" % o for o in range(40)]
    # taking turns chunk by chunk: in any window of 15 records every partition shows up
    parts = [r.partition for r in rs]
    for i in range(0, 120 - 15 + 1):
        assert set(parts[i : i + 15]) == {0, 1, 2}, i


def test_a_busy_partition_does_not_starve_a_quiet_one(tmp_path):
    with LogStore(tmp_path / "s", fsync="never") as s:
        s.create_topic("t", 2)
        big = s.partition("t", 0)
        for i in range(0, 200_000, 1000):
            big.append_records([b"%08d" % j for j in range(i, i + 1000)], timestamps=T0)
        fill(s, [1] * 10, partition=1)
        limit = 64 * 1024
        big_chunk = len(big.fetch(0, limit))  # records of the big partition in one chunk
        assert 1000 <= big_chunk < 20_000

        # Both filled before reading: the quiet partition's records come within the first chunks.
        with Consumer(s, "t", max_partition_fetch_bytes=limit, stop_at_end=True) as c:
            seq = [(r.partition, r.offset) for r in c]
        small_at = [i for i, (p, _) in enumerate(seq) if p == 1]
        assert [seq[i][1] for i in small_at] == list(range(10))
        assert small_at[-1] < 2 * big_chunk + 10, "the quiet partition waited for the busy one"
        assert [o for p, o in seq if p == 0] == list(range(200_000))

        # The quiet partition gets new data while the busy one is far behind.
        with Consumer(s, "t", max_partition_fetch_bytes=limit, stop_at_end=True) as c:
            c.seek(TopicPartition("t", 1), 10)
            first = c.consume(big_chunk, timeout=1.0)  # the busy partition's first chunk
            assert {r.partition for r in first} == {0}
            fill(s, [1] * 5, partition=1)
            seen = []
            while sum(r.partition == 1 for r in seen) < 5:
                more = c.consume(500, timeout=1.0)
                assert more, "the quiet partition's records never came"
                seen += more
                assert len(seen) <= 2 * big_chunk + 5, "the quiet partition waited for the busy one"
            assert offsets([r for r in seen if r.partition == 1]) == list(range(10, 15))


def test_chunks_are_bounded_by_max_partition_fetch_bytes(store):
    store.create_topic("t", 1)
    log = store.partition("t", 0)
    for _ in range(100):
        log.append_records([b"x" * 100] * 20)  # ~2.5 kB batches
    limit = 8 * 1024
    with Consumer(store, "t", max_partition_fetch_bytes=limit) as c:
        chunks = []
        while (ch := c.poll_columns(0.05)) is not None:
            chunks.append(ch)
    assert len(chunks) > 20  # read a bit at a time, not the whole log at once
    for ch in chunks:
        assert 0 < ch.records.value_lengths.sum() <= limit
    assert [o for ch in chunks for o in ch.records.offsets.tolist()] == list(range(2000))


def test_a_record_larger_than_the_fetch_limit_is_still_delivered(store):
    store.create_topic("t", 1)
    store.append("t", 0, [b"a"])
    store.append("t", 0, [b"B" * 50_000])
    store.append("t", 0, [b"c"])
    with Consumer(store, "t", max_partition_fetch_bytes=1024, stop_at_end=True) as c:
        rs = list(c)
    assert [r.value for r in rs] == [b"a", b"B" * 50_000, b"c"]


def test_assign_and_subscribe(store):
    store.create_topic("t", 3)
    store.create_topic("u", 2)
    for p in range(3):
        fill(store, [2], topic="t", partition=p)
    for p in range(2):
        fill(store, [1], topic="u", partition=p)
    with Consumer(store, "t", "u", stop_at_end=True) as c:
        assert c.subscription() == {"t", "u"}
        assert c.assignment() == {TopicPartition("t", p) for p in range(3)} | {TopicPartition("u", p) for p in range(2)}
        assert sorted((r.topic, r.partition, r.offset) for r in c) == sorted(
            [("t", p, o) for p in range(3) for o in range(2)] + [("u", p, 0) for p in range(2)]
        )
    with Consumer(store, stop_at_end=True) as c:
        c.assign([TopicPartition("t", 2), ("u", 1)])
        assert c.subscription() == set()
        assert sorted((r.topic, r.partition) for r in c) == [("t", 2), ("t", 2), ("u", 1)]
        with pytest.raises(NotAssignedError):
            c.seek(TopicPartition("t", 0), 0)


# --- iteration ------------------------------------------------------------------------------------


def test_iteration_ends_after_consumer_timeout(t20):
    with Consumer(t20, "t", consumer_timeout_ms=300) as c:
        t = time.monotonic()
        rs = list(c)
        took = time.monotonic() - t
    assert offsets(rs) == list(range(20))
    assert 0.25 <= took < 3.0


def test_iteration_with_stop_at_end_ends_at_the_end_of_every_partition(store):
    store.create_topic("t", 2)
    fill(store, [3], partition=0)  # partition 1 stays empty
    with Consumer(store, "t", stop_at_end=True) as c:
        t = time.monotonic()
        rs = list(c)
        assert time.monotonic() - t < 1.0
        assert offsets(rs) == [0, 1, 2]
        fill(store, [2], partition=1)
        assert [(r.partition, r.offset) for r in c] == [(1, 0), (1, 1)]  # a new pass picks new data


def test_iteration_waits_for_new_data(t20):
    def later():
        time.sleep(0.3)
        fill(t20, [2])

    th = threading.Thread(target=later)
    with Consumer(t20, "t", consumer_timeout_ms=5000) as c:
        th.start()
        got = []
        for r in c:
            got.append(r.offset)
            if r.offset == 21:
                break
    th.join()
    assert got == list(range(22))


def test_seek_inside_an_iteration_loop(t20):
    with Consumer(t20, "t", stop_at_end=True) as c:
        got = []
        jumped_back = False
        for r in c:
            got.append(r.offset)
            if r.offset == 4:
                c.seek(TP0, 11)  # forwards, from the middle of one batch into another
            elif r.offset == 13 and not jumped_back:
                jumped_back = True
                c.seek(TP0, 1)  # backwards
            elif r.offset == 17:
                c.seek_to_end()  # ends a stop_at_end loop
    assert got == [0, 1, 2, 3, 4, 11, 12, 13, 1, 2, 3, 4, 11, 12, 13, 14, 15, 16, 17]


def test_poll_consume_and_poll_columns_inside_an_iteration_loop(t20):
    with Consumer(t20, "t", stop_at_end=True) as c:
        got = []
        for r in c:
            got.append(("iter", r.offset))
            if r.offset == 3:
                got.append(("poll", c.poll(1.0).offset))
            elif r.offset == 5:
                got += [("consume", o) for o in offsets(c.consume(2, timeout=1.0))]
            elif r.offset == 10:
                ch = c.poll_columns(1.0)  # the rest of the current chunk
                got += [("cols", o) for o in ch.records.offsets.tolist()]
                fill(t20, [3])
    assert [o for _, o in got] == list(range(23))
    assert [w for w, o in got if o in (4, 6, 7, 11)] == ["poll", "consume", "consume", "cols"]


def test_seek_to_the_current_offset_inside_a_loop_repeats_nothing(t20):
    with Consumer(t20, "t", stop_at_end=True) as c:
        got = []
        for r in c:
            got.append(r.offset)
            c.seek(TP0, r.offset + 1)
    assert got == list(range(20))


def test_break_out_of_iteration_then_position_and_poll_continue(t20):
    with Consumer(t20, "t") as c:
        last = None
        for r in c:
            last = r
            if r.offset == 10:  # inside batch 9-15: the chunk holds records not handed out
                break
        assert last.offset == 10
        assert c.position(TP0) == 11
        assert c.poll(1.0).offset == 11
        assert c.position(TP0) == 12
        assert offsets(c.consume(3, timeout=1.0)) == [12, 13, 14]
        for r in c:  # a new loop goes on from there
            assert r.offset == 15
            break
        assert c.position(TP0) == 16


def test_close_from_another_thread_ends_a_blocked_iteration(t20):
    # No consumer_timeout_ms: would wait for ever. A long back-off: only a wake-up ends it promptly.
    c = Consumer(t20, "t", fetch_max_wait_ms=2000)
    got = []
    ended = threading.Event()

    def run():
        for r in c:
            got.append(r.offset)
        ended.set()

    th = threading.Thread(target=run, daemon=True)
    th.start()
    time.sleep(0.7)  # mid-way through a 512 ms back-off pause
    assert not ended.is_set()
    t = time.monotonic()
    c.close()
    assert ended.wait(1.0), "iteration still blocked after close()"
    assert time.monotonic() - t < 0.2
    th.join(1.0)
    assert got == list(range(20))
    with pytest.raises(LogClosedError):
        c.poll(0.01)


def test_close_from_another_thread_ends_a_blocked_poll(t20):
    c = Consumer(t20, "t", fetch_max_wait_ms=2000)  # a long back-off: only a wake-up ends it early
    c.seek_to_end()
    out = []

    def run():
        try:
            out.append(c.poll(30.0))
        except LogClosedError as e:
            out.append(e)
        out.append(time.monotonic())

    th = threading.Thread(target=run, daemon=True)
    th.start()
    time.sleep(0.6)
    closed_at = time.monotonic()
    c.close()
    th.join(3.0)
    assert not th.is_alive()
    assert out[0] is None or isinstance(out[0], LogClosedError)
    assert out[1] - closed_at < 0.2


def test_waiting_does_not_spin_the_cpu(t20):
    with Consumer(t20, "t") as c:
        c.seek_to_end()
        c.poll(0.01)
        cpu, wall = time.process_time(), time.monotonic()
        assert c.poll(0.5) is None
        cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    assert wall >= 0.45
    assert cpu < 0.1, f"{cpu:.3f} s of CPU for a {wall:.3f} s wait"


def test_a_new_record_is_seen_soon_while_waiting(t20):
    with Consumer(t20, "t", fetch_max_wait_ms=50) as c:
        c.seek_to_end()
        threading.Timer(0.3, lambda: fill(t20, [1])).start()
        t = time.monotonic()
        r = c.poll(5.0)
        assert r.offset == 20
        assert time.monotonic() - t < 0.3 + 0.5


# --- poll_columns ---------------------------------------------------------------------------------


def test_poll_columns_returns_what_iteration_returns(store):
    store.create_topic("t", 2)
    for p in range(2):
        log = store.partition("t", p)
        for i in range(0, 300, 30):
            log.append_records(
                [None if j % 7 == 0 else b"val-%d" % j for j in range(i, i + 30)],
                [None if j % 5 == 0 else b"key-%d" % j for j in range(i, i + 30)],
                timestamps=T0,
            )
    with Consumer(store, "t", stop_at_end=True, max_partition_fetch_bytes=1500) as c:
        by_iter = {p: [] for p in range(2)}
        for r in c:
            by_iter[r.partition].append((r.offset, r.key, r.value))
    with Consumer(store, "t", max_partition_fetch_bytes=1500) as c:
        c.seek(TopicPartition("t", 1), 0)
        by_cols = {p: [] for p in range(2)}
        n = 0
        while (ch := c.poll_columns(0.05)) is not None:
            assert isinstance(ch, ColumnChunk) and ch.topic == "t"
            recs = ch.records
            by_cols[ch.partition] += list(zip(recs.offsets.tolist(), recs.keys(), recs.values(), strict=True))
            n += 1
    assert n > 2
    assert by_cols == by_iter
    assert [o for o, _, _ in by_iter[1]] == list(range(300))
    assert by_iter[0][:8] == [
        (0, None, None),
        (1, b"key-1", b"val-1"),
        (2, b"key-2", b"val-2"),
        (3, b"key-3", b"val-3"),
        (4, b"key-4", b"val-4"),
        (5, None, b"val-5"),
        (6, b"key-6", b"val-6"),
        (7, b"key-7", None),
    ]


def test_poll_columns_after_poll_continues_mid_chunk(t20):
    with Consumer(t20, "t") as c:
        assert c.poll(1.0).offset == 0
        ch = c.poll_columns(1.0)
        got = ch.records.offsets.tolist()
        assert got[0] == 1
        assert c.position(TP0) == got[-1] + 1
        rest = []
        while (ch := c.poll_columns(0.05)) is not None:
            rest += ch.records.offsets.tolist()
        assert got + rest == list(range(1, 20))


# --- another process producing ----------------------------------------------------------------------


def _follow_writers(path, n, segment_bytes):
    """Two writer processes (tests/procs.py append, one per partition of t, batches of 1-7) start
    while a Consumer in this process sits at the end of the empty log; it follows them without
    reopening anything. Checks every record arrives once, in order."""
    with LogStore(path) as s:
        s.create_topic("t", 2, {"segment.bytes": segment_bytes, "index.interval.bytes": 256})
    with LogStore(path) as s, Consumer(s, "t", consumer_timeout_ms=20_000) as c:
        assert c.poll(0.05) is None  # at the end of an empty log before the writers start
        env = dict(os.environ, START_AT=str(time.time() + 0.3))
        writers = [
            subprocess.Popen(
                [sys.executable, PROCS, "append", str(path), "t", str(p), str(n), f"W{p}", str(p + 1)],
                stdout=subprocess.PIPE,
                text=True,
                env=env,
            )
            for p in range(2)
        ]
        try:
            got = {0: [], 1: []}
            seen_while_running = False
            for r in c:
                got[r.partition].append(r)
                if any(w.poll() is None for w in writers):
                    seen_while_running = True
                if len(got[0]) + len(got[1]) == 2 * n:
                    break
        finally:
            outs = [w.communicate(timeout=60)[0] for w in writers]
        assert [w.returncode for w in writers] == [0, 0]
        assert seen_while_running  # it really followed, not read everything afterwards
        for p in range(2):
            assert offsets(got[p]) == list(range(n))  # every record once, in order
            assert [r.value for r in got[p]] == [f"W{p}-{i}".encode() for i in range(n)]
            assert [r.timestamp for r in got[p]][:1] == [T0]
            assert outs[p].count("ack ") >= n // 7
        assert c.poll(0.2) is None  # nothing more
        return [len(s.partition("t", p).segments) for p in range(2)]


def test_follows_records_another_process_appends(tmp_path):
    segments = _follow_writers(tmp_path / "store", 1500, 1 << 30)
    assert segments == [1, 1]


# A reader's refresh() can run while another process is part-way through a roll (layout generation
# bumped, the new .log created, its .index/.timeindex not yet): that must never surface as an error.


def test_follows_another_process_across_segment_rolls(tmp_path):
    segments = _follow_writers(tmp_path / "store", 1500, 4096)
    assert min(segments) > 3  # the follower crossed segment rolls


def test_a_segment_roll_in_progress_in_another_process_is_not_an_error(store):
    # The on-disk state a writer process's _roll_locked passes through, made by hand so it is
    # deterministic: layout generation bumped, the new segment's .log created, its indexes not yet.
    store.create_topic("t", 1)
    fill(store, [3])
    log = store.partition("t", 0)
    lock_path = os.path.join(log.directory, ".logstore.lock")
    stray = os.path.join(log.directory, f"{3:020d}.log")

    def bump_layout():
        fd = os.open(lock_path, os.O_RDWR)
        raw = os.pread(fd, 8, 0)
        gen = int.from_bytes(raw, "big") if len(raw) == 8 else 0
        os.pwrite(fd, (gen + 1).to_bytes(8, "big"), 0)
        os.close(fd)

    with Consumer(store, "t") as c:
        assert offsets(c.consume(10, timeout=1.0)) == [0, 1, 2]
        bump_layout()
        open(stray, "wb").close()
        try:
            assert c.poll(0.05) is None  # nothing new yet; certainly not an error
        finally:
            os.remove(stray)  # the "roll" goes away again: a consistent directory for the rest
            bump_layout()
        fill(store, [1])
        assert c.poll(1.0).offset == 3


# --- bad input ------------------------------------------------------------------------------------


def test_unknown_topic_and_partition(t20):
    with pytest.raises(UnknownTopicError):
        Consumer(t20, "nope")
    with Consumer(t20) as c:
        with pytest.raises(UnknownTopicError):
            c.assign([TopicPartition("nope", 0)])
        with pytest.raises(UnknownPartitionError):
            c.assign([TopicPartition("t", 1)])
        with pytest.raises(UnknownPartitionError):
            c.assign([TopicPartition("t", -1)])
        with pytest.raises(UnknownTopicError):
            c.subscribe(["t", "nope"])


def test_seek_errors(t20):
    with Consumer(t20, "t") as c:
        with pytest.raises(ValueError):
            c.seek(TP0, -1)
        with pytest.raises(NotAssignedError):
            c.seek(TopicPartition("u", 0), 0)
        with pytest.raises(NotAssignedError):
            c.position(TopicPartition("t", 3))
        with pytest.raises(NotAssignedError):
            c.seek_to_beginning(TopicPartition("x", 0))
        assert c.poll(1.0).offset == 0  # nothing moved


def test_calls_after_close_raise(t20):
    c = Consumer(t20, "t")
    assert c.poll(1.0).offset == 0
    c.close()
    c.close()  # idempotent
    assert c.closed
    for call in (lambda: c.poll(0.01), lambda: c.consume(1, 0.01), lambda: c.poll_columns(0.01), lambda: iter(c)):
        with pytest.raises(LogClosedError):
            call()
    with pytest.raises(LogClosedError):
        c.seek(TP0, 0)
    t20.append("t", 0, [b"store still open"])  # the store belongs to the caller


@pytest.mark.parametrize(
    "kwargs",
    [
        {"auto_offset_rest": "earliest"},
        {"config": {"max.poll.recordz": 5}},
        {"auto_offset_reset": "smallest"},
        {"max_partition_fetch_bytes": 0},
        {"consumer_timeout_ms": -1},
        {"group_id": ""},
        {"group_id": "g", "partition_assignment_strategy": "sticky"},
        {"group_id": "g", "on_assign": "not callable"},
        {"group_id": "g", "session_timeout_ms": 0},
    ],
)
def test_bad_config(t20, kwargs):
    with pytest.raises(InvalidConfigError):
        Consumer(t20, "t", **kwargs)


def test_dotted_config_names(t20):
    with Consumer(t20, "t", config={"auto.offset.reset": "latest", "max.poll.records": 3}) as c:
        assert c.position(TP0) == 20
        c.seek(TP0, 0)
        assert offsets(c.consume(timeout=1.0)) == [0, 1, 2]


# --- corruption -----------------------------------------------------------------------------------


def test_a_corrupt_batch_raises_with_file_and_position(tmp_path):
    path = tmp_path / "store"
    with LogStore(path) as s:
        s.create_topic("t", 1, {"segment.bytes": 600})
        fill(s, [5] * 12)
        segs = s.partition("t", 0).segments
        assert len(segs) >= 3
        seg = segs[0]  # sealed
        log_path = seg.log_path
    with open(log_path, "rb") as f:
        data = f.read()
    batches = list(iter_batches(data))
    assert len(batches) >= 3
    pos, h = batches[len(batches) // 2]  # one in the middle of the segment
    assert h.base_offset > 0
    hit = pos + RECORD_BATCH_OVERHEAD + (h.size - RECORD_BATCH_OVERHEAD) // 2  # inside its records
    with open(log_path, "r+b") as f:
        f.seek(hit)
        byte = f.read(1)
        f.seek(hit)
        f.write(bytes([byte[0] ^ 0xFF]))

    with LogStore(path) as s:
        # One batch per chunk: every record before the damage comes out, then the error.
        with Consumer(s, "t", max_partition_fetch_bytes=1) as c:
            got = []
            with pytest.raises(CorruptRecordError) as e:
                while True:
                    r = c.poll(1.0)
                    assert r is not None, "reached the end without an error: the damage was skipped"
                    got.append(r.offset)
            assert got == list(range(h.base_offset))
            assert os.path.samefile(e.value.path, log_path)
            assert e.value.position == pos
            assert log_path in str(e.value) and str(pos) in str(e.value)
            with pytest.raises(CorruptRecordError):  # again: never skipped on a retry
                c.poll(0.1)
            assert c.position(TP0) == h.base_offset
            c.seek(TP0, h.last_offset + 1)  # past it by hand: the rest is readable
            assert c.poll(1.0).offset == h.last_offset + 1
        # Default chunking (the damaged batch inside a larger chunk), and iteration.
        with Consumer(s, "t", stop_at_end=True) as c:
            got = []
            with pytest.raises(CorruptRecordError) as e:
                for r in c:
                    got.append(r.offset)
            assert got == list(range(len(got))) and len(got) <= h.base_offset
            assert os.path.samefile(e.value.path, log_path) and e.value.position == pos
        # Starting inside the damaged batch.
        with Consumer(s, "t") as c:
            c.seek(TP0, h.base_offset + 2)
            with pytest.raises(CorruptRecordError) as e:
                c.poll(1.0)
            assert e.value.position == pos


# --- property: a seek delivers exactly the records from there on ------------------------------------


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sizes=st.lists(st.integers(1, 12), min_size=1, max_size=25),
    segment_bytes=st.sampled_from([400, 2000, 1 << 20]),
    fetch_bytes=st.sampled_from([1, 200, 1500, 1 << 20]),
    ops=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 30)), min_size=1, max_size=6),
)
def test_seek_delivers_exactly_the_records_from_there_on(sizes, segment_bytes, fetch_bytes, ops):
    with tempfile.TemporaryDirectory() as tmp, LogStore(os.path.join(tmp, "s"), fsync="never") as s:
        s.create_topic("t", 1, {"segment.bytes": segment_bytes})
        fill(s, sizes)
        total = sum(sizes)
        ref_offsets, ref_keys, ref_values = reference(s, "t", 0, 0)
        assert ref_offsets == list(range(total))
        with Consumer(s, stop_at_end=True, max_partition_fetch_bytes=fetch_bytes) as c:
            c.assign([TP0])
            # Seek, take a few records, seek again (dropping a part-read chunk) ...
            for frac, take in ops:
                o = round(frac * total)
                c.seek(TP0, o)
                got = c.consume(take, timeout=0.0) if take else []
                want = min(take, total - o)
                assert offsets(got) == ref_offsets[o : o + want]
                assert [r.key for r in got] == ref_keys[o : o + want]
                assert [r.value for r in got] == ref_values[o : o + want]
                assert c.position(TP0) == o + want
            # ... and a last seek read to the end.
            o = round(ops[-1][0] * total)
            c.seek(TP0, o)
            rs = list(c)
            exp_offsets, exp_keys, exp_values = reference(s, "t", 0, o)
            assert offsets(rs) == exp_offsets == list(range(o, total))
            assert [r.key for r in rs] == exp_keys
            assert [r.value for r in rs] == exp_values


def test_the_first_poll_after_a_seek_returns_the_same_record_as_a_full_read(store):
    """A seek's first record is read with scalar code (a lookup): the whole Record (timestamp and
    its type, null key or value, headers) must equal the one a full read delivers."""
    store.create_topic("t", 1)
    log = store.partition("t", 0)
    for b in range(6):
        n = 7
        log.append(
            build_batch(
                [None if (b + i) % 5 == 0 else b"v%d-%d" % (b, i) for i in range(n)],
                [None if (b + i) % 3 == 0 else b"k%d" % i for i in range(n)],
                timestamps=[T0 + 10 * b + (i * 3) % 7 for i in range(n)],
                headers=[[("h", b"x" * i), ("none", None)] if i % 2 else None for i in range(n)],
                compression_type=("lz4", "none", "gzip")[b % 3],
            )
        )
    with Consumer(store, "t", stop_at_end=True) as c:
        everything = list(c)
    assert len(everything) == 42
    with Consumer(store, "t") as c:
        for o in (0, 5, 6, 7, 20, 37, 41):
            c.seek(TP0, o)
            assert c.poll(1.0) == everything[o]
            assert c.consume(3, timeout=0.0) == everything[o + 1 : o + 4]


def test_wakeup_ends_a_wait_and_the_consumer_stays_usable(t20):
    with Consumer(t20, "t", fetch_max_wait_ms=2000) as c:
        assert len(c.consume(100, timeout=1.0)) == 20
        timer = threading.Timer(0.2, c.wakeup)
        timer.start()
        started = time.monotonic()
        assert c.poll(30) is None
        assert time.monotonic() - started < 5
        fill(t20, [2])
        assert [r.offset for r in c.consume(10, timeout=5.0)] == [20, 21]


# --- damage outside the CRC (review findings) ---------------------------------------------------


@pytest.mark.parametrize(
    ("field", "fmt", "value"),
    [
        (16, ">b", 1),  # magic
        (8, ">i", 0),  # batchLength below the minimum
        (8, ">i", -12),  # negative batchLength (used to hang the reader)
        (8, ">i", 100_000),  # batchLength running past the segment
        (0, ">q", 3),  # baseOffset going backwards (used to duplicate records)
        (0, ">q", 40),  # baseOffset jumping forward over later batches' offsets
    ],
    ids=["magic", "length-0", "length-negative", "length-too-long", "base-back", "base-forward"],
)
@pytest.mark.parametrize("fetch_bytes", [1, 1 << 20])
def test_damaged_header_fields_outside_the_crc_raise(tmp_path, field, fmt, value, fetch_bytes):
    # The CRC covers bytes 21.. only: baseOffset, batchLength and magic are checked on their own.
    path = tmp_path / "s"
    with LogStore(path) as s:
        s.create_topic("t", 1, config={"segment.bytes": 600})
        for _ in range(12):
            s.append("t", 0, [b"v%d" % j for j in range(5)])
        log_path = s.partition("t", 0).segments[0].log_path
    with open(log_path, "rb") as f:
        batches = list(iter_batches(f.read()))
    pos, h = batches[len(batches) // 2]
    with open(log_path, "r+b") as f:
        f.seek(pos + field)
        f.write(struct.pack(fmt, value))
    got: list[int] = []
    with (
        LogStore(path) as s,
        Consumer(s, "t", stop_at_end=True, max_partition_fetch_bytes=fetch_bytes) as c,
        pytest.raises(CorruptRecordError) as e,
    ):
        for r in c:
            got.append(r.offset)
    assert e.value.path == log_path
    assert got == list(range(len(got)))  # in order, nothing repeated, nothing past the damage
    assert len(got) <= h.base_offset


def test_poll_after_close_raises_even_with_records_buffered(t20):
    c = Consumer(t20, "t")
    assert c.poll(1.0).offset == 0  # the rest of the chunk is buffered
    c.close()
    with pytest.raises(LogClosedError):
        c.poll(0)
    with pytest.raises(LogClosedError):
        c.end_offsets([TP0])


def test_one_iteration_at_a_time(t20):
    with Consumer(t20, "t", stop_at_end=True) as c:
        first, second = iter(c), iter(c)
        assert first is second  # as kafka-python's: a second iter() does not replay records
        got = [next(first).offset, next(second).offset]
        assert got == [0, 1]
        assert [r.offset for r in c] == list(range(2, 20))


def test_a_seek_to_a_stale_end_still_reads_one_record_first(tmp_path):
    """The scalar one-record read after a seek also applies when the log grew in another process
    since this one last looked (the read is retried after refresh() with the same limit)."""
    from logstore import LogStore

    with LogStore(tmp_path / "s") as a, LogStore(tmp_path / "s") as b:
        a.create_topic("t", 1)
        a.append("t", 0, [b"x"])
        with Consumer(a, "t") as c:
            assert c.poll(1.0).offset == 0
            b.append("t", 0, [b"v%d" % i for i in range(5000)])  # a's view still ends at 1
            c.seek(TP0, 1)
            assert c.poll(1.0).offset == 1
            assert len(c._buf) == 1  # not a whole 1 MiB chunk


@pytest.mark.parametrize("segments", [1, 4])
def test_a_topic_deleted_and_made_again_by_another_handle_is_read_anew(store, segments):
    # Another handle (another process, as far as the files go) deletes the topic while the
    # consumer is part-way through it, and makes it again with new records. The consumer must
    # not mix the two: each fetch asks the store, which sees the old log's lock file gone, and the
    # new log is read from the consumer's position (5: in range there, so no reset), as Kafka
    # does. A consumer that kept the old log would open the new topic's segment files by their
    # names under the old log's view, and deliver old records after new ones.
    store.create_topic("t", 1, {"segment.bytes": 16384 if segments > 1 else 1 << 20})
    log = store.partition("t", 0)
    for i in range(60):
        log.append_records([b"old-%03d" % i + b"." * 1000])
    assert len(log.segments) >= segments
    del log
    with Consumer(store, "t", max_partition_fetch_bytes=2000) as c:
        assert [r.value[:7] for r in c.consume(5, timeout=0.5)] == [b"old-%03d" % i for i in range(5)]
        with LogStore(store.path) as other:
            other.delete_topic("t")
            # While it is gone, poll() says so, once the records already fetched are delivered.
            late = []
            with pytest.raises(UnknownTopicError):
                for _ in range(10):
                    late.append(c.poll(0))
            assert [r.value[:7] for r in late] == [b"old-%03d" % i for i in range(5, 5 + len(late))]
            assert len(late) <= 2  # a chunk holds at most two of these records (max_partition_fetch_bytes)
            other.create_topic("t", 1, {"segment.bytes": 16384})
            for i in range(60):
                other.append("t", 0, [b"NEW-%03d" % i + b"." * 1000])
        got = c.consume(200, timeout=1.0)
        start = 5 + len(late)
        assert [(r.offset, r.value[:7]) for r in got] == [(i, b"NEW-%03d" % i) for i in range(start, 60)]
