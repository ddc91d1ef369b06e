"""Kafka's sparse segment indexes on ``numpy.memmap``.

``.index`` (:class:`OffsetIndex`): 8-byte entries, int32 offset relative to the segment's base offset,
int32 byte position of the batch in the ``.log``. ``.timeindex`` (:class:`TimeIndex`): 12-byte
entries, int64 timestamp (ms), int32 relative offset. Both big-endian, keys strictly increasing
(offsets) or increasing (timestamps; a new entry only when the timestamp grew).

The active segment's index files are preallocated to ``segment.index.bytes`` (a sparse run of zeros)
and trimmed to their entries when the segment is rolled or closed, as Kafka does, so that Kafka's
tools, which trust ``file length / entry size``, read them.

Lookups binary-search the keys with ``np.searchsorted`` on a strided fixed-width bytes view of the
map: big-endian non-negative integers sort like their bytes, so no copy or byte swap is made.

Sharing between processes: a process only ever touches map entries below the count it has proved
valid, and trimming never cuts below the valid entries, so a file trimmed by another process can
never raise SIGBUS here. New entries written by other processes are discovered with ``pread``.

Not thread-safe: the owning :class:`~logstore.storage.log.PartitionLog` serialises mutation.
"""

from __future__ import annotations

import bisect
import errno
import os
import socket

import numpy as np

from ..errors import CorruptIndexError, StorageError
from ..faults import ops
from .files import FILE_MODE

# An index of at most this many bytes is searched with one pread instead of a map. Opening a
# partition and looking up its few entries then maps nothing: thousands of partitions, each with an
# index or two, would otherwise hold thousands of maps (vm.max_map_count, 65530 by default).
SMALL_INDEX = 4096
RESERVE_STEP = 1 << 16  # bytes of index file allocated on disk at a time (see _Index.reserve)


