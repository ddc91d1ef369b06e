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


# --- a topic deleted (and made again) under a log another handle holds open ------------------------
# Another handle stands for another process: the files are all they share. Whatever the timing,
# the old log never reads the new topic's records; it says the topic was deleted, and the store
# hands out a log of the new topic.

_SMALL = {"segment.bytes": 4096, "index.interval.bytes": 256}


def _fill(store, tag):
    for i in range(200):
        store.append("t", 0, [b"%s-%03d " % (tag, i) * 20])


def _remake(store):
    store.delete_topic("t")
    store.create_topic("t", 1, _SMALL)
    _fill(store, b"NEW")


def _held_log(path):
    """A store with topic t of 200 "old" records in 12 segments, and its log of t-0, read often
    enough that its layout generation is mapped; segment 0 is open, the later ones are not."""
    s = LogStore(path)
    s.create_topic("t", 1, _SMALL)
    _fill(s, b"old")
    log = s.partition("t", 0)
    for _ in range(300):
        log.read_records(0, max_records=1)
    assert log._shared is not None
    return s, log


def _on_first_call(real, action, *, after=False):
    """``real`` wrapped so that its first call also runs ``action()``: before the call, or with
    ``after`` once it returned, as ``action(result)``. Stands for another handle acting between
    two steps of a read."""
    fired = []

    def wrapper(*args, **kwargs):
        if fired:
            return real(*args, **kwargs)
        fired.append(1)
        if not after:
            action()
            return real(*args, **kwargs)
        result = real(*args, **kwargs)
        action(result)
        return result

    return wrapper


def _assert_moved_on(store, log):
    with pytest.raises(UnknownTopicError, match="deleted since partition t-0 was opened"):
        log.read_records(150, max_records=1)
    fresh = store.partition("t", 0)
    assert fresh is not log
    assert fresh.read_records(150, max_records=1).values == [b"NEW-150 " * 20]


def test_a_delete_tells_held_logs_even_when_it_fails_after_the_move(tmp_path, monkeypatch):
    # The directory is moved, then fsync of the store directory fails: the held log was told
    # already (the generation moves right after each move, before anything else can fail).
    from logstore import store as store_module

    s1, log = _held_log(tmp_path / "s")
    s2 = LogStore(tmp_path / "s")
    real = store_module.fsync_dir

    def failing(d):
        monkeypatch.setattr(store_module, "fsync_dir", real)
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(store_module, "fsync_dir", failing)
    with pytest.raises(OSError):
        s2.delete_topic("t")
    s2.create_topic("t", 1, _SMALL)
    _fill(s2, b"NEW")
    _assert_moved_on(s1, log)
    s1.close(), s2.close()


def test_a_delete_while_a_held_log_lists_its_directory(tmp_path):
    # A roll moves the generation; the held log checks its lock file (still its own), and the
    # delete and re-make land before it lists the directory: it lists the new topic's segments.
    # It must notice after listing, and not keep that view.
    s1, log = _held_log(tmp_path / "s")
    s2 = LogStore(tmp_path / "s")
    s2.partition("t", 0).roll()
    log._flock.is_stale = _on_first_call(log._flock.is_stale, lambda _: _remake(s2), after=True)
    for offset in (150, 0, 150):  # and it stays dead: no later read uses the view it listed
        with pytest.raises(UnknownTopicError, match="deleted since partition t-0 was opened"):
            log.read_records(offset, max_records=1)
    _assert_moved_on(s1, log)
    s1.close(), s2.close()


def test_a_delete_between_a_reads_check_and_its_lazy_open(tmp_path):
    # The generation is unchanged when the read starts; the delete and re-make land before the
    # read opens a segment file it never opened: the name leads to the new topic's file.
    s1, log = _held_log(tmp_path / "s")
    s2 = LogStore(tmp_path / "s")
    log._locate = _on_first_call(log._locate, lambda: _remake(s2))
    _assert_moved_on(s1, log)
    s1.close(), s2.close()


