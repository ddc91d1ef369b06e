"""Consumer-group administration: list, describe with lag, reset offsets, delete.

What ``kafka-consumer-groups.sh`` does against a broker, done on the store's group files. Every
call first expires members that are dead (their process is gone) or silent past their session
timeout, as a broker's coordinator would, so what it reports is what the members would see.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from ..errors import (
    GroupNotEmptyError,
    OffsetOutOfRangeError,
    UnknownGroupError,
    UnknownPartitionError,
    UnknownTopicError,
)
from ..types import TopicPartition
from .coordinator import (
    GROUPS_DIR,
    GroupFiles,
    GroupState,
    group_dir_name,
    list_group_ids,
    remove_group_dir,
    validate_group_id,
)
from .offsets import OffsetAndMetadata

__all__ = [
    "GroupDescription",
    "MemberDescription",
    "OffsetReset",
    "PartitionLag",
    "ResetTarget",
    "delete_group",
    "describe_group",
    "forget_topic",
    "list_groups",
    "reset_offsets",
]


@dataclass(frozen=True)
class MemberDescription:
    member_id: str
    client_id: str
    host: str
    pid: int
    partitions: tuple[TopicPartition, ...]


@dataclass(frozen=True)
class PartitionLag:
    """One row of ``describe``: Kafka's CURRENT-OFFSET (committed; None when none), LOG-END-OFFSET
    (None when the topic is gone) and LAG (None when either is), and the owning member."""

    group: str
    topic: str
    partition: int
    current_offset: int | None
    log_end_offset: int | None
    lag: int | None
    member_id: str | None
    host: str | None
    client_id: str | None


@dataclass(frozen=True)
class GroupDescription:
    """A group as ``describe`` sees it: Kafka's state name ("Empty", "PreparingRebalance",
    "Stable"), generation, assignor, members, and per-partition offsets and lag."""

    group: str
    state: str
    generation: int
    protocol: str | None
    members: tuple[MemberDescription, ...]
    partitions: tuple[PartitionLag, ...]
    expired: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class ResetTarget:
    """Where ``reset_offsets`` moves each partition; build one with the class methods."""

    kind: str  # earliest, latest, offset, shift, timestamp, current
    value: int = 0

    @classmethod
    def earliest(cls) -> ResetTarget:
        return cls("earliest")

    @classmethod
    def latest(cls) -> ResetTarget:
        return cls("latest")

    @classmethod
    def to_offset(cls, offset: int) -> ResetTarget:
        return cls("offset", offset)

    @classmethod
    def shift_by(cls, n: int) -> ResetTarget:
        return cls("shift", n)

    @classmethod
    def to_timestamp(cls, ms: int) -> ResetTarget:
        """The first record with a timestamp >= ``ms`` (ms since the epoch); the log end when none."""
        return cls("timestamp", ms)

    @classmethod
    def current(cls) -> ResetTarget:
        return cls("current")


@dataclass(frozen=True)
class OffsetReset:
    """One row of a reset plan: the committed offset before (None when none) and after."""

    group: str
    topic: str
    partition: int
    current_offset: int | None
    new_offset: int


class ResetOutOfRangeError(OffsetOutOfRangeError):
    """A reset target outside a partition's log."""

    def __init__(self, group: str, tp: TopicPartition, offset: int, start: int, end: int) -> None:
        super().__init__(tp.topic, tp.partition, offset, start, end)
        self.message = (
            f"cannot reset group '{group}' on {tp} to offset {offset}: the log holds offsets {start}..{end} "
            "(the end is where the next record goes)."
        )
        self.hint = "Pick a target in that range, or pass --clamp (clamp=True) to move it to the nearest end."
        self.args = (f"{self.message} {self.hint}",)


def list_groups(store: object) -> list[str]:
    """The ids of the store's consumer groups, sorted."""
    return list_group_ids(store.path)  # type: ignore[attr-defined]


