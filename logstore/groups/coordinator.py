"""Consumer groups without a broker: membership, generations and rebalances through files.

Each group is a directory of small files in the store::

    <store>/groups/<group>/
      group.lock          flock held for every change to the two files below
      state.json          generation, state, protocol, members and the current assignment
                          (replaced atomically: temp file, fsync, rename)
      offsets.log         committed offsets, one fsynced line per commit (see offsets.py)
      members/<member>    one file per member, flock-ed by that member for as long as it lives;
                          its first 8 bytes are the member's last heartbeat (big-endian double, s)

The coordinator's work is shared by the members: whoever holds ``group.lock`` applies a change.

* **Join**: a member adds itself and, if the group had members, starts a rebalance
  (``PreparingRebalance``): every other member must give up its partitions and rejoin.
* **Revoke and rejoin** (eager protocol): a member that sees a rebalance in progress commits what
  it consumed (with auto-commit), calls ``on_revoke``, drops its partitions and marks itself
  rejoined. The member that makes the last rejoin completes the rebalance: generation + 1, the
  assignor's new assignment, state ``Stable``. Every member adopts its partitions on its next poll
  and starts from the committed offsets.
* **Leave** (``close()``): the member removes itself and starts a rebalance for the rest.
* **Expiry**: a member is removed when its process is gone (its flock is free: SIGKILL is noticed
  at the next check, not after ``session_timeout_ms``), when its heartbeat is older than
  ``session_timeout_ms`` (a stopped or hung process), or when it has not rejoined a rebalance
  within its ``max_poll_interval_ms``. Every member's heartbeat thread checks the others every
  ``heartbeat_interval_ms``; a member waiting for a rebalance checks every 100 ms.
* **Fencing**: a commit is accepted only from a member that is in the group, at the current
  generation, has not yet given up its partitions in a rebalance, and owns every partition it
  commits (else CommitFailedError, and nothing is stored). A consumer with a manual assignment
  may commit only while the group has no members.

A damaged ``state.json`` is not trusted: the group starts over from no members at a generation
above any it used (taken from the offsets log), every member finds itself gone and rejoins, so
no partition is ever given to two members.

Times (heartbeats, rebalance start) come from ``clock`` (``time.monotonic`` by default, which is
one clock for every process on the machine).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import struct
import threading
import time
import unicodedata
import urllib.parse
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ..errors import (
    CommitFailedError,
    InconsistentGroupProtocolError,
    InvalidConfigError,
    StorageError,
    StoreFormatError,
    UnknownTopicError,
    UnsafeStoreError,
)
from ..storage.files import DIR_MODE, FILE_MODE, atomic_write, fsync_dir
from ..storage.locks import FileLock
from ..types import TopicPartition
from .assignors import ASSIGNORS
from .offsets import OffsetAndMetadata, OffsetLog

GROUPS_DIR = "groups"
STATE_FILE = "state.json"
OFFSETS_FILE = "offsets.log"
LOCK_FILE = "group.lock"
MEMBERS_DIR = "members"
STATE_VERSION = 1
_HB = struct.Struct(">d")
WAITING_CHECK_S = 0.1  # how often a member waiting for a rebalance checks the others


def group_dir_name(group: str) -> str:
    """The directory name of ``group``: the id itself where it is made of ``[A-Za-z0-9._-]``,
    other characters %-escaped as UTF-8 bytes, a leading "." too (see GROUP_RULE)."""
    name = urllib.parse.quote(group, safe="")
    if name.startswith("."):
        name = "%2E" + name[1:]
    return name


def group_from_dir_name(name: str) -> str:
    return urllib.parse.unquote(name)


NAME_MAX = 255  # longest file name (bytes) on Linux and macOS file systems
GROUP_RULE = (
    "a non-empty string without control characters, whose directory name (the id with every character "
    "outside A-Z a-z 0-9 . _ - ~ %-escaped as UTF-8 bytes) is at most 255 bytes"
)


def group_id_problem(group: Any) -> str | None:
    """Why ``group`` cannot be a consumer group id here, or None (see GROUP_RULE). Pure: no file is
    looked at."""
    if not isinstance(group, str):
        return f"a group id must be a str, not {type(group).__name__}"
    if not group:
        return "the group id is empty"
    shown = repr(group) if len(group) <= 60 else f"{group[:40]!r}... ({len(group)} characters)"
    for c in group:
        kind = unicodedata.category(c)
        if kind == "Cc":
            return f"group id {shown} contains the control character U+{ord(c):04X}"
        if kind == "Cs":
            return f"group id {shown} contains U+{ord(c):04X}, a lone surrogate (not UTF-8)"
    size = len(group_dir_name(group))
    if size > NAME_MAX:
        return f"group id {shown} makes a {size}-byte directory name"
    return None


def validate_group_id(group: Any) -> str:
    """A group id as Kafka allows it (any non-empty string), less what cannot be a safe directory
    name or a line of output (GROUP_RULE). Raises InvalidConfigError naming the rule."""
    problem = group_id_problem(group)
    if problem is not None:
        raise InvalidConfigError(f"{problem}; not a valid consumer group id.", f"Use {GROUP_RULE}, e.g. 'billing'.")
    return group


@dataclass
class GroupState:
    """The contents of ``state.json``. ``members`` maps member id to its description (client_id,
    host, pid, topics, strategies, joined, session_timeout_ms, rebalance_timeout_ms, joined_ms);
    ``assignment`` maps member id to ``[topic, partition]`` pairs of the current generation."""

    group: str
    generation: int = 0
    state: str = "Empty"  # Empty, PreparingRebalance or Stable (Kafka's names)
    protocol: str | None = None
    members: dict[str, dict[str, Any]] = field(default_factory=dict)
    assignment: dict[str, list[list[Any]]] = field(default_factory=dict)
    partitions: dict[str, int] = field(default_factory=dict)
    rebalance_started: float | None = None
    recovered: str | None = None  # why the state was rebuilt, when it was

    def to_json(self) -> bytes:
        d = {
            "version": STATE_VERSION,
            "group": self.group,
            "generation": self.generation,
            "state": self.state,
            "protocol": self.protocol,
            "members": self.members,
            "assignment": self.assignment,
            "partitions": self.partitions,
            "rebalance_started": self.rebalance_started,
        }
        return (json.dumps(d, indent=1, sort_keys=True) + "\n").encode()

    def owned(self, member_id: str) -> list[TopicPartition]:
        return [TopicPartition(t, int(p)) for t, p in self.assignment.get(member_id, ())]


class GroupFiles:
    """One group's directory, opened by one consumer or admin call. Thread-safe through the group
    lock; every mutation happens under it."""

    def __init__(self, store: Any, group: str, *, clock: Callable[[], float] = time.monotonic, create: bool) -> None:
        self.store = store
        self.group = group
        self.clock = clock
        self.dir = os.path.join(store.path, GROUPS_DIR, group_dir_name(group))
        self.members_dir = os.path.join(self.dir, MEMBERS_DIR)
        for d in (os.path.dirname(self.dir), self.dir, self.members_dir):
            if os.path.islink(d):
                raise UnsafeStoreError(
                    f"{d} is a symbolic link; logstore does not follow links in a store, so nothing was read or "
                    f"written through it (consumer group '{group}').",
                    "Put the real directory in its place, or remove the link if it was not yours.",
                )
        if create:
            self.make_dirs(check_case=True)
        self.lock = FileLock(os.path.join(self.dir, LOCK_FILE), 60.0, f"consumer group '{group}'")
        self.offsets = OffsetLog(os.path.join(self.dir, OFFSETS_FILE))
        self._state_path = os.path.join(self.dir, STATE_FILE)
        self._cache: tuple[tuple[int, ...], GroupState] | None = None

    @contextmanager
    def locked(self) -> Iterator[GroupState]:
        """Hold the group lock and yield the state read afresh under it. If the group was deleted
        since this lock file was opened, the directory is made again and the new lock taken, so
        two processes never hold "the" lock of one group at once."""
        for _ in range(10):
            self.lock.acquire()
            if not self.lock.is_stale():
                break
            self.lock.release()
            self.lock.close()
            self.make_dirs()
            self.lock = FileLock(os.path.join(self.dir, LOCK_FILE), 60.0, f"consumer group '{self.group}'")
            self.offsets = OffsetLog(self.offsets.path)
        else:  # pragma: no cover - deleted ten times in a row
            raise StorageError("lock", self.lock.path, OSError(0, "the group directory keeps being deleted"))
        try:
            self._cache = None
            yield self.load()
        finally:
            self.lock.release()

    def close(self) -> None:
        self.lock.close()

    def make_dirs(self, *, check_case: bool = False) -> None:
        """Make ``groups/``, the group's directory and ``members/`` where missing, each with
        DIR_MODE (os.makedirs would give the levels above the last ``0o777`` less the umask).
        ``check_case``: refuse a new group whose directory name differs from an existing group's
        only in case (they would share one directory on a case-insensitive file system)."""
        root = os.path.dirname(self.dir)
        if check_case:
            name = os.path.basename(self.dir)
            try:
                names = os.listdir(root)
            except FileNotFoundError:
                names = []
            if name not in names:
                clash = [n for n in names if "!" not in n and n.lower() == name.lower()]
                if clash:
                    raise InvalidConfigError(
                        f"consumer group '{self.group}' collides with existing group "
                        f"'{group_from_dir_name(clash[0])}': ids differing only in case share one directory on "
                        "case-insensitive file systems.",
                        "Use the existing group's id, or another one.",
                    )
        for d in (root, self.dir, self.members_dir):
            try:
                os.makedirs(d, mode=DIR_MODE, exist_ok=True)
            except OSError as e:
                raise StorageError("create", d, e) from e

    # --- state.json -----------------------------------------------------------------------------

    def load(self) -> GroupState:
        """The current state (re-read only when the file changed). A missing file is an empty
        group; a damaged one is rebuilt as an empty group (see the module docstring)."""
        try:
            st = os.stat(self._state_path)
        except FileNotFoundError:
            return self._fresh(None)
        key = (st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        try:
            with open(self._state_path, "rb") as f:
                raw = f.read()
            d = json.loads(raw)
            if not isinstance(d, dict):
                raise ValueError("not a JSON object")
            version = d.get("version")
            if isinstance(version, int) and version > STATE_VERSION:
                raise StoreFormatError(
                    f"{self._state_path} has format version {version}; this logstore reads up to {STATE_VERSION}.",
                    "Upgrade logstore to use this group.",
                )
            state = GroupState(
                group=self.group,
                generation=int(d["generation"]),
                state=str(d["state"]),
                protocol=d.get("protocol"),
                members={str(k): dict(v) for k, v in d["members"].items()},
                assignment={str(k): [list(x) for x in v] for k, v in d["assignment"].items()},
                partitions={str(k): int(v) for k, v in d.get("partitions", {}).items()},
                rebalance_started=d.get("rebalance_started"),
            )
            if state.state not in ("Empty", "PreparingRebalance", "Stable"):
                raise ValueError(f"unknown state {state.state!r}")
        except FileNotFoundError:
            return self._fresh(None)
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            return self._fresh(f"{self._state_path} was damaged ({e}); the group started over from no members")
        self._cache = (key, state)
        return state

    def _fresh(self, why: str | None) -> GroupState:
        self.offsets.read()
        gen = self.offsets.max_generation + 1 if why else 0
        return GroupState(self.group, generation=max(gen, 0), recovered=why)

    def save(self, state: GroupState) -> None:
        atomic_write(self._state_path, state.to_json())
        self._cache = None

    def exists(self) -> bool:
        return os.path.isfile(self._state_path) or os.path.isfile(self.offsets.path)

    # --- members' liveness ----------------------------------------------------------------------

    def member_path(self, member_id: str) -> str:
        """``members/<member id, %-escaped>``; an id too long for a file name (a long client_id)
        keeps its last 200 characters, which end in the member's uuid."""
        name = urllib.parse.quote(member_id.encode("utf-8", "surrogatepass"), safe="")
        return os.path.join(self.members_dir, name if len(name) <= NAME_MAX else name[-200:])

    def why_dead(self, member_id: str, info: Mapping[str, Any], now: float) -> str | None:
        """None when the member is alive, else why it is not."""
        try:
            fd = os.open(self.member_path(member_id), os.O_RDWR)
        except FileNotFoundError:
            return "its member file is gone"
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pass  # held: the process is there; is it heartbeating?
            else:
                return f"its process (pid {info.get('pid')}) is gone"
            raw = os.pread(fd, _HB.size, 0)
            if len(raw) == _HB.size:
                age = now - _HB.unpack(raw)[0]
                limit = info.get("session_timeout_ms", 45000) / 1000.0
                if age > limit:
                    return f"no heartbeat for {age:.1f} s (session_timeout_ms={int(limit * 1000)})"
            return None
        finally:
            os.close(fd)

    def why_out(self, state: GroupState, member_id: str, info: Mapping[str, Any], now: float) -> str | None:
        """Why a member must leave the group now (dead, silent, or late to rejoin a rebalance), or
        None."""
        why = self.why_dead(member_id, info, now)
        if (
            why is None
            and state.state == "PreparingRebalance"
            and not info.get("joined")
            and state.rebalance_started is not None
            and now - state.rebalance_started > info.get("rebalance_timeout_ms", 300000) / 1000.0
        ):
            why = f"it did not rejoin within max_poll_interval_ms={info.get('rebalance_timeout_ms')}"
        return why

    def expire(self, state: GroupState, now: float) -> list[str]:
        """Remove dead members, and members that missed a rebalance's deadline, from ``state``
        (under the lock); returns what was removed and why. Starts or completes a rebalance as
        needed."""
        removed = []
        for mid, info in list(state.members.items()):
            why = self.why_out(state, mid, info, now)
            if why is not None:
                removed.append(f"{mid}: {why}")
                self.remove_member(state, mid, now)
        self.maybe_complete(state)
        return removed

    def needs_expiry(self, state: GroupState, now: float) -> bool:
        """True when some member of ``state`` is dead or late (checked without the lock)."""
        return any(self.why_out(state, mid, info, now) is not None for mid, info in state.members.items())

    # --- transitions (caller holds the lock) ----------------------------------------------------

    def start_rebalance(self, state: GroupState, now: float) -> None:
        if not state.members:
            self._empty(state)
        elif state.state != "PreparingRebalance":
            state.state = "PreparingRebalance"
            state.rebalance_started = now
            for info in state.members.values():
                info["joined"] = False

    def _empty(self, state: GroupState) -> None:
        if state.state != "Empty":
            state.generation += 1  # fences every former member
        state.state = "Empty"
        state.protocol = None
        state.assignment = {}
        state.rebalance_started = None

    def remove_member(self, state: GroupState, member_id: str, now: float) -> None:
        if state.members.pop(member_id, None) is None:
            return
        try:
            os.unlink(self.member_path(member_id))
        except FileNotFoundError:
            pass
        self.start_rebalance(state, now)

    def maybe_complete(self, state: GroupState) -> None:
        """Finish a rebalance once every member has rejoined: new generation and assignment."""
        if state.state != "PreparingRebalance":
            return
        if not state.members:
            self._empty(state)
            return
        if not all(info.get("joined") for info in state.members.values()):
            return
        counts: dict[str, int] = {}
        for topic in sorted({t for info in state.members.values() for t in info.get("topics", ())}):
            try:
                counts[topic] = self.store.partition_count(topic)
            except UnknownTopicError:
                pass  # deleted since: nothing of it to assign
        assignor = ASSIGNORS[state.protocol or "roundrobin"]
        plan = assignor({m: info.get("topics", ()) for m, info in state.members.items()}, counts)
        state.generation += 1
        state.state = "Stable"
        state.partitions = counts
        state.assignment = {m: [[tp.topic, tp.partition] for tp in tps] for m, tps in plan.items()}
        state.rebalance_started = None

    def partitions_changed(self, state: GroupState) -> bool:
        """True when a subscribed topic's partition count differs from the assignment's."""
        if state.state != "Stable":
            return False
        for topic in {t for info in state.members.values() for t in info.get("topics", ())}:
            try:
                n = self.store.partition_count(topic)
            except UnknownTopicError:
                n = None
            if state.partitions.get(topic) != n:
                return True
        return False

    def check_commit(
        self,
        state: GroupState,
        member_id: str | None,
        generation: int,
        tps: Iterable[TopicPartition],
        left_reason: str | None = None,
    ) -> None:
        """Raise CommitFailedError unless this member may commit ``tps`` now (see the module
        docstring: fencing)."""
        if member_id is None:
            if state.members:
                raise CommitFailedError(
                    self.group,
                    f"the group has live members ({', '.join(sorted(state.members))}); a consumer with a manual "
                    "assignment may commit only to a group without members",
                    hint="Nothing was committed. Stop the group's members first, or commit from a member.",
                )
            return
        info = state.members.get(member_id)
        if info is None:
            why = left_reason or "it left, or was expired"
            raise CommitFailedError(self.group, f"member {member_id} is no longer in the group ({why})")
        if state.generation != generation:
            raise CommitFailedError(
                self.group, f"generation {generation} is stale: the group is at generation {state.generation}"
            )
        if state.state == "PreparingRebalance" and info.get("joined"):
            raise CommitFailedError(self.group, "this member gave up its partitions in the rebalance in progress")
        owned = set(state.owned(member_id))
        for tp in tps:
            if tp not in owned:
                raise CommitFailedError(self.group, f"partition {tp} is not assigned to member {member_id}")

    def write_offsets(
        self, member_id: str | None, generation: int, offsets: Mapping[TopicPartition, OffsetAndMetadata | None]
    ) -> None:
        """Append one commit (caller holds the lock and has checked it)."""
        entry = {
            "gen": generation,
            "member": member_id or "",
            "ts": int(time.time() * 1000),
            "offsets": [
                [tp.topic, tp.partition, None if om is None else om.offset, "" if om is None else om.metadata]
                for tp, om in sorted(offsets.items())
            ],
        }
        self.offsets.append(entry)


