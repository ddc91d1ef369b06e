"""S15-S19: disk full, file-size limit, short writes, fsync errors and an I/O-error sweep.

The promise under every fault: the failing append raises (StorageError naming the file and the
errno) and is not acknowledged; nothing half-written becomes visible; what was acknowledged before
stays; once the cause is gone, appends go on with contiguous offsets (after a failed fsync, once
the store is reopened: a retried fsync proves nothing).
"""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import subprocess
import sys

import pytest

from logstore import LogStore
from logstore.errors import LogStoreError, StorageError

from .checker import History, check, digest, stored_values
from .conftest import SOAK, iterations
from .iofaults import FaultyIO, installed

CHILD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fault_child.py")


def run_child(args: list[str], timeout: float = 120) -> dict:
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def can_mount_tmpfs() -> bool:
    if not shutil.which("unshare"):
        return False
    r = subprocess.run(["unshare", "-Urm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"], capture_output=True)
    return r.returncode == 0


@pytest.mark.skipif(not can_mount_tmpfs(), reason="needs unshare -Urm to mount a small tmpfs (user namespaces)")
def test_s15_a_full_disk_fails_the_append_cleanly_and_appends_go_on_after_room_returns(tmp_path, campaign):
    """S15 on a real 1 MiB tmpfs: ENOSPC is a StorageError with the errno and the file; nothing of
    the failed batch is visible; after room returns offsets continue; retention runs on the full
    disk; the reopened store verifies clean."""
    d = str(tmp_path)
    out = run_child(
        [
            "unshare",
            "-Urm",
            "sh",
            "-c",
            f"mount -t tmpfs -o size=1m tmpfs {d} && exec {sys.executable} {CHILD} enospc {d}",
        ]
    )
    anomalies = [
        k
        for k, ok in [
            ("errno", out["errno"] == errno.ENOSPC and "No space left" in out["error"] and ".log" in out["error"]),
            ("definite failure", out["records_written"] is False),
            ("G1a", out["visible_after_failure"] == out["acked"] and out["contiguous"]),
            ("continue", out["offsets_continue"] and out["acked_after_room"] > 0),
            ("retention on a full disk", out["retention_deleted"] > 0 and out["errno_again"] == errno.ENOSPC),
            ("verify", out["verify"] == []),
            ("reopen", out["reopened_end"] == out["acked"] + out["acked_after_room"] == out["append_after_reopen"]),
        ]
        if not ok
    ]
    campaign("S15").add(iterations=1, faults=2, anomalies=len(anomalies))
    assert not anomalies, out


@pytest.mark.skipif(not can_mount_tmpfs(), reason="needs unshare -Urm to mount a small tmpfs (user namespaces)")
def test_regression_a_full_disk_under_the_index_map_was_sigbus(tmp_path, campaign):
    """S15: index entries are written through mmap into a sparse preallocated file. With the disk
    full, the entry that starts a new index page had no block behind it and the process died of
    SIGBUS (exit 135). Index space is now allocated before the append writes, so a full disk is
    an ENOSPC StorageError and everything acknowledged stays readable."""
    d = str(tmp_path)
    out = run_child(
        [
            "unshare",
            "-Urm",
            "sh",
            "-c",
            f"mount -t tmpfs -o size=256k tmpfs {d} && exec {sys.executable} {CHILD} sigbus {d}",
        ]
    )
    ok = out["errno"] == errno.ENOSPC and out["visible"] == out["acked"] >= 512
    campaign("S15").add(iterations=1, faults=1, anomalies=0 if ok else 1)
    assert ok, out


def test_s16_a_file_size_limit_gives_efbig_and_no_partial_batch(tmp_path, campaign):
    """S16: RLIMIT_FSIZE (SIGXFSZ ignored): the kernel writes part of the batch and then says
    EFBIG; the part is cut, never recorded as a batch, and appends go on once the limit is lifted."""
    out = run_child([sys.executable, CHILD, "efbig", str(tmp_path)])
    ok = (
        out["errno"] == errno.EFBIG
        and out["visible_after_failure"] == out["acked"] > 0
        and out["next_offset_after_limit_lifted"] == out["acked"]
        and out["contiguous"]
        and out["verify"] == []
    )
    campaign("S16").add(iterations=1, faults=1, anomalies=0 if ok else 1)
    assert ok, out


