"""Producer: routing, batching (size, linger with an injected clock), delivery, errors, threads."""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path

import pytest

import logstore.producer as producer_module
from logstore import (
    InvalidConfigError,
    LogClosedError,
    LogStoreError,
    Producer,
    RecordMetadata,
    RecordTooLargeError,
    StorageError,
    UnknownPartitionError,
    UnknownTopicError,
)
from logstore.partitioner import crc32_partition, murmur2_partition
from logstore.records import iter_batches
from logstore.storage.log import PartitionLog


def all_records(store, topic):
    out = {}
    for p in range(store.partition_count(topic)):
        log = store.partition(topic, p)
        cols = log.read_records(0, max_bytes=1 << 26) if log.next_offset else None
        out[p] = cols
    return out


def batches_of(store, topic, p):
    log = store.partition(topic, p)
    data = b"".join(Path(s.log_path).read_bytes() for s in log.segments)
    return [h for _, h in iter_batches(data)]


def test_send_returns_metadata_and_records_land(store):
    store.create_topic("t", 3)
    with Producer(store) as prod:
        f = prod.send("t", b"v1", key=b"key")
        g = prod.send("t", "text value", key="key", headers={"h": b"1"}, timestamp=1_700_000_000_000)
        md = f.get(timeout=10)
    assert isinstance(md, RecordMetadata)
    assert md.partition == murmur2_partition(b"key", 3)  # Kafka's Java placement
    assert (md.topic, md.offset) == ("t", 0)
    assert g.get().offset == 1 and g.get().timestamp == 1_700_000_000_000
    cols = store.read("t", md.partition, 0)
    assert cols.values == [b"v1", b"text value"]
    assert cols.keys == [b"key", b"key"]
    assert cols.headers[1] == (("h", b"1"),)


def test_keyed_routing_matches_java_and_librdkafka(store):
    store.create_topic("t", 6)
    keys = [b"", b"a", b"key", b"foobar", b"user-42", b"hello world"]
    with Producer(store) as prod:
        got = [prod.send("t", b"x", key=k).get(10).partition for k in keys]
    assert got == [3, 4, 1, 0, 4, 1]  # murmur2 % 6 (fact sheet table)
    with Producer(store, partitioner="consistent") as prod:
        got = [prod.send("t", b"x", key=k).get(10).partition for k in keys]
    assert got == [crc32_partition(k, 6) for k in keys] == [0, 3, 1, 5, 1, 3]


def test_explicit_partition_wins_and_is_checked(store):
    store.create_topic("t", 2)
    with Producer(store) as prod:
        assert prod.send("t", b"x", key=b"key", partition=0).get(10).partition == 0
        with pytest.raises(UnknownPartitionError):
            prod.send("t", b"x", partition=2)


def test_null_keys_stick_to_a_partition_per_batch(store):
    store.create_topic("t", 4)
    with Producer(store, batch_size=1000, linger_ms=10_000) as prod:
        parts = [prod.send("t", b"v" * 100) for _ in range(60)]
        prod.flush()
        seq = [f.get().partition for f in parts]
    # runs of one partition, switching when a batch closed, never switching within a batch
    switches = sum(1 for a, b in itertools.pairwise(seq) if a != b)
    assert 3 <= switches <= len(seq) // 5
    with Producer(store, null_key_partitioner="round_robin") as prod:
        seq = [prod.send("t", b"v").get(10).partition for _ in range(8)]
    assert sorted(seq[:4]) == [0, 1, 2, 3] and seq[:4] == seq[4:]


def test_batch_size_closes_batches(store):
    store.create_topic("t", 1)
    with Producer(store, batch_size=2048, linger_ms=60_000, compression_type="none") as prod:
        for i in range(100):
            prod.send("t", b"%03d" % i * 30)
    hs = batches_of(store, "t", 0)
    assert sum(h.records_count for h in hs) == 100
    assert len(hs) >= 100 * 111 // 2048  # each batch closed at about batch_size bytes
    assert all(h.size <= 2048 + 61 + 130 for h in hs)


