"""A partition log: the ``<topic>-<partition>/`` directory of segments, shared between processes.

Offsets are record numbers; positions are bytes in a segment file. ``log_start_offset`` is the first
offset that can be read, ``next_offset`` (the log end offset, LEO) the one the next record gets.

Processes share a partition the way SQLite processes share a database:

* **Appends** take ``.logstore.lock`` with ``flock(LOCK_EX)`` (plus a thread lock). Under it the
  writer first catches up with what other processes did: it reads the *layout generation* (8 bytes
  at the start of the lock file, bumped before any segment is created, sealed, truncated or
  removed) and the active segment's file size, and reloads or scans forward when either changed.
  Bytes past the last whole, CRC-valid batch can only be a dead writer's torn write (live writers
  hold the lock), so they are cut. Then it assigns offsets and writes.
* **Readers** take no lock. They see new data by re-reading the layout generation (through a
  read-only map of the lock file's first bytes for partitions read often) and the active file
  size, and only ever return whole, CRC-valid batches below the size they have validated, so a
  batch being written is invisible until it is complete.
* **Recovery** after a crash runs when a process opens the partition and no other process has it
  open (a shared ``flock`` on ``.logstore.open`` that every opener holds; an exclusive try tells
  whether anybody else does) and the clean-shutdown marker is missing or does not match the files.
  It validates segments from the recovery point on, cuts a torn tail, and rebuilds indexes.
* **Clean close**: the last process to close trims the active indexes and writes
  ``.logstore.clean`` (sizes of the files at that moment), so the next open does not rescan.

Durability follows the topic's ``flush.messages`` / ``flush.ms`` (see :mod:`logstore.config`).
"""

from __future__ import annotations

import bisect
import errno
import fcntl
import json
import mmap
import os
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from ..config import TopicConfig
from ..errors import (
    CorruptDataError,
    CorruptLogError,
    CorruptRecordError,
    LogClosedError,
    OffsetOutOfRangeError,
    RecordTooLargeError,
    StorageError,
    StoreLockedError,
    UnknownTopicError,
    UnsupportedFormatError,
)
from ..faults import crashpoint, ops
from ..records.batch import (
    ATTRIBUTES_OFFSET,
    LOG_OVERHEAD,
    MAGIC,
    MIN_BATCH_LENGTH,
    RECORD_BATCH_OVERHEAD,
    TIMESTAMP_TYPE_MASK,
    RecordArrays,
    RecordColumns,
    build_batch,
    check_batch,
    crc32c,
    decode_batch,
    decode_batch_arrays,
    decode_batches,
    find_timestamp,
    iter_batches,
    read_header,
)
from ..types import OffsetAndTimestamp
from .files import (
    CLEANED_SUFFIX,
    DELETED_SUFFIX,
    DIR_MODE,
    FILE_MODE,
    INDEX_SUFFIX,
    LOG_SUFFIX,
    RECOVERY_POINT_CHECKPOINT,
    SWAP_SUFFIX,
    TIMEINDEX_SUFFIX,
    TMP_SUFFIX,
    atomic_write,
    fsync_dir,
    offset_from_name,
    read_checkpoint,
    remove_quietly,
)
from .index import OffsetIndex, TimeIndex
from .locks import FileLock
from .segment import SCAN_CHUNK, LogSegment, RecoveryResult, StaleSegmentError, is_newer_format

LOCK_FILE = ".logstore.lock"
_SHARED_MAPS = 8  # partitions per process whose layout generation is read through a map
_shared_maps = 0
_shared_maps_lock = threading.RLock()  # reentrant: a finalizer may run while it is held


def advance_layout_generation(lock_fd: int) -> int:
    """Advance a partition's layout generation, the first 8 bytes (big-endian) of its lock file
    open as ``lock_fd``, with the flock held; returns the new generation. Every reader compares
    it before each read, and lists the directory again when it moved."""
    raw = os.pread(lock_fd, 8, 0)
    gen = (int.from_bytes(raw, "big") if len(raw) == 8 else 0) + 1
    os.pwrite(lock_fd, gen.to_bytes(8, "big"), 0)
    return gen


def _weak_hook(ref: weakref.ref[PartitionLog]) -> Callable[[], None]:
    def verify_open() -> None:
        log = ref()
        if log is not None:
            log._verify_segment_open()

    return verify_open


def _new_shared_maps_lock() -> None:
    # A child forked while another thread held the lock would wait on it for ever; the maps and
    # the count are inherited as they are (MAP_SHARED, read-only).
    global _shared_maps_lock
    _shared_maps_lock = threading.RLock()


os.register_at_fork(after_in_child=_new_shared_maps_lock)


def _give_back_shared_map() -> None:
    global _shared_maps
    with _shared_maps_lock:
        _shared_maps -= 1


OPEN_FILE = ".logstore.open"
CLEAN_FILE = ".logstore.clean"
INT32_MAX = 0x7FFFFFFF


@dataclass(frozen=True)
class AppendResult:
    """Where an append landed: offsets ``first_offset..last_offset``; ``log_append_time`` is the
    broker-style append time (ms) for LogAppendTime topics, else -1."""

    first_offset: int
    last_offset: int
    log_append_time: int
    segment_base_offset: int
    position: int
    size: int


class SegmentInfo:
    """What retention looks at in a segment. ``largest_timestamp`` is in ms: the largest record
    timestamp (from the time index), or the file's modification time where no record has one
    (Kafka's rule); it is read on first use only, since a retention pass that finds nothing due
    looks at the oldest segment's alone. ``next_offset`` is the offset after the last record."""

    __slots__ = ("_load", "_ts", "active", "base_offset", "next_offset", "size")

    def __init__(
        self, base_offset: int, next_offset: int, size: int, active: bool, largest_timestamp: Callable[[], int] | int
    ) -> None:
        self.base_offset, self.next_offset, self.size, self.active = base_offset, next_offset, size, active
        if callable(largest_timestamp):
            self._ts: int | None = None
            self._load: Callable[[], int] | None = largest_timestamp
        else:
            self._ts, self._load = largest_timestamp, None

    @property
    def largest_timestamp(self) -> int:
        if self._ts is None:
            assert self._load is not None
            self._ts = self._load()
        return self._ts

    def __repr__(self) -> str:
        return (
            f"SegmentInfo(base_offset={self.base_offset}, next_offset={self.next_offset}, size={self.size}, "
            f"active={self.active})"
        )


@dataclass(frozen=True)
class DeletionResult:
    """What :meth:`PartitionLog.delete_oldest_segments` did (or, in a dry run, would do)."""

    topic: str
    partition: int
    segments_deleted: int
    bytes_freed: int
    log_start_offset: int
    reason: str
    dry_run: bool = False
    deleted_files: tuple[str, ...] = ()


@dataclass
class Problem:
    """One finding of :meth:`PartitionLog.verify`."""

    path: str
    position: int | None
    what: str

    def __str__(self) -> str:
        where = self.path + (f" at byte {self.position}" if self.position is not None else "")
        return f"{where}: {self.what}"


@dataclass
class LoadReport:
    """What opening a partition did: ``recovered`` segments and ``truncations`` (torn tails cut)."""

    clean: bool = True
    recovered: list[str] = field(default_factory=list)
    truncations: list[RecoveryResult] = field(default_factory=list)
    removed_files: list[str] = field(default_factory=list)
    deleted_segments: list[str] = field(default_factory=list)


