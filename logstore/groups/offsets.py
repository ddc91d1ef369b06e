"""A group's committed offsets: an append-only commit log, one fsync per commit.

File ``groups/<group>/offsets.log``, one commit per line::

    <crc32c of the JSON, 8 hex digits> {"gen": <generation>, "member": "<id>", "ts": <ms>,
                                        "offsets": [["<topic>", <partition>, <offset>, "<metadata>"], ...]}

A commit is one ``write`` of one line followed by ``fdatasync``, made while the group lock is
held, so it is all or nothing: a crash mid-write leaves a line without its newline or with a bad
CRC at the end of the file, which readers ignore (that commit never returned) and the next writer
cuts off. A bad line in the middle (a damaged disk block) is skipped and reported in
:attr:`OffsetLog.problems`; skipping can only make a partition fall back to an older commit, which
means records are delivered again, never lost. A line with ``"snapshot": true`` replaces
everything before it: when the file passes :data:`COMPACT_BYTES` the writer rewrites it as one
snapshot line (write temp, fsync, rename), so the file stays small.

Offsets follow Kafka's rule: the committed offset is the offset of the *next* record to read.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from typing import Any, NamedTuple

import crc32c

from ..errors import StorageError
from ..faults import crashpoint, ops
from ..storage.files import FILE_MODE, atomic_write
from ..types import TopicPartition

COMPACT_BYTES = 1 << 20


class OffsetAndMetadata(NamedTuple):
    """A committed offset (the next record to read), its metadata string and when it was committed
    (ms since the epoch)."""

    offset: int
    metadata: str = ""
    timestamp: int = -1


def encode_line(entry: Mapping[str, Any]) -> bytes:
    """One commit-log line (with its CRC and newline) for ``entry``."""
    body = json.dumps(entry, separators=(",", ":"), sort_keys=True).encode()
    return b"%08x " % crc32c.crc32c(body) + body + b"\n"


def decode_line(line: bytes) -> dict[str, Any] | None:
    """The entry of one line (without its newline), or None when its CRC or JSON is bad."""
    if len(line) < 10 or line[8:9] != b" ":
        return None
    body = line[9:]
    try:
        if int(line[:8], 16) != crc32c.crc32c(body):
            return None
        entry = json.loads(body)
    except ValueError:
        return None
    return entry if isinstance(entry, dict) else None


class OffsetLog:
    """The committed offsets of one group, read incrementally: only bytes appended since the last
    read are parsed. Writers must hold the group lock (see :mod:`logstore.groups.coordinator`)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._key: tuple[int, int] | None = None  # (inode, bytes parsed)
        self._good_end = 0  # the byte after the last whole, valid line
        # (position, first bytes) of the last whole line parsed: proof the file is still the one
        # parsed (see _same_file).
        self._mark: tuple[int, bytes] | None = None
        self._offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        self.max_generation = -1
        self.problems: list[str] = []
        self._mutex = threading.RLock()

    def read(self) -> dict[TopicPartition, OffsetAndMetadata]:
        """Every partition's latest committed offset. A missing file reads as empty. Raises
        StorageError when the file cannot be read."""
        with self._mutex:
            return self._read()

    def _read(self) -> dict[TopicPartition, OffsetAndMetadata]:
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            self._reset(None)
            return {}
        except OSError as e:
            raise StorageError("open", self.path, e) from e
        try:
            st = os.fstat(fd)
            if self._key is None or self._key[0] != st.st_ino or st.st_size < self._key[1] or not self._same_file(fd):
                self._reset(st.st_ino)
            start = self._key[1] if self._key is not None else 0
            if st.st_size > start:
                data = os.pread(fd, st.st_size - start, start)
                self._key = (st.st_ino, self._parse(data, start))
        except OSError as e:
            raise StorageError("read", self.path, e) from e
        finally:
            os.close(fd)
        return dict(self._offsets)

    def _same_file(self, fd: int) -> bool:
        """Whether the last line parsed is still where it was. The inode number and size alone
        can match another file: a compaction renames a new file in, and after two of them (by
        another process, while this one did not look) ext4 hands the first file's inode number
        out again. Parsing on from the old end would then keep stale offsets (persist-queue #132)."""
        if self._mark is None:
            return True
        at, head = self._mark
        return os.pread(fd, len(head), at) == head

    def _reset(self, ino: int | None) -> None:
        self._key = None if ino is None else (ino, 0)
        self._mark = None
        self._good_end = 0
        self._offsets = {}
        self.max_generation = -1
        self.problems = []

    def _parse(self, data: bytes, start: int) -> int:
        """Apply the whole lines of ``data`` (read from byte ``start``); returns the byte after the
        last whole line. An unterminated tail is left for the next read (it is a commit still
        being written, or one a crash cut short, which the next writer cuts off)."""
        lines = data.split(b"\n")
        tail = lines.pop()  # b"" when data ends with a newline; else a line still being written
        pos = start
        for line in lines:
            end = pos + len(line) + 1
            entry = decode_line(line)
            if entry is None:
                self.problems.append(f"{self.path}: skipped a damaged commit at byte {pos}")
            else:
                self._apply(entry)
                self._good_end = end
            pos = end
        if lines:
            self._mark = (pos - len(lines[-1]) - 1, (lines[-1] + b"\n")[:64])
        del tail
        return pos

    def _apply(self, entry: Mapping[str, Any]) -> None:
        if entry.get("snapshot"):
            self._offsets = {}
        ts = int(entry.get("ts", -1))
        self.max_generation = max(self.max_generation, int(entry.get("gen", -1)))
        for topic, partition, offset, *rest in entry.get("offsets", ()):
            tp = TopicPartition(topic, int(partition))
            if offset is None or offset < 0:
                self._offsets.pop(tp, None)
            else:
                when = int(rest[1]) if len(rest) > 1 else ts
                self._offsets[tp] = OffsetAndMetadata(int(offset), rest[0] if rest else "", when)

    def append(self, entry: Mapping[str, Any]) -> None:
        """Append one commit and fdatasync it; the caller holds the group lock. An offset of None
        deletes that partition's commit. Cuts off a torn tail first, and compacts the file when it
        has grown past COMPACT_BYTES. Raises StorageError (nothing committed) on an OS error."""
        with self._mutex:
            self._append(entry)

    def _append(self, entry: Mapping[str, Any]) -> None:
        self._read()
        line = encode_line(entry)
        created = self._key is None  # _read found no file (the group lock is held)
        try:
            fd = ops.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
        except OSError as e:
            raise StorageError("open", self.path, e) from e
        try:
            st = os.fstat(fd)
            size = st.st_size
            if size != self._good_end:
                ops.ftruncate(fd, self._good_end)  # a commit a crash cut short, or trailing damage
            view = memoryview(line)
            pos = self._good_end
            while view:
                n = ops.pwrite(fd, view, pos)
                view, pos = view[n:], pos + n
            crashpoint("offsets.after_write")
            ops.fdatasync(fd)
            if created:
                ops.fsync_dir(os.path.dirname(self.path))  # the new file's name survives a power loss too
        except OSError as e:
            try:
                ops.ftruncate(fd, self._good_end)
            except OSError:
                pass
            raise StorageError("write", self.path, e) from e
        finally:
            os.close(fd)
        crashpoint("offsets.after_sync")
        # What a reader of the file would now see, without reading it back: the line just written.
        self._apply(json.loads(line[9:]))
        self._good_end = pos
        self._key = (st.st_ino, pos)
        self._mark = (pos - len(line), line[:64])
        if self._good_end > COMPACT_BYTES:
            self._compact()

    def compact(self) -> None:
        """Rewrite the file as one snapshot line (atomically); the caller holds the group lock."""
        with self._mutex:
            self._compact()

    def _compact(self) -> None:
        offsets = self._read()
        entry = {
            "snapshot": True,
            "gen": self.max_generation,
            "ts": -1,
            # Each partition keeps its own commit time as a fifth field.
            "offsets": [
                [tp.topic, tp.partition, om.offset, om.metadata, om.timestamp] for tp, om in sorted(offsets.items())
            ],
        }
        atomic_write(self.path, encode_line(entry))
        self._reset(None)
        self._read()