def test_linger_with_an_injected_clock(store):
    store.create_topic("t", 1)
    now = [1000.0]
    prod = Producer(store, linger_ms=500, clock=lambda: now[0])
    f = prod.send("t", b"x")
    time.sleep(0.2)
    assert not f.is_done()  # the clock has not moved: the batch waits
    assert store.partition("t", 0).next_offset == 0
    now[0] += 0.6
    with prod._lock:
        prod._wake.notify_all()
    assert f.get(timeout=5).offset == 0  # delivered by the sender thread, no caller action
    prod.close()


def test_linger_zero_sends_each_record_promptly(store):
    store.create_topic("t", 1)
    with Producer(store, linger_ms=0) as prod:
        assert prod.send("t", b"x").get(timeout=5).offset == 0


@pytest.mark.parametrize("codec", ["none", "gzip", "lz4", "zstd", "snappy"])
def test_compression_round_trip_through_the_log(store, codec):
    store.create_topic("t", 1)
    with Producer(store, compression_type=codec, linger_ms=50) as prod:
        for i in range(500):
            prod.send("t", b"value-%d" % i, key=b"k%d" % (i % 7), partition=0)
    cols = store.read("t", 0, 0, max_records=1000)
    assert cols.values == [b"value-%d" % i for i in range(500)]
    expected = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}[codec]
    assert {h.compression for h in batches_of(store, "t", 0)} == {expected}


def test_log_append_time_topic_stamps_at_append(store):
    store.create_topic("t", 1, {"message.timestamp.type": "LogAppendTime"})
    with Producer(store) as prod:
        md = prod.send("t", b"x", timestamp=5).get(10)
    assert md.timestamp > 1_600_000_000_000
    assert store.read("t", 0, 0).timestamp_types == ["log_append"]


def test_bad_input_fails_at_once_with_clear_errors(store):
    store.create_topic("orders", 1, {"max.message.bytes": 1000})
    prod = Producer(store)
    with pytest.raises(UnknownTopicError, match="Did you mean 'orders'"):
        prod.send("ordrs", b"x")
    with pytest.raises(TypeError, match="value"):
        prod.send("orders", 42)
    with pytest.raises(TypeError, match="key"):
        prod.send("orders", b"x", key=3.5)
    with pytest.raises(TypeError, match="headers"):
        prod.send("orders", b"x", headers=[("k",)])
    with pytest.raises(RecordTooLargeError) as e:
        prod.send("orders", b"x" * 5000)
    # the record as it would go in a batch (61-byte header) against the topic's real limit
    assert "5082-byte record" in str(e.value) and "max.message.bytes (1000 bytes)" in str(e.value)
    small = Producer(store, max_request_size=100)
    with pytest.raises(RecordTooLargeError, match=r"exceeds max_request_size \(100 bytes\)"):
        small.send("orders", b"x" * 200)
    small.close()
    with pytest.raises(InvalidConfigError, match="linger_ms"):
        Producer(store, linger_msec=5)
    prod.close()
    with pytest.raises(LogClosedError):
        prod.send("orders", b"x")


def test_auto_create_topics_when_enabled(store):
    with Producer(store, auto_create_topics=True) as prod:
        assert prod.send("fresh", b"x").get(10).offset == 0
    assert store.topic_names() == ["fresh"]