@pytest.mark.parametrize("kind", ["short", "interrupted"])
def test_s17_short_and_interrupted_writes_never_get_an_offset_for_a_partial_batch(tmp_path, campaign, kind):
    """S17: a write that writes half its bytes is finished (the writer loops); one interrupted
    (InterruptedError) fails the append cleanly; either way the log holds whole batches only."""
    path = str(tmp_path / "s")
    with LogStore(path) as s:
        s.create_topic("t", 1)
    rnd = random.Random(kind)
    expected: list[bytes] = []
    faults = 0
    with LogStore(path) as s:
        for i in range(iterations(40)):
            values = [b"%d-%d-" % (i, j) + rnd.randbytes(rnd.randint(1, 3000)) for j in range(rnd.randint(1, 20))]
            shim = (
                FaultyIO(1, kinds=("pwritev",), short=True)
                if kind == "short"
                else FaultyIO(1, errno.EINTR, kinds=("pwritev",))
            )
            if kind == "interrupted":
                shim.err = errno.EINTR
            with installed(shim):
                try:
                    s.append("t", 0, values)
                    expected += values
                except StorageError as e:
                    assert kind == "interrupted" and e.errno == errno.EINTR and not e.records_written
            faults += shim.injected
    got = stored_values(path)
    campaign("S17").add(iterations=iterations(40), faults=faults, anomalies=int(got != expected))
    assert got == expected


def test_s18_a_failed_fsync_is_never_retried_into_success(tmp_path, campaign):
    """S18 (fsyncgate): fsync fails once with EIO. The append is not acknowledged and says its
    outcome is unknown; every later append, flush and commit of that partition raises until the
    store is reopened (no retried fsync reports success); close writes no clean-shutdown marker;
    the reopen recovers the partition and appends continue."""
    path = str(tmp_path / "s")
    with LogStore(path) as s:
        s.create_topic("t", 2)
    anomalies = 0
    s = LogStore(path)
    s.append("t", 0, [b"before"])
    with installed(FaultyIO(1, errno.EIO, kinds=("fsync", "fdatasync"))) as shim, pytest.raises(StorageError) as e:
        s.append("t", 0, [b"unknown"])
    assert shim.injected == 1
    assert e.value.records_written and e.value.errno == errno.EIO and "durability unknown" in str(e.value)
    for _ in range(3):  # fenced: the fsync now "works", but nothing may be acknowledged
        with pytest.raises(StorageError, match="durability unknown"):
            s.append("t", 0, [b"after"])
        with pytest.raises(StorageError, match="durability unknown"):
            s.partition("t", 0).flush()
    s.append("t", 1, [b"other partition"])  # the fence is per partition
    s.close()
    part = os.path.join(path, "t-0")
    if os.path.exists(os.path.join(part, ".logstore.clean")):
        anomalies += 1
    got = stored_values(path)
    anomalies += got not in ([b"before"], [b"before", b"unknown"])
    with LogStore(path) as s2:
        r = s2.append("t", 0, [b"after reopen"])
        anomalies += r.first_offset != len(got)
    campaign("S18").add(iterations=1, faults=1, anomalies=anomalies)
    assert anomalies == 0


# --- S19: fail each operation of a workload in turn -----------------------------------------------