def test_a_second_reader_does_not_use_a_file_the_first_one_refused(tmp_path):
    # Two threads read one log; both located a segment neither had opened before the delete and
    # re-make. The first to open its files finds them the new topic's and raises; the segment must
    # not keep them for the second, which opens (and checks) again.
    s1, log = _held_log(tmp_path / "s")
    s2 = LogStore(tmp_path / "s")
    refused = []

    def other_thread(located):
        segments, i = located
        seg = segments[i]
        seg.release()  # as the store's descriptor budget may: every file is opened by name again
        _remake(s2)
        for get in (seg.fd, lambda: seg.index, lambda: seg.time_index):
            with pytest.raises(UnknownTopicError):
                get()
            refused.append(get)
        assert not seg.has_handles()

    log._locate = _on_first_call(log._locate, other_thread, after=True)
    _assert_moved_on(s1, log)
    assert len(refused) == 3
    s1.close(), s2.close()


def test_opening_a_partition_while_it_is_deleted_and_made_again(tmp_path, monkeypatch):
    # The lock file is opened by name, then the delete and re-make land before the flock is
    # taken: the log would guard (and recover) the new files with the old lock. partition()
    # opens it again instead, on the new topic.
    path = tmp_path / "s"
    with LogStore(path) as s:
        s.create_topic("t", 1, _SMALL)
        _fill(s, b"old")
    s1, s2 = LogStore(path), LogStore(path)
    real = os.open
    fired = []

    def racing(p, *a, **k):
        if str(p).endswith(".logstore.open") and not fired:
            fired.append(1)
            _remake(s2)
        return real(p, *a, **k)

    monkeypatch.setattr(os, "open", racing)
    log = s1.partition("t", 0)
    monkeypatch.setattr(os, "open", real)
    assert fired and not log._flock.is_stale()
    assert log.read_records(150, max_records=1).values == [b"NEW-150 " * 20]
    s1.close(), s2.close()


def test_a_dead_log_is_not_handed_out_while_its_old_directory_lingers(tmp_path, monkeypatch):
    # The deleting process died (or failed to remove the files) after the move: the old lock file
    # still has a link, in the moved directory. The store must still hand out the new topic.
    from logstore import store as store_module

    s1, log = _held_log(tmp_path / "s")
    s2 = LogStore(tmp_path / "s")
    monkeypatch.setattr(store_module, "_remove_tree", lambda d: None)
    _remake(s2)
    _assert_moved_on(s1, log)
    s1.close(), s2.close()


def test_a_delete_that_waited_for_a_lock_deletes_what_is_there_now(tmp_path, monkeypatch):
    # While this delete waits for a partition's flock, another handle deletes the topic and
    # makes it again. This delete must lock, move and tell the readers of the new directory,
    # not of the old lock file it opened first.
    from logstore import store as store_module

    path = tmp_path / "s"
    with LogStore(path) as s0:
        s0.create_topic("t", 1, _SMALL)
        _fill(s0, b"v1")
    s1, s2, s3 = LogStore(path), LogStore(path), LogStore(path)
    base = store_module.FileLock
    held, fired = [], []

    class Racing(base):
        def acquire(self):
            if not fired:
                fired.append(1)
                _remake(s2)
                log = s3.partition("t", 0)  # a reader of the made-again topic
                for _ in range(300):
                    log.read_records(0, max_records=1)
                held.append(log)
            return super().acquire()

    monkeypatch.setattr(store_module, "FileLock", Racing)
    s1.delete_topic("t")
    monkeypatch.setattr(store_module, "FileLock", base)
    s2.create_topic("t", 1, _SMALL)
    for i in range(200):
        s2.append("t", 0, [b"NEW-%03d " % i * 20])  # a third topic t, as _assert_moved_on expects
    _assert_moved_on(s3, held[0])
    s1.close(), s2.close(), s3.close()
