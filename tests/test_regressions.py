"""Regressions for bugs a review reproduced (each test names the scenario it guards)."""

from __future__ import annotations

import errno
import itertools
import os
import threading

import pytest

from logstore import LogStore, StorageError, faults
from logstore.config import TopicConfig
from logstore.records import build_batch
from logstore.storage import log as log_module
from logstore.storage.log import PartitionLog
from tests.conftest import crash


def test_a_stale_reader_never_recreates_removed_segments(tmp_path):
    path = tmp_path / "s"
    with LogStore(path) as s:
        s.create_topic("t", 1, {"segment.bytes": 700})
        for i in range(40):
            s.append("t", 0, [b"v%02d" % i])
    reader = LogStore(path, max_open_segments=1)
    rlog = reader.partition("t", 0)
    rlog.read_records(0)
    with LogStore(path) as w:
        w.partition("t", 0).truncate_to(10)
    before = sorted(os.listdir(path / "t-0"))
    with pytest.raises(Exception):  # noqa: B017 - out of range now, or a reload: never a new file
        rlog.read_records(38)
    assert sorted(os.listdir(path / "t-0")) == before
    reader.close()
    with LogStore(path) as s:
        assert s.partition("t", 0).next_offset == 10
        assert s.append("t", 0, [b"next"]).first_offset == 10


def test_readers_on_many_segments_with_a_tiny_handle_cache_do_not_deadlock(tmp_path):
    path = tmp_path / "s"
    with LogStore(path) as s:
        s.create_topic("t", 1, {"segment.bytes": 300})
        for i in range(80):
            s.append("t", 0, [b"v%03d" % i * 10])
    store = LogStore(path, max_open_segments=3)
    errors = []

    def reader(seed):
        try:
            for k in range(300):
                off = (seed * 37 + k * 13) % 80
                assert store.read("t", 0, off, max_records=1).values == [b"v%03d" % off * 10]
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=reader, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "readers deadlocked"
    assert errors == []
    store.close()


def test_a_crash_inside_truncate_to_leaves_a_prefix_without_holes(tmp_path, monkeypatch):
    d = tmp_path / "t-0"
    cfg = TopicConfig.from_layers({"segment.bytes": 700})
    log = PartitionLog(str(d), "t", 0, cfg)
    for i in range(40):
        log.append_records([b"v%02d" % i])
    assert len(log.segments) >= 4
    calls = [0]
    real = log_module.remove_quietly

    def dying(paths):
        calls[0] += 1
        if calls[0] == 3:  # after the newest segment's files went, before the next one's
            raise SystemExit("simulated crash")
        return real(paths)

    monkeypatch.setattr(log_module, "remove_quietly", dying)
    with pytest.raises(SystemExit):
        log.truncate_to(3)
    monkeypatch.setattr(log_module, "remove_quietly", real)
    crash(log)
    again = PartitionLog(str(d), "t", 0, cfg)
    offsets = again.read_records(0, max_bytes=1 << 20).offsets
    assert offsets == list(range(again.next_offset))  # contiguous: no hole, nothing after a gap
    segs = again.segments
    assert all(b.base_offset == a.next_offset for a, b in itertools.pairwise(segs))
    again.close()


def test_a_failed_write_is_cut_back_and_never_adopted(tmp_path, monkeypatch):
    log = PartitionLog(str(tmp_path / "t-0"), "t", 0, TopicConfig.from_layers(None))
    log.append_records([b"ok-0"])
    real = os.pwritev

    def half(fd, buffers, offset):
        data = b"".join(bytes(b) for b in buffers)
        os.pwrite(fd, data[: len(data) // 2 + 80], offset)  # the first batch lands whole
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(faults.ops, "pwritev", half)
    with pytest.raises(StorageError, match="No space left"):
        log.append(build_batch([b"FAILED-a"]) + build_batch([b"FAILED-b"]))
    monkeypatch.setattr(faults.ops, "pwritev", real)
    assert log.append_records([b"ok-after"]).first_offset == 1
    assert log.read_records(0).values == [b"ok-0", b"ok-after"]
    log.close()


def test_a_crashed_topic_deletion_does_not_resurrect_data(tmp_path):
    path = tmp_path / "s"
    with LogStore(path) as s:
        s.create_topic("orders", 1)
        s.append("orders", 0, [b"SECRET"] * 20)
        # A crash right after the registry dropped the topic, before its directory went:
        topics = dict(s._topics())
        del topics["orders"]
        s._write_topics(topics)
    os.makedirs(path / "orders-0.deadbeef-delete")
    with LogStore(path) as s:
        assert not (path / "orders-0.deadbeef-delete").exists()  # finished at open
        s.create_topic("orders", 1)
        assert s.partition("orders", 0).next_offset == 0
        assert s.read("orders", 0, 0).values == []


def test_multi_batch_append_indexes_the_batch_with_the_max_timestamp(tmp_path):
    log = PartitionLog(str(tmp_path / "t-0"), "t", 0, TopicConfig.from_layers({"index.interval.bytes": 0}))
    log.append_records([b"first"], timestamps=1000)
    log.append(build_batch([b"A"], timestamps=5000) + build_batch([b"B"], timestamps=2000))
    assert log.active_segment.time_index.entries_list() == [(5000, 1)]  # Kafka's entry
    assert log.offset_for_time(3000).offset == 1
    log.close()


def test_delete_topic_while_another_thread_rolls_does_not_deadlock(tmp_path):
    store = LogStore(tmp_path / "s", lock_timeout=10)
    store.create_topic("t", 1, {"segment.bytes": 200})
    store.create_topic("keep", 1)
    stop = threading.Event()
    errors = []

    def roller():
        while not stop.is_set():
            try:
                store.append("t", 0, [b"x" * 150])
            except Exception as e:  # the topic going away under it is expected
                errors.append(e)
                return

    t = threading.Thread(target=roller)
    t.start()
    store.delete_topic("t")
    stop.set()
    t.join(timeout=30)
    assert not t.is_alive()
    assert not any(type(e).__name__ == "StoreLockedError" for e in errors)
    store.close()