def _open(
    store: object, group: str, clock: Callable[[], float], *, create: bool = False, known: list[str] | None = None
) -> GroupFiles:
    """The group's files; UnknownGroupError unless it exists (or ``create``). ``known``: the
    store's groups, when the caller has just listed them."""
    known = list_groups(store) if known is None else known
    if create or group not in known:
        validate_group_id(group)  # InvalidConfigError naming the rule; an existing group is looked up as it is
    path = os.path.join(store.path, GROUPS_DIR, group_dir_name(group))  # type: ignore[attr-defined]
    if not create and (not os.path.isdir(path) or group not in known):
        raise UnknownGroupError(group, known)
    return GroupFiles(store, group, clock=clock, create=create)


def _settle(files: GroupFiles, state: GroupState) -> tuple[GroupState, list[str]]:
    """The state after expiring dead or late members (caller holds the lock)."""
    now = files.clock()
    if not files.needs_expiry(state, now):
        return state, []
    removed = files.expire(state, now)
    files.save(state)
    return state, removed


def describe_group(store: object, group: str, *, clock: Callable[[], float] = time.monotonic) -> GroupDescription:
    """State, members and per-partition lag of ``group``: every partition assigned to a member
    or holding a committed offset, sorted. LAG is LOG-END-OFFSET minus CURRENT-OFFSET, as Kafka
    computes it (negative if the log was cut back below a commit). Raises UnknownGroupError."""
    files = _open(store, group, clock)
    try:
        with files.locked() as state:
            state, removed = _settle(files, state)
            committed = files.offsets.read()
            problems = list(files.offsets.problems) + ([state.recovered] if state.recovered else [])
    finally:
        files.close()
    members = []
    owner: dict[TopicPartition, MemberDescription] = {}
    for mid, info in sorted(state.members.items()):
        tps = tuple(sorted(state.owned(mid))) if state.state == "Stable" else ()
        m = MemberDescription(
            mid, str(info.get("client_id", "")), str(info.get("host", "")), int(info.get("pid", 0)), tps
        )
        members.append(m)
        for tp in tps:
            owner[tp] = m
    rows = []
    for tp in sorted(set(owner) | set(committed)):
        end: int | None
        start = 0
        try:
            log = store.partition(tp.topic, tp.partition)  # type: ignore[attr-defined]
            log.refresh()
            end, start = log.next_offset, log.log_start_offset
        except (UnknownTopicError, UnknownPartitionError):
            end = None  # the topic was deleted (or recreated smaller) since the commit
        om = committed.get(tp)
        cur = None if om is None else om.offset
        if cur is not None and cur < start:
            problems.append(
                f"{tp}: the committed offset {cur} is below the log start offset {start} (retention deleted "
                "those records); the group's next member there starts where auto_offset_reset says"
            )
        lag = None if cur is None or end is None else end - cur
        m = owner.get(tp)
        rows.append(
            PartitionLag(
                group,
                tp.topic,
                tp.partition,
                cur,
                end,
                lag,
                None if m is None else m.member_id,
                None if m is None else m.host,
                None if m is None else m.client_id,
            )
        )
    return GroupDescription(
        group,
        state.state,
        state.generation,
        state.protocol,
        tuple(members),
        tuple(rows),
        tuple(removed),
        tuple(problems),
    )


def _partitions(
    store: object, topics: Sequence[str | tuple[str, Iterable[int] | None]] | None, committed: Iterable[TopicPartition]
) -> list[TopicPartition]:
    if topics is None:  # --all-topics: the partitions the group has committed offsets for (Kafka's rule)
        return sorted(committed)
    out: list[TopicPartition] = []
    for item in topics:
        topic, parts = (item, None) if isinstance(item, str) else item
        count = store.partition_count(topic)  # type: ignore[attr-defined]
        for p in range(count) if parts is None else parts:
            store.partition(topic, p)  # type: ignore[attr-defined]  # raises UnknownPartitionError
            out.append(TopicPartition(topic, p))
    return list(dict.fromkeys(out))


