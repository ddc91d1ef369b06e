"""File names, crash-safe writes and Kafka's checkpoint files.

Every multi-step change to the store goes through here so that it is crash-safe by construction:
:func:`atomic_write` writes ``<name>.tmp``, fsyncs it, renames it over ``<name>`` and fsyncs the
directory, so after a crash a reader finds either the old file or the new one, never a mix.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping

from ..errors import CorruptLogError, StorageError
from ..faults import crashpoint, ops

LOG_SUFFIX = ".log"
INDEX_SUFFIX = ".index"
TIMEINDEX_SUFFIX = ".timeindex"
DELETED_SUFFIX = ".deleted"
CLEANED_SUFFIX = ".cleaned"
SWAP_SUFFIX = ".swap"
TMP_SUFFIX = ".tmp"

RECOVERY_POINT_CHECKPOINT = "recovery-point-offset-checkpoint"
LOG_START_OFFSET_CHECKPOINT = "log-start-offset-checkpoint"

#: Modes new store files and directories are created with (before the process umask). Nothing the
#: store creates is group- or world-writable: another local user could otherwise rewrite history.
FILE_MODE = 0o644
DIR_MODE = 0o755

TOPIC_NAME = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")


def segment_name(base_offset: int, suffix: str) -> str:
    """``00000000000000000042.log`` for base offset 42: zero-padded to 20 digits so ``ls`` sorts."""
    return f"{base_offset:020d}{suffix}"


def offset_from_name(name: str) -> int:
    """The base offset encoded in a segment file name (the text before the first dot)."""
    return int(name.split(".", 1)[0])


def partition_dir_name(topic: str, partition: int) -> str:
    """Kafka's partition directory name, ``<topic>-<partition>``."""
    return f"{topic}-{partition}"


def fsync_dir(path: str) -> None:
    """fsync a directory so that entries created, renamed or removed in it survive a power loss.
    Raises StorageError."""
    try:
        ops.fsync_dir(path)
    except OSError as e:
        raise StorageError("fsync the directory", path, e) from e


def atomic_write(path: str, data: bytes, *, sync: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically: temp file, fsync, rename, directory fsync.

    Raises StorageError (with the path) on an OS error; the old file is then untouched.
    """
    tmp = path + TMP_SUFFIX
    try:
        fd = ops.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
        try:
            view = memoryview(data)
            while view:
                view = view[ops.write(fd, view) :]
            if sync:
                ops.fsync(fd)
        finally:
            ops.close(fd)
        crashpoint("checkpoint.after_tmp")
        ops.replace(tmp, path)
        crashpoint("checkpoint.after_rename")
        if sync:
            fsync_dir(os.path.dirname(path) or ".")
    except OSError as e:
        try:
            ops.unlink(tmp)
        except OSError:
            pass
        raise StorageError("write", path, e) from e


def read_checkpoint(path: str) -> dict[tuple[str, int], int]:
    """Read a Kafka offset checkpoint file: version 0, a count, then ``<topic> <partition> <offset>``.

    A missing file reads as empty. Raises CorruptLogError when the file does not parse or its count
    is wrong (Kafka refuses such a file too).
    """
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().split("\n")
    except FileNotFoundError:
        return {}
    try:
        if lines[0].strip() != "0":
            raise ValueError(f"version {lines[0]!r} (expected 0)")
        count = int(lines[1])
        entries: dict[tuple[str, int], int] = {}
        body = [ln for ln in lines[2:] if ln.strip()]
        if len(body) != count:
            raise ValueError(f"{len(body)} entries where the header says {count}")
        for ln in body:
            topic, partition, offset = ln.split()
            entries[(topic, int(partition))] = int(offset)
        return entries
    except (ValueError, IndexError) as e:
        raise CorruptLogError(
            f"checkpoint file does not parse: {e}",
            path,
            hint="Delete it to fall back to a full recovery of every partition on the next open.",
        ) from None


def format_checkpoint(entries: Mapping[tuple[str, int], int]) -> bytes:
    """The text of a Kafka checkpoint file for ``{(topic, partition): offset}``, sorted."""
    lines = ["0", str(len(entries))]
    lines += [f"{t} {p} {o}" for (t, p), o in sorted(entries.items())]
    return ("\n".join(lines) + "\n").encode("utf-8")


def write_checkpoint(path: str, entries: Mapping[tuple[str, int], int]) -> None:
    """Write a checkpoint file atomically (see :func:`atomic_write`)."""
    atomic_write(path, format_checkpoint(entries))


def remove_quietly(paths: Iterable[str]) -> None:
    """Unlink each path, ignoring files that are already gone. Raises StorageError for another
    OS error (the paths after it are left)."""
    for p in paths:
        try:
            ops.unlink(p)
        except FileNotFoundError:
            pass
        except OSError as e:
            raise StorageError("remove", p, e) from e
