"""LogStore: the store directory, topics, config, names, format version, deletion."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from logstore import (
    InvalidConfigError,
    InvalidTopicError,
    LogStore,
    StoreFormatError,
    TopicExistsError,
    UnknownPartitionError,
    UnknownTopicError,
)
from logstore.storage.files import read_checkpoint


def test_create_describe_list(store):
    info = store.create_topic("orders", 3, {"retention.ms": "7d", "segment.bytes": "1MiB"})
    assert info.partition_count == 3
    assert info.config == {"retention.ms": 604800000, "segment.bytes": 1048576}
    assert info.effective_config.segment_bytes == 1048576
    assert [p.partition for p in info.partitions] == [0, 1, 2]
    assert all(p.start_offset == 0 and p.end_offset == 0 and p.segments == 1 for p in info.partitions)
    store.append("orders", 1, [b"a", b"b"])
    d = store.describe_topic("orders")
    assert d.partitions[1].end_offset == 2 and d.partitions[1].size_bytes > 0
    assert [t.name for t in store.list_topics()] == ["orders"]
    for p in range(3):
        assert os.path.isdir(os.path.join(store.path, f"orders-{p}"))
        meta = Path(store.path, f"orders-{p}", "partition.metadata").read_text()
        assert meta.startswith("version: 0\ntopic_id: ") and len(meta.split()[-1]) == 22


def test_topic_exists_and_exist_ok(store):
    store.create_topic("t")
    with pytest.raises(TopicExistsError) as e:
        store.create_topic("t")
    assert e.value.exit_code == 4 and "--if-not-exists" in str(e.value)
    assert store.create_topic("t", exist_ok=True).name == "t"


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "../x", "x" * 250, "sp ace", "é"])
def test_invalid_topic_names_are_refused(store, name):
    with pytest.raises(InvalidTopicError):
        store.create_topic(name)
    assert store.list_topics() == []


def test_dot_underscore_collision_is_refused(store):
    store.create_topic("a.b")
    with pytest.raises(InvalidTopicError, match="collides"):
        store.create_topic("a_b")


def test_unknown_config_key_suggests_the_right_one(store):
    with pytest.raises(InvalidConfigError) as e:
        store.create_topic("t", config={"retention.mss": 5})
    assert "retention.ms" in str(e.value)
    with pytest.raises(InvalidConfigError):
        store.create_topic("t", config={"segment.bytes": "lots"})
    with pytest.raises(InvalidConfigError):
        store.create_topic("t", config={"segment.bytes": 3})  # below Kafka's minimum 14
    with pytest.raises(InvalidConfigError):
        store.create_topic("t", partitions=0)
    assert store.list_topics() == []


def test_unknown_topic_and_partition(store):
    store.create_topic("orders", 2)
    with pytest.raises(UnknownTopicError) as e:
        store.partition("ordrs", 0)
    assert "Did you mean 'orders'?" in str(e.value) and e.value.exit_code == 3
    with pytest.raises(UnknownPartitionError, match=r"0\.\.1"):
        store.partition("orders", 2)


def test_newer_format_is_refused_and_untouched(tmp_path):
    path = tmp_path / "s"
    LogStore(path).close()
    meta = path / "logstore.json"
    doc = json.loads(meta.read_text())
    doc["format_version"] = 99
    meta.write_text(json.dumps(doc))
    before = meta.read_bytes()
    with pytest.raises(StoreFormatError, match="format version 99"):
        LogStore(path)
    assert meta.read_bytes() == before


def test_non_store_directory_is_refused(tmp_path):
    (tmp_path / "precious.txt").write_text("x")
    with pytest.raises(StoreFormatError, match="not empty"):
        LogStore(tmp_path)
    with pytest.raises(StoreFormatError):
        LogStore(tmp_path / "missing", create=False)


def test_fsync_default_is_saved_and_topic_config_wins(tmp_path):
    with LogStore(tmp_path / "s", fsync="interval") as s:
        s.create_topic("a")
        s.create_topic("b", config={"flush.messages": 1})
        assert s.topic_config("a").flush_ms == 1000
        assert s.topic_config("b").flush_messages == 1
    with LogStore(tmp_path / "s") as s:  # saved in the store
        assert s.topic_config("a").flush_ms == 1000
    with pytest.raises(InvalidConfigError):
        LogStore(tmp_path / "s", fsync="sometimes")


def test_delete_topic_removes_data_and_checkpoints(store):
    store.create_topic("gone", 2)
    store.append("gone", 0, [b"x"])
    store.partition("gone", 0).roll()
    store.create_topic("kept")
    store.delete_topic("gone")
    assert [t.name for t in store.list_topics()] == ["kept"]
    assert not [n for n in os.listdir(store.path) if n.startswith("gone")]
    assert all(t != "gone" for t, _ in read_checkpoint(os.path.join(store.path, "recovery-point-offset-checkpoint")))
    with pytest.raises(UnknownTopicError):
        store.delete_topic("gone")
    store.delete_topic("gone", missing_ok=True)
    store.create_topic("gone")  # the name can be reused, starting empty
    assert store.describe_topic("gone").partitions[0].end_offset == 0


def test_other_process_topic_creation_is_seen(tmp_path):
    a = LogStore(tmp_path / "s")
    b = LogStore(tmp_path / "s")
    a.create_topic("new")
    assert b.topic_names() == ["new"]
    a.close()
    b.close()


def test_writer_on_deleted_topic_gets_an_error_not_silent_loss(tmp_path):
    a = LogStore(tmp_path / "s")
    b = LogStore(tmp_path / "s")
    a.create_topic("t")
    log_b = b.partition("t", 0)
    log_b.append_records([b"1"])
    a.delete_topic("t")
    with pytest.raises(UnknownTopicError):
        log_b.append_records([b"2"])
    a.close()
    b.close()


def test_checkpoints_use_kafkas_text_format(store):
    store.create_topic("t", config={"segment.bytes": 200})
    for _ in range(5):
        store.append("t", 0, [b"x" * 100])
    text = Path(store.path, "recovery-point-offset-checkpoint").read_text().splitlines()
    assert text[0] == "0" and int(text[1]) == len(text) - 2
    topic, part, off = text[2].split()
    assert (topic, int(part)) == ("t", 0) and int(off) > 0


def test_many_partitions_open_lazily(tmp_path):
    with LogStore(tmp_path / "s") as s:
        s.create_topic("wide", 2000)
    with LogStore(tmp_path / "s") as s:
        fds_before = len(os.listdir("/proc/self/fd"))
        info = s.list_topics()
        assert info[0].partition_count == 2000
        assert len(os.listdir("/proc/self/fd")) - fds_before < 5  # nothing opened per partition
        s.append("wide", 1999, [b"x"])
        assert s.read("wide", 1999, 0).values == [b"x"]


def test_handle_cache_bounds_open_descriptors(tmp_path):
    with LogStore(tmp_path / "s", max_open_segments=8) as s:
        s.create_topic("t", 1, {"segment.bytes": 150})
        for i in range(60):
            s.append("t", 0, [b"v%03d" % i * 10])
        log = s.partition("t", 0)
        assert len(log.segments) >= 50
        fds = len(os.listdir("/proc/self/fd"))
        for off in range(0, 60, 3):
            assert s.read("t", 0, off, max_records=1).values == [b"v%03d" % off * 10]
        assert len(os.listdir("/proc/self/fd")) - fds <= 8 * 3
        assert sum(1 for seg in log.segments if seg.has_handles()) <= 9