def workload(path: str, history: History, rnd: random.Random) -> list[str]:
    """Produce (rolls: small segments), retention and offset commits, recording each send in
    ``history``; errors are recorded, not raised. Returns the errors seen."""
    from logstore import Consumer
    from logstore.types import TopicPartition

    errors: list[str] = []
    try:
        s = LogStore(path)
    except LogStoreError as e:  # the open itself failed: nothing was sent
        return [str(e)]
    try:
        c = Consumer(s, group_id="g", enable_auto_commit=False)
        c.assign([TopicPartition("t", 0), TopicPartition("t", 1)])
        for b in range(24):
            p = b % 2
            values = [b"%d-%d-" % (b, j) + rnd.randbytes(rnd.randint(20, 200)) for j in range(rnd.randint(1, 8))]
            ds = [digest(v) for v in values]
            history.batches.append(ds)
            history.sent.update(ds)
            try:
                r = s.append("t", p, values)
            except LogStoreError as e:
                errors.append(str(e))
                for d in ds:
                    (history.info if getattr(e, "records_written", False) else history.failed).add(d)
                continue
            for o, d in zip(range(r.first_offset, r.last_offset + 1), ds, strict=True):
                history.ack("t", p, o, d)
            try:
                if b % 5 == 4:
                    s.apply_retention()
                if b % 3 == 2:
                    c.commit(offsets={TopicPartition("t", p): r.last_offset + 1})
            except LogStoreError as e:
                errors.append(str(e))
        c.close(autocommit=False)
    except LogStoreError as e:
        errors.append(str(e))
    finally:
        try:
            s.close()
        except LogStoreError as e:
            errors.append(str(e))
    return errors


def fresh_store(path: str) -> None:
    with LogStore(path) as s:
        s.create_topic("t", 2, {"segment.bytes": 1500, "retention.bytes": 3000, "segment.index.bytes": 4096})


@pytest.mark.parametrize("err", [errno.EIO, errno.ENOSPC])
@pytest.mark.parametrize("persistent", [False, True])
def test_s19_failing_each_io_operation_in_turn_keeps_every_acknowledged_record(tmp_path, campaign, err, persistent):
    """S19 (SQLite's I/O-error loop): a workload of appends, rolls, retention and commits, with
    operation N failing (once, or from N on), for N over the whole workload. Then the faults stop,
    the store is reopened (recovery), verified clean, and every acknowledged record is there; no
    record of a failed append is visible."""
    probe = str(tmp_path / "probe")
    fresh_store(probe)
    counter = FaultyIO(None)
    with installed(counter):
        workload(probe, History(), random.Random(0))
    total = counter.count
    assert total > 100
    # CI: 25 operations spread over the workload (a different sample per variant); soak: every one.
    step = 1 if SOAK else max(1, total // 25)
    first = 1 + random.Random(f"S19-{err}-{persistent}").randrange(step)
    bad = []
    runs = 0
    for n in range(first, total + 1, step):
        path = str(tmp_path / f"s{n}")
        fresh_store(path)
        history = History()
        shim = FaultyIO(n, err, persistent=persistent)
        with installed(shim):
            workload(path, history, random.Random(0))
        report = check(history, path)
        runs += 1
        campaign("S19").add(iterations=1, faults=shim.injected, anomalies=report.count)
        if not report.ok:
            bad.append(f"op {n} ({shim.log[n - 1] if n <= len(shim.log) else '?'}): {report}")
        shutil.rmtree(path)
    assert not bad, "\n".join(bad[:8])
    assert runs >= min(total, 24)
    assert not bad, "\n".join(bad[:8])


def test_regression_closing_an_idle_log_past_the_fd_budget_hid_a_failed_fsync(tmp_path, campaign):
    """S18 (found in review): under flush.messages>1 a partition with acknowledged but unflushed
    records was closed by the store's descriptor budget when other partitions were opened; the
    close's fsync failed (EIO), the error was swallowed, and the next ``partition()`` reopened the
    log unfenced. A log with unflushed records is not idle any more: it stays open, and the
    failure reaches the next append."""
    s = LogStore(str(tmp_path / "s"), config={"flush.messages": 1000})
    s._max_open_logs = 4  # stands in for a small RLIMIT_NOFILE
    s.create_topic("t", 8)
    s.append("t", 0, [b"acked, not yet fsynced"])
    shim = FaultyIO(1, errno.EIO, kinds=("fsync",), only=lambda p: p.endswith(".log") and "/t-0/" in p)
    with installed(shim):
        for p in range(1, 8):
            s.partition("t", p)
        with pytest.raises(StorageError, match="durability unknown"):
            s.partition("t", 0).flush()
    campaign("S18").add(iterations=1, faults=shim.injected, anomalies=0)
    with pytest.raises(StorageError, match="durability unknown"):
        s.append("t", 0, [b"next"])
    s.close()