class _Index:
    entry_size = 0
    key_size = 0  # bytes of the sort key at the start of each entry
    reserve_last_slot = False

    def __init__(self, path: str, base_offset: int, max_index_size: int, *, active: bool, create: bool = False) -> None:
        """Open an index file. ``active`` (only under the partition flock): open it for writing and
        extend it to its preallocated size; ``create``: create it when missing. A reader opens
        read-only and never changes the file."""
        self.path = path
        self.base_offset = base_offset
        self.max_entries = max_index_size // self.entry_size
        self.active = active
        self._map: np.memmap | None = None
        self._keys: np.ndarray | None = None
        self._bytes: np.ndarray | None = None
        self._words: memoryview | None = None  # the map as native uint32 words (see OffsetIndex)
        flags = (os.O_RDWR if active else os.O_RDONLY) | (os.O_CREAT if create else 0) | os.O_NOFOLLOW | os.O_CLOEXEC
        self._fd = ops.open(path, flags, FILE_MODE)
        self._reserved = 0  # bytes from the start known to have disk blocks (see reserve)
        self._small: tuple[int, bytes] | None = None  # (entries, bytes) of the last small-index read
        size = os.fstat(self._fd).st_size
        if size % self.entry_size and not active:
            raise CorruptIndexError(f"index size {size} is not a multiple of its {self.entry_size}-byte entries", path)
        self.entries = self._count_valid(size // self.entry_size)
        if active and size < self.max_entries * self.entry_size:
            try:
                ops.ftruncate(self._fd, self.max_entries * self.entry_size)
            except OSError as e:
                os.close(self._fd)
                self._fd = -1
                raise StorageError("preallocate the index", path, e) from e

    # --- entries as bytes -------------------------------------------------------------------------

    def _entry_empty(self, raw: bytes) -> bool:
        raise NotImplementedError

    def _count_valid(self, slots: int) -> int:
        """Entries before the first empty slot (a preallocated or crash-left tail reads as zeros)."""
        if slots == 0:
            return 0
        es = self.entry_size

        def empty(slot: int) -> bool:
            raw = os.pread(self._fd, es, slot * es)
            # Short: another process trimmed the file since we sized it; past its end is empty.
            return len(raw) < es or self._entry_empty(raw)

        if not empty(slots - 1):
            return slots
        lo, hi = 0, slots - 1  # slot hi is empty; find the first empty slot in [lo, hi]
        while lo < hi:
            mid = (lo + hi) // 2
            if empty(mid):
                hi = mid
            else:
                lo = mid + 1
        return lo

    def read_entries(self) -> bytes | None:
        """Every valid entry's bytes in one pread, without mapping the file; None when the file
        is now shorter than its entries (another process trimmed it)."""
        need = self.entries * self.entry_size
        raw = os.pread(self._fd, need, 0)
        return raw if len(raw) == need else None

    def _ensure_map(self) -> np.memmap:
        """Map the file through our own descriptor. An active index (written under the partition
        flock) maps its whole preallocated length; a sealed one, or one another process may be
        writing, maps only its validated entries, which no trim can cut (see the module doc)."""
        m = self._map
        need = self.entries * self.entry_size
        if m is None or len(m) < need:
            length = os.fstat(self._fd).st_size if self.active else need
            if length == 0 or length < need:
                raise CorruptIndexError(f"index file is shorter than its {self.entries} entries", self.path)
            fobj = open(self._fd, "r+b" if self.active else "rb", buffering=0, closefd=False)  # noqa: SIM115
            try:
                m = np.memmap(fobj, dtype=np.uint8, mode="r+" if self.active else "r", shape=(length,))
            except OSError as e:
                # EMFILE (the map holds a descriptor of its own), ENOMEM (vm.max_map_count or
                # address space): a StorageError that names the limit, not a bare OSError.
                raise StorageError("map", self.path, e) from e
            self._map = m
            self._bytes = m.view(np.ndarray)  # plain view: slicing a memmap costs a finalize each time
            self._keys = np.ndarray(
                shape=(length // self.entry_size,),
                dtype=f"S{self.key_size}",
                buffer=m,
                offset=0,
                strides=(self.entry_size,),
            )
            if self.key_size == 4:
                self._words = memoryview(self._bytes)[: length - length % 4].cast("I")
        return m

    def _search(self, key: bytes) -> int:
        """Slot of the last entry whose key <= ``key``, or -1."""
        n = self.entries
        if n == 0:
            return -1
        if self._map is None and n * self.entry_size <= SMALL_INDEX:
            raw = self.read_entries()
            if raw is not None:
                self._small = (n, raw)  # the entry found is read from here next (see _raw)
                keys = np.ndarray(shape=(n,), dtype=f"S{self.key_size}", buffer=raw, strides=(self.entry_size,))
                return int(keys.searchsorted(key, side="right")) - 1
        self._ensure_map()
        assert self._keys is not None
        return int(self._keys[:n].searchsorted(key, side="right")) - 1  # the method: no Python wrapper

    def _last_raw(self) -> bytes:
        """The last valid entry's bytes (see :meth:`_raw`: read, not mapped, while unmapped)."""
        es = self.entry_size
        if self._map is None:
            raw = os.pread(self._fd, es, (self.entries - 1) * es)
            if len(raw) == es:
                return raw
        return self._raw(self.entries - 1)

    def _raw(self, slot: int) -> bytes:
        es = self.entry_size
        small = self._small
        if small is not None and self._map is None and small[0] == self.entries and slot < small[0]:
            return small[1][slot * es : (slot + 1) * es]
        if self._map is None and self.entries * es <= SMALL_INDEX:
            raw = os.pread(self._fd, es, slot * es)
            if len(raw) == es:
                return raw
        self._ensure_map()
        return self._bytes[slot * es : (slot + 1) * es].tobytes()

    def _write(self, raw: bytes, use_reserved: bool = False) -> None:
        if not self.active:
            raise CorruptIndexError("append to a sealed (read-only) index", self.path)
        if self.entries >= self.max_entries or (self.is_full() and not use_reserved):
            raise CorruptIndexError(f"index is full ({self.entries} entries)", self.path)
        m = self._ensure_map()
        es = self.entry_size
        m[self.entries * es : (self.entries + 1) * es] = np.frombuffer(raw, np.uint8)
        self.entries += 1

    def reserve(self, room: int) -> None:
        """Make sure the next ``room`` entries have disk blocks behind them, ahead of writing them.

        The preallocated tail of an active index is sparse, and an entry is written through the
        map: on a full disk that write would kill the process with SIGBUS instead of raising. So
        blocks are allocated here first (``posix_fallocate``, RESERVE_STEP bytes at a time), where
        a full disk is an ordinary StorageError raised before any byte of the append is written.
        The index is mapped here too, for the same reason: a map that fails (ENOMEM at
        vm.max_map_count, EMFILE) once the batch is written failed an append whose records were
        then in the log for the next writer to adopt.
        """
        self._ensure_map()
        end = (self.entries + room) * self.entry_size
        if end <= self._reserved:
            return
        limit = os.fstat(self._fd).st_size
        new = min(-(-end // RESERVE_STEP) * RESERVE_STEP, limit)
        if new <= self._reserved:
            return
        try:
            ops.posix_fallocate(self._fd, self._reserved, new - self._reserved)
        except OSError as e:
            if e.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                raise StorageError("allocate index space in", self.path, e) from e
        self._reserved = new

    # --- lifecycle --------------------------------------------------------------------------------

    def is_full(self, room: int = 1) -> bool:
        """Whether fewer than ``room`` entries still fit."""
        limit = self.max_entries - 1 if self.reserve_last_slot else self.max_entries
        return self.entries + room > limit

    def truncate_entries(self, keep: int) -> None:
        """Keep the first ``keep`` entries (the index must be active, i.e. the flock held).

        The kept entries go to a new file renamed over the old one, never a shrink in place: other
        processes may have mapped entries past ``keep``, and a later trim of the same file would
        then turn their reads into SIGBUS. Their maps keep the old file until they reload.
        """
        if keep >= self.entries:
            return
        if not self.active:
            raise CorruptIndexError("truncating an index that is not open for writing", self.path)
        es = self.entry_size
        kept = os.pread(self._fd, keep * es, 0) if keep else b""
        tmp = self.path + ".tmp"
        try:
            fd = ops.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
        except OSError as e:
            raise StorageError("rewrite", self.path, e) from e
        try:
            ops.write(fd, kept)
            ops.ftruncate(fd, max(self.max_entries * es, len(kept)))
            ops.fsync(fd)
            ops.replace(tmp, self.path)
        except BaseException as e:
            os.close(fd)
            try:
                os.unlink(tmp)
            except OSError:
                pass
            if isinstance(e, OSError):
                raise StorageError("rewrite", self.path, e) from e
            raise
        os.close(self._fd)
        self._fd = fd
        self._map = self._keys = self._bytes = self._words = None
        self._reserved = 0
        self._small = None
        self.entries = keep

    def flush(self) -> None:
        """Write map pages back and fsync the file; raises StorageError."""
        try:
            if self._map is not None and self.active:
                self._map.flush()
            ops.fsync(self._fd)
        except OSError as e:
            raise StorageError("fsync", self.path, e) from e

    def seal(self) -> None:
        """Trim the file to its entries, fsync it and make the index read-only (on roll or close)."""
        if self.active:
            if self._map is not None:
                self._map.flush()
            self._map = self._keys = self._bytes = self._words = None
            fd, self._fd = self._fd, -1  # never keep a closed number: it may be reused by another file
            failed: OSError | None = None
            try:
                ops.ftruncate(fd, self.entries * self.entry_size)
                ops.fsync(fd)
            except OSError as e:
                failed = e  # the index is advisory: still sealed, rebuilt by the next recovery
            finally:
                os.close(fd)
            self.active = False
            self._reserved = 0
            try:
                self._fd = ops.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            except OSError as e:
                failed = failed or e
            if failed is not None:
                raise StorageError("seal", self.path, failed) from failed

    def activate(self) -> None:
        """Re-open a sealed index for appending, extended back to its preallocated size."""
        if not self.active:
            os.close(self._fd)
            self._fd = -1
            self._fd = ops.open(self.path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
            self._reserved = 0
            try:
                ops.ftruncate(self._fd, max(self.max_entries * self.entry_size, self.entries * self.entry_size))
            except OSError as e:
                raise StorageError("preallocate the index", self.path, e) from e
            self._map = self._keys = self._bytes = self._words = None
            self.active = True

    def release(self) -> None:
        """Drop the map (it is re-created on the next lookup); frees address space for idle segments."""
        self._map = self._keys = self._bytes = self._words = None

    def close(self) -> None:
        self._map = self._keys = self._bytes = self._words = None
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)

    def refresh(self, limit_position: int | None = None) -> None:
        """Discover entries another process appended, reading them with ``pread`` (never the map).
        Only entries pointing below ``limit_position`` (a byte position for the offset index, an
        offset for the time index) are accepted: the caller has validated the log up to there."""
        es = self.entry_size
        while True:
            raw = os.pread(self._fd, es * 64, self.entries * es)
            added = 0
            for i in range(len(raw) // es):
                entry = raw[i * es : (i + 1) * es]
                if self._entry_empty(entry) or not self._accept(entry, limit_position):
                    break
                added += 1
            self.entries += added
            if added < 64:
                return

    def _accept(self, raw: bytes, limit_position: int | None) -> bool:
        return True

    def _decode(self, raw: bytes) -> tuple[int, int]:
        raise NotImplementedError

    def entries_list(self) -> list[tuple[int, int]]:
        """Every entry decoded: ``(offset, position)`` or ``(timestamp, offset)`` (for verify)."""
        return [self._decode(self._raw(i)) for i in range(self.entries)]


class OffsetIndex(_Index):
    """``.index``: relative offset -> byte position of the batch holding it (see the module doc)."""

    entry_size = 8
    key_size = 4

    def _entry_empty(self, raw: bytes) -> bool:
        # The first batch of a segment is never indexed, so no real entry has position 0.
        return raw[4:8] == b"\x00\x00\x00\x00"

    def last_offset(self) -> int:
        """Offset of the last entry, or the base offset when there is none."""
        if self.entries == 0:
            return self.base_offset
        return self.base_offset + int.from_bytes(self._last_raw()[:4], "big")

    def last_entry(self) -> tuple[int, int]:
        """``(offset, position)`` of the last entry, or ``(base_offset, 0)``; maps nothing."""
        if self.entries == 0:
            return self.base_offset, 0
        return self._decode(self._last_raw())

    def append(self, offset: int, position: int) -> None:
        """Add an entry; offsets must grow. Raises CorruptIndexError when full or out of order."""
        rel = offset - self.base_offset
        if self.entries and offset <= self.last_offset():
            raise CorruptIndexError(
                f"index entry for offset {offset} is not after the last one ({self.last_offset()})", self.path
            )
        self._write(rel.to_bytes(4, "big") + position.to_bytes(4, "big"))

    def lookup(self, offset: int) -> tuple[int, int]:
        """``(offset, position)`` of the last entry at or below ``offset``, or ``(base_offset, 0)``.

        A ``bisect`` over the entries' first words read as native uint32 and byte-swapped by
        ``ntohl``, both in C: about twice as fast as a numpy call for one key."""
        rel = offset - self.base_offset
        n = self.entries
        if rel < 0 or n == 0:
            return self.base_offset, 0
        words = self._entry_words()
        ntohl = socket.ntohl
        slot = bisect.bisect_right(words[0 : 2 * n : 2], min(rel, 0x7FFFFFFF), key=ntohl) - 1
        if slot < 0:
            return self.base_offset, 0
        return self.base_offset + ntohl(words[2 * slot]), ntohl(words[2 * slot + 1])

    def _entry_words(self) -> memoryview:
        """The entries as native uint32 words, two per entry (at least ``2 * entries``): one read
        of a small index that is not mapped, else the map."""
        n = self.entries
        if self._map is None and n * self.entry_size <= SMALL_INDEX:
            raw = self.read_entries()
            if raw is not None:
                return memoryview(raw).cast("I")
        self._ensure_map()
        assert self._words is not None
        return self._words

    def truncate_to(self, offset: int) -> None:
        """Remove every entry for an offset >= ``offset``."""
        rel = offset - self.base_offset
        keep = 0 if rel <= 0 else self._search((rel - 1).to_bytes(4, "big")) + 1
        self.truncate_entries(keep)

    def truncate_position(self, position: int) -> None:
        """Remove every entry pointing at or past byte ``position`` of the log."""
        keep = self.entries
        while keep and int.from_bytes(self._raw(keep - 1)[4:], "big") >= position:
            keep -= 1
        self.truncate_entries(keep)

    def _decode(self, raw: bytes) -> tuple[int, int]:
        return self.base_offset + int.from_bytes(raw[:4], "big"), int.from_bytes(raw[4:], "big")

    def _accept(self, raw: bytes, limit_position: int | None) -> bool:
        return limit_position is None or int.from_bytes(raw[4:], "big") < limit_position


class TimeIndex(_Index):
    """``.timeindex``: max timestamp so far -> relative offset of the batch holding it."""

    entry_size = 12
    key_size = 8
    reserve_last_slot = True

    def _entry_empty(self, raw: bytes) -> bool:
        return raw == b"\x00" * 12

    def last_entry(self) -> tuple[int, int]:
        """``(timestamp, offset)`` of the last entry, or ``(-1, base_offset)``."""
        if self.entries == 0:
            return -1, self.base_offset
        raw = self._last_raw()
        return int.from_bytes(raw[:8], "big", signed=True), self.base_offset + int.from_bytes(raw[8:], "big")

    def maybe_append(self, timestamp: int, offset: int, *, skip_full_check: bool = False) -> bool:
        """Add ``(timestamp, offset)`` if the timestamp is greater than the last entry's. Returns
        whether it did. ``skip_full_check`` uses the reserved last slot (the final entry at roll)."""
        last_ts, last_off = self.last_entry()
        if timestamp <= last_ts or timestamp < 0:
            return False
        if offset < last_off:
            raise CorruptIndexError(
                f"time index entry for offset {offset} is before the last one ({last_off})", self.path
            )
        self._write(timestamp.to_bytes(8, "big") + (offset - self.base_offset).to_bytes(4, "big"), skip_full_check)
        return True

    def lookup(self, timestamp: int) -> tuple[int, int]:
        """``(timestamp, offset)`` of the last entry with timestamp <= ``timestamp``, or
        ``(-1, base_offset)``."""
        if timestamp < 0 or self.entries == 0:
            return -1, self.base_offset
        slot = self._search(timestamp.to_bytes(8, "big"))
        if slot < 0:
            return -1, self.base_offset
        raw = self._raw(slot)
        return int.from_bytes(raw[:8], "big", signed=True), self.base_offset + int.from_bytes(raw[8:], "big")

    def truncate_to(self, offset: int) -> None:
        """Remove every entry for an offset >= ``offset``."""
        keep = self.entries
        while keep:
            raw = self._raw(keep - 1)
            if self.base_offset + int.from_bytes(raw[8:], "big") < offset:
                break
            keep -= 1
        self.truncate_entries(keep)

    def _decode(self, raw: bytes) -> tuple[int, int]:
        return int.from_bytes(raw[:8], "big", signed=True), self.base_offset + int.from_bytes(raw[8:], "big")
