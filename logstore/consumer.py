"""Consumer: read records back from any offset or time, one at a time or a chunk of columns at a time.

A :class:`Consumer` holds a *position* per assigned partition: the offset of the next record it
will deliver, as in Kafka. It reads a partition a chunk at a time (whole batches, up to
``max_partition_fetch_bytes``; a single larger batch still comes back whole, as Kafka's
``minOneMessage``), decodes the chunk in one go (:func:`logstore.records.decode_batches`) and hands
its records out in offset order. Partitions take turns chunk by chunk, so a busy partition cannot
starve a quiet one, and at most one chunk is held at a time, so memory stays flat however long the
log is.

Waiting for new data polls the partition files' sizes with a back-off that starts at 1 ms and
doubles up to ``fetch_max_wait_ms`` (100 ms by default): a consumer that is keeping up sees a new
record within a millisecond or two; one that has been idle a while, within ``fetch_max_wait_ms``.
Records appended by other processes are seen without reopening anything.

Positions start where ``auto_offset_reset`` says ("earliest" by default, unlike Kafka's "latest":
an embedded log is usually read from the start), unless ``seek*`` sets them first; ``seek`` works
right after ``assign``. A position outside the log (deleted by retention, or past the end) is
handled by the same rule: "earliest" and "latest" jump to the log start or end, "none" raises
:class:`OffsetOutOfRangeError` naming the valid range.

With ``group_id`` and a subscription, the consumer is a member of a consumer group: the group's
members (threads or processes sharing the store) split the subscribed partitions between them,
rebalance when one joins, leaves or dies, and start each partition from its committed offset (see
:mod:`logstore.groups.coordinator`). Without ``group_id`` a consumer keeps its positions in memory
only.

A consumer is meant for one thread at a time, as Kafka's; :meth:`Consumer.close` may be called
from another thread to end a blocked ``poll`` or iteration.
"""

from __future__ import annotations

import datetime as _dt
import gc
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from itertools import repeat
from typing import Any, NamedTuple

from .config import client_settings
from .errors import (
    CommitFailedError,
    InvalidConfigError,
    LogClosedError,
    LogStoreError,
    NoOffsetForPartitionError,
    NotAssignedError,
    OffsetOutOfRangeError,
    UnknownPartitionError,
)
from .groups.assignors import strategy_names
from .groups.coordinator import GroupMember, validate_group_id
from .groups.offsets import OffsetAndMetadata
from .records import RecordArrays
from .storage.log import PartitionLog
from .store import LogStore
from .types import OffsetAndTimestamp, Record, TopicPartition

__all__ = ["ColumnChunk", "Consumer"]

_DEFAULTS: dict[str, Any] = {
    "group_id": None,
    "client_id": "logstore-consumer",
    "auto_offset_reset": "earliest",
    "consumer_timeout_ms": None,  # None: iteration waits for ever
    "stop_at_end": False,
    "fetch_max_bytes": 52428800,  # Kafka's defaults
    "max_partition_fetch_bytes": 1048576,
    "fetch_max_wait_ms": 100,
    "max_poll_records": 500,
    "on_partition_eof": None,
    # consumer groups (Kafka's defaults)
    "enable_auto_commit": True,
    "auto_commit_interval_ms": 5000,
    "session_timeout_ms": 45000,
    "heartbeat_interval_ms": 3000,
    "max_poll_interval_ms": 300000,
    "partition_assignment_strategy": "roundrobin",
    "on_assign": None,
    "on_revoke": None,
    "on_lost": None,
    "clock": time.monotonic,  # heartbeats and timeouts; injectable for tests
}
_RESETS = ("earliest", "latest", "none")
_FIRST_WAIT = 0.001  # seconds: the first back-off step while waiting for data
_REBALANCE_WAIT = 0.01  # seconds: the longest back-off step while the group rebalances


def _records(tp: TopicPartition, n: int, columns: Iterable[Iterable[Any]]) -> list[Record]:
    """``n`` Records of ``tp`` from parallel columns (offsets, timestamps, timestamp types, keys,
    values, headers), made at C level: ``tuple.__new__(Record, row)`` over a zip of the columns."""
    rows = zip(repeat(tp.topic, n), repeat(tp.partition, n), *columns, strict=True)
    return list(map(tuple.__new__, repeat(Record, n), rows))


