"""S01, S02, S14: process crashes (SIGKILL) at random moments and at every named crash point.

A kill -9 leaves the page cache intact, so these prove what survives a *process* crash under every
fsync policy (power loss is test_powerloss.py): every acknowledged record is there with its bytes,
nothing is duplicated, offsets stay contiguous, a batch is all or nothing, and recovery is
idempotent (a second reopen changes no file).
"""

from __future__ import annotations

import os
import random

import pytest

from logstore import LogStore, faults

from .checker import History, check, stored_values
from .conftest import SOAK, iterations
from .runner import fork_writer, kill_after, leftovers, spawn_writer, tree_hashes

TOPIC_CONFIG = {"segment.bytes": 8192, "index.interval.bytes": 512}
LIVES_PER_STORE = 10  # writer lives (kill, recover, write on) before starting a fresh store


def make_store(path: str, **config: object) -> None:
    with LogStore(path) as s:
        s.create_topic("t", 3, {**TOPIC_CONFIG, **config})


def check_and_recheck(history: History, path: str) -> object:
    """Check the store, then reopen it once more: recovery must have left nothing to change."""
    report = check(history, path)
    before = tree_hashes(path)
    with LogStore(path, create=False) as s:
        for info in s.list_topics():
            for p in range(info.partition_count):
                s.partition(info.name, p)
    assert tree_hashes(path) == before, "a second reopen changed files: recovery is not idempotent"
    assert leftovers(path) == []
    return report


@pytest.mark.parametrize("policy,ci", [("always", 200), ("interval", 50), ("never", 50)])
def test_s01_kill_9_at_random_moments_loses_no_acknowledged_record(tmp_path, campaign, policy, ci):
    """S01: a writer appending 1-64-record batches to 3 partitions is SIGKILLed after a random
    0-50 ms, again and again; after each kill the reopened store holds every acked record."""
    rnd = random.Random(f"S01-{policy}")
    n = iterations(ci)
    history = History()
    store = ""
    for i in range(n):
        if i % LIVES_PER_STORE == 0:
            store = str(tmp_path / f"s{i}")
            make_store(store)
            history = History()
        child = fork_writer([store, str(rnd.randrange(1 << 30)), "--fsync", policy], str(tmp_path / "err"))
        out = kill_after(child, rnd)
        history.parse(out.splitlines())
        report = check_and_recheck(history, store)
        campaign("S01").add(iterations=1, faults=1, anomalies=report.count)
        assert report.ok, f"life {i}: {report}\n{child.stderr()}"
    assert history.acked, "the writer never got to acknowledge anything: the loop tests nothing"


def test_s01_kill_9_a_fresh_interpreter_writer_through_the_producer(tmp_path, campaign):
    """S01 with the writer as its own interpreter (not forked) and the batching Producer."""
    rnd = random.Random("S01-producer")
    store = str(tmp_path / "s")
    make_store(store)
    history = History()
    for _ in range(iterations(4)):
        child = spawn_writer([store, str(rnd.randrange(1 << 30)), "--mode", "producer"], str(tmp_path / "err"))
        history.parse(kill_after(child, rnd, 0.2).splitlines())
        report = check_and_recheck(history, store)
        campaign("S01").add(iterations=1, faults=1, anomalies=report.count)
        assert report.ok, f"{report}\n{child.stderr()}"
    assert history.acked


# --- S02: every crash point -------------------------------------------------------------------------

WORKLOAD_POINTS = [p for p in faults.CRASH_POINTS if not p.startswith("recovery.")]


def full_workload_args(store: str, seed: int) -> list[str]:
    """Appends with rolls (small segments), a retention pass every 3 batches (retention.bytes set)
    and an offset commit every 2: every crash point outside recovery is reached many times."""
    args = ["--max-records", "20", "--batches", "400", "--retention-every", "3", "--commit-every", "2"]
    return [store, str(seed), *args]


@pytest.mark.parametrize("point", WORKLOAD_POINTS)
def test_s02_a_crash_at_every_crash_point_loses_nothing_and_leaves_no_leftovers(tmp_path, campaign, point):
    """S02: for each crash point and its 1st, 2nd and 3rd hit, a child armed there dies by SIGKILL;
    the reopened store passes the checker, commits acked before the crash are kept, and no
    ``.tmp`` or ``.deleted`` file survives the reopen."""
    rnd = random.Random(f"S02-{point}")
    for n in range(1, 4 if not SOAK else 11):
        store = str(tmp_path / f"s{n}")
        make_store(store, **{"segment.bytes": 2048, "retention.bytes": 4096})
        child = fork_writer(full_workload_args(store, rnd.randrange(1 << 30)), str(tmp_path / "err"), f"{point}:{n}")
        out = child.finish()
        assert child.status == -9, f"crash point {point}:{n} was never reached (exit {child.status})\n{child.stderr()}"
        history = History().parse(out.splitlines())
        report = check_and_recheck(history, store)
        check_commits(out, store, report)
        campaign("S02").add(iterations=1, faults=1, anomalies=report.count)
        assert report.ok, f"{point}:{n}: {report}"