def test_a_failed_append_fails_exactly_its_records(store, monkeypatch):
    store.create_topic("t", 2)
    real = PartitionLog.append

    def failing(self, batches, **kw):
        if self.partition == 1:
            raise StorageError("write", self.directory, OSError(28, "No space left on device"))
        return real(self, batches, **kw)

    monkeypatch.setattr(PartitionLog, "append", failing)
    prod = Producer(store, linger_ms=20)
    ok = [prod.send("t", b"a%d" % i, partition=0) for i in range(5)]
    bad = [prod.send("t", b"b%d" % i, partition=1) for i in range(5)]
    seen = []
    prod.send("t", b"b-cb", partition=1, on_delivery=lambda err, md: seen.append((err, md)))
    with pytest.raises(StorageError, match="No space left"):
        prod.flush()
    assert [f.get(1).offset for f in ok] == [0, 1, 2, 3, 4]
    for f in bad:
        assert f.failed()
        with pytest.raises(StorageError):
            f.get(1)
    assert len(seen) == 1 and isinstance(seen[0][0], StorageError) and seen[0][1] is None
    assert store.partition("t", 1).next_offset == 0  # nothing reported delivered that is not there
    monkeypatch.setattr(PartitionLog, "append", real)
    prod.close()


def test_on_delivery_callbacks_get_metadata(store):
    store.create_topic("t", 1)
    got = []
    with Producer(store) as prod:
        prod.produce("t", b"x", on_delivery=lambda err, md: got.append((err, md.offset)))
        prod.produce("t", b"y", on_delivery=lambda err, md: got.append((err, md.offset)))
    assert got == [(None, 0), (None, 1)]


