"""PartitionLog: append, read, roll, lookup by time, truncate, durability policy, errors."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logstore import CorruptRecordError, OffsetOutOfRangeError, RecordTooLargeError, StorageError, faults
from logstore.records import build_batch, iter_batches, read_header
from logstore.storage.files import segment_name
from logstore.storage.log import CLEAN_FILE

BASE_TS = 1_700_000_000_000


def fill(log, batches, per_batch=10, ts_step=1000, size=20):
    for b in range(batches):
        vals = [f"{b}:{i}".encode().ljust(size, b".") for i in range(per_batch)]
        log.append_records(vals, [f"k{i}".encode() for i in range(per_batch)], timestamps=BASE_TS + b * ts_step)


def test_offsets_are_assigned_consecutively(open_log):
    log = open_log()
    r1 = log.append_records([b"a", b"b", b"c"])
    r2 = log.append(build_batch([b"d"], base_offset=999))  # the log overwrites baseOffset
    assert (r1.first_offset, r1.last_offset) == (0, 2)
    assert (r2.first_offset, r2.last_offset) == (3, 3)
    assert log.next_offset == 4
    cols = log.read_records(0)
    assert cols.offsets == [0, 1, 2, 3]
    assert cols.values == [b"a", b"b", b"c", b"d"]


def test_read_from_the_middle_of_a_batch_skips_earlier_records(open_log):
    log = open_log()
    fill(log, 5)
    cols = log.read_records(23, max_records=4)
    assert cols.offsets == [23, 24, 25, 26]
    assert cols.values[0].startswith(b"2:3")


def test_tiny_segments_roll_and_everything_reads_back(open_log):
    log = open_log(segment_bytes=2048, index_interval_bytes=256)
    fill(log, 200, per_batch=3)
    segs = log.segments
    assert len(segs) > 10
    # base offsets are the log end at roll time and appear in the file names
    for prev, seg in itertools.pairwise(segs):
        assert seg.base_offset == prev.next_offset
        assert os.path.basename(seg.log_path) == segment_name(seg.base_offset, ".log")
        assert prev.size <= 2048
    got = []
    offset = 0
    while offset < log.next_offset:
        cols = log.read_records(offset, max_bytes=700)
        assert cols.offsets[0] == offset
        got += cols.offsets
        offset = cols.offsets[-1] + 1
    assert got == list(range(600))
    assert log.verify() == []


def test_sealed_segments_have_trimmed_indexes_with_final_time_entry(open_log):
    log = open_log(segment_bytes=4096, index_interval_bytes=100)
    fill(log, 100, per_batch=5)
    for seg in log.segments[:-1]:
        assert os.path.getsize(seg.index_path) % 8 == 0
        assert os.path.getsize(seg.index_path) == seg.index.entries * 8
        assert os.path.getsize(seg.timeindex_path) == seg.time_index.entries * 12
        ts, off = seg.time_index.last_entry()
        last_batch = list(iter_batches(Path(seg.log_path).read_bytes()))[-1][1]
        assert ts == last_batch.max_timestamp  # the roll adds the segment's max timestamp
        assert off == last_batch.last_offset


def test_index_entries_follow_kafkas_interval_rule(open_log):
    log = open_log(index_interval_bytes=4096)
    sizes = []
    for b in range(60):
        r = log.append_records([bytes(300)] * 2, timestamps=BASE_TS + b)
        sizes.append((r.position, r.size, r.last_offset))
    seg = log.active_segment
    expected = []
    since = 0
    for pos, size, last in sizes:
        if since > 4096:
            expected.append((last, pos))
            since = 0
        since += size
    assert seg.index.entries_list() == expected
    assert expected and expected[0][1] > 0  # the first batch is never indexed


def test_offset_for_time_finds_first_record_at_or_after(open_log):
    log = open_log(segment_bytes=3000, index_interval_bytes=200)
    fill(log, 100, per_batch=4, ts_step=10)  # batch b has timestamp BASE_TS + 10 b
    assert log.offset_for_time(BASE_TS - 5).offset == 0
    hit = log.offset_for_time(BASE_TS + 555)
    assert hit.offset == 56 * 4 and hit.timestamp == BASE_TS + 560
    assert log.offset_for_time(BASE_TS + 990).offset == 99 * 4
    assert log.offset_for_time(BASE_TS + 991) is None


def test_offset_for_time_with_out_of_order_timestamps(open_log):
    log = open_log()
    log.append_records([b"a", b"b", b"c"], timestamps=[BASE_TS + 50, BASE_TS + 10, BASE_TS + 60])
    assert log.offset_for_time(BASE_TS + 20).offset == 0  # first record whose ts >= target
    assert log.offset_for_time(BASE_TS + 55).offset == 2


@settings(max_examples=40, deadline=None)
@given(
    batches=st.lists(st.lists(st.integers(0, 500), min_size=1, max_size=12), min_size=1, max_size=25),
    start=st.integers(0, 60),
    probes=st.lists(st.integers(-5, 510), min_size=1, max_size=12),
)
def test_offset_for_time_matches_a_scan_of_every_record(tmp_path_factory, batches, start, probes):
    """Against the definition: the first record at or after the log start whose timestamp is >=
    the one asked for. Timestamps go up and down within and across batches, segments roll."""
    from logstore.config import TopicConfig
    from logstore.storage.log import PartitionLog

    d = tmp_path_factory.mktemp("oft") / "t-0"
    config = TopicConfig.from_layers({"segment.bytes": 600, "index.interval.bytes": 100})
    log = PartitionLog(str(d), "t", 0, config)
    try:
        stamps = []
        for b in batches:
            ts = [BASE_TS + t for t in b]
            log.append_records([b"v%d" % i for i in range(len(ts))], timestamps=ts)
            stamps.extend(ts)
        start = min(start, len(stamps))
        log.delete_records(start)
        lso = log.log_start_offset
        for p in probes:
            want = next(((o, t) for o, t in enumerate(stamps) if o >= lso and t >= BASE_TS + p), None)
            got = log.offset_for_time(BASE_TS + p)
            assert (got.offset, got.timestamp) == want if want else got is None, (p, lso)
        live = [(t, o) for o, t in enumerate(stamps) if o >= lso]
        best = max(t for t, _ in live) if live else None
        want_max = min(o for t, o in live if t == best) if live else None
        assert log.offset_of_max_timestamp() == want_max
    finally:
        log.close()


def test_truncate_to_drops_records_and_later_segments(open_log):
    log = open_log(segment_bytes=2048)
    fill(log, 100, per_batch=2)
    nsegs = len(log.segments)
    log.truncate_to(51)  # batch [50, 51] goes whole
    assert log.next_offset == 50
    assert len(log.segments) < nsegs
    r = log.append_records([b"again"])
    assert r.first_offset == 50
    assert log.read_records(48).values[-1] == b"again"
    assert log.verify() == []


def test_out_of_range_offsets_raise_with_the_valid_range(open_log):
    log = open_log()
    fill(log, 2)
    with pytest.raises(OffsetOutOfRangeError) as e:
        log.read_records(21)
    assert (e.value.log_start_offset, e.value.next_offset) == (0, 20)
    assert "0..20" in str(e.value)
    assert len(log.read_records(20)) == 0  # the log end itself is a valid, empty position
    with pytest.raises(OffsetOutOfRangeError):
        log.read_records(-1)


def test_append_rejects_bad_batches_without_writing(open_log):
    log = open_log(max_message_bytes=1000)
    with pytest.raises(RecordTooLargeError):
        log.append(build_batch([bytes(2000)]))
    good = bytearray(build_batch([b"x"]))
    good[-1] ^= 1
    with pytest.raises(CorruptRecordError):
        log.append(bytes(good))
    with pytest.raises(CorruptRecordError):
        log.append(build_batch([b"x"])[:-3])
    assert log.next_offset == 0 and log.active_segment.file_size() == 0


def test_several_batches_in_one_append(open_log):
    log = open_log()
    buf = build_batch([b"a", b"b"]) + build_batch([b"c"]) + build_batch([b"d", b"e", b"f"], compression_type="lz4")
    r = log.append(buf)
    assert (r.first_offset, r.last_offset) == (0, 5)
    data = Path(log.active_segment.log_path).read_bytes()
    assert [h.base_offset for _, h in iter_batches(data)] == [0, 2, 3]
    assert log.read_records(0).values == [b"a", b"b", b"c", b"d", b"e", b"f"]


def test_log_append_time_stamps_the_batch(open_log, clock):
    log = open_log(message_timestamp_type="LogAppendTime", clock=clock)
    r = log.append_records([b"a", b"b"], timestamps=5)
    assert r.log_append_time == int(clock.t * 1000)
    h = read_header(Path(log.active_segment.log_path).read_bytes())
    assert h.timestamp_type == "log_append" and h.max_timestamp == r.log_append_time
    cols = log.read_records(0)
    assert cols.timestamps == [r.log_append_time] * 2
    assert cols.timestamp_types == ["log_append"] * 2


def test_segment_ms_rolls_on_record_timestamps(open_log):
    log = open_log(segment_ms=60_000)
    log.append_records([b"a"], timestamps=BASE_TS)
    log.append_records([b"b"], timestamps=BASE_TS + 60_000)  # not more than segment.ms
    assert len(log.segments) == 1
    log.append_records([b"c"], timestamps=BASE_TS + 60_001)
    assert len(log.segments) == 2 and log.active_segment.base_offset == 2


def test_flush_policy_counts_records(open_log, monkeypatch):
    calls = []
    real = os.fsync
    monkeypatch.setattr(faults.ops, "fsync", lambda fd: (calls.append(fd), real(fd)))
    log = open_log(flush_messages=5)
    calls.clear()
    log.append_records([b"x"] * 3)
    assert calls == []
    log.append_records([b"x"] * 2)
    assert len(calls) == 1


def test_flush_ms_flushes_on_the_next_append_after_the_interval(open_log, clock, monkeypatch):
    log = open_log(flush_messages=10**9, flush_ms=1000, clock=clock)
    calls = []
    real = os.fsync
    monkeypatch.setattr(faults.ops, "fsync", lambda fd: (calls.append(fd), real(fd)))
    log.append_records([b"x"])
    assert calls == []
    clock.t += 0.5
    assert not log.maybe_flush()
    clock.t += 0.6
    assert log.maybe_flush() and len(calls) == 1


def test_reopen_reads_everything_back(tmp_path, open_log):
    log = open_log(segment_bytes=4096)
    fill(log, 50, per_batch=7)
    log.close()
    again = open_log(segment_bytes=4096)
    assert again.load_report.clean
    assert again.next_offset == 350
    assert again.read_records(0, max_bytes=1 << 22).offsets == list(range(350))
    assert again.append_records([b"more"]).first_offset == 350


@settings(max_examples=25, deadline=None)
@given(
    batches=st.lists(
        st.lists(st.one_of(st.none(), st.binary(max_size=300)), min_size=1, max_size=20), min_size=1, max_size=25
    ),
    codec=st.sampled_from(["none", "lz4", "gzip"]),
    seg_bytes=st.sampled_from([700, 3000, 1 << 20]),
)
def test_any_sequence_of_appends_reads_back_exactly(tmp_path_factory, batches, codec, seg_bytes):
    from logstore.config import TopicConfig
    from logstore.storage.log import PartitionLog

    d = tmp_path_factory.mktemp("p") / "t-0"
    cfg = TopicConfig.from_layers({"segment.bytes": seg_bytes, "index.interval.bytes": 128})
    log = PartitionLog(str(d), "t", 0, cfg)
    expected = []
    for vals in batches:
        log.append_records(vals, compression_type=codec)
        expected += vals
    for reopen in (False, True):
        if reopen:
            log.close()
            log = PartitionLog(str(d), "t", 0, cfg)
        got = []
        offset = 0
        while offset < log.next_offset:
            cols = log.read_records(offset, max_bytes=500)
            got += cols.values
            offset = cols.offsets[-1] + 1
        assert got == expected
        # Every offset, one and three records at a time: batches over 128 bytes have an index
        # entry each, smaller ones share one, and a lookup must find its record either way.
        probes = list(range(len(expected)))
        for probe in probes + probes[::-1]:
            assert log.read_records(probe, max_records=1).values == [expected[probe]]
            assert log.read_records(probe, max_records=3).values == expected[probe : probe + 3]
    log.close()


def test_threads_append_and_read_one_partition(open_log):
    import threading

    log = open_log(segment_bytes=8192, index_interval_bytes=256)
    errors = []
    seen_max = [0]

    def writer(tag):
        try:
            for i in range(0, 300, 3):
                log.append_records([f"{tag}-{j}".encode() for j in range(i, i + 3)])
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    def reader():
        try:
            offset = 0
            while offset < 1200:
                if offset >= log.next_offset:
                    continue
                cols = log.read_records(offset)
                assert cols.offsets == list(range(offset, offset + len(cols)))
                offset = cols.offsets[-1] + 1
                seen_max[0] = offset
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(t,)) for t in "ABCD"] + [threading.Thread(target=reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert seen_max[0] == 1200
    values = [v.decode() for v in log.read_records(0, max_bytes=1 << 22).values]
    for tag in "ABCD":
        assert [v for v in values if v.startswith(tag)] == [f"{tag}-{j}" for j in range(300)]


def test_close_adds_the_final_time_index_entry(open_log, tmp_path):
    log = open_log(index_interval_bytes=10**6)  # no entries while appending
    log.append_records([b"a"], timestamps=BASE_TS)
    log.append_records([b"b"], timestamps=BASE_TS + 7)
    assert log.active_segment.time_index.entries == 0
    path = log.active_segment.timeindex_path
    log.close()
    assert Path(path).read_bytes() == (BASE_TS + 7).to_bytes(8, "big") + (1).to_bytes(4, "big")


def test_a_failed_background_fsync_fails_the_next_append(open_log, clock, monkeypatch):
    log = open_log(flush_messages=10**9, flush_ms=10, clock=clock)
    log.append_records([b"x"])
    clock.t += 1
    monkeypatch.setattr(faults.ops, "fsync", lambda fd: (_ for _ in ()).throw(OSError(5, "Input/output error")))
    with pytest.raises(StorageError):
        log.maybe_flush()
    monkeypatch.undo()
    with pytest.raises(StorageError, match="Input/output error"):
        log.append_records([b"y"])


def _many_batches(n_batches, per_batch=20, start_ts=BASE_TS):
    return b"".join(
        build_batch([bytes([65 + b % 26]) * 100] * per_batch, timestamps=start_ts + b) for b in range(n_batches)
    )


def test_an_append_of_many_batches_is_indexed_per_batch(open_log):
    # The producer appends many batches at once; the interval rule still applies batch by batch,
    # so the index stays as dense as index.interval.bytes asks (Kafka 3.7+ and Kafka's recovery).
    log = open_log(index_interval_bytes=4096)
    buf = _many_batches(200)
    log.append(buf)
    log.append(_many_batches(50, start_ts=BASE_TS + 1000))
    batches = list(iter_batches(Path(log.active_segment.log_path).read_bytes()))
    expected, since = [], 0
    for pos, h in batches:
        if since > 4096:
            expected.append((h.last_offset, pos))
            since = 0
        since += h.size
    entries = log.active_segment.index.entries_list()
    assert entries == expected and len(entries) > 100
    assert log.verify() == []


def test_a_producer_written_log_reopens_clean_without_a_rebuild(tmp_path, open_log):
    log = open_log(index_interval_bytes=4096)
    log.append(_many_batches(300))
    before = log.active_segment.index.entries_list()
    log.close()
    again = open_log()
    assert again.load_report.clean and again.load_report.recovered == []
    assert again.active_segment.index.entries_list() == before
    assert again.verify() == []


def _write_index(path, base, entries):
    with open(path, "wb") as f:
        for off, pos in entries:
            f.write((off - base).to_bytes(4, "big") + pos.to_bytes(4, "big"))


def test_append_level_entries_as_kafka_3_6_writes_them_are_accepted(tmp_path, open_log):
    # Kafka up to 3.6 indexes once per append: the append's last offset -> its first batch. Such a
    # log must verify clean, read correctly from every offset, and open without a rebuild.
    log = open_log(index_interval_bytes=4096)
    appends = [_many_batches(30, start_ts=BASE_TS + 100 * a) for a in range(6)]
    spans = []
    for buf in appends:
        r = log.append(buf)
        spans.append((r.last_offset, r.position))
    seg = log.active_segment
    index_path = seg.index_path
    log.close()
    entries = spans[1:]  # the first append is never indexed (bytes since the last entry: 0)
    _write_index(index_path, 0, entries)
    marker_path = os.path.join(os.path.dirname(index_path), CLEAN_FILE)
    with open(marker_path) as f:
        marker = json.load(f)
    marker["index_size"] = os.path.getsize(index_path)  # as if closed cleanly with this index
    with open(marker_path, "w") as f:
        json.dump(marker, f)
    again = open_log()
    assert again.load_report.recovered == []
    assert again.active_segment.index.entries_list() == entries
    assert again.verify() == []
    n = again.next_offset
    for off in (0, 1, 29 * 20, 30 * 20, 31 * 20 + 7, n - 1):
        assert again.read_records(off, max_records=1).offsets == [off]


def test_a_stale_index_is_rebuilt_and_the_rebuild_is_reported(tmp_path, open_log):
    log = open_log(index_interval_bytes=4096)
    log.append(_many_batches(100))
    index_path = log.active_segment.index_path
    first = log.active_segment.index.entries_list()[0]
    log.close()
    _write_index(index_path, 0, [(first[0], first[1] + 7)])  # points into the middle of a batch
    again = open_log()
    assert again.load_report.recovered == [again.active_segment.log_path]
    assert again.active_segment.index.entries_list()[0] == first
    assert again.verify() == []


def test_an_index_entry_past_the_log_end_is_rebuilt(tmp_path, open_log):
    log = open_log(index_interval_bytes=4096)
    log.append(_many_batches(100))
    index_path = log.active_segment.index_path
    off, pos = log.active_segment.index.entries_list()[-1]
    end = log.next_offset
    log.close()
    _write_index(index_path, 0, [(end + 50, pos)])  # a real batch start, but an offset the log never reached
    again = open_log()
    assert again.load_report.recovered == [again.active_segment.log_path]
    assert again.active_segment.index.entries_list()[-1] == (off, pos)
    assert again.next_offset == end and again.verify() == []


def test_an_append_with_more_batches_than_free_index_entries_rolls_first(open_log):
    # segment.index.bytes=4096 holds 512 entries; with a 0-byte interval every batch wants one.
    # The roll check counts the append's batches, and a fresh segment that still cannot hold
    # them all skips entries instead of failing the (already written) append.
    log = open_log(segment_index_bytes=4096, index_interval_bytes=0)
    for _ in range(3):
        log.append(_many_batches(300, per_batch=2))
    log.append(_many_batches(700, per_batch=1))  # more batches than any index holds
    assert log.next_offset == 3 * 600 + 700
    assert len(log.segments) >= 3
    assert log.verify() == []
    for off in (0, 599, 600, 1799, 1800, 2499):
        assert log.read_records(off, max_records=1).offsets == [off]


def test_a_read_that_met_a_truncation_in_this_process_reads_again(open_log, monkeypatch):
    from logstore import CorruptRecordError as Damage

    log = open_log()
    fill(log, 3)
    real = log._read_records
    calls = []

    def half_done(*args):
        calls.append(args)
        if len(calls) == 1:
            log._mutations += 2  # a truncate_to ran while this read looked at the segment
            raise Damage("header seen mid-rebuild", "x.log", 0)
        return real(*args)

    monkeypatch.setattr(log, "_read_records", half_done)
    assert log.read_records(0).offsets == list(range(30)) and len(calls) == 2

    calls.clear()

    def really_damaged(*args):
        calls.append(args)
        raise Damage("bad header", "x.log", 0)

    monkeypatch.setattr(log, "_read_records", really_damaged)
    with pytest.raises(Damage):
        log.read_records(0)
    assert len(calls) == 1  # no truncation meanwhile: damage is reported, not retried
