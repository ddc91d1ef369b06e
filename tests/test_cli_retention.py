"""`logstore retention run` and `logstore topic alter`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from cli.main import cli
from logstore import LogStore

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make(path):
    with LogStore(path) as s:
        s.create_topic("t", 2, {"retention.ms": -1})
        for p in (0, 1):
            log = s.partition("t", p)
            for i in range(4):
                log.append_records([b"x" * 50] * 10, timestamps=1_700_000_000_000 + i)
                log.roll()


def test_retention_run_prints_kafka_style_columns_and_dry_run_changes_nothing(tmp_path):
    path = tmp_path / "s"
    make(path)
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(cli, ["--dir", str(path), *args], catch_exceptions=False)

    r = invoke("retention", "run")
    assert r.exit_code == 0 and r.stdout == "" and "Nothing was due." in r.stderr
    r = invoke("topic", "alter", "t", "--config", "retention.ms=1d", "--dry-run")
    assert r.stdout.splitlines() == ["retention.ms: -1 (forever) -> 86400000 (1d)", "Would alter topic t."]
    assert "retention.ms=-1" in invoke("topic", "describe", "t").stdout  # the dry run changed nothing
    r = invoke("topic", "alter", "t", "--config", "retention.ms=1d")
    assert r.exit_code == 0 and r.stdout.splitlines()[0] == "retention.ms: -1 (forever) -> 86400000 (1d)"
    r = invoke("retention", "run", "--dry-run")
    lines = [ln.split() for ln in r.stdout.splitlines()]
    assert lines[0] == ["TOPIC", "PARTITION", "SEGMENTS-DELETED", "BYTES-FREED", "NEW-START-OFFSET", "REASON"]
    assert [ln[:3] + ln[4:] for ln in lines[1:]] == [
        ["t", "0", "4", "40", "retention.ms"],
        ["t", "1", "4", "40", "retention.ms"],
    ]
    assert "would delete 8 segment(s)" in r.stderr
    assert "StartOffset: 0" in invoke("topic", "describe", "t").stdout  # the dry run changed nothing
    r = invoke("retention", "run", "--output", "json")
    doc = json.loads(r.stdout)
    assert [(d["partition"], d["segments_deleted"], d["new_start_offset"]) for d in doc] == [(0, 4, 40), (1, 4, 40)]
    assert invoke("retention", "run").stdout == ""  # nothing left to do
    r = invoke("topic", "alter", "t", "--config", "retention.msx=1")
    assert r.exit_code == 2 and "Did you mean 'retention.ms'" in r.stderr
    assert invoke("topic", "alter", "t").exit_code == 2
    assert invoke("topic", "alter", "nope", "--config", "retention.ms=1").exit_code == 3


def test_retention_loop_stops_cleanly_on_sigterm(tmp_path):
    path = tmp_path / "s"
    make(path)
    env = dict(os.environ, LOGSTORE_DIR=str(path))
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "retention", "run", "--loop", "--interval", "100ms"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=ROOT,
    )
    time.sleep(1.0)
    with LogStore(path) as s:  # a change while it loops: the next pass picks it up
        s.alter_topic_config("t", {"retention.bytes": 0})
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0 and b"Stopped." in err
    assert b"retention.bytes" in out
    with LogStore(path) as s:
        assert s.partition("t", 0).log_start_offset == 40


def test_dry_run_changes_no_file_at_all_not_even_by_opening_the_store(tmp_path):
    import hashlib

    path = tmp_path / "s"
    make(path)
    with LogStore(path) as s:
        s.alter_topic_config("t", {"retention.ms": 1000})
    leftover = path / "t-0" / "00000000000000000099.log.deleted"
    leftover.write_bytes(b"a deletion a crash interrupted")

    def hashes():
        out = {}
        for root, _, files in os.walk(path):
            for f in files:
                p = os.path.join(root, f)
                st = os.stat(p)
                with open(p, "rb") as fh:
                    out[p] = (hashlib.sha256(fh.read()).hexdigest(), st.st_ino, st.st_mtime_ns)
        return out

    before = hashes()
    r = CliRunner().invoke(cli, ["--dir", str(path), "retention", "run", "--dry-run"], catch_exceptions=False)
    assert r.exit_code == 0 and "would delete 8 segment(s)" in r.stderr
    assert hashes() == before  # contents, inodes and modification times
    from logstore.errors import LogClosedError

    with LogStore(path, read_only=True) as s, pytest.raises(LogClosedError, match="read-only"):
        s.append("t", 0, [b"x"])