def _config(config: Mapping[str, Any] | None, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    out = client_settings("consumer", _DEFAULTS, config, kwargs)
    if out["group_id"] is not None:
        out["group_id"] = validate_group_id(out["group_id"])
    out["partition_assignment_strategy"] = strategy_names(out["partition_assignment_strategy"])
    reset = out["auto_offset_reset"]
    if reset not in _RESETS:
        raise InvalidConfigError(f"auto_offset_reset={reset!r} is not known.", "Use 'earliest', 'latest' or 'none'.")
    for name in (
        "fetch_max_bytes",
        "max_partition_fetch_bytes",
        "fetch_max_wait_ms",
        "max_poll_records",
        "auto_commit_interval_ms",
        "session_timeout_ms",
        "heartbeat_interval_ms",
        "max_poll_interval_ms",
    ):
        v = out[name]
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise InvalidConfigError(
                f"{name}={v!r} must be a whole number > 0.", f"Give e.g. {name}={_DEFAULTS[name]}."
            )
    t = out["consumer_timeout_ms"]
    if t is not None and (isinstance(t, bool) or not isinstance(t, (int, float)) or t < 0):
        raise InvalidConfigError(f"consumer_timeout_ms={t!r} must be a number of ms >= 0 (or None to wait for ever).")
    if t == float("inf"):
        out["consumer_timeout_ms"] = None
    if out["on_partition_eof"] is not None and not callable(out["on_partition_eof"]):
        raise InvalidConfigError("on_partition_eof must be a callable taking (TopicPartition, offset).")
    for name in ("on_assign", "on_revoke", "on_lost"):
        if out[name] is not None and not callable(out[name]):
            raise InvalidConfigError(f"{name} must be a callable taking (consumer, [TopicPartition, ...]).")
    if out["heartbeat_interval_ms"] >= out["session_timeout_ms"]:
        raise InvalidConfigError(
            f"heartbeat_interval_ms ({out['heartbeat_interval_ms']}) must be below session_timeout_ms "
            f"({out['session_timeout_ms']}).",
            "Kafka's rule of thumb: at most a third of it (defaults 3000 and 45000).",
        )
    if not isinstance(out["enable_auto_commit"], bool):
        raise InvalidConfigError(f"enable_auto_commit={out['enable_auto_commit']!r} must be True or False.")
    if not callable(out["clock"]):
        raise InvalidConfigError("clock must be a callable returning seconds (like time.monotonic).")
    return out


def _to_ms(when: int | float | _dt.datetime) -> int:
    """A timestamp as ms since the epoch; a naive datetime is taken as UTC."""
    if isinstance(when, _dt.datetime):
        if when.tzinfo is None:
            when = when.replace(tzinfo=_dt.timezone.utc)
        return int(when.timestamp() * 1000)
    if isinstance(when, bool) or not isinstance(when, (int, float)):
        raise TypeError(f"a timestamp must be ms since the epoch or a datetime, not {type(when).__name__}")
    return int(when)


def _tp(item: Any) -> TopicPartition:
    # A float or bool partition would compare (and hash) equal to an int one: refuse it.
    if (
        isinstance(item, tuple)
        and len(item) == 2
        and isinstance(item[0], str)
        and isinstance(item[1], int)
        and not isinstance(item[1], bool)
    ):
        return item if isinstance(item, TopicPartition) else TopicPartition(item[0], item[1])
    raise TypeError(f"expected a TopicPartition (or a (topic: str, partition: int) tuple), not {item!r}")


class ColumnChunk(NamedTuple):
    """Records of one partition from :meth:`Consumer.poll_columns`: numpy columns, no objects."""

    topic: str
    partition: int
    records: RecordArrays


class Consumer:
    """Reads assigned partitions from any offset or time (see the module docstring).

    ``Consumer(store, *topics, **config)`` subscribes to every partition of ``topics``; with none,
    call :meth:`assign` or :meth:`subscribe`. Settings as keyword arguments in kafka-python's
    spelling, or a ``config`` dict of Kafka's dotted names:

        auto_offset_reset ("earliest"): where a partition without a valid position starts:
            "earliest", "latest" or "none" (raise).
        consumer_timeout_ms (None): iteration ends after this long without a record; None waits.
        stop_at_end (False): iteration ends once every assigned partition is read to its end.
        max_partition_fetch_bytes (1 MiB), fetch_max_bytes (50 MiB): the size of one read; the
            smaller of the two bounds the bytes held at once.
        fetch_max_wait_ms (100): the longest pause between looks for new data while waiting.
        max_poll_records (500): the default cap of :meth:`consume`.
        on_partition_eof (None): called as ``f(TopicPartition, offset)`` each time a partition
            is read to its end (librdkafka's partition EOF event).

    Consumer groups (used when ``group_id`` is set and the consumer subscribes to topics):

        group_id (None): the group to join; members share the subscribed partitions.
        partition_assignment_strategy ("roundrobin"): "roundrobin" or "range" (Kafka's
            RoundRobinAssignor / RangeAssignor), or a list in order of preference.
        enable_auto_commit (True), auto_commit_interval_ms (5000): commit the positions of the
            records already handed out, at most this often, when a poll starts; also before
            partitions are given up in a rebalance and on close.
        session_timeout_ms (45000), heartbeat_interval_ms (3000): a background thread heartbeats
            this often; a member whose heartbeat is older than the session timeout is expired (a
            killed process is noticed at the next check: its lock is gone).
        max_poll_interval_ms (300000): a member whose application does not poll for this long
            leaves the group (its partitions go to others) and rejoins at its next poll.
        on_assign, on_revoke (None): called as ``f(consumer, [TopicPartition, ...])`` after
            partitions are assigned and before they are given up (confluent-kafka's signature).
        on_lost (None): called the same way when partitions were taken away without a chance to
            commit (this member was expired); commits there fail. Unset: on_revoke is called.

    Raises InvalidConfigError for an unknown or bad setting, UnknownTopicError for an unknown
    topic.
    """

    def __init__(self, store: LogStore, *topics: str, config: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        self.config = _config(config, kwargs)
        self._store = store
        self._reset_policy: str = self.config["auto_offset_reset"]
        self._chunk_bytes = min(self.config["max_partition_fetch_bytes"], self.config["fetch_max_bytes"])
        self._max_wait = self.config["fetch_max_wait_ms"] / 1000.0
        t = self.config["consumer_timeout_ms"]
        self._iter_timeout: float | None = None if t is None else t / 1000.0
        self._on_eof: Callable[[TopicPartition, int], None] | None = self.config["on_partition_eof"]
        self._positions: dict[TopicPartition, int | None] = {}
        self._order: list[TopicPartition] = []
        self._turn = 0
        self._at_eof: set[TopicPartition] = set()
        # Partitions whose position was just set: their next read fetches one record with scalar
        # code (a seek answers in tens of microseconds), the reads after it whole chunks.
        self._just_moved: set[TopicPartition] = set()
        self._subscription: tuple[str, ...] | None = None
        self._closed = False
        self._wake = threading.Event()
        self._woken = False
        # The chunk being handed out: its partition, columns, Record objects (made on first use)
        # and the index of the next record to deliver.
        self._buf_tp: TopicPartition | None = None
        self._buf: RecordArrays | None = None
        self._records: list[Record] | None = None
        self._next_i = 0
        # poll() and a suspended iteration read the chunk through this list iterator (a C-level
        # next per record); _next_i is only brought up to date (by _sync) when something asks.
        self._live: Any = None
        self._gen: Iterator[Record] | None = None
        # Group membership (None without group_id). _group_mode: the assignment comes from the
        # group (subscribe), not from assign().
        self._member: GroupMember | None = None
        self._group_mode = False
        self._polls = 0  # chunks asked for: a sign of life for max_poll_interval_ms
        self._waiting = False
        self._last_auto_commit = time.monotonic()
        self._committed_positions: dict[TopicPartition, int] = {}
        # Set by the heartbeat thread when the group needs this member (a rebalance started, or it
        # was expired): the next poll follows the group even in the middle of a chunk.
        self._group_attention = False
        self._group_phase = "wait"  # what the last look at the group found ("ok": settled)
        gid = self.config["group_id"]
        if gid is not None:
            self._member = GroupMember(store, gid, self, self.config, self.config["clock"])
            # A consumer dropped without close() still leaves its group (and frees its files).
            self._finalizer = weakref.finalize(self, self._member.close)
        if topics:
            self.subscribe(topics)

    # --- assignment ---------------------------------------------------------------------------------

    def subscribe(
        self,
        topics: Iterable[str],
        *,
        on_assign: Callable[[Consumer, list[TopicPartition]], None] | None = None,
        on_revoke: Callable[[Consumer, list[TopicPartition]], None] | None = None,
    ) -> None:
        """Read ``topics`` (replacing any earlier assignment). Without ``group_id``: every
        partition of them. With ``group_id``: the partitions the group assigns to this member; it
        joins at its next poll. ``on_assign`` / ``on_revoke`` replace the configured rebalance
        callbacks. Raises UnknownTopicError."""
        self._check_open()
        if isinstance(topics, str):
            topics = [topics]
        names = tuple(dict.fromkeys(topics))
        tps = [TopicPartition(t, p) for t in names for p in range(self._store.partition_count(t))]
        if on_assign is not None:
            self.config["on_assign"] = on_assign
        if on_revoke is not None:
            self.config["on_revoke"] = on_revoke
        if self._member is None:
            self.assign(tps)
            self._subscription = names
            return
        self._subscription = names
        if self._group_mode and self._member.joined:
            self._member.update_subscription(names)
        self._group_mode = True
        self._set_assignment([])

    def subscription(self) -> set[str]:
        """The subscribed topics (empty after :meth:`assign`)."""
        return set(self._subscription or ())

    def unsubscribe(self) -> None:
        """Drop every partition (and the subscription). A group member leaves its group (after
        committing, with auto-commit)."""
        if self._group_mode:
            self._leave_group()
            self._group_mode = False
            self._subscription = None
            return
        self.assign([])

    def assign(self, partitions: Iterable[TopicPartition | tuple[str, int]]) -> None:
        """Read exactly these partitions (replacing any earlier assignment; positions of partitions
        kept are kept). With ``group_id``, commits go to the group, which must then have no
        members. Raises UnknownTopicError / UnknownPartitionError, TypeError for an item that is not
        a (topic, partition) pair, LogStoreError while subscribed as a group member."""
        self._check_open()
        if self._group_mode:
            raise LogStoreError(
                f"this consumer is a member of group '{self.config['group_id']}' through subscribe(); "
                "assign() and subscribe() do not mix.",
                "Call unsubscribe() first (it leaves the group), or use a second Consumer.",
            )
        tps = list(dict.fromkeys(_tp(p) for p in partitions))
        self._set_assignment(tps)
        self._subscription = None

    def _set_assignment(self, tps: list[TopicPartition]) -> None:
        for tp in tps:
            self._store.partition(tp.topic, tp.partition)  # validates; opens (recovers) the log
        self._positions = {tp: self._positions.get(tp) for tp in tps}
        self._order = tps
        self._turn = 0
        self._at_eof &= set(tps)
        if self._buf_tp is not None and self._buf_tp not in self._positions:
            self._drop_buffer()

    def assignment(self) -> set[TopicPartition]:
        """The assigned partitions."""
        return set(self._order)

    # --- positions ----------------------------------------------------------------------------------

    def _log(self, tp: TopicPartition) -> PartitionLog:
        return self._store.partition(tp.topic, tp.partition)

    def _assigned(self, tp: Any) -> TopicPartition:
        tp = _tp(tp)
        if tp not in self._positions:
            raise NotAssignedError(tp.topic, tp.partition, self._order)
        return tp

    def _targets(self, partitions: tuple[Any, ...]) -> list[TopicPartition]:
        self._check_open()
        if (
            len(partitions) == 1
            and isinstance(partitions[0], (list, set, tuple))
            and not isinstance(partitions[0], TopicPartition)
        ):
            partitions = tuple(partitions[0])
        return [self._assigned(p) for p in partitions] if partitions else list(self._order)

    def _set_position(self, tp: TopicPartition, offset: int | None) -> None:
        if self._buf_tp == tp:
            self._drop_buffer()
        self._positions[tp] = offset
        self._at_eof.discard(tp)
        self._just_moved.add(tp)

    def seek(self, partition: TopicPartition | tuple[str, int], offset: int) -> None:
        """Deliver ``partition``'s records from ``offset`` on (at the next poll). An offset outside
        the log is handled by ``auto_offset_reset`` when reading. Raises NotAssignedError, and
        ValueError for a negative offset."""
        self._check_open()
        tp = self._assigned(partition)
        if isinstance(offset, bool) or not isinstance(offset, int):
            raise TypeError(f"offset must be an int, not {type(offset).__name__}")
        if offset < 0:
            raise ValueError(
                f"cannot seek {tp} to offset {offset}: offsets are >= 0 "
                "(use seek_to_end, or end_offsets() minus N, to read the last N records)"
            )
        self._set_position(tp, offset)

    def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        """Move to the log start offset of ``partitions`` (all assigned ones when none given)."""
        for tp in self._targets(partitions):
            self._set_position(tp, self._log(tp).log_start_offset)

    def seek_to_end(self, *partitions: TopicPartition) -> None:
        """Move to the log end of ``partitions`` (all when none given): only records appended from
        now on are delivered."""
        for tp in self._targets(partitions):
            log = self._log(tp)
            log.refresh()
            self._set_position(tp, log.next_offset)

    def seek_to_time(self, when: int | float | _dt.datetime, *partitions: TopicPartition) -> None:
        """Move ``partitions`` (all when none given) to their first record with a timestamp >=
        ``when`` (ms since the epoch, or a datetime; naive means UTC), found through the time index;
        to the log end where every record is older."""
        ms = _to_ms(when)
        for tp in self._targets(partitions):
            log = self._log(tp)
            found = log.offset_for_time(ms)
            self._set_position(tp, found.offset if found is not None else log.next_offset)

    def position(self, partition: TopicPartition | tuple[str, int]) -> int:
        """The offset of the next record :meth:`poll` delivers from ``partition`` (resolving
        ``auto_offset_reset`` if it has none yet). Raises NotAssignedError,
        NoOffsetForPartitionError."""
        self._check_open()
        tp = self._assigned(partition)
        self._sync()
        if tp == self._buf_tp and self._buf is not None and self._next_i < len(self._buf):
            return int(self._buf.offsets[self._next_i])
        pos = self._positions[tp]
        if pos is None:
            pos = self._positions[tp] = self._reset(tp, self._log(tp), None)
        return pos

    def _reset(self, tp: TopicPartition, log: PartitionLog, error: OffsetOutOfRangeError | None) -> int:
        if self._reset_policy == "earliest":
            return log.log_start_offset
        if self._reset_policy == "latest":
            log.refresh()
            return log.next_offset
        if error is not None:
            raise error
        raise NoOffsetForPartitionError(tp.topic, tp.partition)

    # --- offsets of the logs ------------------------------------------------------------------------

    def beginning_offsets(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        """The log start offset of each partition (assigned or not)."""
        self._check_open()
        return {tp: self._store.partition(*tp).log_start_offset for tp in map(_tp, partitions)}

    def end_offsets(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        """The log end offset (the offset the next record appended gets) of each partition."""
        self._check_open()
        out = {}
        for tp in map(_tp, partitions):
            log = self._store.partition(*tp)
            log.refresh()
            out[tp] = log.next_offset
        return out

    def get_watermark_offsets(self, partition: TopicPartition | tuple[str, int]) -> tuple[int, int]:
        """``(low, high)``: the log start and log end offsets of ``partition``."""
        self._check_open()
        tp = _tp(partition)
        log = self._store.partition(*tp)
        log.refresh()
        return log.log_start_offset, log.next_offset

    def offsets_for_times(
        self, timestamps: Mapping[TopicPartition, int | float | _dt.datetime]
    ) -> dict[TopicPartition, OffsetAndTimestamp | None]:
        """For each partition, the first record with timestamp >= the one given (ms, or a
        datetime): its offset and timestamp; None where every record is older."""
        self._check_open()
        return {_tp(tp): self._store.partition(*_tp(tp)).offset_for_time(_to_ms(ts)) for tp, ts in timestamps.items()}

    # --- reading ------------------------------------------------------------------------------------

    def _sync(self) -> None:
        """Bring _next_i up to date with a suspended iteration."""
        if self._live is not None and self._records is not None:
            self._next_i = len(self._records) - self._live.__length_hint__()

    def _detach(self) -> None:
        """Sync, then end a suspended iteration's pass over the chunk: the iteration goes on from
        _next_i, so poll, consume, seek and friends may be called from its loop body."""
        if self._live is not None:
            self._sync()
            if self._records is not None:
                self._live.__setstate__(len(self._records))
            self._live = None

    def _drop_buffer(self) -> None:
        """Forget the current chunk (its partition's position is being set anew, or it left the
        assignment)."""
        self._detach()
        self._buf_tp = self._buf = self._records = None
        self._next_i = 0

    def _fetch_one(self, tp: TopicPartition) -> RecordArrays | None:
        """The next chunk of ``tp`` from its position, or None at its end."""
        log = self._log(tp)
        pos = self._positions[tp]
        if pos is None:
            pos = self._positions[tp] = self._reset(tp, log, None)
            self._just_moved.add(tp)
        first = 1 if tp in self._just_moved else None
        self._just_moved.discard(tp)
        got = self._fetch_at(tp, log, pos, first)
        pos = self._positions[tp]  # a reset may have moved it
        if not len(got):
            if got.next_offset > pos:
                self._positions[tp] = pos = got.next_offset  # past control batches
            log.refresh()  # pick up what other processes appended
            if log.next_offset <= pos:
                if tp not in self._at_eof:
                    self._at_eof.add(tp)
                    if self._on_eof is not None:
                        self._on_eof(tp, pos)
                return None
            got = self._fetch_at(tp, log, pos, first)
            if not len(got):
                return None
        self._at_eof.discard(tp)
        self._positions[tp] = got.next_offset
        return got

    def _fetch_at(self, tp: TopicPartition, log: PartitionLog, pos: int, first: int | None) -> RecordArrays:
        """``log.fetch`` from ``pos``; a position outside the log (the log was cut back or its
        start moved meanwhile) goes where ``auto_offset_reset`` says, or raises under "none"."""
        try:
            return log.fetch(pos, self._chunk_bytes, first)
        except OffsetOutOfRangeError as e:
            pos = self._positions[tp] = self._reset(tp, log, e)
            return log.fetch(pos, self._chunk_bytes, 1)

    def _fill(self) -> bool:
        """Load the next chunk, taking partitions in turn. False when every one is at its end."""
        order = self._order
        n = len(order)
        for k in range(n):
            i = (self._turn + k) % n
            tp = order[i]
            got = self._fetch_one(tp)
            if got is not None:
                self._turn = (i + 1) % n
                self._live = None  # it read the previous chunk, which is used up
                self._buf_tp, self._buf, self._records, self._next_i = tp, got, None, 0
                return True
        return False

    def _materialize(self) -> list[Record]:
        """The Record objects of the current chunk (made once, all at once)."""
        buf, tp = self._buf, self._buf_tp
        assert buf is not None and tp is not None
        cols = buf._lists
        if cols is not None:
            # A few records read with scalar code (the first read after a seek): already lists.
            if len(cols) == 1:
                row = (tp.topic, tp.partition, cols.offsets[0], cols.timestamps[0], cols.timestamp_types[0])
                self._records = [tuple.__new__(Record, (*row, cols.keys[0], cols.values[0], cols.headers[0]))]
                return self._records
            self._records = _records(
                tp,
                len(cols),
                (cols.offsets, cols.timestamps, cols.timestamp_types, cols.keys, cols.values, cols.headers),
            )
            return self._records
        n = len(buf)
        headers: Iterable[Any] = buf.headers() if buf.has_headers else repeat((), n)
        # A chunk's records are made in one go, with the cyclic GC paused: otherwise every 700 new
        # tuples start a collection, and the older generations' collections walk the whole heap
        # again and again (measured: ~40% of the time per record). Nothing here makes a cycle.
        paused = n >= 1000 and gc.isenabled()
        if paused:
            gc.disable()
        try:
            self._records = self._build(buf, tp, n, headers)
        finally:
            if paused:
                gc.enable()
        return self._records

    @staticmethod
    def _build(buf: RecordArrays, tp: TopicPartition, n: int, headers: Iterable[Any]) -> list[Record]:
        columns = (
            buf.offsets_list(),
            buf.timestamps_list(),
            buf.timestamp_types(),
            buf.keys(),
            buf.values(),
            headers,
        )
        return _records(tp, n, columns)

    def _buffered(self) -> bool:
        return self._buf is not None and self._next_i < len(self._buf)

    def _wait(self, deadline: float | None, pause: float) -> bool:
        """Sleep before the next look for data; False when ``deadline`` (monotonic) has passed or
        the consumer was closed meanwhile."""
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            pause = min(pause, left)
        self._wake.wait(pause)
        if self._woken:
            self._woken = False
            self._wake.clear()
            return False
        return not self._closed

    def _next_chunk(self, timeout: float | None) -> bool:
        """Make sure a chunk with records is buffered, waiting up to ``timeout`` s (None: for ever).
        False on timeout or close."""
        self._sync()
        if self._buffered():
            return True
        if not self._order and not self._group_mode:
            raise LogStoreError(
                "the consumer has no partitions to read.",
                "Pass topics to Consumer(), or call subscribe() or assign() first.",
            )
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = _FIRST_WAIT
        while True:
            if self._closed:
                return False
            if self._fill():
                return True
            self._waiting = True
            try:
                if not self._wait(deadline, pause):
                    return False
            finally:
                self._waiting = False
            # A member waiting for a rebalance looks every 10 ms: the look is one stat of state.json.
            pause = min(pause * 2, _REBALANCE_WAIT if self.rebalancing else self._max_wait)
            if self._group_mode:  # nothing is handed out but not yet committed here
                before = self._member.generation if self._member is not None else -1
                self._group_tick()
                if self._member is not None and self._member.generation != before:
                    pause = _FIRST_WAIT

    def poll(self, timeout: float = 1.0) -> Record | None:
        """The next record, waiting up to ``timeout`` seconds for one; None if none came.

        Raises LogClosedError after close(), OffsetOutOfRangeError / NoOffsetForPartitionError
        under ``auto_offset_reset="none"``, CorruptRecordError (file, byte position) on a damaged
        batch: a damaged batch is never skipped.
        """
        it = self._live
        if it is not None and not self._group_attention:
            for record in it:  # the common case: the next record of the current chunk
                return record
        self._detach()
        self._check_open()
        if self._member is not None:
            self._group_poll()
        if not self._next_chunk(timeout):
            self._check_open()
            return None
        records = self._records if self._records is not None else self._materialize()
        it = iter(records)
        if self._next_i:
            it.__setstate__(self._next_i)
        self._live = it
        for record in it:
            return record
        return None  # not reached: _next_chunk left a record to read

    def consume(self, max_records: int | None = None, timeout: float = 1.0) -> list[Record]:
        """Up to ``max_records`` records (default ``max_poll_records``): whatever is available
        now, waiting up to ``timeout`` seconds only while there is nothing. Empty on timeout.
        Raises as :meth:`poll`."""
        self._check_open()
        limit = self.config["max_poll_records"] if max_records is None else max_records
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"max_records must be an int >= 1, not {limit!r}")
        self._detach()
        if self._member is not None:
            self._group_poll()
        out: list[Record] = []
        wait: float | None = timeout
        while len(out) < limit and self._next_chunk(wait):
            records = self._records if self._records is not None else self._materialize()
            i = self._next_i
            j = min(len(records), i + limit - len(out))
            out.extend(records[i:j])
            self._next_i = j
            wait = 0  # more only if it is there already
        self._check_open()
        return out

    def poll_columns(self, timeout: float = 1.0) -> ColumnChunk | None:
        """The bulk read: the next chunk of one partition as numpy columns (:class:`RecordArrays`:
        offsets, timestamps, and keys and values as positions in one buffer), without making an
        object per record. None on timeout. Raises as :meth:`poll`."""
        self._check_open()
        self._detach()
        if self._member is not None:
            self._group_poll()
        if not self._next_chunk(timeout):
            self._check_open()
            return None
        buf, tp = self._buf, self._buf_tp
        assert buf is not None and tp is not None
        if self._next_i:
            buf = buf[self._next_i :]
        self._next_i = len(self._buf)  # type: ignore[arg-type]
        return ColumnChunk(tp.topic, tp.partition, buf)

    def __iter__(self) -> Iterator[Record]:
        """Records as they come, waiting for new ones; ends after ``consumer_timeout_ms`` without
        a record, with ``stop_at_end`` once every partition is read to its end, or on close()."""
        self._check_open()
        if self._gen is None:  # one iteration at a time, as kafka-python's iterator is the consumer
            self._gen = self._iterate()
        return self._gen

    def _iterate(self) -> Iterator[Record]:
        timeout = 0.0 if self.config["stop_at_end"] else self._iter_timeout
        try:
            while True:
                if self._member is not None:
                    self._detach()
                    self._group_poll()
                    if self.config["stop_at_end"] and self.rebalancing:
                        # The end of a member's partitions is not known before it has them.
                        if not self._next_chunk(self._max_wait):
                            continue
                    elif not self._next_chunk(timeout):
                        break
                elif not self._next_chunk(timeout):
                    break
                records = self._records if self._records is not None else self._materialize()
                it = iter(records)
                if self._next_i:
                    it.__setstate__(self._next_i)
                self._live = it
                try:
                    if self._member is None:
                        yield from it
                    else:  # a group member stops mid-chunk when its group needs it (a rebalance)
                        for record in it:
                            yield record
                            if self._group_attention:
                                break
                finally:
                    if self._live is it:
                        self._next_i = len(records) - it.__length_hint__()
                        self._live = None
        finally:
            self._gen = None

    # --- consumer groups ----------------------------------------------------------------------------

    def _group(self) -> GroupMember:
        if self._member is None:
            raise InvalidConfigError(
                "this consumer has no group_id, so it has no committed offsets.",
                "Create it with Consumer(store, topic, group_id='...').",
            )
        return self._member

    def _group_poll(self) -> None:
        """At the start of a poll: a sign of life, auto-commit, then follow the group."""
        self._group_attention = False
        self._polls += 1
        if self.config["enable_auto_commit"]:
            now = time.monotonic()
            if now - self._last_auto_commit >= self.config["auto_commit_interval_ms"] / 1000.0:
                self._last_auto_commit = now
                try:
                    self._commit_consumed()
                except CommitFailedError:
                    pass  # this member lost its partitions; _group_tick rejoins
        if self._group_mode:
            self._group_tick()

    def _group_tick(self) -> None:
        """Follow the group: join, give up partitions in a rebalance, take up a new assignment.
        The membership steps always complete; an exception from a rebalance callback is raised
        afterwards (so a failing callback cannot wedge the member or hold up the group)."""
        m = self._member
        assert m is not None and self._subscription is not None
        error: BaseException | None = None
        if not m.joined:
            if self._order:  # put out of the group (poll timeout): the partitions are gone
                error = self._group_revoke(lost=True)
            m.join(self._subscription)
        kind, arg = m.tick()
        self._group_phase = kind
        if kind == "lost":
            error = self._group_revoke(lost=True) or error
            m.forget()
            m.join(self._subscription)
            kind, arg = m.tick()
        if kind == "revoke":
            error = self._group_revoke(lost=False) or error
            m.rejoined()
            kind, arg = m.tick()
        if kind == "assign":
            generation, tps = arg
            error = self._group_adopt(generation, tps) or error
            kind = "ok"
        self._group_phase = kind
        if error is not None:
            raise error

    @property
    def rebalancing(self) -> bool:
        """True while this group member has no current assignment: it has not joined yet, or a
        rebalance is in progress. Always False outside a group."""
        return self._group_mode and (self.generation < 0 or self._group_phase != "ok")

    def _group_revoke(self, lost: bool) -> BaseException | None:
        """Give up every partition: commit what was handed out (auto-commit; not when the member
        was already put out), call on_revoke (on_lost when lost), drop positions and the
        buffered chunk. Returns what the callback raised, if anything."""
        parts = list(self._order)
        error: BaseException | None = None
        try:
            if not lost and self.config["enable_auto_commit"] and parts:
                try:
                    self._commit_consumed()
                except CommitFailedError:
                    pass
            cb = (self.config["on_lost"] or self.config["on_revoke"]) if lost else self.config["on_revoke"]
            if cb is not None and parts:
                cb(self, parts)
        except Exception as e:  # raised by _group_tick once the membership step is done
            error = e
        finally:
            self._drop_buffer()
            self._positions = {}
            self._set_assignment([])
            self._committed_positions = {}
        return error

    def _group_adopt(self, generation: int, tps: list[TopicPartition]) -> BaseException | None:
        """Take up the assignment of ``generation``: each partition from its committed offset,
        else by auto_offset_reset; then on_assign (which sees the new generation). Returns what
        on_assign raised, if anything."""
        committed = self._group().committed()
        self._drop_buffer()
        self._positions = {}
        self._set_assignment(list(tps))
        for tp in tps:
            om = committed.get(tp)
            self._positions[tp] = None if om is None else om.offset
        self._just_moved.update(tps)
        self._committed_positions = {tp: om.offset for tp, om in committed.items() if tp in self._positions}
        self._group().adopted(generation)
        cb = self.config["on_assign"]
        if cb is not None:
            try:
                cb(self, list(tps))
            except Exception as e:
                return e
        return None

    def _leave_group(self, autocommit: bool = True) -> None:
        m = self._member
        if m is None:
            return
        error = None
        try:
            if not autocommit:
                pass  # leave without committing (or calling on_revoke, which may commit)
            elif self._group_mode and m.joined:
                error = self._group_revoke(lost=False)
            elif not self._group_mode and self.config["enable_auto_commit"]:
                try:
                    self._commit_consumed()
                except CommitFailedError:
                    pass
        finally:
            m.leave()
        if error is not None:
            raise error

    def _consumed(self) -> dict[TopicPartition, int]:
        """The position of every assigned partition that has one: the offset after the last
        record handed out."""
        self._sync()
        out: dict[TopicPartition, int] = {}
        buf = self._buf
        for tp in self._order:
            if tp == self._buf_tp and buf is not None and self._next_i < len(buf):
                out[tp] = int(buf.offsets[self._next_i])
            else:
                pos = self._positions.get(tp)
                if pos is not None:
                    out[tp] = pos
        return out

    def _commit_consumed(self) -> None:
        """Commit the positions that moved since the last commit (auto-commit)."""
        todo = {tp: o for tp, o in self._consumed().items() if self._committed_positions.get(tp) != o}
        if todo:
            self._store_commit({tp: OffsetAndMetadata(o) for tp, o in todo.items()})

    def _store_commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        m = self._group()
        if self._group_mode:
            if not m.joined:
                if m.left_reason:
                    raise CommitFailedError(m.group, f"this member is no longer in the group ({m.left_reason})")
                raise CommitFailedError(
                    m.group, "this consumer has not joined the group yet (it joins at its first poll)"
                )
            m.commit(offsets)
        else:
            m.commit_unassigned(offsets)
        for tp, om in offsets.items():
            self._committed_positions[tp] = om.offset

    def commit(
        self,
        record: Record | None = None,
        *,
        offsets: Mapping[TopicPartition, int | OffsetAndMetadata] | None = None,
    ) -> dict[TopicPartition, OffsetAndMetadata]:
        """Commit offsets to the group, durably (fsynced before this returns), and return them.

        ``commit()`` stores the position of every assigned partition (the offset after the last
        record handed out); ``commit(record)`` stores ``record.offset + 1`` for its partition
        (Kafka's rule: a committed offset is the next record to read); ``commit(offsets={tp: n})``
        stores exactly those (an int, or an OffsetAndMetadata with a metadata string).

        Raises CommitFailedError, storing nothing, when this member no longer owns a partition (a
        rebalance moved it, or the member was expired); InvalidConfigError without ``group_id``;
        ValueError for a negative offset; UnknownTopicError / UnknownPartitionError for an
        ``offsets`` key that is no partition of the store.
        """
        self._check_open()
        self._group()
        if record is not None and offsets is not None:
            raise TypeError("give a record or offsets, not both")
        if record is not None:
            oms = {TopicPartition(record.topic, record.partition): OffsetAndMetadata(record.offset + 1)}
        elif offsets is not None:
            oms = {}
            for tp, value in offsets.items():
                om = value if isinstance(value, OffsetAndMetadata) else OffsetAndMetadata(value)
                if isinstance(om.offset, bool) or not isinstance(om.offset, int) or om.offset < 0:
                    raise ValueError(f"offset for {_tp(tp)} must be an int >= 0, not {om.offset!r}")
                tp = _tp(tp)
                count = self._store.partition_count(tp.topic)  # UnknownTopicError, as a broker answers
                if isinstance(tp.partition, bool) or not isinstance(tp.partition, int) or not 0 <= tp.partition < count:
                    raise UnknownPartitionError(tp.topic, tp.partition, count)
                oms[tp] = om
        else:
            oms = {tp: OffsetAndMetadata(o) for tp, o in self._consumed().items()}
        if oms:
            self._store_commit(oms)
        return oms

    def committed(
        self, partitions: TopicPartition | tuple[str, int] | Iterable[TopicPartition]
    ) -> int | dict[TopicPartition, int | None] | None:
        """The group's committed offset of one partition (an int, or None when it has none), or a
        dict of them for several. Raises InvalidConfigError without ``group_id``."""
        got = self._group().committed()
        if isinstance(partitions, TopicPartition) or (
            isinstance(partitions, tuple) and len(partitions) == 2 and isinstance(partitions[0], str)
        ):
            om = got.get(_tp(partitions))
            return None if om is None else om.offset
        out: dict[TopicPartition, int | None] = {}
        for tp in map(_tp, partitions):
            om = got.get(tp)
            out[tp] = None if om is None else om.offset
        return out

    @property
    def member_id(self) -> str | None:
        """This consumer's member id in its group (None outside a group, or before it joins)."""
        return None if self._member is None else self._member.member_id

    @property
    def generation(self) -> int:
        """The group generation whose assignment this consumer holds (-1 when none)."""
        return -1 if self._member is None else self._member.generation

    def _activity(self) -> Any:
        """A token that changes whenever the application takes records (read by the heartbeat
        thread for max_poll_interval_ms); None while a poll is waiting for data."""
        if self._waiting:
            return None
        live = self._live
        return (self._polls, id(self._buf), self._next_i, -1 if live is None else live.__length_hint__())

    # --- lifecycle ----------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise LogClosedError("the consumer is closed.", "Create a new Consumer to read again.")

    def wakeup(self) -> None:
        """Make a poll, consume or iteration that is waiting for data return now (None, an empty
        list, or the end of the iteration), or the next one that would wait. Safe from another
        thread; the consumer stays usable. Not from a signal handler (it takes a lock the
        interrupted code may hold): there, set a flag and poll with a short timeout."""
        self._woken = True
        self._wake.set()

    def close(self, autocommit: bool = True) -> None:
        """Stop reading: a poll or iteration blocked in another thread returns. Idempotent. The
        store stays open (it belongs to the caller).

        A group member first commits the positions of the records handed out (with auto-commit,
        unless ``autocommit=False``), calls on_revoke and leaves the group, so its partitions move
        to the others at once. Call it from the polling thread once the records are processed;
        from another thread, wakeup() the poller and let it close. Leaving a ``with`` block by an
        exception (other than SystemExit) closes with ``autocommit=False``: the record being
        handled when it was raised is delivered again, not committed."""
        if self._closed:
            return
        if self._member is not None:
            try:
                self._leave_group(autocommit)
            finally:
                self._finalizer()  # GroupMember.close(), once
        self._closed = True
        self._detach()
        self._wake.set()
        # The chunk is left in place: a poll running in another thread finishes with it.

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> Consumer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        # An exception (or Ctrl-C) may have come from the middle of handling a record: do not
        # commit it. sys.exit() is a deliberate way out: commit as a plain close() does.
        self.close(autocommit=exc_type is None or issubclass(exc_type, SystemExit))

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self._order)} partitions"
        return f"Consumer({self._store.path!r}, {state})"