def check_commits(out: str, store: str, report: object) -> None:
    """The group's committed offsets after the crash: each partition's is the last acked commit or
    the one in flight (``committing`` without ``commit``), never older, never unparseable."""
    acked: dict[int, int] = {}
    in_flight: dict[int, int] = {}
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0] in ("commit", "committing"):
            p, off = int(parts[2]), int(parts[3])
            (acked if parts[0] == "commit" else in_flight)[p] = off
            if parts[0] == "commit":
                in_flight.pop(p, None)
    if not acked and not in_flight:
        return
    from logstore import Consumer
    from logstore.types import TopicPartition

    with LogStore(store, create=False) as s:
        c = Consumer(s, group_id="g", enable_auto_commit=False)
        got = c.committed([TopicPartition("t", p) for p in range(3)])
        c.close(autocommit=False)
    for p in range(3):
        value = got[TopicPartition("t", p)]
        allowed = {acked.get(p)} | ({in_flight[p]} if p in in_flight else set())
        if value not in allowed:
            report.add("lost-commit", (p, value, sorted(x for x in allowed if x is not None)))


@pytest.mark.parametrize("point", ["append.after_write", "roll.after_create", "offsets.after_write"])
def test_s02_crash_points_are_armed_by_the_environment_variable(tmp_path, campaign, point):
    """``LOGSTORE_CRASH_AT=name:n`` arms a point in a fresh interpreter (the documented switch)."""
    store = str(tmp_path / "s")
    make_store(store, **{"segment.bytes": 2048, "retention.bytes": 4096})
    child = spawn_writer(full_workload_args(store, 7), str(tmp_path / "err"), crash_at=f"{point}:2")
    out = child.finish()
    assert child.status == -9, child.stderr()
    report = check_and_recheck(History().parse(out.splitlines()), store)
    campaign("S02").add(iterations=1, faults=1, anomalies=report.count)
    assert report.ok, str(report)


def test_s02_an_unknown_crash_point_name_is_refused():
    with pytest.raises(ValueError, match="unknown crash point"):
        faults.arm("append.after_wirte")


# --- S14: crash during recovery ---------------------------------------------------------------------


def torn_store(path: str, *, torn_sealed: bool) -> list[bytes]:
    """A partition with 4 segments, its active tail torn (half a batch appended), or, with
    ``torn_sealed``, the oldest segment's last batch torn (damage: a sealed segment was fsynced, so
    only the explicit repair cuts it and, the batch's offsets being lost, drops the later
    segments). Returns the records a completed recovery (or repair) keeps."""
    from logstore.records import build_batch

    with LogStore(path) as s:
        s.create_topic("t", 1, {"segment.bytes": 1024})
        for i in range(40):
            s.append("t", 0, [b"r%03d-" % i + b"x" * 60])
        log = s.partition("t", 0)
        segs = [seg.log_path for seg in log.segments]
        first_end = log.segments[1].base_offset
    assert len(segs) >= 4
    part = os.path.dirname(segs[0])
    os.unlink(os.path.join(part, ".logstore.clean"))
    if torn_sealed:
        os.truncate(segs[0], os.path.getsize(segs[0]) - 30)  # the last batch (one record) torn
        os.unlink(os.path.join(path, "recovery-point-offset-checkpoint"))
        return [b"r%03d-" % i + b"x" * 60 for i in range(first_end - 1)]
    with open(segs[-1], "ab") as f:
        f.write(build_batch([b"torn" * 40])[:50])
    return [b"r%03d-" % i + b"x" * 60 for i in range(40)]


def recover_in_child(path: str, arm: str, repair: bool) -> int:
    """Open the store in a forked child with ``arm`` armed (``repair``: and run the explicit repair
    ``recover(truncate_damaged=True)``); the child's exit status (-9 when the point was hit)."""
    pid = os.fork()
    if pid == 0:
        code = 70
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
            faults.arm(*arm.split(":")[:1], int(arm.split(":")[1]))
            with LogStore(path, create=False) as s:
                if repair:
                    s.recover(truncate_damaged=True)
                else:
                    s.partition("t", 0)
            code = 0
        finally:
            os._exit(code)
    _, st = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(st)


@pytest.mark.parametrize("point,torn_sealed", [("recovery.after_truncate", False), ("recovery.before_drop", True)])
def test_s14_a_crash_during_recovery_then_recovery_again_ends_in_the_same_state(tmp_path, campaign, point, torn_sealed):
    """S14: recovery (or the explicit repair) is killed at its crash points, once, then again on
    the second try; the next one ends exactly where an uninterrupted one does."""
    clean = str(tmp_path / "clean")
    expected = torn_store(clean, torn_sealed=torn_sealed)
    assert recover_in_child(clean, "append.after_write:1", torn_sealed) == 0  # never hit: no crash
    assert stored_values(clean) == expected
    path = str(tmp_path / "crashed")
    torn_store(path, torn_sealed=torn_sealed)
    assert recover_in_child(path, f"{point}:1", torn_sealed) == -9
    status = recover_in_child(path, f"{point}:1", torn_sealed)  # the point may not be reached again
    if torn_sealed:
        assert recover_in_child(path, "append.after_write:1", True) == 0
    assert status in (0, -9)
    got = stored_values(path)
    campaign("S14").add(iterations=1, faults=2 if status == -9 else 1, anomalies=int(got != expected))
    assert got == expected
    assert leftovers(path) == []
