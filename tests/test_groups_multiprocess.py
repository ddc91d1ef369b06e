"""Consumer groups across real processes: rebalances, SIGKILL, SIGSTOP, at-least-once under kills."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict

import pytest

from logstore import LogStore, Producer

PROCS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "procs.py")
PARTITIONS = 8


class Worker:
    """A ``procs.py group`` member; its stdout goes to a file read by the test."""

    def __init__(self, tmp, store, name, group="g", **env):
        self.name = name
        self.out = tmp / f"{name}.out"
        self.processed = tmp / f"{name}.processed"
        full = dict(os.environ, **{k: str(v) for k, v in env.items()})
        with open(self.out, "w") as f:
            self.proc = subprocess.Popen(
                [sys.executable, PROCS, "group", str(store), "t", group, str(self.processed)], stdout=f, env=full
            )

    def lines(self, kind=None):
        text = self.out.read_text() if self.out.exists() else ""
        return [ln.split(" ", 1)[1] for ln in text.splitlines() if kind is None or ln.startswith(kind + " ")]

    def last_assign(self):
        got = self.lines("ASSIGN")
        if not got:
            return None
        gen, member, *parts = got[-1].split()
        return int(gen), member, sorted(map(int, parts))

    def records(self):
        return [(p, o) for p, o, _ in self.deliveries()]

    def deliveries(self):
        """(partition, offset, CLOCK_MONOTONIC ns when processed): one clock for every process."""
        if not self.processed.exists():
            return []
        return [tuple(map(int, ln.split())) for ln in self.processed.read_text().splitlines()]

    def commits(self):
        """partition -> the last offset this worker printed as committed."""
        last = {}
        for ln in self.lines("COMMITTED"):
            for item in ln.split()[1:]:
                p, o = item.split(":")
                last[int(p)] = int(o)
        return last

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=20)


def wait_for(what, predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = predicate()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def state(store):
    try:
        with open(os.path.join(store, "groups", "g", "state.json")) as f:
            return json.load(f)
    except (FileNotFoundError, ValueError):
        return None


def settled(store, workers):
    """The group is Stable with exactly these workers, every partition has one owner, shares
    differ by at most one, and every worker has taken up its share (its last ASSIGN line)."""
    st = state(store)
    if st is None or st["state"] != "Stable" or len(st["members"]) != len(workers):
        return False
    owned = {m: sorted(p for _, p in tps) for m, tps in st["assignment"].items()}
    every = sorted(p for parts in owned.values() for p in parts)
    if every != list(range(PARTITIONS)):
        return False
    sizes = [len(v) for v in owned.values()]
    if max(sizes) - min(sizes) > 1:
        return False
    for w in workers:
        got = w.last_assign()
        if got is None or got[0] != st["generation"] or owned.get(got[1]) != got[2]:
            return False
    return st


@pytest.fixture
def gstore(tmp_path):
    path = tmp_path / "store"
    with LogStore(path) as s:
        s.create_topic("t", PARTITIONS)
        with Producer(s) as p:
            p.send_many("t", [b"v%d" % i for i in range(800)], [b"k%d" % i for i in range(800)])
    yield str(path)


@pytest.fixture
def workers():
    started = []
    yield started
    for w in started:
        if w.proc.poll() is None:
            w.proc.kill()
            w.proc.wait()


def test_one_then_four_then_two_members_share_the_partitions(tmp_path, gstore, workers):
    w = [Worker(tmp_path, gstore, "w0")]
    workers += w
    wait_for("1 member", lambda: settled(gstore, w[:1]))
    w += [Worker(tmp_path, gstore, f"w{i}") for i in range(1, 4)]
    workers += w[1:]
    wait_for("4 members", lambda: settled(gstore, w))
    assert all(len(x.last_assign()[2]) == 2 for x in w)
    assert w[0].stop() == 0 and w[1].stop() == 0
    st = wait_for("2 members", lambda: settled(gstore, w[2:]))
    assert sorted(len(v) for v in st["assignment"].values()) == [4, 4]
    # no crash, so every record was processed exactly once
    wait_for("all records", lambda: sum(len(x.records()) for x in w) >= 800)
    time.sleep(0.3)
    seen = Counter(r for x in w for r in x.records())
    assert len(seen) == 800 and max(seen.values()) == 1


def test_a_member_killed_with_sigkill_is_expired_long_before_the_session_timeout(tmp_path, gstore, workers):
    w = [Worker(tmp_path, gstore, f"w{i}", SESSION_MS=30000, HB_MS=200) for i in range(2)]
    workers += w
    wait_for("2 members", lambda: settled(gstore, w))
    killed_at = time.monotonic()
    w[0].stop(signal.SIGKILL)
    st = wait_for("the survivor to own everything", lambda: settled(gstore, w[1:]), timeout=10)
    took = time.monotonic() - killed_at
    assert took < 5, f"expiry took {took:.1f}s"  # the flock was freed: no 30 s session timeout
    assert len(st["members"]) == 1 and not os.path.exists(
        os.path.join(gstore, "groups", "g", "members", w[0].last_assign()[1])
    )


def test_a_stopped_member_is_expired_and_cannot_commit_when_it_comes_back(tmp_path, gstore, workers):
    env = {"SESSION_MS": 1500, "HB_MS": 200, "COMMIT_DELAY": 0.2}
    w = [Worker(tmp_path, gstore, f"w{i}", **env) for i in range(2)]
    workers += w
    wait_for("2 members", lambda: settled(gstore, w))
    gen, old_member, _ = w[0].last_assign()
    wait_for("w0 to process a record", lambda: w[0].records())
    w[0].proc.send_signal(signal.SIGSTOP)
    try:
        wait_for("w0 to be expired", lambda: settled(gstore, w[1:]), timeout=15)
        log_path = os.path.join(gstore, "groups", "g", "offsets.log")
        with open(log_path) as f:
            before = sum(1 for ln in f if old_member in ln)
    finally:
        w[0].proc.send_signal(signal.SIGCONT)
    failed = wait_for("w0's fenced commit", lambda: w[0].lines("COMMIT_FAILED"), timeout=15)
    assert str(gen) == failed[0].split()[0] and "no longer in the group" in failed[0]
    with open(log_path) as f:
        assert sum(1 for ln in f if old_member in ln) == before  # nothing of it was stored
    wait_for("w0 to rejoin", lambda: settled(gstore, w), timeout=15)
    assert w[0].last_assign()[1] != old_member  # it came back as a new member


def test_at_least_once_under_repeated_kills_while_a_producer_writes(tmp_path, gstore, workers):
    rnd = random.Random(7)
    env = {"SESSION_MS": 3000, "HB_MS": 200, "COMMIT_EVERY": 7}
    producer = subprocess.Popen([sys.executable, PROCS, "produce", gstore, "t", "6000", "p"])
    live = [Worker(tmp_path, gstore, f"w{i}", **env) for i in range(3)]
    workers += live
    killed = []
    for k in range(5):
        time.sleep(0.6)
        victim = live.pop(rnd.randrange(len(live)))
        victim.stop(signal.SIGKILL)
        killed.append(victim)
        fresh = Worker(tmp_path, gstore, f"r{k}", **env)
        workers.append(fresh)
        live.append(fresh)
    assert producer.wait(timeout=60) == 0
    with LogStore(gstore) as s:
        ends = {p: s.partition("t", p).next_offset for p in range(PARTITIONS)}
    everything = {(p, o) for p, n in ends.items() for o in range(n)}

    def covered():
        return everything <= {r for x in workers for r in x.records()}

    wait_for("every record processed", covered, timeout=60)
    wait_for("the live members to settle", lambda: settled(gstore, live), timeout=30)
    for x in live:
        assert x.stop() == 0
    # Duplicates only where a killed member processed a record after its last commit.
    # Taken in the order they happened: a worker started early may have been the later of the two.
    by_record = defaultdict(list)
    for x in workers:
        for p, o, t in x.deliveries():
            by_record[p, o].append((t, x))
    assert set(by_record) == everything
    dups = 0
    for (p, o), times in by_record.items():
        who = [x for _, x in sorted(times, key=lambda tx: tx[0])]
        for earlier in who[:-1] if len(who) > 1 else ():
            dups += 1
            assert earlier in killed, f"{(p, o)} delivered twice without a crash ({[x.name for x in who]})"
            assert o >= earlier.commits().get(p, 0), f"{(p, o)} was committed by {earlier.name} and re-delivered"
    assert sum(len(x.records()) for x in workers) == len(everything) + dups
