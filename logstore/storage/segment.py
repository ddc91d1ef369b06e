"""One log segment: ``{base_offset:020d}.log`` plus its ``.index`` and ``.timeindex``.

A segment holds record batches back to back from byte 0. The offset index gets an entry (the
appended batch's last offset -> the position where it starts) once more than ``index.interval.bytes``
have been appended since the previous entry, so a segment's first batch is never indexed; the time
index gets (largest timestamp so far, offset of the batch holding it) at the same moments, when the
timestamp grew. On roll the segment's largest timestamp is always added as a final time entry.

File handles (the ``.log`` descriptor and the index maps) are opened on first use and may be released
by the store's handle cache when the segment is idle; they are reopened transparently.

Not thread-safe for mutation: the owning PartitionLog holds its lock around appends, rolls,
truncation and recovery. Reads from other threads go through :meth:`pread`, which is guarded by a
small per-segment lock so a release cannot close a descriptor under a reader.
"""

from __future__ import annotations

import os
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from ..errors import CorruptIndexError, CorruptLogError, CorruptRecordError, StorageError, UnsupportedFormatError
from ..faults import crashpoint, ops
from ..records.batch import (
    LOG_OVERHEAD,
    MAGIC,
    MAGIC_OFFSET,
    MIN_BATCH_LENGTH,
    RECORD_BATCH_OVERHEAD,
    BatchHeader,
    check_batch,
    crc32c,
    read_header,
)
from .files import FILE_MODE, INDEX_SUFFIX, LOG_SUFFIX, TIMEINDEX_SUFFIX, segment_name
from .index import OffsetIndex, TimeIndex

SCAN_CHUNK = 1 << 20  # bytes read at a time when walking a segment's batches
# A batch header's first fields, up to lastOffsetDelta: all a walk over whole batches needs.
_HEAD = struct.Struct(">qiibIhi")


@dataclass
class RecoveryResult:
    """What recovering a segment found: ``truncated_bytes`` cut at ``valid_size`` (a torn tail)."""

    path: str
    valid_size: int
    truncated_bytes: int
    batches: int


class StaleSegmentError(StorageError):
    """A segment file this process knew about is gone: another process rolled, truncated or
    deleted it. Internal: the partition log reloads its view and retries."""

    def __init__(self, path: str) -> None:
        super().__init__("open", path, FileNotFoundError(2, "No such file or directory"))


class _BadHeader(Exception):
    """A batch header that cannot be right (internal: find_batch turns it into CorruptRecordError)."""

    def __init__(self, position: int, what: str) -> None:
        self.position, self.what = position, what


def _check_header(h: BatchHeader, position: int, limit: int, floor: int, upper: int) -> int:
    """Raise _BadHeader unless ``h`` (at ``position``) is a sane magic-2 header of a batch ending by
    ``limit`` whose offsets lie in ``[floor, upper)``; return the floor for the next batch.

    A known ``floor`` (>= 0: the previous batch's end, or the segment's base offset for its first
    batch) must be the batch's base offset exactly: offsets are dense (no compaction), and the CRC
    does not cover the base offset, so this is what catches a damaged one."""
    if h.magic != MAGIC:
        raise _BadHeader(position, f"batch header with magic {h.magic} (only magic 2 is supported)")
    if h.batch_length < MIN_BATCH_LENGTH or position + h.batch_length + LOG_OVERHEAD > limit:
        raise _BadHeader(
            position, f"batch length {h.batch_length} does not fit the segment (valid bytes end at {limit})"
        )
    if h.base_offset < floor or h.base_offset < 0 or h.last_offset_delta < 0:
        raise _BadHeader(position, f"batch base offset {h.base_offset} goes back below {floor}")
    if 0 <= floor < h.base_offset:
        raise _BadHeader(
            position, f"batch base offset {h.base_offset} does not follow the previous batch's end {floor}"
        )
    if h.base_offset + h.last_offset_delta >= upper:
        raise _BadHeader(position, f"batch offsets {h.base_offset}.. reach past the segment's end offset {upper}")
    return h.base_offset + h.last_offset_delta + 1


