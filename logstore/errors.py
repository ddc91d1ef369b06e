"""The logstore error tree.

Every error the library raises on purpose derives from :class:`LogStoreError`. Each one says what
happened, where (topic, partition, file, byte position) and what to do about it: ``str(err)`` is the
message followed by the hint, ready to print as one line. ``exit_code`` is what the CLI exits with.

Programming mistakes (a wrong argument type, a negative count) raise the built-in ``TypeError`` /
``ValueError`` instead, as the standard library does.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class LogStoreError(Exception):
    """Base of every logstore error.

    Attributes:
        message: what happened and where.
        hint: what to do about it (may be empty).
        retriable: True when the same call may succeed later unchanged.
        exit_code: the CLI's exit status for this error (1 error, 2 usage, 3 not found, 4 conflict).
    """

    retriable = False
    exit_code = 1

    def __init__(self, message: str, hint: str = "") -> None:
        self.message = message
        self.hint = hint
        super().__init__(f"{message} {hint}".strip() if hint else message)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return `` Did you mean 'x'?`` for the closest of ``choices``, or an empty string."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"Did you mean '{close[0]}'?" if close else ""


# --- naming and configuration -------------------------------------------------------------------


class InvalidTopicError(LogStoreError):
    """A topic name Kafka would refuse: 1-249 characters of [a-zA-Z0-9._-], not '.' or '..'."""

    exit_code = 2


class InvalidConfigError(LogStoreError):
    """An unknown config key, or a value of the wrong type or out of range."""

    exit_code = 2


# --- things that are not there, or are there already ----------------------------------------------


class UnknownTopicError(LogStoreError):
    """The topic does not exist in this store."""

    exit_code = 3

    def __init__(self, topic: str, known: Iterable[str] = (), store: str = "", *, deleted_under: str = "") -> None:
        self.topic = topic
        where = f" in store {store}" if store else ""
        if deleted_under:
            # A partition log held open while another handle or process deleted the topic.
            super().__init__(
                f"topic '{topic}' not found{where}: it was deleted since partition {deleted_under} was opened.",
                "Ask the store for the partition again; if the topic was made again, that reads the new one.",
            )
            return
        hint = did_you_mean(topic, known) or "Create it first, or list topics to see what exists."
        super().__init__(f"topic '{topic}' not found{where}.", hint)


class UnknownPartitionError(LogStoreError):
    """The topic exists but has no such partition; or (``partitions`` None) the partition is no
    partition number at all: not an int in 0..2**31-2, Kafka's int32 range."""

    exit_code = 3

    def __init__(self, topic: str, partition: int, partitions: int | None) -> None:
        self.topic, self.partition, self.partitions = topic, partition, partitions
        super().__init__(
            f"topic '{topic}' has no partition {partition!r}.",
            "Partitions are whole numbers 0..2147483646 (Kafka's int32); a topic of N partitions has 0..N-1."
            if partitions is None
            else f"Valid partitions are 0..{partitions - 1}.",
        )


class TopicExistsError(LogStoreError):
    """create_topic was asked for a name that is taken."""

    exit_code = 4

    def __init__(self, topic: str) -> None:
        self.topic = topic
        super().__init__(
            f"topic '{topic}' already exists.",
            "Pass exist_ok=True (CLI: --if-not-exists) to accept an existing topic.",
        )


# --- offsets and sizes --------------------------------------------------------------------------


class OffsetOutOfRangeError(LogStoreError):
    """An offset outside [log_start_offset, next_offset] of a partition.

    Attributes ``offset``, ``log_start_offset`` and ``next_offset`` carry the valid range.
    """

    exit_code = 4

    def __init__(self, topic: str, partition: int, offset: int, log_start_offset: int, next_offset: int) -> None:
        self.topic, self.partition = topic, partition
        self.offset, self.log_start_offset, self.next_offset = offset, log_start_offset, next_offset
        super().__init__(
            f"offset {offset} is out of range for {topic}-{partition}: "
            f"valid offsets are {log_start_offset}..{next_offset} (next_offset is the log end).",
            "Seek to an offset in that range, or to the beginning or end.",
        )