def reset_offsets(
    store: object,
    group: str,
    target: ResetTarget,
    *,
    topics: Sequence[str | tuple[str, Iterable[int] | None]] | None = None,
    execute: bool = False,
    clamp: bool = False,
    clock: Callable[[], float] = time.monotonic,
) -> list[OffsetReset]:
    """Plan (and with ``execute``, commit) new offsets for ``group``.

    ``topics``: topic names (every partition), or ``(topic, [partitions])`` pairs; None means
    every partition the group has a committed offset for (Kafka's ``--all-topics``). A group that
    does not exist yet is created by an executed reset (so a new consumer group can start from a
    chosen point). ``current`` keeps each committed offset (the log end where there is none, as
    Kafka). A target outside a partition's log raises ResetOutOfRangeError unless ``clamp`` moves
    it to the nearest end; ``shift`` from a partition without a committed offset raises
    ValueError (Kafka refuses it too).

    Raises GroupNotEmptyError while the group has live members (nothing is changed),
    UnknownTopicError / UnknownPartitionError.
    """
    if group not in list_groups(store) and not execute:
        validate_group_id(group)
        return _plan(store, group, target, topics, {}, clamp)
    files = _open(store, group, clock, create=True)
    try:
        with files.locked() as state:
            state, _ = _settle(files, state)
            if state.members:
                raise GroupNotEmptyError(group, "reset the offsets of", sorted(state.members))
            plan = _plan(store, group, target, topics, files.offsets.read(), clamp)
            if execute and plan:
                files.offsets.append(
                    {
                        "gen": -1,
                        "member": "admin:reset-offsets",
                        "ts": int(time.time() * 1000),
                        "offsets": [[r.topic, r.partition, r.new_offset, ""] for r in plan],
                    }
                )
            return plan
    finally:
        files.close()


def _plan(
    store: object,
    group: str,
    target: ResetTarget,
    topics: Sequence[str | tuple[str, Iterable[int] | None]] | None,
    committed: dict[TopicPartition, OffsetAndMetadata],
    clamp: bool,
) -> list[OffsetReset]:
    plan = []
    for tp in _partitions(store, topics, committed):
        log = store.partition(tp.topic, tp.partition)  # type: ignore[attr-defined]
        log.refresh()
        start, end = log.log_start_offset, log.next_offset
        om = committed.get(tp)
        cur = None if om is None else om.offset
        if target.kind == "earliest":
            new = start
        elif target.kind == "latest":
            new = end
        elif target.kind == "offset":
            new = target.value
        elif target.kind == "current":
            new = end if cur is None else cur
        elif target.kind == "shift":
            if cur is None:
                raise ValueError(
                    f"group '{group}' has no committed offset for {tp} to shift; reset it with --to-earliest, "
                    "--to-latest or --to-offset instead (or name only partitions with commits)"
                )
            new = cur + target.value
        elif target.kind == "timestamp":
            found = log.offset_for_time(target.value)
            new = end if found is None else found.offset
        else:
            raise ValueError(f"unknown reset target {target.kind!r}")
        if not start <= new <= end:
            if not clamp:
                raise ResetOutOfRangeError(group, tp, new, start, end)
            new = min(max(new, start), end)
        plan.append(OffsetReset(group, tp.topic, tp.partition, cur, new))
    return plan


def forget_topic(store: object, topic: str, *, clock: Callable[[], float] = time.monotonic) -> list[str]:
    """Remove every group's committed offsets for ``topic`` (what Kafka does when a topic is
    deleted), so that a topic made again under the same name is not read from stale offsets.
    Returns the groups that had some."""
    touched = []
    groups = list_groups(store)
    for group in groups:
        files = _open(store, group, clock, known=groups)
        try:
            with files.locked():
                gone = [tp for tp in files.offsets.read() if tp.topic == topic]
                if gone:
                    files.offsets.append(
                        {
                            "gen": -1,
                            "member": "admin:delete-topic",
                            "ts": int(time.time() * 1000),
                            "offsets": [[tp.topic, tp.partition, None, ""] for tp in sorted(gone)],
                        }
                    )
                    touched.append(group)
        finally:
            files.close()
    return touched


def delete_group(store: object, group: str, *, clock: Callable[[], float] = time.monotonic) -> None:
    """Delete ``group`` and its committed offsets. Raises UnknownGroupError, GroupNotEmptyError
    while it has live members."""
    files = _open(store, group, clock)
    try:
        with files.locked() as state:
            state, _ = _settle(files, state)
            if state.members:
                raise GroupNotEmptyError(group, "delete", sorted(state.members))
            remove_group_dir(files.dir)
    finally:
        files.close()
