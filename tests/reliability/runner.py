"""Run the acking writer in a child process and kill it: forked from the test process (fast: the
child starts with logstore imported) or as a fresh interpreter (to cover ``LOGSTORE_CRASH_AT``)."""

from __future__ import annotations

import hashlib
import os
import random
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

from logstore import faults

from . import writer

WRITER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "writer.py")
SKIP_IN_HASH = (".lock", ".logstore.lock", ".logstore.open", "group.lock")  # bytes change on every open


@dataclass
class Child:
    pid: int
    out: int  # read end of the child's stdout
    err_path: str
    popen: subprocess.Popen | None = None
    status: int | None = None  # os.waitstatus_to_exitcode: -9 for SIGKILL
    text: str = ""

    def wait_output(self, timeout: float = 30.0) -> bool:
        """Wait until the child printed something (it is writing), or exited; True if it printed."""
        r, _, _ = select.select([self.out], [], [], timeout)
        return bool(r)

    def kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def finish(self, timeout: float = 60.0) -> str:
        """Wait for the child to end (killing it after ``timeout`` s) and return all it printed."""
        chunks = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                left = 5
            r, _, _ = select.select([self.out], [], [], left)
            if not r:
                continue
            data = os.read(self.out, 1 << 16)
            if not data:
                break
            chunks.append(data)
        os.close(self.out)
        if self.popen is not None:
            self.status = self.popen.wait(timeout=30)
        else:
            _, st = os.waitpid(self.pid, 0)
            self.status = os.waitstatus_to_exitcode(st)
        self.text = b"".join(chunks).decode()
        return self.text

    def stderr(self) -> str:
        try:
            with open(self.err_path, encoding="utf-8", errors="replace") as f:
                return f.read()[-3000:]
        except OSError:
            return ""


def fork_writer(args: list[str], err_path: str, arm: str | None = None) -> Child:
    """Fork a child running ``writer.main(args)`` with its stdout on a pipe; ``arm`` =
    ``"name:n"`` arms that crash point in the child only."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 70
        try:
            os.close(r)
            os.dup2(w, 1)
            os.close(w)
            fd = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(fd, 2)
            os.close(fd)
            faults.disarm()
            faults.uninstall()
            if arm:
                name, _, n = arm.partition(":")
                faults.arm(name, int(n or 1))
            code = writer.main(args)
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            os._exit(code)
    os.close(w)
    return Child(pid, r, err_path)


def spawn_writer(args: list[str], err_path: str, crash_at: str | None = None) -> Child:
    """Start the writer as a fresh interpreter (``LOGSTORE_CRASH_AT=crash_at`` if given)."""
    env = dict(os.environ)
    env.pop("LOGSTORE_CRASH_AT", None)
    if crash_at:
        env["LOGSTORE_CRASH_AT"] = crash_at
    err = open(err_path, "wb")  # noqa: SIM115
    p = subprocess.Popen(
        [sys.executable, "-X", "faulthandler", WRITER, *args], stdout=subprocess.PIPE, stderr=err, env=env
    )
    err.close()
    assert p.stdout is not None
    out = os.dup(p.stdout.fileno())
    p.stdout.close()
    return Child(p.pid, out, err_path, popen=p)


def kill_after(child: Child, rnd: random.Random, max_delay: float = 0.05) -> str:
    """Let ``child`` start writing, SIGKILL it after a random 0..max_delay s, return its output."""
    child.wait_output()
    time.sleep(rnd.uniform(0, max_delay))
    child.kill()
    return child.finish()


def tree_hashes(root: str | os.PathLike[str], suffixes: tuple[str, ...] | None = None) -> dict[str, str]:
    """sha256 of every file under ``root`` by relative path (lock files excluded: their bytes are
    scratch state), or of those whose names end in ``suffixes``."""
    out = {}
    for d, _, names in os.walk(root):
        for name in names:
            if name in SKIP_IN_HASH or (suffixes is not None and not name.endswith(suffixes)):
                continue
            p = os.path.join(d, name)
            with open(p, "rb") as f:
                out[os.path.relpath(p, root)] = hashlib.sha256(f.read()).hexdigest()
    return out


def leftovers(root: str) -> list[str]:
    """Temporary or half-deleted files under ``root`` (none may survive a reopen)."""
    return [os.path.join(d, n) for d, _, names in os.walk(root) for n in names if n.endswith((".tmp", ".deleted"))]
