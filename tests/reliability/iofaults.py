"""H3: shims for :mod:`logstore.faults` that fail file operations or record them for a power loss.

:class:`FaultyIO` counts the operations the storage layer performs and fails the N-th one (once, or
that one and every later one) with an errno, or makes a write short: SQLite's I/O-error loop.

:class:`PowerLossRecorder` keeps a model of what is durable (file contents as of each file's last
fsync, directory entries as of each directory's last fsync) next to the real files, and builds the
directory a power cut at any moment would leave: each write since the last fsync kept, dropped,
zero-filled or torn at a 512-byte boundary, each directory change since the last directory fsync
undone. (SQLite's crash VFS and the ALICE crash states.) Index files are written through mmap,
which the seam does not see: an image gets either their last fsynced or their current bytes.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import random
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from logstore import faults

WRITES = ("write", "pwrite", "pwritev", "ftruncate", "posix_fallocate")
SYNCS = ("fsync", "fdatasync", "fsync_dir")
NAMESPACE = ("open", "replace", "rename", "unlink", "mkdir")
ALL = WRITES + SYNCS + NAMESPACE


@contextlib.contextmanager
def installed(shim: object) -> Iterator[object]:
    faults.install(shim)
    try:
        yield shim
    finally:
        faults.uninstall()


class FaultyIO:
    """Fail the ``fail_at``-th operation among ``kinds`` with ``err`` (``persistent``: and every
    later one of those kinds), or with ``short`` make that write write half its bytes and report
    it. ``count`` is the number of operations of ``kinds`` seen; ``injected`` the faults injected;
    ``log`` the (kind, path) of each operation."""

    def __init__(
        self,
        fail_at: int | None = None,
        err: int = errno.EIO,
        *,
        persistent: bool = False,
        kinds: tuple[str, ...] = ALL,
        short: bool = False,
        only: Callable[[str], bool] | None = None,
    ) -> None:
        self.fail_at, self.err, self.persistent, self.kinds = fail_at, err, persistent, kinds
        self.short, self.only = short, only
        self.count = 0
        self.injected = 0
        self.log: list[tuple[str, str]] = []

    def _path(self, target: int | str) -> str:
        if isinstance(target, int):
            try:
                return os.readlink(f"/proc/self/fd/{target}")
            except OSError:
                return f"fd {target}"
        return target

    def _due(self, kind: str, target: int | str) -> bool:
        if kind not in self.kinds:
            return False
        path = self._path(target)
        if self.only is not None and not self.only(path):
            return False
        self.count += 1
        self.log.append((kind, path))
        if self.fail_at is None:
            return False
        due = self.count == self.fail_at or (self.persistent and self.count > self.fail_at)
        if due:
            self.injected += 1
        return due

    def _fail(self, target: int | str) -> None:
        raise OSError(self.err, os.strerror(self.err), self._path(target))

    def open(self, path: str, flags: int, mode: int = 0o777) -> int:
        if self._due("open", path):
            self._fail(path)
        return os.open(path, flags, mode)

    def close(self, fd: int) -> None:
        os.close(fd)

    def write(self, fd: int, data: bytes) -> int:
        if self._due("write", fd):
            if self.short and len(data) > 1:
                return os.write(fd, bytes(data[: len(data) // 2]))
            self._fail(fd)
        return os.write(fd, data)

    def pwrite(self, fd: int, data: bytes, pos: int) -> int:
        if self._due("pwrite", fd):
            if self.short and len(data) > 1:
                return os.pwrite(fd, bytes(data[: len(data) // 2]), pos)
            self._fail(fd)
        return os.pwrite(fd, data, pos)

    def pwritev(self, fd: int, buffers: list, pos: int) -> int:
        if self._due("pwritev", fd):
            data = b"".join(bytes(b) for b in buffers)
            if self.short and len(data) > 1:
                return os.pwrite(fd, data[: len(data) // 2], pos)
            self._fail(fd)
        return os.pwritev(fd, buffers, pos)

    def ftruncate(self, fd: int, size: int) -> None:
        if self._due("ftruncate", fd):
            self._fail(fd)
        os.ftruncate(fd, size)

    def posix_fallocate(self, fd: int, offset: int, length: int) -> None:
        if self._due("posix_fallocate", fd):
            self._fail(fd)
        os.posix_fallocate(fd, offset, length)

    def fsync(self, fd: int) -> None:
        if self._due("fsync", fd):
            self._fail(fd)
        os.fsync(fd)

    def fdatasync(self, fd: int) -> None:
        if self._due("fdatasync", fd):
            self._fail(fd)
        os.fdatasync(fd)

    def fsync_dir(self, path: str) -> None:
        if self._due("fsync_dir", path):
            self._fail(path)
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def replace(self, src: str, dst: str) -> None:
        if self._due("replace", src):
            self._fail(src)
        os.replace(src, dst)

    def rename(self, src: str, dst: str) -> None:
        if self._due("rename", src):
            self._fail(src)
        os.rename(src, dst)

    def unlink(self, path: str) -> None:
        if self._due("unlink", path):
            self._fail(path)
        os.unlink(path)

    def mkdir(self, path: str, mode: int = 0o777) -> None:
        if self._due("mkdir", path):
            self._fail(path)
        os.mkdir(path, mode)


# --- power loss -----------------------------------------------------------------------------------


@dataclass
class _File:
    durable: bytes  # content as of the last fsync
    pending: list[tuple] = field(default_factory=list)  # ("write", pos, data) / ("truncate", size)
    mmapped: bool = False


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


class PowerLossRecorder:
    """Model what a power cut would leave of the tree under ``root`` (see the module docstring).

    ``on_op(n)`` is called before the n-th recorded operation (1-based), so a test can build images
    (:meth:`image`) at chosen moments while a workload runs."""

    def __init__(self, root: str, on_op: Callable[[int], None] | None = None) -> None:
        self.root = os.path.abspath(root)
        self.on_op = on_op
        self.ops = 0
        self._uids = itertools.count()
        self.files: dict[int, _File] = {}
        self.path_uid: dict[str, int] = {}
        self.fd_uid: dict[int, int] = {}
        self.durable_dirs: dict[str, dict[str, int]] = {}
        for d, _, names in os.walk(self.root):
            entries = {}
            for name in names:
                p = os.path.join(d, name)
                entries[name] = self._track(p)
            self.durable_dirs[d] = entries

    # --- model ------------------------------------------------------------------------------------

    def _mine(self, path: str) -> bool:
        return os.path.abspath(path).startswith(self.root + os.sep)

    def _track(self, path: str) -> int:
        """The uid of the file now at ``path``, tracking it (as durable as it is now) if new to us."""
        path = os.path.abspath(path)
        uid = self.path_uid.get(path)
        if uid is None:
            uid = next(self._uids)
            try:
                content = _read(path)
            except OSError:
                content = b""
            self.files[uid] = _File(content, mmapped=path.endswith((".index", ".timeindex")))
            self.path_uid[path] = uid
        return uid

    def _tick(self) -> None:
        self.ops += 1
        if self.on_op is not None:
            self.on_op(self.ops)

    def _fd_file(self, fd: int) -> _File | None:
        uid = self.fd_uid.get(fd)
        return None if uid is None else self.files[uid]

    # --- the seam ---------------------------------------------------------------------------------

    def open(self, path: str, flags: int, mode: int = 0o777) -> int:
        path = os.path.abspath(path)
        mine = self._mine(path)
        if mine:
            self._tick()
        existed = os.path.exists(path)
        fd = os.open(path, flags, mode)
        if mine:
            if not existed:
                uid = next(self._uids)
                self.files[uid] = _File(b"", mmapped=path.endswith((".index", ".timeindex")))
                self.path_uid[path] = uid
            else:
                uid = self._track(path)
            if flags & os.O_TRUNC:
                self.files[uid].pending.append(("truncate", 0))
            self.fd_uid[fd] = uid
        return fd

    def close(self, fd: int) -> None:
        self.fd_uid.pop(fd, None)
        os.close(fd)

    def _write_at(self, fd: int, data: bytes, pos: int, n: int) -> None:
        f = self._fd_file(fd)
        if f is not None and n:
            f.pending.append(("write", pos, bytes(data[:n])))

    def write(self, fd: int, data: bytes) -> int:
        self._tick()
        pos = os.lseek(fd, 0, os.SEEK_CUR)
        n = os.write(fd, data)
        self._write_at(fd, data, pos, n)
        return n

    def pwrite(self, fd: int, data: bytes, pos: int) -> int:
        self._tick()
        n = os.pwrite(fd, data, pos)
        self._write_at(fd, data, pos, n)
        return n

    def pwritev(self, fd: int, buffers: list, pos: int) -> int:
        self._tick()
        data = b"".join(bytes(b) for b in buffers)
        n = os.pwrite(fd, data, pos)
        self._write_at(fd, data, pos, n)
        return n

    def ftruncate(self, fd: int, size: int) -> None:
        self._tick()
        os.ftruncate(fd, size)
        f = self._fd_file(fd)
        if f is not None:
            f.pending.append(("truncate", size))

    def posix_fallocate(self, fd: int, offset: int, length: int) -> None:
        os.posix_fallocate(fd, offset, length)

    def _sync(self, fd: int) -> None:
        uid = self.fd_uid.get(fd)
        if uid is not None:
            f = self.files[uid]
            f.durable = _read(f"/proc/self/fd/{fd}")  # (fd may be write-only)
            f.pending = []

    def fsync(self, fd: int) -> None:
        self._tick()
        os.fsync(fd)
        self._sync(fd)

    def fdatasync(self, fd: int) -> None:
        self._tick()
        os.fdatasync(fd)
        self._sync(fd)

    def fsync_dir(self, path: str) -> None:
        self._tick()
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        path = os.path.abspath(path)
        if path == self.root or self._mine(path):
            entries = {}
            for name in os.listdir(path):
                p = os.path.join(path, name)
                if not stat.S_ISDIR(os.lstat(p).st_mode):
                    entries[name] = self._track(p)
            self.durable_dirs[path] = entries

    def _move(self, src: str, dst: str) -> None:
        src, dst = os.path.abspath(src), os.path.abspath(dst)
        uid = self.path_uid.pop(src, None)
        if uid is not None:
            self.path_uid[dst] = uid
        else:
            self.path_uid.pop(dst, None)

    def replace(self, src: str, dst: str) -> None:
        self._tick()
        os.replace(src, dst)
        self._move(src, dst)

    def rename(self, src: str, dst: str) -> None:
        self._tick()
        os.rename(src, dst)
        self._move(src, dst)

    def unlink(self, path: str) -> None:
        self._tick()
        os.unlink(path)
        self.path_uid.pop(os.path.abspath(path), None)

    def mkdir(self, path: str, mode: int = 0o777) -> None:
        self._tick()
        os.mkdir(path, mode)

    # --- images -----------------------------------------------------------------------------------

    def _content(self, f: _File, path: str, rnd: random.Random) -> bytes:
        if f.mmapped and rnd.random() < 0.5:
            # Dirty map pages may or may not have been written back: take the current bytes.
            try:
                return _read(path)
            except OSError:
                pass
        data = bytearray(f.durable)
        for op in f.pending:
            fate = rnd.random()
            if op[0] == "truncate":
                if fate < 0.5:
                    del data[op[1] :]
                    if len(data) < op[1]:
                        data.extend(bytes(op[1] - len(data)))
                continue
            _, pos, chunk = op
            if fate < 0.4:
                keep = chunk  # written back
            elif fate < 0.6:
                continue  # lost
            elif fate < 0.8:
                keep = bytes(len(chunk))  # the blocks were allocated, the data never written: zeros
            else:
                cut = (rnd.randrange(len(chunk)) // 512) * 512  # torn at a sector boundary
                keep = chunk[:cut]
                if not keep:
                    continue
            if len(data) < pos:
                data.extend(bytes(pos - len(data)))
            data[pos : pos + len(keep)] = keep
        return bytes(data)

    def image(self, dest: str, rnd: random.Random) -> None:
        """Write into the new directory ``dest`` the tree a power cut now would leave of ``root``."""
        # The path each durable uid would be found at: the entries of each directory's last fsync.
        paths_now = {uid: p for p, uid in self.path_uid.items()}
        for d, dirnames, _ in os.walk(self.root):
            rel = os.path.relpath(d, self.root)
            out = os.path.normpath(os.path.join(dest, rel))
            os.makedirs(out, exist_ok=True)
            for name, uid in self.durable_dirs.get(d, {}).items():
                f = self.files[uid]
                current = paths_now.get(uid, os.path.join(d, name))
                content = self._content(f, current, rnd)
                with open(os.path.join(out, name), "wb") as fh:
                    body = content.rstrip(b"\0")  # a preallocated index: keep it sparse
                    fh.write(body)
                    fh.truncate(len(content))
            dirnames.sort()