class PartitionLog:
    """One partition on disk (see the module docstring). Thread-safe; safe across processes."""

    def __init__(
        self,
        directory: str,
        topic: str,
        partition: int,
        config: TopicConfig,
        *,
        recovery_point: int = 0,
        log_start_offset: int = 0,
        clock: Callable[[], float] = time.time,
        on_checkpoint: Callable[[PartitionLog], None] | None = None,
        on_segment_open: Callable[[LogSegment], None] | None = None,
        lock_timeout: float | None = 60.0,
        read_only: bool = False,
    ) -> None:
        self.directory = directory
        self.topic = topic
        self.partition = partition
        self.config = config
        self.recovery_point = recovery_point
        self.log_start_offset = log_start_offset
        self._clock = clock
        self._on_checkpoint = on_checkpoint
        self._on_segment_open = on_segment_open
        # Segments hold this hook, not a bound method: a reference from each segment back to the
        # log would keep the store from seeing that nobody else holds it (it closes such logs to
        # stay under RLIMIT_NOFILE).
        self._verify_hook = _weak_hook(weakref.ref(self))
        self._lock = threading.RLock()
        self._closed = False
        self._segments: list[LogSegment] = []
        self._bases: list[int] = []
        self._layout_gen = -1
        self._shared: memoryview | None = None  # see _map_shared
        self._shared_map: mmap.mmap | None = None
        self._shared_slot: weakref.finalize | None = None
        self._gen_reads = 0
        self._unflushed = 0
        self._last_flush = self._now_ms()
        self._clean_marker_removed = False
        self._failed: StorageError | None = None
        self._mutations = 0  # odd while truncate_to changes segments in place (readers retry then)
        self.load_report = LoadReport()
        self.read_only = read_only
        if not read_only:
            os.makedirs(directory, mode=DIR_MODE, exist_ok=True)
        self._flock = FileLock(os.path.join(directory, LOCK_FILE), lock_timeout, f"{topic}-{partition}")
        try:
            self._open_fd = os.open(
                os.path.join(directory, OPEN_FILE), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE
            )
        except BaseException:
            self._flock.close()  # out of descriptors, say: do not leak the lock file's
            raise
        try:
            if read_only:
                # Look, change nothing: no recovery, no torn-tail cut, no clean marker on close.
                for _ in range(20):
                    try:
                        self._load(recover=False, locked=False)
                        break
                    except StaleSegmentError:  # another process is part-way through a roll
                        time.sleep(0.005)
                if not self._segments:
                    base = max(self.log_start_offset, 0)
                    self._segments, self._bases = [self._new_segment(base, active=False)], [base]
                if self._flock.is_stale():
                    raise self._deleted_error()  # deleted while it listed: see below
                return
            with self._flock:
                if self._flock.is_stale():
                    # Deleted (perhaps made again) since the lock file was opened by name: this
                    # flock guards nothing, and recovering files it does not guard could cut a
                    # live writer's batch. The store opens the partition again. Once the flock is
                    # held and the file is still the one at its path, no delete_topic can move it.
                    raise self._deleted_error()
                alone = self._try_exclusive_open()
                self._load(recover=alone)
                fcntl.flock(self._open_fd, fcntl.LOCK_SH)
        except BaseException:
            for seg in self._segments:
                seg.release()  # what the load opened before it failed
            self._flock.close()
            os.close(self._open_fd)
            raise

    # --- small helpers ----------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return f"{self.topic}-{self.partition}"

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _check_open(self) -> None:
        if self._closed:
            raise LogClosedError(f"partition log {self.name} is closed.", "Open the store again to use it.")

    def _try_exclusive_open(self) -> bool:
        try:
            fcntl.flock(self._open_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def _new_segment(self, base_offset: int, active: bool) -> LogSegment:
        return LogSegment(
            self.directory,
            base_offset,
            index_interval_bytes=self.config.index_interval_bytes,
            max_index_size=self.config.segment_index_bytes,
            active=active,
            on_open=self._on_segment_open,
            verify_open=self._verify_hook,
        )

    def _verify_segment_open(self) -> None:
        """A segment opened a file by name (lazily, or again after the store's descriptor budget
        closed it), not yet kept. If the topic was deleted and perhaps made again since this log
        last looked, the name may have led to the new topic's file: checked after the open, so
        that a file opened before the move is this log's own. Such a log is dead from here on:
        the file is not kept, and every later read and deleted() look again."""
        if self._flock.is_stale():
            self._layout_gen = -1
            raise self._deleted_error()

    def _read_layout_gen(self) -> int:
        shared = self._shared
        if shared is not None:
            return int.from_bytes(shared, "big")
        self._gen_reads += 1
        if self._gen_reads % 4096 == 256:
            self._map_shared()  # a partition read this often: check through a map from now on
        raw = os.pread(self._flock.fd, 8, 0)
        return int.from_bytes(raw, "big") if len(raw) == 8 else 0

    def _map_shared(self) -> None:
        """Map the layout generation (the lock file's first 8 bytes) read-only, so that the check
        every read makes is a memory read, not a system call. Only for partitions read often, and
        for at most ``_SHARED_MAPS`` of them per process: each map counts against
        vm.max_map_count and holds a descriptor (Python's mmap keeps a duplicate), which a store
        of thousands of partitions must not spend. The slot comes back on close, or when the log
        is garbage-collected unclosed. The lock file is only ever written in place, never cut, so
        the map cannot fault."""
        global _shared_maps
        with _shared_maps_lock:
            if self._closed or self._shared_map is not None or _shared_maps >= _SHARED_MAPS:
                return
            try:
                if os.fstat(self._flock.fd).st_size < 8:
                    return  # no generation written yet: look again later
                self._shared_map = mmap.mmap(self._flock.fd, 8, mmap.MAP_SHARED, mmap.PROT_READ)
            except (OSError, ValueError):
                return  # out of map slots or descriptors, say: pread still works
            _shared_maps += 1
            self._shared_slot = weakref.finalize(self, _give_back_shared_map)
            self._shared = memoryview(self._shared_map)

    def _unmap_shared(self) -> None:
        """Give the map's slot back (on close). A read racing the close keeps its own reference,
        so the memory stays mapped until it is done."""
        with _shared_maps_lock:
            self._shared = self._shared_map = None
            if self._shared_slot is not None:
                self._shared_slot()  # once: a finalizer runs at most once

    def _read_shared_start(self) -> int:
        """The log start offset another process advanced (bytes 8-16 of the lock file; the durable
        copy is the store's log-start-offset-checkpoint)."""
        raw = os.pread(self._flock.fd, 8, 8)
        return int.from_bytes(raw, "big") if len(raw) == 8 else 0

    def _write_shared_start(self) -> None:
        os.pwrite(self._flock.fd, self.log_start_offset.to_bytes(8, "big"), 8)

    def _read_synced(self) -> tuple[int, int]:
        """(segment base offset, position) below which the active segment is known to be fsynced
        (bytes 16-36 of the lock file, with a CRC so that a torn read is no answer), or (-1, 0).

        With every append fsynced (``flush.messages=1``) the fsync runs after the locks are
        released, so another writer may append after a batch whose fsync has not yet run. If the
        power then failed, the disk could keep the later batch and lose the earlier one: a hole
        recovery must treat as damage under this policy. So a writer that finds the bytes before
        its position not yet fsynced fsyncs them first, under the lock: each append is then
        durable before the next one is written, across processes too."""
        raw = os.pread(self._flock.fd, 20, 16)
        if len(raw) == 20 and crc32c(raw[:16]) == int.from_bytes(raw[16:], "big"):
            return int.from_bytes(raw[:8], "big", signed=True), int.from_bytes(raw[8:16], "big")
        return -1, 0

    def _write_synced(self, base_offset: int, position: int) -> None:
        """Record that ``base_offset``'s segment is fsynced below ``position`` (see _read_synced).
        Called after an fsync returned, possibly without the lock: a racing writer may overwrite a
        higher value with a lower one, which only costs the next writer an fsync."""
        body = base_offset.to_bytes(8, "big", signed=True) + position.to_bytes(8, "big")
        try:
            os.pwrite(self._flock.fd, body + crc32c(body).to_bytes(4, "big"), 16)
        except OSError:
            pass  # a hint, not data (a full disk can refuse even these 20 bytes): the records are fine

    def _bump_layout(self) -> None:
        """Advance the layout generation (flock held). Readers compare it with the value they read
        *before* listing the directory, so a change is bumped both before and after it: a reader
        that listed mid-change sees the second bump and lists again."""
        self._layout_gen = advance_layout_generation(self._flock.fd)

    @property
    def segments(self) -> list[LogSegment]:
        """The segments, oldest first (a snapshot; the last one is active)."""
        return list(self._segments)

    @property
    def active_segment(self) -> LogSegment:
        return self._segments[-1]

    @property
    def next_offset(self) -> int:
        """The log end offset: the offset the next appended record gets."""
        return self._segments[-1].next_offset

    @property
    def size_bytes(self) -> int:
        """Bytes of all segments' ``.log`` files."""
        return sum(s.size for s in self._segments)

    # --- loading ----------------------------------------------------------------------------------

    def _list_dir(self) -> tuple[list[int], list[str], set[str]]:
        bases: list[int] = []
        leftovers: list[str] = []
        names = set(os.listdir(self.directory))
        for name in names:
            if name.endswith((DELETED_SUFFIX, CLEANED_SUFFIX, SWAP_SUFFIX, TMP_SUFFIX)):
                leftovers.append(os.path.join(self.directory, name))
            elif name.endswith(LOG_SUFFIX):
                try:
                    bases.append(offset_from_name(name))
                except ValueError:
                    continue
        bases.sort()
        return bases, leftovers, names

    def _load(self, recover: bool, locked: bool = True) -> None:
        """Build the segment list from the directory. ``recover``: no other process has the
        partition open, so leftovers may be removed and an unclean log recovered. ``locked``: the
        flock is held, so a torn tail may be cut and a missing first segment created."""
        report = LoadReport()
        self._layout_gen = self._read_layout_gen()  # before listing: see _bump_layout
        bases, leftovers, names = self._list_dir()
        if recover and leftovers:
            remove_quietly(leftovers)
            report.removed_files = leftovers
        if recover:
            # Index files without a .log are orphans.
            base_set = set(bases)
            for name in names:
                if name.endswith((INDEX_SUFFIX, TIMEINDEX_SUFFIX)):
                    try:
                        if offset_from_name(name) not in base_set:
                            remove_quietly([os.path.join(self.directory, name)])
                            report.removed_files.append(os.path.join(self.directory, name))
                    except ValueError:
                        pass
        for seg in self._segments:
            seg.release()
        if not bases:
            if not locked:
                return  # nothing on disk right now (a topic being deleted); keep what we had
            base = max(self.log_start_offset, 0)
            seg = self._new_segment(base, active=True)
            seg.create_files()
            fsync_dir(self.directory)
            self._segments, self._bases = [seg], [base]
            self.load_report = report
            return
        # Every segment starts read-only; a writer activates the last one under the flock.
        segs = [self._new_segment(b, active=False) for b in bases]
        for i, seg in enumerate(segs[:-1]):
            try:
                seg.size = os.stat(seg.log_path).st_size
            except FileNotFoundError:
                # Deleted (retention) between the listing and now: the caller lists again.
                raise StaleSegmentError(seg.log_path) from None
            seg.next_offset = segs[i + 1].base_offset
            seg.max_timestamp = -2  # not loaded yet: see largest_timestamp()
        self._segments, self._bases = segs, list(bases)
        clean = self._clean_marker_matches()
        report.clean = clean
        active = segs[-1]
        if recover and not clean:
            self._recover(report)
        else:
            if recover:
                for seg in [s for s in segs if self._index_files_damaged(s)]:
                    self._recover_segment(seg, report)
            self._load_active_tail(active, truncate=locked, trusted=clean, report=report)
        if recover:
            self._clean_marker_removed = False
        self.log_start_offset = max(self.log_start_offset, self._segments[0].base_offset, self._read_shared_start())
        self.log_start_offset = min(self.log_start_offset, self._segments[-1].next_offset)
        self.load_report = report

    def _clean_marker_matches(self) -> bool:
        path = os.path.join(self.directory, CLEAN_FILE)
        try:
            with open(path, encoding="utf-8") as f:
                marker = json.load(f)
        except (FileNotFoundError, ValueError):
            return False
        active = self._segments[-1]
        try:
            return (
                marker.get("version") == 1
                and marker["active_base_offset"] == active.base_offset
                and marker["log_size"] == os.stat(active.log_path).st_size
                and marker["index_size"] == os.stat(active.index_path).st_size
                and marker["timeindex_size"] == os.stat(active.timeindex_path).st_size
                and marker["segments"] == len(self._segments)
            )
        except (KeyError, OSError):
            return False

    def _load_active_tail(
        self, seg: LogSegment, truncate: bool, trusted: bool = False, report: LoadReport | None = None
    ) -> None:
        """Find the valid end of the active segment, scanning forward from its last index entry.

        ``trusted``: the clean-shutdown marker matched, so the file holds whole, fsynced batches:
        walk the headers only (no CRC) and treat any mismatch as damage, never as a torn tail.
        A rebuild of the indexes is recorded in ``report`` (default: this log's load report).

        The last index entry may name the batch at its position (what this library writes, and
        Kafka's recovery) or, as Kafka up to 3.6 writes per append, the last offset of a later batch
        of the same append: either way scanning starts at a batch boundary.
        """
        report = self.load_report if report is None else report
        seg.size = 0
        seg.next_offset = seg.base_offset
        position = 0
        idx = seg.index
        idx.refresh()
        file_size = seg.file_size()
        if idx.entries:
            last_offset, pos = idx.last_entry()  # read, not mapped (see index._last_raw)
            head = seg.pread(RECORD_BATCH_OVERHEAD, pos) if pos < file_size else b""
            h = read_header(head) if len(head) == RECORD_BATCH_OVERHEAD else None
            if h is not None and h.magic == 2 and h.batch_length >= MIN_BATCH_LENGTH and h.last_offset <= last_offset:
                position = pos
                batch_base = h.base_offset
            elif truncate:
                # The index does not match the log (a crash left it stale): rebuild both from the log.
                self._bump_layout()
                self._recover_segment(seg, report)
                self._bump_layout()
                return
        ts, off = seg.time_index.last_entry()
        seg.max_timestamp, seg.offset_of_max_timestamp = ts, off
        seg.first_batch_timestamp = None
        if file_size >= RECORD_BATCH_OVERHEAD:
            first = read_header(seg.pread(RECORD_BATCH_OVERHEAD, 0))
            if first.magic == 2:
                seg.first_batch_timestamp = first.max_timestamp  # segment.ms counts from it
        seg.size = position
        if position:
            seg.next_offset = batch_base  # the scan below starts with the indexed batch
        self._scan_forward(seg, file_size, truncate, trusted=trusted)
        # (No entry at first, some after the scan: another process appended meanwhile; not stale.)
        stale = idx.entries and position and last_offset >= seg.next_offset
        if truncate and (stale or not seg.indexes_consistent(sealed=False)):
            # The last entry names an offset the log does not reach (a stale index), or the
            # entries are out of order, outside the log or not what the log holds: rebuild both.
            self._bump_layout()
            self._recover_segment(seg, report)
            self._bump_layout()
            return
        if not truncate and not seg.indexes_consistent(sealed=False):
            # A reader cannot rebuild it: time lookups ignore the time index (offset lookups
            # check every entry they use anyway).
            seg.time_index_trusted = False
            seg.max_timestamp, seg.offset_of_max_timestamp = seg.scan_max_timestamp()
        seg.created_ms = self._now_ms()

    def _scan_forward(self, seg: LogSegment, file_size: int, truncate: bool, trusted: bool = False) -> None:
        """Advance ``seg`` over whole, CRC-valid batches from its known size up to ``file_size``.

        With ``truncate`` (flock held) an invalid tail is a dead writer's torn write and is cut,
        unless it lies below the recovery point (fsynced data) or a valid batch follows it: both
        are damage and raise CorruptLogError. Without ``truncate`` the tail is left alone: it may be
        a batch another process is writing right now. ``trusted`` skips CRCs (a clean open) and
        makes any invalid tail an error.
        """
        position = seg.size
        while position < file_size:
            buf = b""  # the previous chunk goes before the next is read
            buf = seg.pread(min(1 << 20, file_size - position), position)
            pos = 0
            bad = False
            while pos + RECORD_BATCH_OVERHEAD <= len(buf):
                h = read_header(buf, pos)
                if is_newer_format(h, seg.next_offset, file_size - position - pos):
                    raise UnsupportedFormatError(seg.log_path, position + pos, h.magic, MAGIC)
                if h.batch_length < MIN_BATCH_LENGTH or h.magic != 2:
                    bad = True
                    break
                if pos + h.size > len(buf):
                    if pos == 0 and position + h.size <= file_size:
                        buf = seg.pread(h.size, position)
                        continue
                    break
                if not trusted:
                    try:
                        check_batch(buf, pos, h)
                    except CorruptRecordError:
                        bad = True
                        break
                if h.base_offset != seg.next_offset:
                    bad = True  # offsets are dense; the CRC does not cover the base offset
                    break
                if seg.size == 0 and seg.first_batch_timestamp is None:
                    seg.first_batch_timestamp = h.max_timestamp
                seg.after_append(position + pos, h.last_offset, h.max_timestamp, h.size, index=False)
                pos += h.size
            position += pos
            if bad or pos == 0:
                break
        seg.size = position
        if position < file_size and trusted:
            raise CorruptLogError(
                "segment does not end on a whole batch where its clean-shutdown marker says it does",
                seg.log_path,
                position,
                hint="Restore the file from a copy; the data before this position is intact.",
            )
        if position < file_size and truncate:
            # The checkpoint, not this process's memory: another process may have truncated the log
            # (lowering it) since we read it.
            durable = self._checkpointed_recovery_point()
            if seg.next_offset < durable:
                raise CorruptLogError(
                    f"damaged record batch inside fsynced data (below the recovery point {durable}); not truncating",
                    seg.log_path,
                    position,
                    hint="Restore the file from a copy; the data before this position is intact.",
                )
            # (Only when every append is fsynced: see LogSegment.recover.)
            later = (
                seg._find_valid_batch_after(position, file_size, seg.next_offset)
                if self.config.flush_messages <= 1
                else None
            )
            if later is not None:
                raise CorruptLogError(
                    f"damaged record batch followed by a valid batch at byte {later}; not truncating",
                    seg.log_path,
                    position,
                    hint="Restore the file from a copy, or run 'logstore recover' to inspect it.",
                )
            self._bump_layout()
            seg.activate()
            with seg._handle_lock:
                seg.cut(position)
                crashpoint("recovery.after_truncate")
                self._write_synced(seg.base_offset, position)
                seg.index.truncate_position(position)
                seg.time_index.truncate_to(seg.next_offset)
            self._bump_layout()
            self.load_report.truncations.append(RecoveryResult(seg.log_path, position, file_size - position, 0))
        # Without the flock a tail past `position` may be a batch still being written: left alone.
        seg.index.refresh(limit_position=position)
        seg.time_index.refresh(limit_position=seg.next_offset)
        ts, off = seg.time_index.last_entry()
        if ts > seg.max_timestamp:
            seg.max_timestamp, seg.offset_of_max_timestamp = ts, off

    def _checkpointed_recovery_point(self) -> int:
        """This partition's recovery point in the store's checkpoint file (other processes may have
        advanced it); 0 when there is none."""
        path = os.path.join(os.path.dirname(self.directory), RECOVERY_POINT_CHECKPOINT)
        try:
            return read_checkpoint(path).get((self.topic, self.partition), 0)
        except CorruptDataError:
            return 0

    def _recover_segment(self, seg: LogSegment, report: LoadReport) -> RecoveryResult:
        durable = self.recovery_point
        after = bisect.bisect_right(self._bases, seg.base_offset)
        if after < len(self._bases):
            durable = max(durable, self._bases[after])  # a sealed segment: all of it is durable
        was_active = seg.active
        seg.activate()
        result = seg.recover(durable_offset=durable, every_append_synced=self.config.flush_messages <= 1)
        report.recovered.append(seg.log_path)
        if result.truncated_bytes:
            report.truncations.append(result)
        if not was_active:
            seg.seal()
        seg.created_ms = self._now_ms()
        return result

    def _recover(self, report: LoadReport, everything: bool = False, durable: int | None = None) -> None:
        """Recover every segment from the one holding the recovery point to the end
        (``everything``: from the first segment; ``durable`` overrides the recovery point as the
        offset below which damage is reported instead of cut, -1 cutting at any damage)."""
        segs = self._segments
        self._bump_layout()
        i = 0 if everything else max(0, bisect.bisect_right(self._bases, self.recovery_point) - 1)
        # Segments below the recovery point were fsynced; only a missing index needs a rebuild.
        for seg in segs[:i]:
            if self._index_files_damaged(seg):
                self._recover_segment(seg, report)
        for j in range(i, len(segs)):
            seg = segs[j]
            last = j == len(segs) - 1
            # Scan before cutting: whether later segments go is decided while the torn tail is
            # still there, and they go first, so that a crash part-way makes the next recovery
            # decide the same (a cut made first would hide the tear from it).
            was_active = seg.active
            seg.activate()
            durable_here = self.recovery_point if durable is None else durable
            if not last and durable_here >= 0:
                # A segment with a successor was sealed, and a seal fsyncs before the next segment
                # is created: all of it is durable, so damage in it is reported, never cut (only
                # the explicit repair, durable -1, cuts it).
                durable_here = max(durable_here, segs[j + 1].base_offset)
            result = seg.recover(
                durable_offset=durable_here,
                cut=False,
                every_append_synced=self.config.flush_messages <= 1,
            )
            report.recovered.append(seg.log_path)
            follows = last or seg.next_offset == segs[j + 1].base_offset
            if not follows and durable_here >= 0:
                # A sealed segment that does not end where the next one starts (with or without a
                # bad tail): a segment file is missing, or a file named like a segment is not one.
                # Never renumber offsets, never drop the later segments: only the repair may.
                self._raise_hole(seg.next_offset, segs[j + 1])
            drop = not follows and (result.truncated_bytes > 0 or durable_here < 0)
            if not last and not drop:
                # Whole, or cut without losing an offset: the next segment follows this one.
                seg.next_offset = segs[j + 1].base_offset
            if drop:
                # Offsets between the cut and the next segment are lost: data after a torn
                # segment cannot be trusted to follow it. Drop later segments, newest first so
                # that a crash part-way leaves a prefix.
                crashpoint("recovery.before_drop")
                for later in reversed(segs[j + 1 :]):
                    later.release()
                    remove_quietly([later.log_path])
                    fsync_dir(self.directory)
                    remove_quietly([later.index_path, later.timeindex_path])
                    report.deleted_segments.append(later.log_path)
                del segs[j + 1 :]
                del self._bases[j + 1 :]
            if result.truncated_bytes:
                seg.cut(result.valid_size)
                crashpoint("recovery.after_truncate")
                report.truncations.append(result)
            seg.created_ms = self._now_ms()
            if drop:
                break
            if not was_active:
                seg.seal()
        active = segs[-1]
        if not active.active:
            active.activate()
        # The active segment's state after recover(): make the first-batch time known.
        if active.first_batch_timestamp is None and active.size >= RECORD_BATCH_OVERHEAD:
            active.first_batch_timestamp = read_header(active.pread(RECORD_BATCH_OVERHEAD, 0)).max_timestamp
        active.index.activate()
        active.time_index.activate()
        active.flush()
        self._write_synced(active.base_offset, active.size)
        self._bump_layout()
        self.recovery_point = active.next_offset
        if self._on_checkpoint:
            self._on_checkpoint(self)

    @staticmethod
    def _index_files_damaged(seg: LogSegment) -> bool:
        """Whether a segment's .index or .timeindex is missing or not a whole number of entries:
        rebuilt from the .log by the opener (two stats per segment; what is inside is checked on
        use, see LogSegment.indexes_consistent)."""
        for path, entry in ((seg.index_path, OffsetIndex.entry_size), (seg.timeindex_path, TimeIndex.entry_size)):
            try:
                if os.stat(path).st_size % entry:
                    return True
            except FileNotFoundError:
                return True
        return False

    def _raise_hole(self, end: int, nxt: LogSegment) -> None:
        """CorruptLogError for segment ``nxt`` starting elsewhere than ``end``, where the log
        before it ends."""
        what = (
            f"offsets {end}..{nxt.base_offset - 1} are missing"
            if end < nxt.base_offset
            else f"offsets {nxt.base_offset}..{end - 1} are in two segments"
        )
        raise CorruptLogError(
            f"segment {os.path.basename(nxt.log_path)} starts at offset {nxt.base_offset} but the log before it "
            f"ends at offset {end}: {what} (a segment file lost, or a file named like a segment that is not one)",
            nxt.log_path,
            0,
            hint="Nothing was changed. Restore the missing segment from a copy, or move the stray file away; "
            "'logstore recover --truncate-damaged' cuts the log at the hole instead (later segments are dropped).",
        )

    def repair(self, truncate_damaged: bool = False) -> LoadReport:
        """The documented repairs, now: validate every batch of every segment, rebuild every
        index from its log, cut a torn tail, remove leftover files. Damage inside fsynced data
        raises CorruptLogError and is left in place, unless ``truncate_damaged``: then the log is
        cut at the first damaged batch and later segments are dropped (the report lists them).
        Holds the flock throughout and needs the partition to itself (StoreLockedError when
        another process has it open)."""
        with self._lock:
            self._check_open()
            if self.read_only:
                raise LogClosedError(
                    f"partition log {self.name} was opened read-only.", "Open it writable to repair it."
                )
            with self._flock:
                if not self._try_exclusive_open():
                    raise StoreLockedError(
                        f"partition {self.name} is open in another process.",
                        "Stop the processes using it (consumers, producers, --loop jobs), then run recover again.",
                    )
                try:
                    self._sync_locked()
                    report = LoadReport(clean=False)
                    _, leftovers, _ = self._list_dir()
                    remove_quietly(leftovers)
                    report.removed_files = leftovers
                    remove_quietly([os.path.join(self.directory, CLEAN_FILE)])
                    self._mutations += 1
                    try:
                        self._recover(report, everything=True, durable=-1 if truncate_damaged else None)
                    finally:
                        self._mutations += 1
                        self._bump_layout()
                    if self.log_start_offset > self.next_offset:
                        self.log_start_offset = self.next_offset
                        self._write_shared_start()
                    self.load_report = report
                    return report
                finally:
                    fcntl.flock(self._open_fd, fcntl.LOCK_SH)

    # --- keeping up with other processes ------------------------------------------------------------

    def _sync_locked(self) -> None:
        """With the flock held: make this process's view match the files (see module docstring)."""
        if self.read_only:
            raise LogClosedError(
                f"partition log {self.name} was opened read-only.", "Open the store without read_only to change it."
            )
        if self._flock.is_stale():
            raise self._deleted_error()
        if self._read_layout_gen() != self._layout_gen:
            self._load(recover=False, locked=True)
            return
        seg = self._segments[-1]
        size = seg.file_size()
        if size != seg.size:
            self._scan_forward(seg, size, truncate=True)

    def deleted(self) -> bool:
        """True when this partition's topic was deleted (by any handle or process) since the log
        was opened: its directory was moved away, perhaps made again under the same name. Whoever
        moves a partition directory away advances its layout generation right after the move, so
        while the generation is the one this log last loaded, it was not deleted: a memory read for a
        partition read often (the generation is mapped), else one ``pread``. When the generation
        moved, an ``fstat`` and a ``stat`` of the lock file tell. (A deleter that dies between
        the move and the advance leaves it to the next writable open of the store; meanwhile this
        log serves only files it already had open: every open by name is checked.)"""
        if self._read_layout_gen() == self._layout_gen:
            return False
        return self._flock.is_stale()

    def _deleted_error(self) -> UnknownTopicError:
        return UnknownTopicError(self.topic, store=os.path.dirname(self.directory), deleted_under=self.name)

    def refresh(self) -> None:
        """Pick up what other processes appended or changed, without taking the flock.

        Raises UnknownTopicError when the topic was deleted since this log was opened (its
        directory moved away, perhaps made again under the same name: listing it by name would
        mix another topic's segments into this view)."""
        with self._lock:
            self._check_open()
            if self._read_layout_gen() != self._layout_gen:
                if self._flock.is_stale():
                    raise self._deleted_error()
                for _ in range(3):
                    try:
                        self._load(recover=False, locked=False)
                        break
                    except StaleSegmentError:
                        # A writer is part-way through a change (a roll whose index files do not
                        # exist yet, segments being deleted): list again; if it is still going
                        # on, keep what was loaded and look again on the next read.
                        self._layout_gen = -1
                if self._flock.is_stale():
                    # Deleted while it listed: what it loaded may be a new topic's. Never read it:
                    # every later read and deleted() look again, and find the lock file stale.
                    self._layout_gen = -1
                    raise self._deleted_error()
                return
            seg = self._segments[-1]
            size = seg.file_size()
            if size > seg.size:
                self._scan_forward(seg, size, truncate=False)

    # --- appending --------------------------------------------------------------------------------

    def append(self, batches: bytes | bytearray | memoryview, *, validate: bool = True) -> AppendResult:
        """Append one or more whole record batches; the log assigns their offsets.

        ``batches`` holds batches back to back, as built by :func:`~logstore.records.build_batch`
        (its base offsets are overwritten). With ``validate`` each batch's size and CRC are checked
        first. Returns where the records landed once they are as durable as the topic's flush
        policy promises. Raises CorruptRecordError for a malformed batch, RecordTooLargeError for
        one over ``max.message.bytes``, StorageError for an I/O error (nothing is acknowledged then),
        LogClosedError after close.
        """
        view = memoryview(batches)
        if view.format != "B" or view.ndim != 1:
            view = view.cast("B")
        total = len(view)
        headers = []
        pos = 0
        while pos < total:
            if total - pos < RECORD_BATCH_OVERHEAD:
                raise CorruptRecordError(f"{total - pos} trailing bytes are not a whole batch header", None, pos)
            h = read_header(view, pos)
            if h.batch_length < MIN_BATCH_LENGTH or pos + h.size > total:
                raise CorruptRecordError(f"batch length {h.batch_length} does not fit the appended buffer", None, pos)
            if h.size > self.config.max_message_bytes + LOG_OVERHEAD:
                raise RecordTooLargeError(self.topic, self.partition, h.size, self.config.max_message_bytes)
            if validate:
                check_batch(view, pos, h)
                if h.records_count <= 0 or h.last_offset_delta + 1 != h.records_count:
                    raise CorruptRecordError(
                        f"batch declares {h.records_count} records but lastOffsetDelta {h.last_offset_delta}",
                        None,
                        pos,
                    )
            headers.append((pos, h))
            pos += h.size
        if not headers:
            raise ValueError("append needs at least one record batch")
        log_append = self.config.message_timestamp_type == "LogAppendTime"
        with self._lock:
            self._check_open()
            with self._flock:
                self._sync_locked()
                if not self._clean_marker_removed:
                    remove_quietly([os.path.join(self.directory, CLEAN_FILE)])
                    self._clean_marker_removed = True
                if self._failed is not None:
                    raise self._failed
                next_offset = self.next_offset
                last_offset = next_offset + sum(h.last_offset_delta + 1 for _, h in headers) - 1
                now = self._now_ms()
                max_ts = now if log_append else max(h.max_timestamp for _, h in headers)  # for segment.ms
                seg = self._maybe_roll(total, max_ts, last_offset, len(headers))
                if not seg.active:
                    seg.activate()
                buffers: list[Any] = []
                offset = next_offset
                for p, h in headers:
                    buffers.append(offset.to_bytes(8, "big"))
                    if log_append:
                        buffers.append(self._stamp_log_append_time(view, p, h, now))
                    else:
                        buffers.append(view[p + 8 : p + h.size])
                    offset += h.last_offset_delta + 1
                position = seg.size
                if position and self.config.flush_messages <= 1:
                    base, synced = self._read_synced()
                    if base != seg.base_offset or synced < position:
                        # Another writer's append is not yet fsynced: ours must not follow it to
                        # the disk before it does (see _read_synced).
                        try:
                            seg.flush()
                        except StorageError as e:
                            raise self._fence(e) from e
                        self._write_synced(seg.base_offset, position)
                with seg._handle_lock:
                    # Index space first: a full disk then fails the append before any byte is written.
                    seg.reserve_index(len(headers))
                    try:
                        seg.write(buffers, position, total)
                    except StorageError as e:
                        self._undo_write(seg, position, e)
                        raise
                    crashpoint("append.after_write")
                    # Index entries per batch (Kafka 3.7+ and Kafka's recovery do the same): an
                    # append of many batches still gets an entry every index.interval.bytes.
                    at, first = position, next_offset
                    for _, h in headers:
                        last = first + h.last_offset_delta
                        seg.after_append(at, last, now if log_append else h.max_timestamp, h.size)
                        at += h.size
                        first = last + 1
                self._unflushed += last_offset - next_offset + 1
                sync = self._unflushed >= self.config.flush_messages or now - self._last_flush >= self.config.flush_ms
                if sync:
                    self._unflushed = 0
                    self._last_flush = now
        # fsync after releasing the locks (still before returning): other writers append meanwhile,
        # and one fsync covers their bytes too. flock is not fair; holding it across the fsync let
        # one busy writer starve the others.
        if sync:
            crashpoint("append.before_fsync")
            try:
                seg.flush()
            except StorageError as e:
                raise self._fence(e) from e
            if self.config.flush_messages <= 1:
                self._write_synced(seg.base_offset, position + total)
            crashpoint("append.after_fsync")
        return AppendResult(next_offset, last_offset, now if log_append else -1, seg.base_offset, position, total)

    def _fence(self, error: StorageError) -> StorageError:
        """An fsync of appended records failed: the bytes are in the file but not known to be
        durable, and may already be visible to readers. Linux reports a writeback error once and
        then marks the pages clean, so a retried fsync would "succeed" over lost data (PostgreSQL's
        fsyncgate): never retry. Fence the log instead, so that every later append raises until
        the store is reopened, and return the error to raise (``records_written``: the outcome of
        the records is unknown, they may or may not survive)."""
        cause = error.__cause__ if isinstance(error.__cause__, OSError) else OSError(error.errno, str(error))
        self._failed = StorageError(
            "fsync (records written, durability unknown)", error.path, cause, records_written=True
        )
        return self._failed

    def _undo_write(self, seg: LogSegment, position: int, error: StorageError) -> None:
        """A write failed part-way (disk full, I/O error): cut the file back to ``position`` so no
        whole batch of the failed append survives to be adopted later. If even that fails, the log
        refuses further appends until it is reopened (and recovered)."""
        try:
            seg.cut(position)
        except StorageError as e:
            self._failed = e
            return
        self._write_synced(seg.base_offset, position)

    @staticmethod
    def _stamp_log_append_time(view: Any, pos: int, h: Any, now: int) -> bytes:
        """The batch from byte 8 on, marked LogAppendTime with maxTimestamp = now, CRC recomputed."""
        raw = bytearray(view[pos : pos + h.size])
        attributes = h.attributes | TIMESTAMP_TYPE_MASK
        raw[ATTRIBUTES_OFFSET : ATTRIBUTES_OFFSET + 2] = attributes.to_bytes(2, "big")
        raw[35:43] = now.to_bytes(8, "big", signed=True)
        crc = crc32c(memoryview(raw)[ATTRIBUTES_OFFSET:])
        raw[17:21] = crc.to_bytes(4, "big")
        return bytes(raw[8:])

    def append_records(
        self,
        values: Sequence[bytes | None],
        keys: Sequence[bytes | None] | None = None,
        *,
        timestamps: int | Sequence[int] | None = None,
        headers: Sequence[Sequence[tuple[str, bytes | None]] | None] | None = None,
        compression_type: str = "none",
    ) -> AppendResult:
        """Build one batch from columns of values (and keys, timestamps, headers) and append it."""
        codec = self.config.compression_type
        if codec not in ("producer",):
            compression_type = "none" if codec == "uncompressed" else codec
        batch = build_batch(
            values,
            keys,
            timestamps=timestamps,
            headers=headers,
            compression_type=compression_type,
            now_ms=self._now_ms(),
        )
        return self.append(batch, validate=False)

    def _maybe_roll(self, incoming: int, max_ts: int, last_offset: int, batches: int = 1) -> LogSegment:
        seg = self._segments[-1]
        cfg = self.config
        if seg.size == 0:
            return seg
        reason = None
        if seg.size > cfg.segment_bytes - incoming:
            reason = "size"
        elif seg.first_batch_timestamp is not None and seg.first_batch_timestamp >= 0:
            if max_ts - seg.first_batch_timestamp > cfg.segment_ms:
                reason = "time"
        elif self._now_ms() - seg.created_ms > cfg.segment_ms:
            reason = "time"
        if reason is None and seg.indexes_full(batches):
            reason = "index full"  # the append may add an entry per batch
        if reason is None and last_offset - seg.base_offset > INT32_MAX:
            reason = "offset overflow"
        if reason is None:
            return seg
        return self._roll_locked()

    def _roll_locked(self) -> LogSegment:
        """Seal the active segment and start a new one at the log end (flock held)."""
        old = self._segments[-1]
        new_base = old.next_offset
        self._bump_layout()
        old.activate()
        try:
            old.seal()
        except StorageError as e:
            # The sealing fsync failed: what the old segment holds is not known to be durable.
            raise self._fence(e) from e
        crashpoint("roll.after_seal")
        new = self._new_segment(new_base, active=True)
        try:
            new.create_files()
            crashpoint("roll.after_create")
            fsync_dir(self.directory)
        except OSError as e:
            # No record is in the new segment yet: remove it so the next append rolls again.
            new.release()
            remove_quietly([new.log_path, new.index_path, new.timeindex_path])
            old.activate()
            raise StorageError("create segment", new.log_path, e) from e
        except StorageError:
            new.release()
            remove_quietly([new.log_path, new.index_path, new.timeindex_path])
            old.activate()
            raise
        crashpoint("roll.after_dir_fsync")
        new.created_ms = self._now_ms()
        self._segments.append(new)
        self._bases.append(new_base)
        self._bump_layout()
        self._unflushed = 0
        self._last_flush = self._now_ms()
        # Everything before the new segment is fsynced (seal did it): advance the recovery point.
        self.recovery_point = new_base
        if self._on_checkpoint:
            self._on_checkpoint(self)
        return new

    def roll(self) -> None:
        """Start a new segment now (no-op when the active one is empty)."""
        with self._lock:
            self._check_open()
            with self._flock:
                self._sync_locked()
                if self._segments[-1].size:
                    self._roll_locked()

    def flush(self) -> None:
        """fsync everything appended so far by this process."""
        with self._lock:
            self._check_open()
            self._flush_locked()

    def _flush_locked(self) -> None:
        if self._failed is not None:
            raise self._failed
        try:
            self._segments[-1].flush()
        except StorageError as e:
            raise self._fence(e) from e
        self._unflushed = 0
        self._last_flush = self._now_ms()

    def maybe_flush(self) -> bool:
        """fsync when ``flush.ms`` has passed since the last fsync and something is unflushed."""
        with self._lock:
            if self._closed or not self._unflushed:
                return False
            if self._now_ms() - self._last_flush >= self.config.flush_ms:
                self._flush_locked()  # an error fences the log (see _fence)
                return True
            return False

    # --- reading ----------------------------------------------------------------------------------

    def _segment_for(self, offset: int) -> int:
        return max(0, bisect.bisect_right(self._bases, offset) - 1)

    def _locate(self, offset: int) -> tuple[list[LogSegment], int]:
        """A consistent snapshot of the segment list and the index of the segment holding
        ``offset``, for readers that take no lock. Deleting from the front replaces the lists
        (never edits them in place) and a roll appends to them, so a reader that saw the two lists
        out of step (lengths or base offsets differ) just looks again."""
        while True:
            segments, bases = self._segments, self._bases
            i = max(0, bisect.bisect_right(bases, offset) - 1)
            if len(segments) == len(bases) and i < len(segments) and segments[i].base_offset == bases[i]:
                return segments, i

    def check_offset(self, offset: int) -> None:
        """Raise OffsetOutOfRangeError unless log_start_offset <= offset <= next_offset."""
        if offset < self.log_start_offset or offset > self.next_offset:
            self.refresh()
            if offset < self.log_start_offset or offset > self.next_offset:
                raise OffsetOutOfRangeError(self.topic, self.partition, offset, self.log_start_offset, self.next_offset)

    def _fresh(self) -> None:
        """Reload this process's view when another process changed the segment list (an 8-byte
        pread of the layout generation): readers never use a segment that was truncated or
        removed under them."""
        if self._read_layout_gen() != self._layout_gen:  # a short (new) lock file reads as 0
            self.refresh()

    def read(self, offset: int, max_bytes: int = 1 << 20) -> bytes:
        """Whole batches starting with the one holding ``offset`` (it may begin below ``offset``),
        up to ``max_bytes`` but always at least one batch. Empty at the log end.

        Raises OffsetOutOfRangeError outside ``[log_start_offset, next_offset]``.
        """
        self._check_open()
        self._fresh()
        self.check_offset(offset)
        if offset >= self.next_offset:
            return b""
        segments, i = self._locate(offset)
        while i < len(segments):
            seg = segments[i]
            found = seg.find_batch(offset)
            if found is not None:
                return seg.read(found[0], max_bytes)
            i += 1
        return b""

    def read_records(self, offset: int, max_records: int | None = None, max_bytes: int = 1 << 20) -> RecordColumns:
        """Decode the records from ``offset`` on: at most ``max_records``, from about ``max_bytes`` of
        batches (always at least one batch), continuing across segments.

        Every batch's CRC is checked; raises CorruptRecordError (file, position) on damage,
        OffsetOutOfRangeError outside ``[log_start_offset, next_offset]``.
        """
        self._check_open()
        self._fresh()
        return self._read_retrying(self._read_records, offset, max_records, max_bytes)

    def _read_retrying(self, read: Callable[..., Any], *args: Any) -> Any:
        """Run a read once more when the segments changed under it: a segment another process
        removed (StaleSegmentError), or a truncation in this process seen half-done (it shows as
        damage). Damage that is really there raises again."""
        before = self._mutations
        try:
            return read(*args)
        except StaleSegmentError:
            self.refresh()
        except CorruptRecordError:
            if self._mutations == before and not before & 1:
                raise
            with self._lock:  # wait until the truncation in progress is done
                pass
        try:
            return read(*args)
        except StaleSegmentError:
            # Still changing: another process is deleting or rolling segments. It holds the flock
            # for the whole change, so wait for it to finish, then look once more.
            with self._flock:
                pass
            self.refresh()
            return read(*args)

    def _read_records(self, offset: int, max_records: int | None, max_bytes: int) -> RecordColumns:
        """Decode the records from ``offset`` on: at most ``max_records``, from about ``max_bytes`` of
        batches (always at least one batch), continuing across segments.

        Every batch's CRC is checked; raises CorruptRecordError (file, position) on damage,
        OffsetOutOfRangeError outside ``[log_start_offset, next_offset]``.
        """
        out = RecordColumns()
        self.check_offset(offset)
        segments, i = self._locate(offset)
        budget = max_bytes
        if max_records is not None and max_records <= 32 and i < len(segments):
            few = self._lookup(segments[i], offset, max_records)
            if few is not None:
                return few
        while i < len(segments) and budget > 0 and (max_records is None or len(out) < max_records):
            seg = segments[i]
            found = seg.find_batch(offset)
            if found is None:
                i += 1
                continue
            position, first = found
            if max_records is not None and max_records <= first.records_count:
                # A few records (a lookup): read just the batch that holds them.
                data = seg.pread(first.size, position) if position + first.size <= seg.size else b""
            else:
                data = seg.read(position, budget if len(out) else max(budget, 1))
            if not data:
                break
            budget -= len(data)
            want = None if max_records is None else max_records - len(out)
            arrays = decode_batches(
                data, path=seg.log_path, file_position=position, start_offset=offset, max_records=want
            )
            out.extend(arrays.to_columns())
            offset = max(offset, arrays.next_offset)
            if position + len(data) >= seg.size:
                i += 1
        if max_records is not None and len(out) > max_records:
            for col in out.__slots__:
                setattr(out, col, getattr(out, col)[:max_records])
        return out

    def fetch(self, offset: int, max_bytes: int = 1 << 20, max_records: int | None = None) -> RecordArrays:
        """The records from ``offset`` on in about ``max_bytes`` of whole batches of one segment
        (always at least one batch, so a record larger than ``max_bytes`` still comes back), as
        numpy columns. The result's ``next_offset`` is where the next fetch starts; it is empty
        (with ``next_offset == offset``) at the log end. What other processes appended is seen.
        ``max_records`` (up to 32) reads just the records asked for, with scalar code: the quick
        first read after a seek.

        Raises OffsetOutOfRangeError outside ``[log_start_offset, next_offset]``,
        CorruptRecordError (file, byte position) on a damaged batch.
        """
        self._check_open()
        self._fresh()
        return self._read_retrying(self._fetch, offset, max_bytes, max_records)

    def _lookup(self, seg: LogSegment, offset: int, max_records: int) -> RecordColumns | None:
        """A few records from ``offset``, when the batch holding it (found with one read at the
        index position, usually) has them all: decoded with scalar code. None otherwise."""
        located = seg.locate(offset)
        if located is None:
            return None
        position, h, buf, start = located
        if h.is_control or h.last_offset - offset + 1 < max_records:
            return None
        return decode_batch(
            buf,
            start,
            header=h,
            path=seg.log_path,
            file_position=position,
            start_offset=offset,
            max_records=max_records,
        )

    def _fetch(self, offset: int, max_bytes: int, max_records: int | None) -> RecordArrays:
        self.check_offset(offset)
        segments, i = self._locate(offset)
        if max_records is not None and max_records <= 32 and i < len(segments) and offset < self.next_offset:
            few = self._lookup(segments[i], offset, max_records)
            if few:
                return RecordArrays.from_columns(few)
        while i < len(segments) and offset < self.next_offset:
            seg = segments[i]
            found = seg.find_batch(offset)
            if found is None:
                i += 1
                continue
            position = found[0]
            data = seg.read(position, max_bytes)
            if not data:
                break
            arrays = decode_batches(data, path=seg.log_path, file_position=position, start_offset=offset)
            if len(arrays):
                return arrays
            offset = max(offset, arrays.next_offset)  # only control batches: go on past them
        return RecordArrays(b"", offset)

    def offset_for_time(self, timestamp: int) -> OffsetAndTimestamp | None:
        """The first record with timestamp >= ``timestamp`` (ms): its offset and timestamp, or None
        when every record is older (Kafka's ListOffsets by time)."""
        self._check_open()
        self.refresh()
        return self._read_retrying(self._offset_for_time, timestamp)  # type: ignore[no-any-return]

    def _offset_for_time(self, timestamp: int) -> OffsetAndTimestamp | None:
        for seg in list(self._segments):
            if seg.size == 0 or self._largest_timestamp(seg) < timestamp:
                continue
            entry_ts, start_off = -1, seg.base_offset
            if seg.time_index_trusted:
                with seg._handle_lock:
                    entry_ts, start_off = seg.time_index.lookup(timestamp)
            floor = max(self.log_start_offset, seg.base_offset)
            start_off = max(start_off, floor)
            found = seg.find_batch(start_off)
            if start_off > floor and (found is None or found[1].max_timestamp != entry_ts):
                # The entry does not name a batch with its timestamp: the index is advisory.
                found = seg.find_batch(floor)
            if found is None:
                continue
            position = found[0]
            while position < seg.size:
                head = seg.pread(RECORD_BATCH_OVERHEAD, position)
                h = read_header(head)
                if h.batch_length < MIN_BATCH_LENGTH or position + h.size > seg.size:
                    raise CorruptRecordError(
                        f"batch length {h.batch_length} does not fit the segment", seg.log_path, position
                    )
                if h.max_timestamp >= timestamp:
                    hit = find_timestamp(
                        seg.read(position, h.size),
                        timestamp=timestamp,
                        min_offset=self.log_start_offset,
                        header=h,
                        path=seg.log_path,
                        file_position=position,
                    )
                    if hit is not None:
                        return OffsetAndTimestamp(*hit)
                position += h.size
        return None

    def offset_of_max_timestamp(self) -> int | None:
        """The offset of the first record with the largest timestamp (Kafka's ListOffsets
        MAX_TIMESTAMP), or None for an empty log."""
        self._check_open()
        self.refresh()
        return self._read_retrying(self._offset_of_max_timestamp)  # type: ignore[no-any-return]

    def _offset_of_max_timestamp(self) -> int | None:
        lso = self.log_start_offset
        best_ts, best = -1, None  # best: a segment and the last offset of its batch, or an offset
        for seg in list(self._segments):
            if seg.size == 0 or seg.next_offset <= lso:
                continue
            ts = self._largest_timestamp(seg)
            if seg.base_offset < lso:
                # The log start lies inside this segment. Its largest timestamp counts when a live
                # record has it (the batch named is the first to reach it); otherwise it was a
                # deleted record's, and the live batches are looked at.
                live = self._first_with_timestamp(seg, seg.offset_of_max_timestamp, ts, lso)
                found = (ts, live) if live is not None else self._live_max_timestamp(seg, lso)
                if found is not None and found[0] > best_ts:
                    best_ts, best = found
                continue
            if ts > best_ts:
                best_ts, best = ts, (seg, seg.offset_of_max_timestamp)
        if not isinstance(best, tuple):
            return best
        seg, batch_last = best
        first = self._first_with_timestamp(seg, batch_last, best_ts, lso)
        return batch_last if first is None else first

    def _first_with_timestamp(self, seg: LogSegment, batch_last: int, ts: int, lso: int) -> int | None:
        """The first offset >= ``lso`` with timestamp ``ts`` in the batch of ``seg`` holding
        ``batch_last``; None when no record there has it."""
        if batch_last < lso:
            return None
        found = seg.find_batch(batch_last)
        if found is None:
            return None
        position, h = found
        got = decode_batch_arrays(seg.pread(h.size, position), 0, header=h, path=seg.log_path, file_position=position)
        hit = np.flatnonzero((got.timestamps == ts) & (got.offsets >= lso))
        return int(got.offsets[hit[0]]) if len(hit) else None

    def _live_max_timestamp(self, seg: LogSegment, lso: int) -> tuple[int, int] | None:
        """``(largest timestamp, first offset with it)`` among the records >= ``lso`` of the
        segment holding ``lso``. The batch holding ``lso`` is decoded (some of its records are
        gone); for the batches after it their headers' maxTimestamp is enough, and only the
        winner is decoded."""
        found = seg.find_batch(lso)
        if found is None:
            return None
        position, h = found
        got = decode_batch_arrays(seg.pread(h.size, position), 0, header=h, path=seg.log_path, file_position=position)
        live = got.offsets >= lso
        best: tuple[int, int] | None = None
        if live.any():
            ts = int(got.timestamps[live].max())
            best = (ts, int(got.offsets[np.flatnonzero(live & (got.timestamps == ts))[0]]))
        best_ts, winner = (best[0] if best else -1), None
        position += h.size
        while position < seg.size:
            chunk = seg.read(position, SCAN_CHUNK)
            end = 0
            for at, b in iter_batches(chunk):
                if b.max_timestamp > best_ts:
                    best_ts, winner = b.max_timestamp, b.last_offset
                end = at + b.size
            if end == 0:
                break
            position += end
        if winner is not None:
            first = self._first_with_timestamp(seg, winner, best_ts, lso)
            return best_ts, winner if first is None else first
        return best

    def _largest_timestamp(self, seg: LogSegment) -> int:
        if seg.max_timestamp == -2:
            # First use of a sealed segment's time index: trust it only when it is consistent
            # (the index is advisory); else the largest timestamp comes from the batch headers
            # and lookups in this segment ignore the index.
            with seg._handle_lock:
                trusted = seg.indexes_consistent(sealed=True)
                ts, off = seg.time_index.last_entry() if trusted else seg.scan_max_timestamp()
            seg.time_index_trusted = trusted
            seg.max_timestamp, seg.offset_of_max_timestamp = ts, off
        return seg.max_timestamp

    # --- deleting from the front: retention and delete_records -------------------------------------

    def segment_infos(self) -> list[SegmentInfo]:
        """The segments as retention sees them, oldest first (the last one is active)."""
        return [
            SegmentInfo(seg.base_offset, seg.next_offset, seg.size, seg.active, partial(self._retention_ts, seg))
            for seg in self._segments
        ]

    def _retention_ts(self, seg: LogSegment) -> int:
        ts = seg.max_timestamp if seg.active else self._largest_timestamp(seg)
        if ts < 0:
            try:
                ts = int(os.stat(seg.log_path).st_mtime * 1000)
            except FileNotFoundError:
                ts = -1
        return ts

    def delete_oldest_segments(
        self, choose: Callable[[list[SegmentInfo], int], tuple[int, str]], *, dry_run: bool = False
    ) -> DeletionResult:
        """Delete the oldest whole segments: ``choose(segment_infos, log_start_offset)`` returns how
        many (counted from the oldest) and why. Choosing every segment, the active one included,
        rolls a new empty active segment first, so the log end offset is kept and new records go on
        from it. The log start offset moves to the first segment kept.

        Crash-safe: the files are renamed to ``*.deleted``, the new log start offset is written to
        the store's checkpoint, then the files are unlinked; a crash at any point reopens to a log
        that starts at or after the kept segments, with nothing deleted coming back. Readers in
        other processes keep reading a deleted segment they have open, or are told the offset is
        out of range on their next read. ``dry_run`` changes nothing and reports what would go.
        """
        if dry_run:
            with self._lock:
                self._check_open()
                self.refresh()
                infos = self.segment_infos()
                n, reason = choose(infos, self.log_start_offset)
                n = min(n, len(infos))
                start = infos[n].base_offset if n < len(infos) else infos[-1].next_offset
                return DeletionResult(
                    self.topic,
                    self.partition,
                    n,
                    sum(i.size for i in infos[:n]),
                    max(self.log_start_offset, start) if n else self.log_start_offset,
                    reason if n else "",
                    dry_run=True,
                )
        with self._lock:
            self._check_open()
            with self._flock:
                self._sync_locked()
                n, reason = choose(self.segment_infos(), self.log_start_offset)
                n = min(n, len(self._segments))
                if n <= 0:
                    return DeletionResult(self.topic, self.partition, 0, 0, self.log_start_offset, "")
                if n == len(self._segments):
                    if self._segments[-1].size == 0:
                        n -= 1  # an empty active segment stays: it holds the log end offset
                    else:
                        self._roll_locked()
                freed, files = self._delete_front_locked(n)
                return DeletionResult(
                    self.topic, self.partition, n, freed, self.log_start_offset, reason, deleted_files=tuple(files)
                )

    def _delete_front_locked(self, n: int) -> tuple[int, list[str]]:
        """Delete the ``n`` oldest segments (never the active one); both locks held."""
        n = min(n, len(self._segments) - 1)
        if n <= 0:
            return 0, []
        doomed = self._segments[:n]
        # Readers learn the new start first (bytes 8-16 of the lock file, then a layout bump), so
        # one whose position is in a doomed segment moves straight to the first kept record
        # instead of chasing the deletion segment by segment. (After a crash here the start stays
        # ahead of the old segments until the next retention pass deletes them: nothing that is
        # kept is lost, nothing deleted comes back.)
        self.log_start_offset = max(self.log_start_offset, self._segments[n].base_offset)
        self._write_shared_start()
        self._bump_layout()
        crashpoint("retention.after_publish")
        renamed: list[str] = []
        freed = 0
        for seg in doomed:
            freed += seg.size
            seg.release()
            # The .log first: once it is renamed the segment is gone from every listing.
            for path in (seg.log_path, seg.index_path, seg.timeindex_path):
                try:
                    ops.rename(path, path + DELETED_SUFFIX)
                    renamed.append(path)
                except FileNotFoundError:
                    pass
                except OSError as e:
                    raise StorageError("rename", path, e) from e
        crashpoint("retention.after_rename")
        fsync_dir(self.directory)
        # New lists, not edits in place: readers hold on to the old ones (see _locate).
        self._segments = self._segments[n:]
        self._bases = self._bases[n:]
        self.log_start_offset = max(self.log_start_offset, self._segments[0].base_offset)
        self._write_shared_start()
        self._bump_layout()
        full_disk: StorageError | None = None
        if self._on_checkpoint:
            try:
                self._on_checkpoint(self)  # the new log start offset is durable before the unlink
            except StorageError as e:
                if e.errno not in (errno.ENOSPC, errno.EDQUOT):
                    raise
                # A full disk has no room for the checkpoint's temp file, and retention is what
                # frees room: unlink first. Safe here: the kept segments start at the new log start
                # offset, so an open after a crash derives the same start from the files.
                full_disk = e
        crashpoint("retention.after_checkpoint")
        logs = [p for p in renamed if p.endswith(LOG_SUFFIX)]
        remove_quietly(p + DELETED_SUFFIX for p in logs)
        crashpoint("retention.between_unlinks")
        remove_quietly(p + DELETED_SUFFIX for p in renamed if not p.endswith(LOG_SUFFIX))
        if full_disk is not None and self._on_checkpoint:
            self._on_checkpoint(self)
        return freed, [p for p in renamed if p.endswith(LOG_SUFFIX)]

    def delete_records(self, before_offset: int) -> int:
        """Kafka's DeleteRecords: make ``before_offset`` the log start offset (records below it can
        no longer be read) and delete the segments wholly below it. ``-1`` means the log end.
        Returns the new log start offset (unchanged when it was already past ``before_offset``).
        Raises OffsetOutOfRangeError above the log end."""
        with self._lock:
            self._check_open()
            with self._flock:
                self._sync_locked()
                end = self.next_offset
                target = end if before_offset == -1 else before_offset
                if isinstance(target, bool) or not isinstance(target, int) or target < 0 or target > end:
                    raise OffsetOutOfRangeError(self.topic, self.partition, before_offset, self.log_start_offset, end)
                if target <= self.log_start_offset:
                    return self.log_start_offset
                self._bump_layout()
                self.log_start_offset = target
                self._write_shared_start()
                self._bump_layout()
                if self._on_checkpoint:
                    self._on_checkpoint(self)
                below = sum(1 for seg in self._segments[:-1] if seg.next_offset <= target)
                self._delete_front_locked(below)
                return self.log_start_offset

    # --- truncation -------------------------------------------------------------------------------

    def truncate_to(self, offset: int) -> None:
        """Remove every record at or after ``offset`` (whole batches: a batch holding ``offset`` goes
        too). Raises OffsetOutOfRangeError below the log start offset."""
        with self._lock:
            self._check_open()
            with self._flock:
                self._sync_locked()
                if offset >= self.next_offset:
                    return
                if offset < self.log_start_offset:
                    raise OffsetOutOfRangeError(
                        self.topic, self.partition, offset, self.log_start_offset, self.next_offset
                    )
                self._bump_layout()
                self._mutations += 1  # odd: readers in this process that see damage look again
                try:
                    self._truncate_locked(offset)
                finally:
                    self._mutations += 1

    def _truncate_locked(self, offset: int) -> None:
        """truncate_to's work, with the thread lock and the flock held."""
        i = self._segment_for(offset)
        # Newest first, and durable before the cut below: a crash part-way leaves a prefix of
        # the log, never a hole with truncated data after it.
        for doomed in reversed(self._segments[i + 1 :]):
            doomed.release()
            remove_quietly([doomed.log_path])
            fsync_dir(self.directory)
            remove_quietly([doomed.index_path, doomed.timeindex_path])
        del self._segments[i + 1 :]
        del self._bases[i + 1 :]
        fsync_dir(self.directory)
        seg = self._segments[i]
        seg.activate()
        seg.truncate_to(offset)  # (fsyncs)
        self._write_synced(seg.base_offset, seg.size)
        if self.log_start_offset > seg.next_offset:
            # The cut took the whole batch holding the start (delete_records can leave the start
            # inside a batch): the start follows the end down, as Kafka's does.
            self.log_start_offset = seg.next_offset
            self._write_shared_start()
        self._bump_layout()
        self.recovery_point = min(self.recovery_point, seg.next_offset)
        if self._on_checkpoint:
            self._on_checkpoint(self)

    # --- verification -----------------------------------------------------------------------------

    def verify(self) -> list[Problem]:
        """Check every batch's size and CRC, records parse, offsets increase across batches and
        segments, and index entries point at the batches they name. Changes nothing; returns the
        problems found (empty when healthy)."""
        problems: list[Problem] = []
        expected: int | None = None
        with self._lock:
            self._check_open()
            segments = list(self._segments)
        for seg in segments:
            size = seg.file_size()
            if expected is not None and seg.base_offset != expected and seg.base_offset < expected:
                problems.append(
                    Problem(
                        seg.log_path,
                        None,
                        f"segment base offset {seg.base_offset} overlaps the previous segment (ends at {expected})",
                    )
                )
            elif expected is not None and seg.base_offset > expected:
                problems.append(
                    Problem(
                        seg.log_path,
                        None,
                        f"offsets {expected}..{seg.base_offset - 1} are missing: the log before this segment ends at "
                        f"{expected} (a segment file lost?)",
                    )
                )
            batch_positions: dict[int, int] = {}
            position = 0
            while position < size:
                head = seg.pread(RECORD_BATCH_OVERHEAD, position)
                if len(head) < RECORD_BATCH_OVERHEAD:
                    problems.append(
                        Problem(seg.log_path, position, f"{len(head)} trailing bytes are not a whole batch")
                    )
                    break
                h = read_header(head)
                if h.batch_length < MIN_BATCH_LENGTH or h.magic != 2 or position + h.size > size:
                    problems.append(
                        Problem(
                            seg.log_path,
                            position,
                            "not a whole magic-2 batch (bad length or magic); the rest of the segment is unreadable",
                        )
                    )
                    break
                data = seg.pread(h.size, position)
                try:
                    decode_batch(data, 0, header=h, path=seg.log_path, file_position=position)
                except CorruptDataError as e:
                    problems.append(Problem(seg.log_path, position, e.detail))
                except Exception as e:  # an unavailable codec, say
                    problems.append(Problem(seg.log_path, position, str(e)))
                if expected is not None and h.base_offset < expected:
                    problems.append(
                        Problem(
                            seg.log_path,
                            position,
                            f"batch base offset {h.base_offset} is below the previous batch's end {expected}",
                        )
                    )
                elif h.base_offset != (seg.base_offset if position == 0 else expected):
                    # Offsets are dense: a segment's first batch starts at its base offset, each next
                    # one where the previous ended (the CRC does not cover the base offset).
                    follows = seg.base_offset if position == 0 else expected
                    hole = f": offsets {follows}..{h.base_offset - 1} are missing" if h.base_offset > follows else ""
                    what = f"batch base offset {h.base_offset} does not follow {follows}{hole}"
                    problems.append(Problem(seg.log_path, position, what))
                batch_positions[position] = h.last_offset
                expected = h.next_offset
                position += h.size
            # An entry names the batch at its position by that batch's last offset, or (Kafka up to
            # 3.6 indexed per append) by the last offset of a later batch of the same append.
            last_offsets = set(batch_positions.values())
            for off, pos in seg.index.entries_list():
                at = batch_positions.get(pos)
                if at is None or off < at or off not in last_offsets:
                    problems.append(
                        Problem(
                            seg.index_path,
                            None,
                            f"entry offset {off} -> position {pos} does not name the batch at that position",
                        )
                    )
                    break
            if seg.time_index.entries:
                prev = -1
                for ts, off in seg.time_index.entries_list():
                    if ts < prev or off < seg.base_offset or (expected is not None and off >= expected):
                        problems.append(
                            Problem(
                                seg.timeindex_path,
                                None,
                                f"entry ({ts}, {off}) is out of order or outside the segment",
                            )
                        )
                        break
                    prev = ts
        return problems

    # --- closing ----------------------------------------------------------------------------------

    def close(self) -> None:
        """Flush, and if no other process has the partition open, trim the active indexes and write
        the clean-shutdown marker. Idempotent."""
        with self._lock:
            if self._closed:
                return
            if self.read_only:
                self.discard()
                return
            try:
                with self._flock:
                    # A fenced log (a failed fsync) gets no flush and no clean marker: a retried
                    # fsync proves nothing, so the next open must recover it.
                    if not self._flock.is_stale() and self._failed is None:
                        self._sync_locked()
                        seg = self._segments[-1]
                        self._flush_locked()
                        if self._try_exclusive_open():
                            # Recovery point first: the marker promises everything is fsynced.
                            self.recovery_point = seg.next_offset
                            if self._on_checkpoint:
                                self._on_checkpoint(self)
                            # A marker that still matches the files was written by the last clean
                            # close, and nothing changed since (an append removes it first): keep
                            # it. Rewriting it cost four fsyncs per partition, so closing thousands
                            # of partitions that were only read took minutes.
                            if not self._clean_marker_matches():
                                self._write_clean_marker(seg)
            finally:
                self._closed = True
                self._unmap_shared()
                for seg in self._segments:
                    seg.release()
                try:
                    fcntl.flock(self._open_fd, fcntl.LOCK_UN)
                finally:
                    os.close(self._open_fd)
                    self._flock.close()

    def discard(self) -> None:
        """Close without the clean-shutdown steps (no flush, no marker): for a view that must not
        be trusted, e.g. after a failed repair. The next opener recovers the partition."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._unmap_shared()
            for seg in self._segments:
                seg.release()
            os.close(self._open_fd)
            self._flock.close()

    def _write_clean_marker(self, seg: LogSegment) -> None:
        self._bump_layout()
        seg.activate()
        with seg._handle_lock:
            # As Kafka's LogSegment.close: the segment's largest timestamp as a final time entry.
            if seg.max_timestamp >= 0:
                seg.time_index.maybe_append(seg.max_timestamp, seg.offset_of_max_timestamp, skip_full_check=True)
            # Trimmed so Kafka's tools (which trust file length / entry size) read them.
            seg.index.seal()
            seg.time_index.seal()
        self._bump_layout()
        marker = {
            "version": 1,
            "active_base_offset": seg.base_offset,
            "next_offset": seg.next_offset,
            "log_size": seg.size,
            "index_size": os.stat(seg.index_path).st_size,
            "timeindex_size": os.stat(seg.timeindex_path).st_size,
            "segments": len(self._segments),
        }
        try:
            atomic_write(os.path.join(self.directory, CLEAN_FILE), json.dumps(marker).encode())
        except StorageError:
            pass  # without the marker the next open recovers: slower, not wrong

    def __repr__(self) -> str:
        return (
            f"PartitionLog({self.name}, start={self.log_start_offset}, next={self.next_offset}, "
            f"segments={len(self._segments)})"
        )

    def __enter__(self) -> PartitionLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