class NoOffsetForPartitionError(LogStoreError):
    """A consumer has no position for a partition and ``auto_offset_reset`` is "none"."""

    def __init__(self, topic: str, partition: int) -> None:
        self.topic, self.partition = topic, partition
        super().__init__(
            f"no position for {topic}-{partition} and auto_offset_reset is 'none'.",
            "seek() to an offset first, or set auto_offset_reset to 'earliest' or 'latest'.",
        )


class NotAssignedError(LogStoreError):
    """A consumer call named a partition that is not assigned to it."""

    exit_code = 2

    def __init__(self, topic: str, partition: int, assigned: Iterable[object] = ()) -> None:
        self.topic, self.partition = topic, partition
        have = ", ".join(str(tp) for tp in assigned) or "none"
        super().__init__(
            f"partition {topic}-{partition} is not assigned to this consumer (assigned: {have}).",
            "assign() or subscribe() to it first.",
        )


class RecordTooLargeError(LogStoreError):
    """A record or batch over a size limit: the producer's ``max_request_size`` or the topic's
    ``max.message.bytes``. ``size`` and ``limit`` are bytes; ``setting`` names the limit."""

    def __init__(
        self, topic: str, partition: int, size: int, limit: int, *, what: str = "batch", setting: str = ""
    ) -> None:
        self.size, self.limit = size, limit
        self.setting = setting or "max.message.bytes"
        fix = (
            "Send smaller records, or raise the producer's max_request_size."
            if self.setting == "max_request_size"
            else "Send smaller records (or fewer per batch), or raise the topic's max.message.bytes."
        )
        super().__init__(f"a {size}-byte {what} for {topic}-{partition} exceeds {self.setting} ({limit} bytes).", fix)


# --- consumer groups ----------------------------------------------------------------------------


class UnknownGroupError(LogStoreError):
    """A consumer group that has no state in the store (never used, or deleted)."""

    exit_code = 3

    def __init__(self, group: str, known: Iterable[str] = ()) -> None:
        self.group = group
        known = list(known)
        hint = did_you_mean(group, known) or (
            f"Known groups: {', '.join(sorted(known))}." if known else "The store has no consumer groups yet."
        )
        super().__init__(f"consumer group '{group}' does not exist.", hint)


class GroupNotEmptyError(LogStoreError):
    """An admin change (reset offsets, delete) refused because the group has live members."""

    exit_code = 4

    def __init__(self, group: str, action: str, members: Iterable[str] = ()) -> None:
        self.group = group
        who = ", ".join(members)
        super().__init__(
            f"cannot {action} consumer group '{group}': it has live members ({who}).",
            "Stop its consumers first (their offsets are committed as they leave), then retry.",
        )


class CommitFailedError(LogStoreError):
    """A commit refused because the member no longer owns the partition: its generation is stale
    (a rebalance happened, or it was expired for missing heartbeats or polls). Nothing of that
    commit was stored; the records after the last good commit will be delivered again to the
    partition's new owner."""

    exit_code = 4

    def __init__(self, group: str, reason: str, hint: str = "") -> None:
        self.group = group
        super().__init__(
            f"commit to consumer group '{group}' failed: {reason}.",
            hint
            or "Nothing was committed. Keep polling: the consumer rejoins the group and gets a new assignment "
            "(process faster, or raise max_poll_interval_ms, if this repeats).",
        )


class InconsistentGroupProtocolError(LogStoreError):
    """A member asked for assignors that none of the group's members share."""

    exit_code = 2

    def __init__(self, group: str, asked: Iterable[str], used: str) -> None:
        self.group = group
        super().__init__(
            f"consumer group '{group}' uses the '{used}' assignor; this member supports only {', '.join(asked)}.",
            f"Give every member of the group partition_assignment_strategy='{used}' (or a list including it).",
        )


# --- damage -------------------------------------------------------------------------------------


class CorruptDataError(LogStoreError):
    """Base of the corruption errors; ``path`` and ``position`` (bytes) say where."""

    def __init__(self, what: str, path: str | None = None, position: int | None = None, hint: str = "") -> None:
        self.path, self.position, self.detail = path, position, what
        where = ""
        if path is not None:
            where = f" in {path}"
            if position is not None:
                where += f" at byte {position}"
        super().__init__(
            f"{what}{where}.",
            hint or "Run 'logstore verify' to list every problem; the data before this point is intact.",
        )