class GroupMember:
    """One consumer's membership of a group: joins, follows rebalances, commits, heartbeats.

    The consumer drives it from its poll calls (:meth:`tick`); a daemon thread heartbeats and
    checks the other members every ``heartbeat_interval_ms``, so the application need not poll
    faster than ``max_poll_interval_ms``.
    """

    def __init__(
        self, store: Any, group: str, consumer: Any, config: Mapping[str, Any], clock: Callable[[], float]
    ) -> None:
        self.group = group
        self.files = GroupFiles(store, group, clock=clock, create=True)
        self.clock = clock
        self.client_id: str = config["client_id"]
        self.strategies: list[str] = list(config["partition_assignment_strategy"])
        self.session_timeout_ms: int = config["session_timeout_ms"]
        self.heartbeat_interval_ms: int = config["heartbeat_interval_ms"]
        self.max_poll_interval_ms: int = config["max_poll_interval_ms"]
        self.topics: tuple[str, ...] = ()
        self.member_id: str | None = None
        self.generation = -1
        self._fd = -1
        self._consumer = weakref.ref(consumer)
        self._mutex = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_check = 0.0
        self._last_activity: Any = None
        self._last_active_at = clock()
        self.left_reason: str | None = None  # why this member was put out of the group, if it was
        self.removed: list[str] = []  # members this one expired (for the curious)

    # --- membership -----------------------------------------------------------------------------

    @property
    def joined(self) -> bool:
        return self.member_id is not None

    def join(self, topics: Iterable[str]) -> None:
        """Enter the group as a new member subscribed to ``topics``."""
        with self._mutex:
            self.topics = tuple(topics)
            member_id = f"{self.client_id}-{uuid.uuid4()}"
            path = self.files.member_path(member_id)
            self.files.make_dirs()  # the group may have been deleted meanwhile
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                os.pwrite(fd, _HB.pack(self.clock()), 0)
                with self.files.locked() as state:
                    now = self.clock()
                    self.files.expire(state, now)
                    if state.members and state.protocol not in self.strategies:
                        raise InconsistentGroupProtocolError(self.group, self.strategies, str(state.protocol))
                    self.files.start_rebalance(state, now)
                    if not state.members:
                        state.protocol = self.strategies[0]
                    state.members[member_id] = {
                        "client_id": self.client_id,
                        "host": socket.gethostname(),
                        "pid": os.getpid(),
                        "topics": list(self.topics),
                        "strategies": self.strategies,
                        "joined": True,
                        "session_timeout_ms": self.session_timeout_ms,
                        "rebalance_timeout_ms": self.max_poll_interval_ms,
                        "joined_ms": int(time.time() * 1000),
                    }
                    if state.state == "Empty":
                        state.state = "PreparingRebalance"
                        state.rebalance_started = now
                    self.files.maybe_complete(state)
                    self.files.save(state)
            except BaseException:
                os.close(fd)
                try:
                    os.unlink(path)
                except OSError:
                    pass
                raise
            self._fd = fd
            self.member_id = member_id
            self.generation = -1
            self.left_reason = None
            self._last_active_at = self.clock()
            self._start_thread()

    def leave(self) -> None:
        """Leave the group (the others rebalance). Idempotent."""
        with self._mutex:
            self._stop.set()
            if self.member_id is None:
                return
            member_id, self.member_id = self.member_id, None
            try:
                with self.files.locked() as state:
                    if member_id in state.members:
                        self.files.remove_member(state, member_id, self.clock())
                        self.files.maybe_complete(state)
                        self.files.save(state)
            finally:
                self._release_fd(member_id)
                self.generation = -1

    def _release_fd(self, member_id: str) -> None:
        if self._fd >= 0:
            try:
                os.unlink(self.files.member_path(member_id))
            except FileNotFoundError:
                pass
            os.close(self._fd)
            self._fd = -1

    def close(self) -> None:
        self.leave()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout=5)
        self.files.close()

    def update_subscription(self, topics: Iterable[str]) -> None:
        """Change the topics this member reads: the group rebalances."""
        with self._mutex:
            self.topics = tuple(topics)
            if self.member_id is None:
                return
            with self.files.locked() as state:
                info = state.members.get(self.member_id)
                if info is None:
                    return  # gone: the next tick rejoins with the new topics
                info["topics"] = list(self.topics)
                self.files.start_rebalance(state, self.clock())
                info["joined"] = False  # it gives up its partitions like everyone else
                self.files.save(state)

    # --- what the consumer calls at each poll ------------------------------------------------------

    def tick(self) -> tuple[str, Any]:
        """Where this member stands now. Returns one of:

        ``("lost", reason)``: it is no longer in the group (expired or fenced); it must drop its
        partitions without committing and call :meth:`join` again;
        ``("revoke", None)``: a rebalance started; it must commit, give up its partitions and call
        :meth:`rejoined`;
        ``("assign", (generation, [tps]))``: a new generation is ready; these are its partitions
        (the caller calls :meth:`adopted` once it has taken them up);
        ``("wait", None)``: a rebalance is in progress and it has rejoined;
        ``("ok", None)``: nothing changed.
        """
        state = self.files.load()
        me = state.members.get(self.member_id) if self.member_id is not None else None
        if me is None:
            return "lost", self.left_reason or state.recovered or "this member was expired or removed from the group"
        if state.state == "PreparingRebalance":
            if not me.get("joined"):
                return "revoke", None
            now = self.clock()
            if now - self._last_check >= WAITING_CHECK_S:
                self._last_check = now
                self.housekeep(state)
            return "wait", None
        if state.state == "Stable" and state.generation != self.generation:
            # The caller sets self.generation once it has taken the partitions up (adopted()).
            return "assign", (state.generation, state.owned(self.member_id))  # type: ignore[arg-type]
        return "ok", None

    def adopted(self, generation: int) -> None:
        """This member now reads the partitions of ``generation``; commits are checked against it."""
        self.generation = generation

    def rejoined(self) -> None:
        """Mark this member as having given up its partitions in the rebalance in progress."""
        with self._mutex, self.files.locked() as state:
            info = state.members.get(self.member_id) if self.member_id is not None else None
            if info is None or state.state != "PreparingRebalance":
                return
            info["joined"] = True
            self.files.maybe_complete(state)
            self.files.save(state)

    def commit(self, offsets: Mapping[TopicPartition, OffsetAndMetadata | None]) -> None:
        """Store ``offsets`` if this member may (see GroupFiles.check_commit); else raise
        CommitFailedError and store nothing."""
        with self._mutex, self.files.locked() as state:
            self.files.check_commit(state, self.member_id, self.generation, offsets, self.left_reason)
            self.files.write_offsets(self.member_id, self.generation, offsets)

    def forget(self) -> None:
        """Drop a membership the group no longer has (this member was expired): close its member
        file, so that :meth:`join` can enter again as a new member."""
        with self._mutex:
            self._stop.set()
            if self.member_id is not None:
                self._release_fd(self.member_id)
            self.member_id = None
            self.generation = -1

    def commit_unassigned(self, offsets: Mapping[TopicPartition, OffsetAndMetadata | None]) -> None:
        """A commit by a consumer with a manual assignment (no membership)."""
        with self.files.locked() as state:
            self.files.check_commit(state, None, -1, offsets)
            self.files.write_offsets(None, -1, offsets)

    def committed(self) -> dict[TopicPartition, OffsetAndMetadata]:
        return self.files.offsets.read()

    # --- heartbeats ------------------------------------------------------------------------------

    def _start_thread(self) -> None:
        # A thread per membership: leave() stops the old one through its own event.
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=_heartbeat_loop,
            args=(weakref.ref(self), self._stop),
            name=f"logstore-heartbeat-{self.group}",
            daemon=True,
        )
        self._thread.start()

    def heartbeat(self) -> None:
        """One heartbeat: write the clock, leave if the application stopped polling, check the
        other members. Called by the heartbeat thread."""
        with self._mutex:
            if self.member_id is None or self._fd < 0:
                return
            now = self.clock()
            os.pwrite(self._fd, _HB.pack(now), 0)
            consumer = self._consumer()
            if consumer is None:
                self.leave()  # the consumer was dropped without close()
                return
            activity = consumer._activity()
            if activity is None or activity != self._last_activity:
                self._last_activity = activity
                self._last_active_at = now
            elif now - self._last_active_at > self.max_poll_interval_ms / 1000.0:
                self.left_reason = (
                    f"the application did not poll for {now - self._last_active_at:.1f} s "
                    f"(max_poll_interval_ms={self.max_poll_interval_ms}); the member left the group"
                )
                reason = self.left_reason
                self.leave()
                self.left_reason = reason
                consumer._group_attention = True
                return
        self.housekeep(self.files.load())
        state = self.files.load()
        me = state.members.get(self.member_id) if self.member_id is not None else None
        if (
            me is None
            or (state.state == "PreparingRebalance" and not me.get("joined"))
            or (state.state == "Stable" and state.generation != self.generation)
        ):
            consumer._group_attention = True  # its next poll follows the group

    def housekeep(self, state: GroupState) -> None:
        """Expire dead or late members, and rebalance after a topic's partition count changed."""
        now = self.clock()
        if not self.files.needs_expiry(state, now) and not self.files.partitions_changed(state):
            return
        with self.files.locked() as state:
            self.removed += self.files.expire(state, now)
            if self.files.partitions_changed(state):
                self.files.start_rebalance(state, now)
            self.files.save(state)


