"""The interactive paths through a real terminal (a pty), and the exit code of each error class."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import subprocess
import sys
import termios
import time

from click.testing import CliRunner

from cli.main import cli
from logstore import LogStore

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Terminal:
    """``logstore ARGS`` on a pseudo-terminal: read what it shows, type into it."""

    def __init__(self, store, *args):
        self.master, slave = pty.openpty()
        env = dict(os.environ, LOGSTORE_DIR=str(store))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cli", *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=ROOT,
            env=env,
            start_new_session=True,  # its own session: the pty is its controlling terminal
            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),
        )
        os.close(slave)
        self.seen = b""

    def expect(self, text, timeout=20.0):
        deadline = time.monotonic() + timeout
        while text.encode() not in self.seen:
            left = deadline - time.monotonic()
            assert left > 0, f"timed out waiting for {text!r}; saw {self.seen!r}"
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:
                    chunk = b""
                if not chunk:
                    break
                self.seen += chunk
        assert text.encode() in self.seen, f"{text!r} not in {self.seen!r}"

    def type(self, text):
        os.write(self.master, text.encode())

    def wait(self):
        rc = self.proc.wait(timeout=20)
        try:
            while True:
                chunk = os.read(self.master, 4096)
                if not chunk:
                    break
                self.seen += chunk
        except OSError:
            pass
        os.close(self.master)
        return rc


def make(path):
    with LogStore(path) as s:
        s.create_topic("t", 2)
        s.append("t", 0, [b"a", b"b", b"c"])


def test_delete_asks_on_a_terminal_and_no_keeps_the_topic(tmp_path):
    make(tmp_path / "s")
    term = Terminal(tmp_path / "s", "topic", "delete", "t")
    term.expect("Delete topic t: 2 partitions, 3 records")
    term.expect("[y/N]:")
    term.type("n\n")
    assert term.wait() == 1  # click's Abort
    assert "Aborted!" in term.seen.decode()
    with LogStore(tmp_path / "s") as s:
        assert s.topic_names() == ["t"]
    term = Terminal(tmp_path / "s", "topic", "delete", "t")
    term.expect("[y/N]:")
    term.type("y\n")
    assert term.wait() == 0 and "Deleted topic t." in term.seen.decode()


def test_ctrl_c_on_a_terminal_ends_consume_with_130_and_the_total(tmp_path):
    make(tmp_path / "s")
    term = Terminal(tmp_path / "s", "consume", "t")
    term.expect("c\r\n")  # the three records, then it follows the log
    time.sleep(0.3)
    term.type("\x03")  # the terminal's interrupt character: SIGINT to the foreground job
    assert term.wait() == 130
    assert "Processed a total of 3 messages" in term.seen.decode()


def test_exit_codes_of_each_error_class(tmp_path):
    path = tmp_path / "s"
    make(path)
    runner = CliRunner()

    def code(*args):
        return runner.invoke(cli, ["--dir", str(path), *args]).exit_code

    assert code("topic", "list") == 0
    assert code("topic", "create", "t") == 4  # conflict: exists
    assert code("topic", "describe", "nope") == 3  # not found
    assert code("consume", "t", "-p", "9", "-e") == 2  # usage: no such partition
    assert code("topic", "create", "x", "--config", "retention.ms=soon") == 2  # usage: bad config value
    assert code("group", "describe", "nope") == 3
    seg = path / "t-0" / "00000000000000000000.log"
    data = bytearray(seg.read_bytes())
    data[30] ^= 0xFF
    seg.write_bytes(bytes(data))
    assert code("verify") == 1  # error: damage found
    assert code("--dir", str(tmp_path / "missing"), "topic", "list") == 3  # not found: no store there
    assert signal.SIGINT == 2  # 130 = 128 + SIGINT, checked through the terminal above
