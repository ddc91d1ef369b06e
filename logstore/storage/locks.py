"""Exclusive locks between processes and threads.

A :class:`FileLock` pairs a ``threading.Lock`` with ``flock(2)`` on a lock file. flock (not
``lockf``/fcntl) is used because fcntl locks belong to the process and are dropped when *any* file
descriptor of that file is closed in the process; flock locks belong to the open file description
and are released only by unlocking, closing that descriptor, or process death (so SIGKILL frees
them). The thread lock is needed because flock on the same description is re-entrant across
threads.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time

from ..errors import StoreLockedError


class FileLock:
    """An exclusive lock on ``path`` shared by threads and processes; a context manager.

    ``timeout`` is in seconds (None = wait forever). The file is created if missing and opened once.
    """

    def __init__(self, path: str, timeout: float | None = None, what: str = "") -> None:
        self.path = path
        self.timeout = timeout
        self.what = what or path
        self._thread_lock = threading.RLock()
        self._depth = 0
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)

    def acquire(self) -> None:
        """Take the lock; raises StoreLockedError when ``timeout`` passes first."""
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        if not self._thread_lock.acquire(timeout=-1 if self.timeout is None else self.timeout):
            raise self._timeout_error()
        if self._depth:
            self._depth += 1
            return
        try:
            if deadline is None:
                fcntl.flock(self.fd, fcntl.LOCK_EX)
            else:
                delay = 0.0005
                while True:
                    try:
                        fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        if time.monotonic() >= deadline:
                            raise self._timeout_error() from None
                        time.sleep(delay)
                        delay = min(delay * 2, 0.05)
        except BaseException:
            self._thread_lock.release()
            raise
        self._depth = 1

    def release(self) -> None:
        self._depth -= 1
        if self._depth == 0:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        self._thread_lock.release()

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def is_unlinked(self) -> bool:
        """True when the lock file was removed (its topic or group was deleted) since it was
        opened. One fstat: cheap enough for every lookup of a partition."""
        return os.fstat(self.fd).st_nlink == 0

    def is_stale(self) -> bool:
        """:meth:`is_unlinked`, or the path now leads to another file (the directory was moved
        away and perhaps made again under the same name, and not yet removed). For the steps that
        change files under the lock."""
        st = os.fstat(self.fd)
        if st.st_nlink == 0:
            return True
        try:
            return os.stat(self.path).st_ino != st.st_ino
        except FileNotFoundError:
            return True

    def close(self) -> None:
        try:
            os.close(self.fd)
        except OSError:
            pass
        self.fd = -1

    def _timeout_error(self) -> StoreLockedError:
        return StoreLockedError(
            f"timed out after {self.timeout}s waiting for the lock on {self.what}.",
            "Another process holds it; retry, or find that process (e.g. fuser).",
        )