def _past_named(h: BatchHeader, position: int, named: int | None) -> int | None:
    """For a scan from an index entry naming offset ``named``: None once a batch ended exactly
    there (the entry is right), ``named`` while batches end before it; _BadHeader for a batch
    that goes past it without one ending there."""
    if named is None or h.last_offset == named:
        return None
    if h.last_offset > named:
        raise _BadHeader(position, f"the offset index names offset {named}, which no batch from there ends at")
    return named


def is_newer_format(h: BatchHeader, expected_offset: int, room: int) -> bool:
    """Whether ``h`` is a whole batch of a newer format where the log's next batch belongs: magic
    above 2, the expected base offset, and a length that fits the ``room`` left in the file.
    Garbage (zeros, a torn write) does not pass all three; such a batch is refused, not cut."""
    fits = MIN_BATCH_LENGTH <= h.batch_length <= room - LOG_OVERHEAD
    return h.magic > MAGIC and h.base_offset == expected_offset and fits


class LogSegment:
    """A ``.log`` file and its two sparse indexes (see the module docstring)."""

    def __init__(
        self,
        directory: str,
        base_offset: int,
        *,
        index_interval_bytes: int,
        max_index_size: int,
        active: bool,
        on_open: Callable[[LogSegment], None] | None = None,
        verify_open: Callable[[], None] | None = None,
    ) -> None:
        """``on_open(segment)`` runs after a file of the segment was opened and kept;
        ``verify_open()`` runs after a file was opened by name and before it is kept: when it
        raises, the file is closed and nothing is kept (the partition's directory was moved away
        and the name may have led to another topic's file)."""
        self.directory = directory
        self.base_offset = base_offset
        self.log_path = os.path.join(directory, segment_name(base_offset, LOG_SUFFIX))
        self.index_path = os.path.join(directory, segment_name(base_offset, INDEX_SUFFIX))
        self.timeindex_path = os.path.join(directory, segment_name(base_offset, TIMEINDEX_SUFFIX))
        self.index_interval_bytes = index_interval_bytes
        self.max_index_size = max_index_size
        self.active = active
        self._on_open = on_open
        self._verify_open = verify_open
        self._handle_lock = threading.RLock()
        self._fd = -1
        self._index: OffsetIndex | None = None
        self._time_index: TimeIndex | None = None
        # State known to this process (set by load/recover, advanced by append):
        self.size = 0  # valid bytes: everything before is whole batches
        self.next_offset = base_offset
        self.max_timestamp = -1
        self.offset_of_max_timestamp = base_offset
        self.first_batch_timestamp: int | None = None  # max timestamp of the first batch (segment.ms)
        self.created_ms = 0
        self.bytes_since_last_index_entry = 0
        self.time_index_trusted = True  # False: lookups ignore the time index (see indexes_consistent)

    # --- handles ----------------------------------------------------------------------------------

    def fd(self) -> int:
        """The ``.log`` descriptor, opened on first use: read-write once :meth:`activate` was called
        (a writer holding the flock), else read-only. Never creates the file: a segment that is gone
        raises StaleSegmentError (another process removed it; the caller reloads its view)."""
        if self._fd < 0:
            flags = (os.O_RDWR if self.active else os.O_RDONLY) | os.O_NOFOLLOW | os.O_CLOEXEC
            try:
                fd = ops.open(self.log_path, flags)
            except FileNotFoundError:
                raise StaleSegmentError(self.log_path) from None
            except OSError as e:
                raise StorageError("open", self.log_path, e) from e
            self._verify_or_close(partial(os.close, fd))
            self._fd = fd
            if self._on_open:
                self._on_open(self)
        return self._fd

    def _open_index(self, cls: type, path: str, create: bool = False) -> Any:
        try:
            index = cls(path, self.base_offset, self.max_index_size, active=self.active, create=create)
        except FileNotFoundError:
            raise StaleSegmentError(path) from None
        except OSError as e:  # out of descriptors, say
            raise StorageError("open", path, e) from e
        if not create:
            self._verify_or_close(index.close)
        return index

    def _verify_or_close(self, close: Callable[[], None]) -> None:
        """Run ``verify_open`` on a file just opened by name; if it raises, ``close`` the file."""
        if self._verify_open is not None:
            try:
                self._verify_open()
            except BaseException:
                close()
                raise

    @property
    def index(self) -> OffsetIndex:
        if self._index is None:
            self._index = self._open_index(OffsetIndex, self.index_path)
            if self._on_open:
                self._on_open(self)
        return self._index

    @property
    def time_index(self) -> TimeIndex:
        if self._time_index is None:
            self._time_index = self._open_index(TimeIndex, self.timeindex_path)
            if self._on_open:
                self._on_open(self)
        return self._time_index

    def create_files(self) -> None:
        """Create the ``.log`` and both index files of a new segment (flock held) and open them."""
        with self._handle_lock:
            self.active = True
            try:
                fd = ops.open(self.log_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
            except OSError as e:
                raise StorageError("create", self.log_path, e) from e
            ops.close(fd)
            self._index = self._open_index(OffsetIndex, self.index_path, create=True)
            self._time_index = self._open_index(TimeIndex, self.timeindex_path, create=True)
            self.fd()

    def has_handles(self) -> bool:
        return self._fd >= 0 or self._index is not None or self._time_index is not None

    def try_release(self) -> bool:
        """:meth:`release` unless another thread is using the segment (then False): the handle
        cache calls this while its caller may hold another segment's lock, so it must not wait."""
        if not self._handle_lock.acquire(blocking=False):
            return False
        try:
            self.release()
            return True
        finally:
            self._handle_lock.release()

    def release(self) -> None:
        """Close descriptors and drop maps of an idle segment (reopened on next use)."""
        with self._handle_lock:
            if self._fd >= 0:
                fd, self._fd = self._fd, -1
                os.close(fd)
            if self._index is not None:
                self._index.close()
                self._index = None
            if self._time_index is not None:
                self._time_index.close()
                self._time_index = None

    close = release

    def pread(self, size: int, position: int) -> bytes:
        """Read up to ``size`` bytes at byte ``position`` of the ``.log`` (short at end of file)."""
        with self._handle_lock:
            try:
                return os.pread(self.fd(), size, position)
            except OSError as e:
                raise StorageError("read", self.log_path, e) from e

    def file_size(self) -> int:
        with self._handle_lock:
            return os.fstat(self.fd()).st_size

    # --- appending --------------------------------------------------------------------------------

    def write(self, buffers: list, position: int, total: int) -> None:
        """Write ``buffers`` (``total`` bytes) at ``position`` with one ``pwritev`` where possible."""
        fd = self.fd()
        try:
            done = 0
            while done < total:
                if done:
                    # A short write (rare): finish the rest from a joined copy.
                    rest = b"".join(bytes(b) for b in buffers)[done:]
                    done += ops.pwrite(fd, rest, position + done)
                    continue
                chunk = buffers[:1024]  # IOV_MAX
                n = ops.pwritev(fd, chunk, position)
                if len(buffers) > 1024 and n == sum(len(b) for b in chunk):
                    buffers = buffers[1024:]
                    position += n
                    total -= n
                    continue
                done += n
        except OSError as e:
            raise StorageError("write", self.log_path, e) from e

    def after_append(
        self,
        position: int,
        last_offset: int,
        max_timestamp: int,
        size: int,
        *,
        index: bool = True,
        max_timestamp_offset: int | None = None,
    ) -> None:
        """Update state, and the indexes unless ``index`` is False, for a batch (or set of batches)
        written at ``position``. ``index=False`` serves scans over batches another process wrote:
        that process wrote their index entries itself."""
        if max_timestamp > self.max_timestamp:
            self.max_timestamp = max_timestamp
            self.offset_of_max_timestamp = last_offset if max_timestamp_offset is None else max_timestamp_offset
        if self.first_batch_timestamp is None:
            self.first_batch_timestamp = max_timestamp
        # A full index (an append of more batches than a fresh segment has entries for) skips the
        # entry: lookups scan forward from the entry before, so a sparser index is still right.
        if index and self.bytes_since_last_index_entry > self.index_interval_bytes and not self.indexes_full():
            self.index.append(last_offset, position)
            self.time_index.maybe_append(self.max_timestamp, self.offset_of_max_timestamp)
            self.bytes_since_last_index_entry = 0
        self.bytes_since_last_index_entry += size
        # next_offset before size: a reader that sees the new size also sees the new end offset.
        self.next_offset = last_offset + 1
        self.size = position + size

    def reserve_index(self, room: int) -> None:
        """Allocate disk blocks for ``room`` more entries in both indexes before an append writes
        anything (see :meth:`OffsetIndex.reserve`); raises StorageError on a full disk."""
        self.index.reserve(room)
        self.time_index.reserve(room + 1)  # + the final entry seal adds

    def indexes_full(self, room: int = 1) -> bool:
        """Whether either index has fewer than ``room`` free entries."""
        return self.index.is_full(room) or self.time_index.is_full(room)

    # --- reading ----------------------------------------------------------------------------------

    def _index_entry(self, offset: int, limit: int) -> tuple[int | None, int]:
        """The offset index's entry for ``offset``: (the last offset of the batch it names, its
        position), or (None, 0) when there is none, it points past ``limit``, or the index file
        is not a whole number of entries (the index is advisory: the scan starts at byte 0)."""
        if offset <= self.base_offset:
            return None, 0
        with self._handle_lock:
            try:
                named, start = self.index.lookup(offset)
            except CorruptIndexError:
                return None, 0
        return (named, start) if 0 < start < limit else (None, 0)

    def indexes_consistent(self, sealed: bool) -> bool:
        """Whether both indexes can be trusted as they are: offsets (and positions, timestamps)
        rising, inside the segment's valid bytes and offsets, and each index's last entry naming
        a batch that is there as it says. A sealed non-empty segment must have its final time
        entry. Reads the entries with one pread each (numpy), and one batch header per index."""
        try:
            idx, tidx = self.index, self.time_index
        except (CorruptIndexError, StaleSegmentError):  # not whole entries, or missing
            return False
        span = self.next_offset - self.base_offset
        n = idx.entries
        if n:
            raw = idx.read_entries()
            if raw is None:
                return False
            e = np.frombuffer(raw, dtype=[("off", ">u4"), ("pos", ">u4")])
            off, pos = e["off"].astype(np.int64), e["pos"].astype(np.int64)
            if (np.diff(off) <= 0).any() or (np.diff(pos) <= 0).any() or off[-1] >= span or pos[-1] >= self.size:
                return False
        n = tidx.entries
        if n:
            raw = tidx.read_entries()
            if raw is None:
                return False
            t = np.frombuffer(raw, dtype=[("ts", ">i8"), ("off", ">u4")])
            ts, toff = t["ts"], t["off"].astype(np.int64)
            if (np.diff(ts) <= 0).any() or (np.diff(toff) < 0).any() or ts[0] < 0 or toff[-1] >= span:
                return False
        elif sealed and self.size:
            return False  # a sealed segment gets a final time entry (unless no record has a timestamp)
        try:
            if idx.entries:
                # The last entry (all are below the end, checked above), read without mapping the
                # index: opening thousands of partitions must map none (vm.max_map_count).
                named, position = idx.last_entry()
                found = self._scan_for(named, position, self.size, self.next_offset, named)
                if found is None or found[1].last_offset != named:
                    return False
            if n:
                last_ts, last_off = tidx.last_entry()
                found = self.find_batch(last_off)
                if found is None or found[1].max_timestamp != last_ts:
                    return False
        except (_BadHeader, CorruptRecordError):
            return False
        return True

    def scan_max_timestamp(self) -> tuple[int, int]:
        """(largest timestamp, last offset of the first batch holding it) from the batch headers
        of the valid bytes: what the time index's last entry says when it can be trusted."""
        best, at = -1, self.base_offset
        position, floor, limit, upper = 0, self.base_offset, self.size, self.next_offset
        try:
            while position + RECORD_BATCH_OVERHEAD <= limit:
                buf = b""
                buf = self.pread(min(SCAN_CHUNK, limit - position), position)
                pos = 0
                while pos + RECORD_BATCH_OVERHEAD <= len(buf):
                    h = read_header(buf, pos)
                    floor = _check_header(h, position + pos, limit, floor, upper)
                    if h.max_timestamp > best:
                        best, at = h.max_timestamp, h.last_offset
                    pos += h.size
                if pos == 0:
                    break
                position += pos
        except _BadHeader as bad:
            raise CorruptRecordError(bad.what, self.log_path, bad.position) from None
        return best, at

    def find_batch(self, offset: int, limit: int | None = None) -> tuple[int, BatchHeader] | None:
        """Position and header of the first batch whose last offset >= ``offset``, scanning from the
        offset index's entry below ``offset``. None when no batch in ``[0, limit)`` qualifies.

        An index entry that does not lead to a sane batch header (a stale index after a crash, seen
        by a reader) is ignored and the scan restarts at byte 0. A header that is not sane there
        (bad magic or length, running past the valid end, offsets going backwards) is damage:
        raises CorruptRecordError naming the file and position, never a silent skip.
        """
        limit = self.size if limit is None else limit
        upper = self.next_offset  # read after size (see after_append)
        named, start = self._index_entry(offset, limit)
        if start:
            try:
                found = self._scan_for(offset, start, limit, upper, named)
                if found is None or found[1].base_offset <= offset:
                    return found
            except _BadHeader:
                pass  # a stale or damaged index entry: look again from the segment's start
        try:
            return self._missing_before(offset, self._scan_for(offset, 0, limit, upper))
        except _BadHeader as bad:
            raise CorruptRecordError(bad.what, self.log_path, bad.position) from None

    def _missing_before(self, offset: int, found: tuple[int, BatchHeader] | None) -> tuple[int, BatchHeader] | None:
        """``found`` (the first batch reaching ``offset``) unless it starts after ``offset``: offsets
        are dense, so the ones in between are missing (a lost segment file, a damaged base
        offset). That raises CorruptRecordError naming the range, never a silent skip."""
        if found is not None and found[1].base_offset > offset:
            position, h = found
            raise CorruptRecordError(
                f"offsets {offset}..{h.base_offset - 1} are missing: the batch read for offset {offset} starts "
                f"at offset {h.base_offset} (a segment file lost, or a damaged batch before it)",
                self.log_path,
                position,
            )
        return found

    def locate(self, offset: int, limit: int | None = None) -> tuple[int, BatchHeader, bytes, int] | None:
        """The batch holding ``offset`` with its bytes, in one read where possible (for lookups).

        Returns ``(position, header, buffer, start)``: the batch is ``buffer[start:start +
        header.size]`` and lies at byte ``position`` of the ``.log``. None when no batch below
        ``limit`` reaches ``offset``.
        """
        limit = self.size if limit is None else limit
        upper = self.next_offset  # read after size (see after_append)
        named, start = self._index_entry(offset, limit)
        if start < limit:
            buf = self.pread(min(limit - start, 2 * self.index_interval_bytes + 8192), start)
            pos = 0
            floor = self.base_offset if start == 0 else -1
            try:
                # The same checks as find_batch's (header, dense offsets, the entry naming the
                # batch): anything odd falls back to find_batch below, which looks again and
                # reports damage.
                while pos + RECORD_BATCH_OVERHEAD <= len(buf):
                    h = read_header(buf, pos)
                    floor = _check_header(h, start + pos, limit, floor, upper)
                    named = _past_named(h, start + pos, named)
                    if h.base_offset > offset:
                        break
                    if h.base_offset + h.last_offset_delta >= offset:
                        if pos + h.size <= len(buf):
                            return start + pos, h, buf, pos
                        return start + pos, h, self.pread(h.size, start + pos), 0
                    pos += h.batch_length + LOG_OVERHEAD
            except _BadHeader:
                pass
        found = self.find_batch(offset, limit)
        if found is None:
            return None
        position, h = found
        return position, h, self.pread(h.size, position), 0

    def _scan_for(
        self, offset: int, position: int, limit: int, upper: int, named: int | None = None
    ) -> tuple[int, BatchHeader] | None:
        # The index maps a batch's *last* offset to its start, so the wanted batch is usually one
        # or two past the indexed one: hop a few headers with small reads before reading chunks.
        # Offsets are dense: from byte 0 the first batch starts at the base offset; from an index
        # entry a batch must end at the offset the entry names (``named``) before any goes past it
        # (the batch at the entry's position, or, as Kafka up to 3.6 indexes per append, a later
        # batch of the same append): else the entry is stale, or a base offset is damaged.
        floor = self.base_offset if position == 0 else -1
        for _ in range(4):
            if position + RECORD_BATCH_OVERHEAD > limit:
                if position < limit:
                    raise _BadHeader(position, f"{limit - position} bytes at the end are not a whole batch header")
                return None
            head = self.pread(RECORD_BATCH_OVERHEAD, position)
            if len(head) < RECORD_BATCH_OVERHEAD:
                return None
            h = read_header(head)
            floor = _check_header(h, position, limit, floor, upper)
            named = _past_named(h, position, named)
            if h.base_offset + h.last_offset_delta >= offset:
                return position, h
            position += h.batch_length + LOG_OVERHEAD
        chunk = max(self.index_interval_bytes * 2, 64 * 1024)
        while position + RECORD_BATCH_OVERHEAD <= limit:
            buf = self.pread(min(chunk, limit - position), position)
            pos = 0
            while pos + RECORD_BATCH_OVERHEAD <= len(buf):
                h = read_header(buf, pos)
                floor = _check_header(h, position + pos, limit, floor, upper)
                named = _past_named(h, position + pos, named)
                if h.base_offset + h.last_offset_delta >= offset:
                    return position + pos, h
                pos += h.batch_length + LOG_OVERHEAD
            if pos == 0:
                return None
            position += pos
        if position < limit:
            raise _BadHeader(position, f"{limit - position} bytes at the end are not a whole batch header")
        return None

    def read(self, position: int, max_bytes: int, limit: int | None = None) -> bytes:
        """Whole batches from ``position`` on, at most ``max_bytes`` but always at least the first
        batch (as Kafka's minOneMessage), never past ``limit`` (default: the valid size)."""
        given = limit is not None
        limit = self.size if limit is None else limit
        upper = 1 << 63 if given else self.next_offset  # read after size (see after_append)
        if position >= limit:
            return b""
        buf = self.pread(min(max_bytes, limit - position), position)
        end = 0
        floor = -1  # the first batch is the one find_batch checked; each next one must follow it
        size = len(buf)
        unpack = _HEAD.unpack_from
        try:
            while end + RECORD_BATCH_OVERHEAD <= size:
                # _check_header's checks, inline on the few fields they need (this runs per batch).
                base, length, _, magic, _, _, delta = unpack(buf, end)
                if (
                    magic != MAGIC
                    or length < MIN_BATCH_LENGTH
                    or position + end + length + LOG_OVERHEAD > limit
                    or base != floor
                    or delta < 0
                    or base + delta >= upper
                ):
                    floor = _check_header(read_header(buf, end), position + end, limit, floor, upper)
                else:
                    floor = base + delta + 1
                if end + length + LOG_OVERHEAD > size:
                    break
                end += length + LOG_OVERHEAD
            if end == 0:
                # The first batch alone is larger than max_bytes: return it whole.
                head = self.pread(RECORD_BATCH_OVERHEAD, position) if len(buf) < RECORD_BATCH_OVERHEAD else buf
                if len(head) < RECORD_BATCH_OVERHEAD:
                    raise _BadHeader(position, "batch header cut off at the segment's end")
                h = read_header(head)
                _check_header(h, position, limit, -1, upper)
                return self.pread(h.size, position)
        except _BadHeader as bad:
            raise CorruptRecordError(bad.what, self.log_path, bad.position) from None
        return buf if end == len(buf) else buf[:end]

    # --- loading and recovery ---------------------------------------------------------------------

    def recover(self, durable_offset: int = 0, *, cut: bool = True, every_append_synced: bool = True) -> RecoveryResult:
        """Validate every batch, rebuild both indexes, and cut a torn tail.

        A tail is torn when nothing valid follows the first bad batch: the bytes are cut and the
        count returned. Damage followed by a valid batch, or a bad batch below ``durable_offset``
        (the recovery point: data known to be fsynced), is not a torn write; it raises
        CorruptLogError (file, position) and cuts nothing. A negative ``durable_offset`` is the
        explicit repair (``logstore recover --truncate-damaged``): cut at the first bad batch
        whatever follows it. ``cut=False`` finds the valid end (``valid_size``, and the state of
        the segment up to it) without cutting: the caller decides what goes first.

        ``every_append_synced`` (the topic fsyncs every append): a torn write can only be the last
        one, so damage followed by a valid batch is not a crash's doing and raises. Without it,
        writes after the recovery point were never fsynced and a power cut may have kept a later
        one and lost an earlier one: such a hole is cut like a torn tail (Kafka's rule).
        """
        with self._handle_lock:
            return self._recover(durable_offset, cut, every_append_synced)

    def _recover(self, durable_offset: int, cut: bool = True, every_append_synced: bool = True) -> RecoveryResult:
        file_size = self.file_size()
        self.index.truncate_entries(0)
        self.time_index.truncate_entries(0)
        self.max_timestamp, self.offset_of_max_timestamp = -1, self.base_offset
        self.first_batch_timestamp = None
        self.bytes_since_last_index_entry = 0
        self.size = 0  # before next_offset: a reader in another thread sees an empty segment meanwhile
        self.next_offset = self.base_offset
        position = 0
        batches = 0
        expected_offset: int | None = None
        bad_at: int | None = None
        reason = ""
        while position < file_size:
            buf = b""  # the previous chunk goes before the next is read: one chunk in memory at a time
            buf = self.pread(min(SCAN_CHUNK, file_size - position), position)
            pos = 0
            stop = False
            while True:
                if pos + RECORD_BATCH_OVERHEAD > len(buf):
                    break
                h = read_header(buf, pos)
                follows = self.base_offset if expected_offset is None else expected_offset
                if is_newer_format(h, follows, file_size - position - pos):
                    raise UnsupportedFormatError(self.log_path, position + pos, h.magic, MAGIC)
                if h.batch_length < MIN_BATCH_LENGTH or h.magic != MAGIC:
                    bad_at, reason, stop = position + pos, "not a magic-2 batch header", True
                    break
                if pos + h.size > len(buf):
                    if pos == 0:
                        # A single batch larger than the chunk: read it whole.
                        if position + h.size > file_size:
                            bad_at, reason, stop = position, "batch cut off by the end of the file", True
                            break
                        buf = b""
                        buf = self.pread(h.size, position)
                        continue
                    break
                try:
                    check_batch(buf, pos, h, self.log_path, position + pos)
                except CorruptRecordError as e:
                    bad_at, reason, stop = position + pos, e.detail, True
                    break
                if h.base_offset != follows:
                    # Offsets are dense (no compaction) and the CRC does not cover the base offset.
                    bad_at, reason, stop = (
                        position + pos,
                        f"batch offset {h.base_offset} does not follow the previous batch's end {follows}",
                        True,
                    )
                    break
                if h.last_offset - self.base_offset > 0x7FFFFFFF:
                    bad_at, reason, stop = (
                        position + pos,
                        "batch offset overflows the segment's int32 range",
                        True,
                    )
                    break
                self.after_append(position + pos, h.last_offset, h.max_timestamp, h.size)
                expected_offset = h.next_offset
                batches += 1
                pos += h.size
            position += pos
            if stop:
                break
            if pos == 0:
                if position + RECORD_BATCH_OVERHEAD > file_size:
                    bad_at, reason = position, "batch header cut off by the end of the file"
                else:
                    bad_at, reason = position, "batch cut off by the end of the file"
                break
        valid = position if bad_at is None else bad_at
        if valid < file_size:
            if self.next_offset < durable_offset:
                raise CorruptLogError(
                    f"damaged record batch ({reason}) inside fsynced data (offsets below {durable_offset} were "
                    "fsynced: the recovery point, or the base offset of the segment that follows this sealed "
                    "one): this is not a torn write, so nothing was truncated",
                    self.log_path,
                    valid,
                    hint="Restore the file from a copy; the data before this position is intact. "
                    "'logstore recover --truncate-damaged' cuts the log here instead (later records are lost).",
                )
            later = (
                self._find_valid_batch_after(valid, file_size, expected_offset)
                if durable_offset >= 0 and every_append_synced
                else None
            )
            if later is not None:
                raise CorruptLogError(
                    f"damaged record batch ({reason}) followed by a valid batch at byte {later}: this is not a "
                    "torn write, so nothing was truncated",
                    self.log_path,
                    valid,
                    hint="Restore the file from a copy; the data before this position is intact.",
                )
            if cut:
                self.cut(valid)
                crashpoint("recovery.after_truncate")
        self.size = valid
        return RecoveryResult(self.log_path, valid, file_size - valid, batches)

    def cut(self, position: int) -> None:
        """Cut the ``.log`` at byte ``position`` and fsync it (a torn tail, a truncation, a failed
        append undone). The segment must be active. Raises StorageError."""
        with self._handle_lock:
            try:
                ops.ftruncate(self.fd(), position)
                ops.fsync(self.fd())
            except OSError as e:
                raise StorageError("truncate", self.log_path, e) from e

    def _find_valid_batch_after(self, start: int, end: int, expected_offset: int | None) -> int | None:
        """Position of a CRC-valid batch in ``(start, end)``, or None (the tail is garbage). Reads
        a chunk at a time, and CRCs a candidate piece by piece: however long the tail, and whatever
        length a garbage header claims, memory stays bounded."""
        chunk = 1 << 16
        magic = bytes([MAGIC])
        base = start
        while base < end:
            # Each chunk carries the next header's bytes too, so a header across the boundary is whole.
            data = self.pread(min(chunk + RECORD_BATCH_OVERHEAD, end - base), base)
            i = data.find(magic, MAGIC_OFFSET + (1 if base == start else 0))
            while i != -1 and i - MAGIC_OFFSET < chunk:
                pos = i - MAGIC_OFFSET
                if pos + RECORD_BATCH_OVERHEAD <= len(data):
                    h = read_header(data, pos)
                    plausible = (
                        h.batch_length >= MIN_BATCH_LENGTH
                        and base + pos + h.size <= end
                        and h.base_offset >= self.base_offset
                        and (expected_offset is None or h.base_offset >= expected_offset)
                        and h.records_count >= 0
                    )
                    if plausible and self._crc_matches(base + pos, h):
                        return base + pos
                i = data.find(magic, i + 1)
            base += chunk
        return None

    def _crc_matches(self, position: int, h: BatchHeader) -> bool:
        """Whether the bytes of the batch at ``position`` match its header's CRC-32C."""
        crc, at, stop = 0, position + 21, position + h.size
        while at < stop:
            piece = self.pread(min(1 << 16, stop - at), at)
            if not piece:
                return False
            crc = crc32c(piece, crc)
            at += len(piece)
        return crc == h.crc

    # --- roll, truncate, flush --------------------------------------------------------------------

    def seal(self) -> None:
        """Make the segment read-only: final max-timestamp time entry, trim indexes, fsync all."""
        with self._handle_lock:
            if not self.active:
                return
            try:
                if self.max_timestamp >= 0:
                    self.time_index.reserve(1)
                    self.time_index.maybe_append(self.max_timestamp, self.offset_of_max_timestamp, skip_full_check=True)
                self.index.seal()
                self.time_index.seal()
            except OSError as e:
                raise StorageError("seal the indexes of", self.log_path, e) from e
            fd = self.fd()
            self._fd = -1
            self.active = False
            try:
                ops.fsync(fd)
            except OSError as e:
                raise StorageError("fsync", self.log_path, e) from e
            finally:
                os.close(fd)

    def activate(self) -> None:
        """Open the segment for writing (flock held): the ``.log`` read-write and both indexes
        writable and extended to their preallocated size. Readers never call this."""
        with self._handle_lock:
            if self.active:
                return
            self.release()
            self.active = True
            # A missing index (deleted, or never written before a crash) is created here, under
            # the flock; the lazy paths readers use never create files.
            self._index = self._open_index(OffsetIndex, self.index_path, create=True)
            self._time_index = self._open_index(TimeIndex, self.timeindex_path, create=True)

    def truncate_to(self, offset: int) -> int:
        """Remove every batch whose last offset >= ``offset`` (the batch holding ``offset`` and all
        after it). Returns the new size. The segment must be active."""
        found = self.find_batch(offset)
        if found is None:
            return self.size
        position, _ = found
        with self._handle_lock:
            self.cut(position)
            self.index.truncate_position(position)
            self.time_index.truncate_to(offset)
        # Recompute the end offset, largest timestamp and indexes from what is left.
        self.recover()
        return self.size

    def flush(self) -> None:
        """fsync the ``.log`` (indexes are rebuilt from it after a crash, so they are fsynced on seal)."""
        with self._handle_lock:
            try:
                ops.fsync(self.fd())
            except OSError as e:
                raise StorageError("fsync", self.log_path, e) from e

    def __repr__(self) -> str:
        return f"LogSegment({self.log_path}, size={self.size}, next_offset={self.next_offset})"
