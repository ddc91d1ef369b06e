"""Fault-injection seams: named crash points and the file operations the store performs.

Both are inert in normal use and exist so that tests can prove what survives a crash or an I/O
error at any step of a multi-file change, the way SQLite's test VFS and Kafka's split-phase crash
tests do.

**Crash points.** :func:`crashpoint` marks a step between two file operations (for example between
writing a batch and fsyncing it). It does nothing unless the environment variable
``LOGSTORE_CRASH_AT`` arms it when this module is imported: ``LOGSTORE_CRASH_AT=name:n`` makes the
process kill itself with SIGKILL the ``n``-th time it reaches ``name`` (``n`` defaults to 1; several
``name:n`` separated by commas arm several points). :data:`CRASH_POINTS` lists every point.

**File operations.** The storage layer calls the functions in :data:`ops` (``ops.pwritev``,
``ops.fsync``, ``ops.replace``, ...) instead of :mod:`os` directly. They *are* the :mod:`os`
functions unless a test installs a shim with :func:`install` that fails the N-th operation with
ENOSPC/EIO/EFBIG or records writes to build the disk image a power loss would leave. Index entries
are written through mmap and so bypass the seam; indexes are rebuilt from the log after any crash.
"""

from __future__ import annotations

import os
import signal
from types import SimpleNamespace
from typing import Any

#: Every crash point, with the state a crash there leaves.
CRASH_POINTS: dict[str, str] = {
    "append.after_write": "batch bytes written to the segment, index entries and fsync not yet done",
    "append.before_fsync": "batch written and indexed, not yet fsynced (nothing acknowledged)",
    "append.after_fsync": "batch fsynced, the append has not yet returned (not acknowledged)",
    "roll.after_seal": "old segment sealed and fsynced, new segment not yet created",
    "roll.after_create": "new segment files created, directory not yet fsynced",
    "roll.after_dir_fsync": "new segment durable, recovery point checkpoint not yet written",
    "retention.after_publish": "new log start offset published to other processes, files untouched",
    "retention.after_rename": "old segments renamed to *.deleted, log-start checkpoint not yet written",
    "retention.after_checkpoint": "log-start checkpoint written, *.deleted files not yet unlinked",
    "retention.between_unlinks": "a deleted segment's .log unlinked, its index files not yet",
    "checkpoint.after_tmp": "a checkpoint/state file's .tmp written and fsynced, not yet renamed",
    "checkpoint.after_rename": "a checkpoint/state file renamed into place, directory not yet fsynced",
    "offsets.after_write": "an offset commit's line written, not yet fsynced (commit not acknowledged)",
    "offsets.after_sync": "an offset commit fsynced, commit() has not yet returned",
    "recovery.after_truncate": "recovery cut a torn tail, indexes not yet rebuilt",
    "recovery.before_drop": "recovery found a torn segment, later segments not yet removed",
}

_armed: dict[str, int] = {}


def _arm_from_env(spec: str) -> None:
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        name, _, n = item.partition(":")
        if name not in CRASH_POINTS:
            raise ValueError(
                f"LOGSTORE_CRASH_AT names an unknown crash point {name!r}; known: {', '.join(CRASH_POINTS)}"
            )
        _armed[name] = int(n or 1)


def crashpoint(name: str) -> None:
    """Kill this process with SIGKILL if ``name`` is armed and this is its ``n``-th hit (see module
    docstring); otherwise do nothing."""
    if _armed and name in _armed:
        _armed[name] -= 1
        if _armed[name] <= 0:
            os.kill(os.getpid(), signal.SIGKILL)


def arm(name: str, n: int = 1) -> None:
    """Arm ``name`` in this process (as ``LOGSTORE_CRASH_AT`` does at import). For tests."""
    _arm_from_env(f"{name}:{n}")


def disarm() -> None:
    """Disarm every crash point."""
    _armed.clear()


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


#: The file operations of the storage layer (module docstring). Same signatures as :mod:`os`, plus
#: ``fsync_dir(path)``.
_DEFAULTS: dict[str, Any] = {
    "open": os.open,
    "close": os.close,
    "write": os.write,
    "pwrite": os.pwrite,
    "pwritev": os.pwritev,
    "fsync": os.fsync,
    "fdatasync": os.fdatasync,
    "ftruncate": os.ftruncate,
    "posix_fallocate": os.posix_fallocate,
    "replace": os.replace,
    "rename": os.rename,
    "unlink": os.unlink,
    "mkdir": os.mkdir,
    "fsync_dir": _fsync_dir,
}
ops = SimpleNamespace(**_DEFAULTS)


def install(shim: Any) -> None:
    """Route the storage layer's file operations through ``shim``: every attribute of it named like
    one in :data:`ops` replaces that operation until :func:`uninstall`. For tests."""
    for name in _DEFAULTS:
        fn = getattr(shim, name, None)
        if fn is not None:
            setattr(ops, name, fn)


def uninstall() -> None:
    """Restore the plain :mod:`os` file operations."""
    for name, fn in _DEFAULTS.items():
        setattr(ops, name, fn)


_spec = os.environ.get("LOGSTORE_CRASH_AT")
if _spec:
    _arm_from_env(_spec)