class CorruptRecordError(CorruptDataError):
    """A record batch fails its size, magic or CRC-32C check, or its records do not parse."""


class CorruptIndexError(CorruptDataError):
    """An .index or .timeindex file is inconsistent; the log rebuilds it from the .log on recovery."""


class CorruptLogError(CorruptDataError):
    """Damage inside data that was already fsynced (not a torn tail), or inconsistent segment files."""


# --- codecs, state, concurrency -------------------------------------------------------------------


class UnsupportedCodecError(LogStoreError):
    """A compression codec whose Python package is not installed, or an unknown codec id."""


class StoreFormatError(LogStoreError):
    """The store directory was written by a newer logstore, or is not a logstore store."""


class StoreNotFoundError(StoreFormatError):
    """No store at the path given (and creating one was not asked for)."""

    exit_code = 3


class UnsupportedFormatError(StoreFormatError):
    """A whole record batch in a format this logstore does not read (magic above 2) where the log's
    next batch belongs: written by a newer version, not damage, so it is refused, never cut as a
    torn tail. ``path`` and ``position`` say where, ``magic`` what was found, ``supported`` what
    this version reads."""

    def __init__(self, path: str, position: int, magic: int, supported: int) -> None:
        self.path, self.position, self.magic, self.supported = path, position, magic, supported
        super().__init__(
            f"record batch with magic {magic} at byte {position} of {path}: this logstore reads only magic "
            f"{supported} batches. It was written by a newer format, so it is not treated as a torn write: "
            "nothing was cut or changed.",
            "Open the store with the logstore version that wrote it (or a newer one).",
        )


class UnsafeStoreError(LogStoreError):
    """A store another local user could tamper with, refused before anything is read or written
    through it: a world-writable store root, or a symbolic link where logstore keeps a partition
    or consumer group directory."""


class StoreLockedError(LogStoreError):
    """A lock could not be taken in time: another process holds it."""

    retriable = True


class LogClosedError(LogStoreError):
    """An operation on a store or partition log that was closed."""


class StorageError(LogStoreError):
    """An operating-system I/O error (disk full, permission, ...) with the file it happened on."""

    def __init__(self, action: str, path: str, error: OSError, *, records_written: bool = False) -> None:
        self.path, self.errno = path, error.errno
        #: True when the failed operation came after the records were written (an fsync): they
        #: may or may not survive, and the partition refuses appends until the store is reopened.
        #: False: nothing of the failed append is in the log.
        self.records_written = records_written
        limit, advice = _resource_limit(error)
        super().__init__(
            f"could not {action} {path}: {error.strerror or error}{limit}.",
            "The records of this append may or may not be in the log, and the partition refuses appends "
            "until the store is reopened (which re-reads and recovers it); nothing acknowledged before "
            "was lost. Fix the cause (disk, space), then reopen."
            if records_written
            else advice or "Nothing acknowledged was lost; fix the cause (space, permissions) and retry.",
        )


def _resource_limit(error: OSError) -> tuple[str, str]:
    """For an error that is a process limit (open files, memory maps): the limit, to append to the
    message, and what to do. Empty strings for any other error."""
    import errno
    import os

    if error.errno in (errno.EMFILE, errno.ENFILE):
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        try:
            n = f"; {len(os.listdir('/proc/self/fd'))} are open"
        except OSError:
            n = ""
        which = "the system's file table is full" if error.errno == errno.ENFILE else "RLIMIT_NOFILE"
        return (
            f" ({which}: this process may open {soft} files, hard limit {hard}{n})",
            "Nothing acknowledged was lost. Raise the limit (ulimit -n, resource.setrlimit), or hold fewer "
            "partition logs in this process: each open one keeps 2 descriptors, each cached segment up to 5 "
            "(LogStore(max_open_segments=...)).",
        )
    if error.errno == errno.ENOMEM:
        try:
            with open("/proc/sys/vm/max_map_count") as f:
                maps = f"vm.max_map_count is {f.read().strip()}"
        except OSError:
            maps = "vm.max_map_count"
        return (
            f" (out of memory or memory maps: {maps}; each mapped index takes one)",
            "Nothing acknowledged was lost. Raise vm.max_map_count (sysctl) or the address-space limit, or "
            "lower LogStore(max_open_segments=...), which bounds the mapped indexes.",
        )
    return "", ""
