"""Consumer groups in one process: assignors, the commit log, membership, fencing, admin."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logstore import Consumer, Producer, TopicPartition
from logstore.errors import (
    CommitFailedError,
    GroupNotEmptyError,
    InconsistentGroupProtocolError,
    InvalidConfigError,
    LogStoreError,
    UnknownGroupError,
)
from logstore.groups.admin import (
    ResetOutOfRangeError,
    ResetTarget,
    delete_group,
    describe_group,
    list_groups,
    reset_offsets,
)
from logstore.groups.assignors import range_assign, roundrobin, strategy_names
from logstore.groups.coordinator import group_dir_name
from logstore.groups.offsets import OffsetAndMetadata, OffsetLog, encode_line

T = TopicPartition


# --- assignors: Kafka's documented examples --------------------------------------------------------


def test_roundrobin_matches_kafkas_javadoc_example():
    # RoundRobinAssignor javadoc: C0 and C1 subscribe to t0 and t1, 3 partitions each.
    got = roundrobin({"C0": ["t0", "t1"], "C1": ["t0", "t1"]}, {"t0": 3, "t1": 3})
    assert got == {"C0": [T("t0", 0), T("t0", 2), T("t1", 1)], "C1": [T("t0", 1), T("t1", 0), T("t1", 2)]}


def test_roundrobin_with_different_subscriptions_matches_kafkas_javadoc_example():
    # javadoc: t0 1 partition, t1 2, t2 3; C0 subscribes t0; C1 t0,t1; C2 t0,t1,t2.
    got = roundrobin({"C0": ["t0"], "C1": ["t0", "t1"], "C2": ["t0", "t1", "t2"]}, {"t0": 1, "t1": 2, "t2": 3})
    assert got == {
        "C0": [T("t0", 0)],
        "C1": [T("t1", 0)],
        "C2": [T("t1", 1), T("t2", 0), T("t2", 1), T("t2", 2)],
    }


def test_range_matches_kafkas_javadoc_example():
    # RangeAssignor javadoc: C0 and C1, t0 and t1 with 3 partitions each.
    got = range_assign({"C0": ["t0", "t1"], "C1": ["t0", "t1"]}, {"t0": 3, "t1": 3})
    assert got == {"C0": [T("t0", 0), T("t0", 1), T("t1", 0), T("t1", 1)], "C1": [T("t0", 2), T("t1", 2)]}


def test_assignors_sort_members_by_id_not_by_insertion_order():
    a = roundrobin({"b": ["t"], "a": ["t"]}, {"t": 3})
    assert a == {"a": [T("t", 0), T("t", 2)], "b": [T("t", 1)]}
    assert range_assign({"b": ["t"], "a": ["t"]}, {"t": 3}) == {"a": [T("t", 0), T("t", 1)], "b": [T("t", 2)]}


def test_assignors_skip_unknown_topics_and_give_every_member_an_entry():
    assert roundrobin({"a": ["gone"], "b": ["t"]}, {"t": 1}) == {"a": [], "b": [T("t", 0)]}
    assert range_assign({"a": ["gone"]}, {}) == {"a": []}
    assert roundrobin({}, {"t": 3}) == {}


@settings(max_examples=200, deadline=None)
@given(
    members=st.lists(st.text("abcdefgh", min_size=1, max_size=4), min_size=1, max_size=6, unique=True),
    counts=st.lists(st.integers(0, 9), min_size=1, max_size=4),
    which=st.sampled_from([roundrobin, range_assign]),
)
def test_every_partition_has_exactly_one_owner_and_shares_differ_by_at_most_one(members, counts, which):
    topics = {f"t{i}": n for i, n in enumerate(counts)}
    got = which({m: list(topics) for m in members}, topics)
    owned = [tp for tps in got.values() for tp in tps]
    assert sorted(owned) == sorted(T(t, p) for t, n in topics.items() for p in range(n))
    if which is roundrobin:  # range balances per topic only, so overall it may differ by more
        sizes = [len(v) for v in got.values()]
        assert max(sizes) - min(sizes) <= 1
    else:
        for t in topics:
            per = [sum(1 for tp in v if tp.topic == t) for v in got.values()]
            assert max(per) - min(per) <= 1


def test_strategy_names_accept_kafkas_spellings_and_refuse_unknown_ones():
    assert strategy_names("roundrobin") == ["roundrobin"]
    assert strategy_names("range,roundrobin") == ["range", "roundrobin"]
    assert strategy_names(["org.apache.kafka.clients.consumer.RangeAssignor"]) == ["range"]
    with pytest.raises(InvalidConfigError, match="sticky"):
        strategy_names("sticky")


# --- the commit log ------------------------------------------------------------------------------


def _commit(log: OffsetLog, gen: int, offsets: dict) -> None:
    log.append({"gen": gen, "member": "m", "ts": 1, "offsets": [[t, p, o, ""] for (t, p), o in offsets.items()]})


def test_offset_log_keeps_the_latest_commit_per_partition(tmp_path):
    log = OffsetLog(str(tmp_path / "offsets.log"))
    assert log.read() == {}
    _commit(log, 1, {("a", 0): 5, ("a", 1): 7})
    _commit(log, 2, {("a", 0): 9})
    got = OffsetLog(log.path).read()
    assert {tp: om.offset for tp, om in got.items()} == {T("a", 0): 9, T("a", 1): 7}
    assert OffsetLog(log.path).read()[T("a", 0)] == OffsetAndMetadata(9, "", 1)


def test_offset_log_ignores_a_torn_last_commit_and_the_next_writer_cuts_it_off(tmp_path):
    path = str(tmp_path / "offsets.log")
    log = OffsetLog(path)
    _commit(log, 1, {("a", 0): 5})
    line = encode_line({"gen": 1, "member": "m", "ts": 1, "offsets": [["a", 0, 6, ""]]})
    with open(path, "ab") as f:
        f.write(line[: len(line) // 2])  # a crash mid-write
    reader = OffsetLog(path)
    assert reader.read()[T("a", 0)].offset == 5
    _commit(reader, 2, {("a", 0): 8})
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    assert len(lines) == 3 and lines[-1] == b""  # two whole lines, the torn piece gone
    assert OffsetLog(path).read()[T("a", 0)].offset == 8


def test_offset_log_skips_a_damaged_line_in_the_middle_and_says_so(tmp_path):
    path = str(tmp_path / "offsets.log")
    log = OffsetLog(path)
    _commit(log, 1, {("a", 0): 5})
    _commit(log, 2, {("a", 0): 6, ("a", 1): 1})
    _commit(log, 3, {("a", 1): 2})
    with open(path, "rb") as f:
        data = bytearray(f.read())
    second = data.index(b"\n") + 1
    data[second + 20] ^= 0x01  # flip a bit inside the second commit
    with open(path, "wb") as f:
        f.write(bytes(data))
    reader = OffsetLog(path)
    got = {tp: om.offset for tp, om in reader.read().items()}
    assert got == {T("a", 0): 5, T("a", 1): 2}  # the older commit of a-0 stands: redelivery, not loss
    assert len(reader.problems) == 1 and f"byte {second}" in reader.problems[0]


def test_offset_log_compacts_into_one_snapshot_line(tmp_path, monkeypatch):
    from logstore.groups import offsets as mod

    monkeypatch.setattr(mod, "COMPACT_BYTES", 2000)
    log = OffsetLog(str(tmp_path / "offsets.log"))
    for i in range(60):
        _commit(log, i, {("a", i % 3): i})
    assert os.path.getsize(log.path) < 2000 + 200
    got = {tp: om.offset for tp, om in OffsetLog(log.path).read().items()}
    assert got == {T("a", 0): 57, T("a", 1): 58, T("a", 2): 59}


@settings(max_examples=60, deadline=None)
@given(
    commits=st.lists(st.dictionaries(st.integers(0, 3), st.integers(0, 10**6), min_size=1), min_size=1, max_size=8),
    cut=st.floats(0, 1),
)
def test_offset_log_cut_anywhere_reads_as_a_prefix_of_whole_commits(tmp_path_factory, commits, cut):
    path = str(tmp_path_factory.mktemp("ol") / "offsets.log")
    log = OffsetLog(path)
    ends, states, acc = [], [], {}
    for c in commits:
        _commit(log, 0, {("t", p): o for p, o in c.items()})
        acc = {**acc, **{T("t", p): o for p, o in c.items()}}
        ends.append(os.path.getsize(path))
        states.append(dict(acc))
    size = int(ends[-1] * cut)
    os.truncate(path, size)
    got = {tp: om.offset for tp, om in OffsetLog(path).read().items()}
    whole = [i for i, e in enumerate(ends) if e <= size]
    assert got == (states[whole[-1]] if whole else {})


# --- membership and rebalances, in one process ------------------------------------------------------


@pytest.fixture
def filled(store):
    store.create_topic("t", 4)
    with Producer(store) as p:
        p.send_many("t", [b"v%d" % i for i in range(400)], [b"k%d" % i for i in range(400)])
    return store


def _drain(c: Consumer, n: int = 10_000, timeout: float = 0.05) -> list:
    out = []
    while len(out) < n:
        got = c.consume(n - len(out), timeout=timeout)
        if not got:
            break
        out += got
    return out


def settle(*cs: Consumer) -> list:
    """Poll the members in turn until they all hold the same, completed generation (each learns
    of a rebalance at its next poll). Returns the records the polls handed out."""
    got = []
    for _ in range(30):
        for c in cs:
            r = c.poll(0.05)
            if r is not None:
                got.append(r)
        gens = {c.generation for c in cs}
        if len(gens) == 1 and -1 not in gens and all(c._member.tick()[0] == "ok" for c in cs):
            return got
    raise AssertionError(f"no stable generation: {[c.generation for c in cs]}")


def test_a_lone_member_gets_every_partition_and_starts_at_the_beginning(filled):
    with Consumer(filled, "t", group_id="g") as c:
        got = _drain(c)
        assert c.assignment() == {T("t", p) for p in range(4)}
        assert len(got) == 400 and c.generation == 1
        assert c.member_id.startswith("logstore-consumer-")


def test_a_second_member_splits_the_partitions_and_nothing_is_read_twice(filled):
    c1 = Consumer(filled, "t", group_id="g", enable_auto_commit=True)
    first = [c1.poll(1.0) for _ in range(10)]
    c2 = Consumer(filled, "t", group_id="g")
    assert c2.poll(0.01) is None  # joined; waits for c1 to give up its partitions
    rest1 = _drain(c1)  # c1 revokes (committing its 10), rejoins and completes the rebalance
    rest2 = _drain(c2)
    assert c1.generation == c2.generation == 2
    assert c1.assignment() == {T("t", 0), T("t", 2)} or c2.assignment() == {T("t", 0), T("t", 2)}
    assert c1.assignment() | c2.assignment() == {T("t", p) for p in range(4)}
    assert not c1.assignment() & c2.assignment()
    seen = [(r.partition, r.offset) for r in first + rest1 + rest2]
    assert len(seen) == 400 and len(set(seen)) == 400
    c1.close()
    c2.close()


def test_close_commits_and_hands_the_partitions_to_the_others(filled):
    c1 = Consumer(filled, "t", group_id="g")
    c2 = Consumer(filled, "t", group_id="g")
    pre = settle(c1, c2)
    assert len(c1.assignment()) == 2 and len(c2.assignment()) == 2
    got1 = _drain(c1)
    c1.close()
    got2 = _drain(c2, timeout=0.3)
    assert c2.assignment() == {T("t", p) for p in range(4)}
    keys = [(r.partition, r.offset) for r in pre + got1 + got2]
    assert len(keys) == len(set(keys)) == 400


def test_commit_forms_and_committed(filled):
    with Consumer(filled, "t", group_id="g", enable_auto_commit=False) as c:
        r = c.poll(1.0)
        assert c.commit(r) == {T("t", r.partition): OffsetAndMetadata(r.offset + 1)}
        assert c.committed(T("t", r.partition)) == r.offset + 1
        other = next(tp for tp in sorted(c.assignment()) if tp.partition != r.partition)
        c.commit(offsets={other: OffsetAndMetadata(3, "note")})
        assert c.committed([other, T("t", r.partition)]) == {other: 3, T("t", r.partition): r.offset + 1}
        assert describe_group(filled, "g").partitions[other.partition].current_offset == 3
        _drain(c)
        c.commit()
        assert c.committed([T("t", p) for p in range(4)]) == c.end_offsets([T("t", p) for p in range(4)])
        with pytest.raises(ValueError):
            c.commit(offsets={other: -1})


def test_committed_offsets_are_where_the_next_member_starts(filled):
    with Consumer(filled, "t", group_id="g", enable_auto_commit=False) as c:
        _drain(c, 50)
        done = c.commit()
    assert done  # something was consumed and committed
    with Consumer(filled, "t", group_id="g") as c:
        first = {}
        for r in _drain(c):
            first.setdefault(r.partition, r.offset)
    for tp in (T("t", p) for p in range(4)):
        # where a commit exists the new member starts there, elsewhere at the beginning
        assert first[tp.partition] == (done[tp].offset if tp in done else 0)


def test_a_stale_member_cannot_commit_and_nothing_is_stored(filled):
    c1 = Consumer(filled, "t", group_id="g", enable_auto_commit=False)
    r = c1.poll(1.0)
    c1.commit(r)
    before = c1.committed([T("t", p) for p in range(4)])
    # Another process rewrites the group as if c1 had been expired: c1 is no longer a member.
    c2 = Consumer(filled, "t", group_id="g")
    files = c1._member.files
    with files.lock:
        state = files.load()
        files.remove_member(state, c1.member_id, files.clock())
        files.maybe_complete(state)
        files.save(state)
    with pytest.raises(CommitFailedError, match="no longer in the group"):
        c1.commit(offsets={T("t", 0): 399})
    assert c2.committed([T("t", p) for p in range(4)]) == before
    c2.poll(0.5)
    assert c2.assignment() == {T("t", p) for p in range(4)}
    # c1's next poll notices, rejoins as a new member, and a rebalance splits the partitions again.
    old_id = c1.member_id
    c1.poll(0.2)
    assert c1.member_id != old_id
    c2.poll(0.2)
    c1.poll(0.2)
    assert len(c1.assignment()) == 2 and len(c2.assignment()) == 2
    c1.close()
    c2.close()


def test_commit_of_a_partition_owned_by_another_member_is_refused(filled):
    c1 = Consumer(filled, "t", group_id="g", enable_auto_commit=False)
    c2 = Consumer(filled, "t", group_id="g", enable_auto_commit=False)
    settle(c1, c2)
    theirs = next(iter(c2.assignment()))
    with pytest.raises(CommitFailedError, match="not assigned"):
        c1.commit(offsets={theirs: 1})
    assert c1.committed(theirs) is None
    c1.close()
    c2.close()


def test_stale_generation_is_fenced(filled):
    c1 = Consumer(filled, "t", group_id="g", enable_auto_commit=False)
    c1.poll(0.2)
    mine = next(iter(c1.assignment()))
    c1._member.generation -= 1  # as if it missed a whole rebalance
    with pytest.raises(CommitFailedError, match="generation 0 is stale"):
        c1.commit(offsets={mine: 1})
    c1.close()


def test_rebalance_callbacks_revoke_before_assign_and_commits_in_on_revoke_succeed(filled):
    events = []

    def on_revoke(consumer, parts):
        events.append(("revoke", sorted(parts)))
        consumer.commit()

    def on_assign(consumer, parts):
        events.append(("assign", sorted(parts)))

    c1 = Consumer(filled, "t", group_id="g", on_assign=on_assign, on_revoke=on_revoke, enable_auto_commit=False)
    c1.poll(0.2)
    c2 = Consumer(filled, "t", group_id="g")
    c2.poll(0.01)
    c1.poll(0.2)
    all4 = [T("t", p) for p in range(4)]
    assert events[0] == ("assign", all4)
    assert events[1] == ("revoke", all4)
    assert events[2][0] == "assign" and len(events[2][1]) == 2
    r0 = events  # the one record c1 polled came from t-0 (partitions take turns from the first)
    assert c1.committed(T("t", 0)) == 1 and r0
    c1.close()
    assert events[-1][0] == "revoke"
    c2.close()


def test_manual_assignment_may_commit_only_to_a_group_without_members(filled):
    with Consumer(filled, group_id="g", enable_auto_commit=False) as manual:
        manual.assign([T("t", 0)])
        r = manual.poll(1.0)
        manual.commit(r)
        assert manual.committed(T("t", 0)) == 1
        member = Consumer(filled, "t", group_id="g")
        member.poll(0.2)
        with pytest.raises(CommitFailedError, match="live members"):
            manual.commit(offsets={T("t", 0): 5})
        member.close()
        manual.commit(offsets={T("t", 0): 5})
        assert manual.committed(T("t", 0)) == 5
        with pytest.raises(LogStoreError, match="unsubscribe"):
            Consumer(filled, "t", group_id="g").assign([T("t", 0)])


def test_commit_without_group_id_says_how_to_get_one(filled):
    with Consumer(filled, "t") as c, pytest.raises(InvalidConfigError, match="group_id"):
        c.commit()


def test_auto_commit_commits_what_was_handed_out_at_the_next_poll(filled):
    with Consumer(filled, "t", group_id="g", auto_commit_interval_ms=1) as c:
        got = c.consume(7, timeout=1.0)
        assert c.committed(T("t", got[0].partition)) is None  # nothing yet: the poll that follows commits
        c.consume(1, timeout=1.0)
        assert c.committed(T("t", got[0].partition)) == got[-1].offset + 1


def test_two_groups_each_see_every_record(filled):
    with Consumer(filled, "t", group_id="a") as a, Consumer(filled, "t", group_id="b") as b:
        ga, gb = _drain(a), _drain(b)
    assert len(ga) == len(gb) == 400
    assert {(r.partition, r.offset) for r in ga} == {(r.partition, r.offset) for r in gb}


def test_member_that_stops_polling_leaves_and_rejoins_at_its_next_poll(filled, clock):
    c1 = Consumer(filled, "t", group_id="g", clock=clock, max_poll_interval_ms=10_000, enable_auto_commit=False)
    c2 = Consumer(filled, "t", group_id="g", clock=clock)
    settle(c1, c2)
    assert len(c1.assignment()) == 2
    c1._member.heartbeat()  # records the activity
    clock.t += 11
    c1._member.heartbeat()  # nothing happened for 11 s > max_poll_interval: it leaves
    assert not c1._member.joined and "did not poll" in c1._member.left_reason
    c2.poll(0.2)
    assert c2.assignment() == {T("t", p) for p in range(4)}
    with pytest.raises(CommitFailedError):
        c1.commit(offsets={next(iter(c1.assignment())): 1})
    c1.poll(0.2)  # drops its old partitions, rejoins
    c2.poll(0.2)
    c1.poll(0.2)
    assert len(c1.assignment()) == len(c2.assignment()) == 2
    c1.close()
    c2.close()


def test_member_without_heartbeats_past_the_session_timeout_is_expired(filled, clock):
    c1 = Consumer(filled, "t", group_id="g", clock=clock, session_timeout_ms=6000)
    c2 = Consumer(filled, "t", group_id="g", clock=clock, session_timeout_ms=6000)
    settle(c1, c2)
    clock.t += 5
    c2._member.heartbeat()  # c2 beats, c1 does not (a stopped process)
    assert len(c2.assignment()) == 2
    clock.t += 2
    c2._member.heartbeat()  # c1's last beat is 7 s old: c2 expires it
    assert any("no heartbeat" in r for r in c2._member.removed)
    c2.poll(0.2)
    assert c2.assignment() == {T("t", p) for p in range(4)}
    with pytest.raises(CommitFailedError):
        c1.commit()
    c1.close()
    c2.close()


def test_assignor_is_a_config_and_a_member_that_cannot_use_the_groups_is_refused(filled):
    with Consumer(filled, "t", group_id="g", partition_assignment_strategy="range") as c1:
        c1.poll(0.2)
        c2 = Consumer(filled, "t", group_id="g", partition_assignment_strategy="roundrobin")
        with pytest.raises(InconsistentGroupProtocolError, match="range"):
            c2.poll(0.1)
        c2.close()
        c3 = Consumer(filled, "t", group_id="g", partition_assignment_strategy="range")
        c3.poll(0.1)
        c1.poll(0.2)
        c3.poll(0.2)
        assert sorted(c1.assignment() | c3.assignment()) == [T("t", p) for p in range(4)]
        # range: the member with the smaller id gets partitions 0 and 1
        low = min([c1, c3], key=lambda c: c.member_id)
        assert low.assignment() == {T("t", 0), T("t", 1)}
        c3.close()


def test_damaged_state_file_makes_the_group_start_over_and_never_double_assigns(filled):
    c1 = Consumer(filled, "t", group_id="g")
    c2 = Consumer(filled, "t", group_id="g")
    settle(c1, c2)
    c1.commit()
    gen = c1.generation
    path = os.path.join(filled.path, "groups", "g", "state.json")
    with open(path, "w") as f:
        f.write('{"generation": 3, "sta')  # a torn write (not how logstore writes, but a disk can)
    settle(c1, c2)
    c2.poll(0.2)
    assert c1.assignment() | c2.assignment() == {T("t", p) for p in range(4)}
    assert not c1.assignment() & c2.assignment()
    assert c1.generation == c2.generation > gen
    with open(path) as f:
        assert json.load(f)["state"] == "Stable"
    c1.close()
    c2.close()


def test_group_ids_with_any_characters_get_a_safe_directory(filled):
    assert group_dir_name("billing") == "billing"
    assert group_dir_name("a/b c") == "a%2Fb%20c"
    assert group_dir_name("..") == "%2E."
    with Consumer(filled, "t", group_id="a/b c") as c:
        c.poll(0.5)
        c.commit()
    assert list_groups(filled) == ["a/b c"]
    with pytest.raises(InvalidConfigError):
        Consumer(filled, "t", group_id="")


def test_heartbeat_interval_must_be_below_the_session_timeout(filled):
    with pytest.raises(InvalidConfigError, match="below session_timeout_ms"):
        Consumer(filled, "t", group_id="g", heartbeat_interval_ms=5000, session_timeout_ms=5000)


# --- admin -----------------------------------------------------------------------------------------


def _commit_as(store, group, offsets):
    with Consumer(store, group_id=group, enable_auto_commit=False) as c:
        c.assign(list(offsets))
        c.commit(offsets=offsets)


def test_describe_reports_lag_against_hand_computed_values(filled):
    ends = {p: filled.partition("t", p).next_offset for p in range(4)}
    _commit_as(filled, "g", {T("t", 0): 10, T("t", 2): ends[2]})
    d = describe_group(filled, "g")
    assert d.state == "Empty" and not d.members
    rows = {(r.topic, r.partition): r for r in d.partitions}
    assert set(rows) == {("t", 0), ("t", 2)}
    assert (rows["t", 0].current_offset, rows["t", 0].log_end_offset, rows["t", 0].lag) == (10, ends[0], ends[0] - 10)
    assert rows["t", 2].lag == 0 and rows["t", 2].member_id is None
    with Consumer(filled, "t", group_id="g") as c:
        c.poll(0.5)
        d = describe_group(filled, "g")
        assert d.state == "Stable" and len(d.members) == 1
        assert [r.partition for r in d.partitions] == [0, 1, 2, 3]
        row1 = d.partitions[1]
        assert row1.current_offset is None and row1.lag is None and row1.member_id == c.member_id


def test_reset_offsets_every_mode(filled, monkeypatch):
    tps = [T("t", p) for p in range(4)]
    ends = {tp: filled.partition(*tp).next_offset for tp in tps}
    _commit_as(filled, "g", {tp: 50 for tp in tps})
    plan = reset_offsets(filled, "g", ResetTarget.earliest())
    assert [r.new_offset for r in plan] == [0, 0, 0, 0] and [r.current_offset for r in plan] == [50] * 4
    assert describe_group(filled, "g").partitions[0].current_offset == 50  # dry run: nothing changed
    reset_offsets(filled, "g", ResetTarget.latest(), execute=True)
    assert {(r.topic, r.partition): r.current_offset for r in describe_group(filled, "g").partitions} == {
        (tp.topic, tp.partition): ends[tp] for tp in tps
    }
    reset_offsets(filled, "g", ResetTarget.to_offset(7), topics=[("t", [1])], execute=True)
    reset_offsets(filled, "g", ResetTarget.shift_by(-2), topics=[("t", [1, 2])], execute=True)
    cur = {r.partition: r.current_offset for r in describe_group(filled, "g").partitions}
    assert cur == {0: ends[tps[0]], 1: 5, 2: ends[tps[2]] - 2, 3: ends[tps[3]]}
    assert [r.new_offset for r in reset_offsets(filled, "g", ResetTarget.current())] == [cur[p] for p in range(4)]
    # by time: the records were produced now, so an hour ago is before all of them: the start
    import time as _t

    plan = reset_offsets(filled, "g", ResetTarget.to_timestamp(int(_t.time() * 1000) - 3_600_000), topics=["t"])
    assert [r.new_offset for r in plan] == [0, 0, 0, 0]
    plan = reset_offsets(filled, "g", ResetTarget.to_timestamp(int(_t.time() * 1000) + 3_600_000), topics=["t"])
    assert [r.new_offset for r in plan] == [ends[tp] for tp in tps]


def test_reset_out_of_range_is_refused_or_clamped(filled):
    _commit_as(filled, "g", {T("t", 0): 5})
    end = filled.partition("t", 0).next_offset
    with pytest.raises(ResetOutOfRangeError, match=f"0..{end}") as e:
        reset_offsets(filled, "g", ResetTarget.to_offset(end + 1), topics=[("t", [0])], execute=True)
    assert "--clamp" in str(e.value)
    assert describe_group(filled, "g").partitions[0].current_offset == 5
    plan = reset_offsets(filled, "g", ResetTarget.shift_by(-100), topics=[("t", [0])], execute=True, clamp=True)
    assert plan[0].new_offset == 0
    with pytest.raises(ValueError, match="no committed offset"):
        reset_offsets(filled, "g", ResetTarget.shift_by(1), topics=[("t", [1])])


def test_reset_and_delete_are_refused_while_the_group_has_live_members(filled):
    with Consumer(filled, "t", group_id="g") as c:
        c.poll(0.5)
        c.commit()
        before = describe_group(filled, "g").partitions
        with pytest.raises(GroupNotEmptyError, match="live members"):
            reset_offsets(filled, "g", ResetTarget.earliest(), execute=True)
        with pytest.raises(GroupNotEmptyError):
            delete_group(filled, "g")
        assert describe_group(filled, "g").partitions == before
    delete_group(filled, "g")
    assert list_groups(filled) == []
    with pytest.raises(UnknownGroupError):
        describe_group(filled, "g")


def test_unknown_group_errors_suggest_the_near_name(filled):
    _commit_as(filled, "billing", {T("t", 0): 1})
    with pytest.raises(UnknownGroupError, match="Did you mean 'billing'"):
        describe_group(filled, "biling")
    with pytest.raises(UnknownGroupError):
        delete_group(filled, "nope")


def test_executed_reset_creates_a_new_group_at_the_chosen_point(filled):
    assert reset_offsets(filled, "new", ResetTarget.to_offset(3), topics=[("t", [0])])[0].new_offset == 3
    assert list_groups(filled) == []  # a dry run creates nothing
    reset_offsets(filled, "new", ResetTarget.to_offset(3), topics=[("t", [0])], execute=True)
    with Consumer(filled, "t", group_id="new") as c:
        firsts = {}
        for r in _drain(c):
            firsts.setdefault(r.partition, r.offset)
    assert firsts[0] == 3 and firsts[1] == 0


def test_threads_of_one_process_are_members_too(filled):
    import threading
    import time

    with Producer(filled) as p:
        p.send_many("t", [b"w%d" % i for i in range(2000)], [b"k%d" % i for i in range(2000)])
    total = 2400
    seen: list = []
    lock = threading.Lock()
    errors: list = []

    def member(n: int) -> None:
        try:
            with Consumer(filled, "t", group_id="g", auto_commit_interval_ms=10) as c:
                idle = 0
                while idle < 20:  # 1 s without records, and the others have them all
                    r = c.poll(0.05)
                    if r is None:
                        idle += 1
                        with lock:
                            if len(seen) >= total and idle >= 5:
                                break
                        continue
                    idle = 0
                    with lock:
                        seen.append((n, r.partition, r.offset))
                    time.sleep(0.0005)  # a handler that takes a moment, so the others join meanwhile
        except Exception as e:  # pragma: no cover - surfaced below
            errors.append(e)

    threads = [threading.Thread(target=member, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    records = [(p, o) for _, p, o in seen]
    assert len(records) == len(set(records)) == total  # each exactly once: no crash, clean rebalances
    assert len({n for n, _, _ in seen}) >= 2  # the work was shared


# --- found in review: each of these failed before its fix ---------------------------------------


def test_deleting_a_group_under_an_open_consumer_does_not_split_the_lock(filled):
    waiting = Consumer(filled, "t", group_id="g")  # opened the group's lock file, not yet a member
    _commit_as(filled, "g", {T("t", 0): 1})
    delete_group(filled, "g")
    other = Consumer(filled, "t", group_id="g")
    other.poll(0.2)  # makes the group again
    waiting.poll(0.2)  # must take the new lock, not its unlinked one
    assert not waiting._member.files.lock.is_unlinked()
    settle(waiting, other)
    assert waiting.assignment() | other.assignment() == {T("t", p) for p in range(4)}
    assert not waiting.assignment() & other.assignment()
    waiting.close()
    other.close()


def test_a_handler_exception_inside_with_does_not_commit_the_failed_record(filled):
    with pytest.raises(RuntimeError), Consumer(filled, "t", group_id="g") as c:
        for r in c:
            if r.offset == 5:
                failed = r
                raise RuntimeError("handler failed")
    with Consumer(filled, "t", group_id="g") as c:
        assert c.committed(T("t", failed.partition)) in (None, failed.offset)
        again = [r for r in _drain(c) if r.partition == failed.partition]
        assert again[0].offset <= failed.offset  # delivered again


def test_a_failing_on_revoke_neither_wedges_the_member_nor_holds_up_the_group(filled):
    def boom(consumer, parts):
        raise ValueError("on_revoke failed")

    c1 = Consumer(filled, "t", group_id="g", on_revoke=boom)
    c1.poll(0.2)
    c2 = Consumer(filled, "t", group_id="g")
    c2.poll(0.05)
    with pytest.raises(ValueError, match="on_revoke failed"):
        c1.poll(0.05)  # the callback's error surfaces, after the member gave up and rejoined
    settle(c1, c2)
    assert len(c1.assignment()) == len(c2.assignment()) == 2
    c1.config["on_revoke"] = None
    c1.close()
    c2.close()


def test_lost_partitions_go_to_on_lost_and_the_member_rejoins(filled, clock):
    lost, revoked = [], []
    c1 = Consumer(
        filled,
        "t",
        group_id="g",
        clock=clock,
        max_poll_interval_ms=10_000,
        on_lost=lambda c, p: lost.append(sorted(p)),
        on_revoke=lambda c, p: revoked.append(sorted(p)),
    )
    c1.poll(0.2)
    c1._member.heartbeat()
    clock.t += 11
    c1._member.heartbeat()  # put out for not polling
    c1.poll(0.2)
    assert lost == [[T("t", p) for p in range(4)]] and revoked == []
    assert c1.assignment() == {T("t", p) for p in range(4)} and c1.generation > 1
    c1.close()


def test_a_dropped_consumer_leaves_its_group(filled):
    import gc

    c1 = Consumer(filled, "t", group_id="g")
    c1.poll(0.2)
    member = c1.member_id
    del c1
    gc.collect()
    d = describe_group(filled, "g")
    assert member not in {m.member_id for m in d.members} and d.state == "Empty"


def test_an_on_assign_error_still_leaves_the_member_holding_its_partitions(filled):
    calls = []

    def on_assign(c, parts):
        calls.append(parts)
        if len(calls) == 1:
            raise KeyError("on_assign failed")

    with Consumer(filled, "t", group_id="g", on_assign=on_assign) as c:
        with pytest.raises(KeyError):
            c.poll(0.2)
        assert c.generation == 1 and len(c.assignment()) == 4
        assert len(_drain(c)) == 400


def test_stop_at_end_iteration_waits_for_the_assignment(filled):
    c1 = Consumer(filled, "t", group_id="g")
    c1.poll(0.2)
    c2 = Consumer(filled, "t", group_id="g", stop_at_end=True)
    import threading
    import time

    def keep_polling():  # c1 must poll to give up its partitions; slowly, so it leaves c2 records
        while not c2.closed and len(c2.assignment()) < 2:
            c1.poll(0.02)
            time.sleep(0.02)

    t = threading.Thread(target=keep_polling)
    t.start()
    seen = list(c2)
    t.join(5)
    assert len(c2.assignment()) == 2 and seen
    assert {r.partition for r in seen} == {tp.partition for tp in c2.assignment()}
    c1.close()
    c2.close()


def test_reset_all_topics_touches_only_committed_partitions_and_to_current_falls_back_to_the_end(filled):
    _commit_as(filled, "g", {T("t", 1): 4})
    plan = reset_offsets(filled, "g", ResetTarget.shift_by(1))  # --all-topics: only t-1 has a commit
    assert [(r.partition, r.new_offset) for r in plan] == [(1, 5)]
    plan = reset_offsets(filled, "g", ResetTarget.current(), topics=[("t", [0, 1])])
    assert [(r.partition, r.new_offset) for r in plan] == [(0, filled.partition("t", 0).next_offset), (1, 4)]


def test_lag_is_negative_when_the_log_was_cut_below_a_commit(filled):
    log = filled.partition("t", 0)
    log.append_records([b"x", b"y", b"z"])  # a batch of its own, so the cut falls on a batch boundary
    end = log.next_offset
    _commit_as(filled, "g", {T("t", 0): end})
    log.truncate_to(end - 3)
    row = describe_group(filled, "g").partitions[0]
    assert (row.current_offset, row.log_end_offset, row.lag) == (end, end - 3, -3)


def test_a_group_id_that_looks_like_a_deleted_directory_is_still_listed(filled):
    _commit_as(filled, "x.deleted", {T("t", 0): 1})
    assert list_groups(filled) == ["x.deleted"]
    delete_group(filled, "x.deleted")
    assert list_groups(filled) == []


def test_on_assign_sees_the_new_generation(filled):
    seen = []
    with Consumer(filled, "t", group_id="g", on_assign=lambda c, p: seen.append(c.generation)) as c:
        c.poll(0.2)
        assert seen == [c.generation] == [1]


def test_deleting_a_topic_forgets_the_groups_offsets_for_it(filled):
    filled.create_topic("other", 1)
    _commit_as(filled, "g", {T("t", 0): 5, T("other", 0): 0})
    filled.delete_topic("t")
    filled.create_topic("t", 4)  # made again: a new log, which must not start at the old offset 5
    d = describe_group(filled, "g")
    assert [(r.topic, r.partition, r.current_offset) for r in d.partitions] == [("other", 0, 0)]
    with Consumer(filled, "t", group_id="g", enable_auto_commit=False) as c:
        assert c.committed(T("t", 0)) is None