def test_many_threads_one_producer_exactly_once_in_order(store):
    store.create_topic("t", 4)
    prod = Producer(store, linger_ms=2, batch_size=4096)
    futures: dict[str, list] = {}

    def worker(tag):
        futures[tag] = [prod.send("t", f"{tag}-{i}".encode(), key=tag.encode()) for i in range(2000)]

    threads = [threading.Thread(target=worker, args=(f"T{n}",)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    prod.close()
    for tag, fs in futures.items():
        mds = [f.get(1) for f in fs]
        assert len({md.partition for md in mds}) == 1
        offsets = [md.offset for md in mds]
        assert offsets == sorted(offsets)  # in order per partition per producer
        cols = store.read("t", mds[0].partition, 0, max_records=10**6)
        mine = [v.decode() for v in cols.values if v.startswith(tag.encode() + b"-")]
        assert mine == [f"{tag}-{i}" for i in range(2000)]
        by_offset = dict(zip(cols.offsets, cols.values, strict=True))
        assert all(by_offset[md.offset] == f"{tag}-{i}".encode() for i, md in enumerate(mds))


@pytest.mark.parametrize("sliced", [False, True])
def test_send_many_routes_and_reports_offsets(store, monkeypatch, sliced):
    if sliced:  # route and encode 700 records at a time: the order must hold across slices
        monkeypatch.setattr(producer_module, "_SLICE_RECORDS", 700)
        monkeypatch.setattr(producer_module, "_SLICE_PER_PARTITION", 1)
    store.create_topic("t", 5)
    keys = [b"user-%05d" % (i % 97) for i in range(5000)]
    vals = [b"value-%d" % i for i in range(5000)]
    with Producer(store, max_request_size=20_000) as prod:
        res = prod.send_many("t", vals, keys)
    assert [int(p) for p in res.partitions[:50]] == [murmur2_partition(k, 5) for k in keys[:50]]
    for p in range(5):
        cols = store.read("t", p, 0, max_records=10**6)
        idx = [i for i in range(5000) if res.partitions[i] == p]
        assert cols.values == [vals[i] for i in idx]  # input order within each partition
        assert cols.offsets == [int(res.offsets[i]) for i in idx]
        assert len(batches_of(store, "t", p)) > 1  # split at max_request_size


def test_flush_timeout_and_close_idempotent(store):
    store.create_topic("t", 1)
    prod = Producer(store)
    prod.send("t", b"x")
    assert prod.flush(timeout=10) == 0
    prod.close()
    prod.close()


def test_first_sends_from_many_threads_share_one_topic_state(store, monkeypatch):
    # Regression: threads racing to the first send() of a topic each made their own per-topic
    # state, and records in the losing copies were never delivered. A slow topic_config (as under
    # load) makes every thread enter the first-send path together.
    real = store.topic_config

    def slow(name):
        time.sleep(0.02)
        return real(name)

    monkeypatch.setattr(store, "topic_config", slow)
    store.create_topic("race", 4)
    prod = Producer(store, linger_ms=1)
    barrier = threading.Barrier(8)
    futures = []
    lock = threading.Lock()

    def worker(n):
        barrier.wait()
        fs = [prod.send("race", b"%d-%d" % (n, i), key=b"k%d" % n) for i in range(50)]
        with lock:
            futures.extend(fs)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    prod.close(timeout=30)
    assert all(f.is_done() for f in futures)
    assert sum(store.partition("race", p).next_offset for p in range(4)) == 400


def test_flush_reports_failures_of_batches_sent_by_linger(store, monkeypatch):
    # Regression: a batch sent by linger that failed before flush() was called went unreported.
    store.create_topic("t", 1)
    real = PartitionLog.append

    def failing(self, batches, **kw):
        raise StorageError("write", self.directory, OSError(5, "Input/output error"))

    monkeypatch.setattr(PartitionLog, "append", failing)
    prod = Producer(store, linger_ms=1)
    f = prod.send("t", b"x")
    with pytest.raises(StorageError):
        f.get(5)
    with pytest.raises(StorageError, match="Input/output error"):
        prod.flush()
    monkeypatch.setattr(PartitionLog, "append", real)
    assert prod.flush() == 0  # reported once
    prod.close()


def test_batches_stay_under_the_topics_max_message_bytes(store):
    # Regression: records that passed send() were batched past the topic limit and all failed.
    store.create_topic("t", 1, {"max.message.bytes": 2000})
    with Producer(store, linger_ms=50) as prod:
        futures = [prod.send("t", b"v" * 300) for _ in range(10)]
    assert [f.get(1).offset for f in futures] == list(range(10))
    assert all(h.size <= 2000 + 12 for h in batches_of(store, "t", 0))


def test_send_then_send_many_keeps_order_within_a_partition(store):
    store.create_topic("t", 1)
    with Producer(store, linger_ms=10_000) as prod:
        prod.send("t", b"first (send)")
        prod.send_many("t", [b"second (send_many)"])
    assert store.read("t", 0, 0).values == [b"first (send)", b"second (send_many)"]


def test_a_dead_sender_fails_pending_records_instead_of_hanging(store):
    store.create_topic("t", 1)
    prod = Producer(store, linger_ms=1)

    def boom(err, md):
        raise SystemExit("callback called exit")

    f = prod.send("t", b"a", on_delivery=boom)  # a callback must not kill the sender
    assert f.get(5).offset == 0
    assert prod.send("t", b"b").get(5).offset == 1
    prod.close(timeout=5)


def test_blocking_on_buffer_memory_drains_lingering_batches(store):
    store.create_topic("t", 1)
    with Producer(store, linger_ms=60_000, buffer_memory=1000, max_block_ms=5000) as prod:
        t0 = time.monotonic()
        futures = [prod.send("t", b"v" * 200) for _ in range(20)]
        assert time.monotonic() - t0 < 5
    assert [f.get(1).offset for f in futures] == list(range(20))


def test_send_many_checks_input_before_appending(store):
    store.create_topic("t", 3)
    with Producer(store) as prod:
        with pytest.raises(ValueError, match="timestamps"):
            prod.send_many("t", [b"a", b"b"], timestamps=[1])
        with pytest.raises(TypeError, match="record 1"):
            prod.send_many("t", [b"a", 42])
        res = prod.send_many("t", ["text is utf-8", b"bytes"], headers=[{"h": b"1"}, None])
    assert sum(store.partition("t", p).next_offset for p in range(3)) == 2  # nothing half-done before
    assert int(res.offsets.min()) >= 0


def test_consistent_random_sends_empty_keys_to_random_partitions(store):
    store.create_topic("t", 4)
    with Producer(store, partitioner="consistent_random", null_key_partitioner="round_robin") as prod:
        parts = {prod.send("t", b"x", key=b"").get(5).partition for _ in range(8)}
    assert len(parts) > 1  # librdkafka: key length 0 is not hashed


def test_flush_from_a_callback_raises_instead_of_deadlocking(store):
    store.create_topic("t", 1)
    errors = []

    def callback(err, md):
        try:
            prod.flush()
        except Exception as e:
            errors.append(e)

    prod = Producer(store, linger_ms=1)
    prod.send("t", b"x", on_delivery=callback).get(5)
    prod.close(timeout=5)
    assert len(errors) == 1 and "on_delivery callback" in str(errors[0])


@pytest.mark.parametrize("stage", ["frame", "append"])
def test_send_many_stops_at_a_failed_stage_and_keeps_what_was_appended(store, monkeypatch, stage):
    """A failure in the framing or the appending thread is raised by send_many (no hang), and the
    batches appended before it stay, in order."""
    store.create_topic("t", 1)
    calls = []

    def failing(real):
        def wrapper(*args, **kwargs):
            calls.append(1)
            if len(calls) == 3:
                raise LogStoreError(f"injected {stage} failure", "nothing to do")
            return real(*args, **kwargs)

        return wrapper

    if stage == "frame":
        monkeypatch.setattr(producer_module, "frame_batch", failing(producer_module.frame_batch))
    else:
        monkeypatch.setattr(PartitionLog, "append", failing(PartitionLog.append))
    vals = [b"v%05d" % i for i in range(3000)]
    # About 180 records per append.
    with Producer(store, max_request_size=2000) as prod, pytest.raises(LogStoreError, match=f"injected {stage}"):
        prod.send_many("t", vals)
    kept = store.read("t", 0, 0, max_records=10**6).values
    assert 0 < len(kept) < len(vals) and kept == vals[: len(kept)]
    assert len(batches_of(store, "t", 0)) == 2


def test_send_many_raises_the_earliest_batch_failure_when_both_stages_fail(store, monkeypatch):
    """The append of batch 2 fails late (after the framing of batch 4 has failed): the error
    raised is batch 2's, and only batch 1 is in the log."""
    store.create_topic("t", 1)
    appends, frames = [], []
    real_append, real_frame = PartitionLog.append, producer_module.frame_batch

    def slow_failing_append(self, *args, **kwargs):
        appends.append(1)
        if len(appends) == 2:
            time.sleep(0.5)
            raise LogStoreError("append of batch 2 failed", "nothing to do")
        return real_append(self, *args, **kwargs)

    def failing_frame(*args, **kwargs):
        frames.append(1)
        if len(frames) == 4:
            raise LogStoreError("framing of batch 4 failed", "nothing to do")
        return real_frame(*args, **kwargs)

    monkeypatch.setattr(PartitionLog, "append", slow_failing_append)
    monkeypatch.setattr(producer_module, "frame_batch", failing_frame)
    vals = [b"v%05d" % i for i in range(3000)]
    with Producer(store, max_request_size=2000) as prod, pytest.raises(LogStoreError, match="batch 2"):
        prod.send_many("t", vals)
    assert len(batches_of(store, "t", 0)) == 1


def test_a_small_send_many_runs_in_the_callers_thread_and_raises_its_failure(store, monkeypatch):
    """Input that fits one request per partition is framed and appended without the pipeline's
    threads; an append failure is raised all the same."""
    store.create_topic("t", 2)
    threads: list[str] = []

    def failing_append(self, *args, **kwargs):
        threads.append(threading.current_thread().name)
        raise LogStoreError("injected append failure", "nothing to do")

    monkeypatch.setattr(PartitionLog, "append", failing_append)
    with Producer(store) as prod, pytest.raises(LogStoreError, match="injected append failure"):
        prod.send_many("t", [b"a", b"b", b"c"], [b"k1", b"k2", b"k3"])
    assert threads == [threading.current_thread().name]  # the first failure stops the rest