def _heartbeat_loop(member_ref: weakref.ref[GroupMember], stop: threading.Event) -> None:
    while True:
        member = member_ref()
        if member is None:
            return
        interval = member.heartbeat_interval_ms / 1000.0
        del member
        if stop.wait(interval):
            return
        member = member_ref()
        if member is None:
            return
        try:
            member.heartbeat()
        except Exception:  # a failed beat is retried next interval; expiry is the fallback
            pass
        del member


# --- admin helpers shared with groups.admin -------------------------------------------------------


def list_group_ids(store_path: str) -> list[str]:
    root = os.path.join(store_path, GROUPS_DIR)
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        return []
    out = []
    for n in names:
        d = os.path.join(root, n)
        if "!" in n or not os.path.isdir(d):  # "!" never survives %-escaping: a deleted group
            continue
        if os.path.isfile(os.path.join(d, STATE_FILE)) or os.path.isfile(os.path.join(d, OFFSETS_FILE)):
            out.append(group_from_dir_name(n))
    return sorted(out)


def remove_group_dir(path: str) -> None:
    """Delete a group's directory crash-safely: rename it to ``<name>!<uuid>.deleted`` (a name no
    group id escapes to), fsync, then remove it (a leftover is ignored)."""
    head, base = os.path.split(path)
    gone = os.path.join(head, f"{base[: NAME_MAX - 41]}!{uuid.uuid4().hex}.deleted")  # stays a legal name
    try:
        os.rename(path, gone)
        fsync_dir(os.path.dirname(path))
    except OSError as e:
        raise StorageError("delete", path, e) from e
    shutil.rmtree(gone, ignore_errors=True)
