"""`logstore group ...` and `logstore consume -g`: Kafka's columns, dry runs, refusals, exit codes."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cli.main import cli
from logstore import Consumer, LogStore, TopicPartition

T = TopicPartition


@pytest.fixture
def env(tmp_path):
    """Topic t with 2 partitions: 5 records in partition 0, 3 in partition 1."""
    path = tmp_path / "s"
    with LogStore(path) as s:
        s.create_topic("t", 2)
        s.append("t", 0, [b"a0", b"a1", b"a2", b"a3", b"a4"])
        s.append("t", 1, [b"b0", b"b1", b"b2"])
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(cli, ["--dir", str(path), *args], catch_exceptions=False)

    return invoke, path


def commit(path, group, offsets):
    with LogStore(path) as s, Consumer(s, group_id=group, enable_auto_commit=False) as c:
        c.assign(list(offsets))
        c.commit(offsets=offsets)


def test_consume_with_a_group_commits_what_it_printed_and_the_next_run_goes_on_from_there(env):
    invoke, _ = env
    r = invoke("consume", "t", "-g", "g", "-e", "-n", "4")
    assert r.exit_code == 0 and len(r.stdout.splitlines()) == 4
    first = set(r.stdout.splitlines())
    r2 = invoke("consume", "t", "-g", "g", "-e")
    assert r2.exit_code == 0
    second = set(r2.stdout.splitlines())
    assert not first & second and first | second == {"a0", "a1", "a2", "a3", "a4", "b0", "b1", "b2"}
    r3 = invoke("consume", "t", "-g", "g", "-e")
    assert r3.stdout == ""  # everything committed


def test_consume_with_a_group_refuses_partitions_and_explicit_offsets(env):
    invoke, _ = env
    r = invoke("consume", "t", "-g", "g", "-p", "0")
    assert r.exit_code == 2 and "-p cannot go with -g" in r.output
    r = invoke("consume", "t", "-g", "g", "-o", "3")
    assert r.exit_code == 2 and "reset-offsets" in r.output


def test_consume_with_a_group_from_the_end_skips_old_records_where_nothing_is_committed(env):
    invoke, path = env
    commit(path, "g", {T("t", 0): 2})
    r = invoke("consume", "t", "-g", "g", "-o", "end", "-e")
    assert r.stdout.splitlines() == ["a2", "a3", "a4"]  # p0 from its commit, p1 from its end


def test_list_and_describe_in_kafkas_columns(env):
    invoke, path = env
    assert invoke("group", "list").stdout == ""
    commit(path, "g", {T("t", 0): 2})
    commit(path, "h", {T("t", 1): 3})
    assert invoke("group", "list").stdout == "g\nh\n"
    r = invoke("group", "list", "--state")
    assert r.stdout.split() == ["GROUP", "STATE", "g", "Empty", "h", "Empty"]
    r = invoke("group", "describe", "g")
    assert r.exit_code == 0
    lines = r.stdout.splitlines()
    assert lines[0].split() == [
        "GROUP",
        "TOPIC",
        "PARTITION",
        "CURRENT-OFFSET",
        "LOG-END-OFFSET",
        "LAG",
        "CONSUMER-ID",
        "HOST",
        "CLIENT-ID",
    ]
    assert lines[1].split() == ["g", "t", "0", "2", "5", "3", "-", "-", "-"]
    assert "has no active members" in r.stderr


def test_describe_a_live_member_shows_its_partitions_and_lag(env):
    invoke, path = env
    with LogStore(path) as s, Consumer(s, "t", group_id="g", client_id="billing-1", enable_auto_commit=False) as c:
        r1 = c.poll(1.0)
        c.commit(r1)
        r = invoke("group", "describe", "g")
        rows = [ln.split() for ln in r.stdout.splitlines()[1:]]
        assert [row[:6] for row in rows] == [
            ["g", "t", "0", "1", "5", "4"],
            ["g", "t", "1", "-", "3", "-"],
        ]
        assert all(row[6] == c.member_id and row[8] == "billing-1" for row in rows)
        doc = json.loads(invoke("group", "describe", "g", "--output", "json").stdout)
        assert doc["state"] == "Stable" and doc["members"][0]["consumer_id"] == c.member_id
        assert doc["offsets"][0] | {} == {
            "topic": "t",
            "partition": 0,
            "current_offset": 1,
            "log_end_offset": 5,
            "lag": 4,
            "consumer_id": c.member_id,
            "host": doc["members"][0]["host"],
            "client_id": "billing-1",
        }
        r = invoke("group", "describe", "g", "--members", "--verbose")
        assert r.stdout.splitlines()[0].split() == [
            "GROUP",
            "CONSUMER-ID",
            "HOST",
            "CLIENT-ID",
            "#PARTITIONS",
            "ASSIGNMENT",
        ]
        assert r.stdout.splitlines()[1].split()[-2:] == ["2", "t(0),t(1)"]
        r = invoke("group", "describe", "g", "--state")
        assert r.stdout.splitlines()[1].split() == ["g", "roundrobin", "Stable", "1", "1"]
        # live members: resets and deletes are refused with exit code 4
        r = invoke("group", "reset-offsets", "g", "--all-topics", "--to-earliest", "--execute")
        assert r.exit_code == 4 and "live members" in r.stderr
        r = invoke("group", "delete", "g")
        assert r.exit_code == 4


def test_reset_offsets_is_a_dry_run_unless_executed(env):
    invoke, path = env
    commit(path, "g", {T("t", 0): 4, T("t", 1): 3})
    r = invoke("group", "reset-offsets", "g", "--all-topics", "--to-earliest")
    assert r.exit_code == 0
    assert [ln.split() for ln in r.stdout.splitlines()] == [
        ["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"],
        ["g", "t", "0", "0"],
        ["g", "t", "1", "0"],
    ]
    assert "Dry run" in r.stderr
    assert "4" in invoke("group", "describe", "g").stdout.splitlines()[1].split()[3]
    r = invoke("group", "reset-offsets", "g", "--topic", "t:0", "--shift-by", "-3", "--execute")
    assert r.exit_code == 0 and r.stdout.splitlines()[1].split() == ["g", "t", "0", "1"]
    assert invoke("group", "describe", "g").stdout.splitlines()[1].split()[3] == "1"
    r = invoke("group", "reset-offsets", "g", "--topic", "t", "--by-duration", "7d", "--execute", "--output", "json")
    assert [d["new_offset"] for d in json.loads(r.stdout)] == [0, 0]
    r = invoke("group", "reset-offsets", "g", "--topic", "t", "--to-datetime", "2999-01-01T00:00:00")
    assert [ln.split()[3] for ln in r.stdout.splitlines()[1:]] == ["5", "3"]


def test_reset_offsets_out_of_range_is_refused_or_clamped(env):
    invoke, path = env
    commit(path, "g", {T("t", 0): 4})
    r = invoke("group", "reset-offsets", "g", "--topic", "t:0", "--to-offset", "9", "--execute")
    assert r.exit_code == 4 and "0..5" in r.stderr and "--clamp" in r.stderr
    r = invoke("group", "reset-offsets", "g", "--topic", "t:0", "--to-offset", "9", "--execute", "--clamp")
    assert r.exit_code == 0 and r.stdout.splitlines()[1].split()[3] == "5"


def test_reset_offsets_usage_errors(env):
    invoke, path = env
    commit(path, "g", {T("t", 0): 4})
    r = invoke("group", "reset-offsets", "g", "--to-earliest")
    assert r.exit_code == 2 and "--all-topics" in r.output
    r = invoke("group", "reset-offsets", "g", "--all-topics")
    assert r.exit_code == 2 and "exactly one of" in r.output
    r = invoke("group", "reset-offsets", "g", "--all-topics", "--to-earliest", "--to-latest")
    assert r.exit_code == 2 and "exactly one of" in r.output
    r = invoke("group", "reset-offsets", "g", "--topic", "t:1", "--shift-by", "1")
    assert r.exit_code == 2 and "no committed offset" in r.output
    r = invoke("group", "reset-offsets", "g", "--topic", "nope", "--to-earliest")
    assert r.exit_code == 3


def test_delete_and_unknown_groups(env):
    invoke, path = env
    commit(path, "billing", {T("t", 0): 1})
    r = invoke("group", "describe", "biling")
    assert r.exit_code == 3 and "Did you mean 'billing'" in r.stderr
    r = invoke("group", "delete", "billing")
    assert r.exit_code == 0 and "Deleted consumer group 'billing'" in r.stdout
    assert invoke("group", "list").stdout == ""
    assert invoke("group", "delete", "billing").exit_code == 3


def test_ctrl_c_commits_exactly_what_was_printed(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    path = tmp_path / "s"
    with LogStore(path) as s:
        s.create_topic("t", 2)
        for p in (0, 1):
            s.append("t", p, [b"%d-%d" % (p, i) for i in range(3000)])
    env = dict(os.environ, LOGSTORE_DIR=str(path))
    cmd = [sys.executable, "-m", "cli", "consume", "t", "-g", "g"]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=root)
    time.sleep(2.0)  # everything is printed by now; the consumer waits for more
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130
    printed = out.splitlines()
    assert len(printed) == 6000 and b"Processed a total of 6000 messages" in err
    with LogStore(path) as s, Consumer(s, group_id="g", enable_auto_commit=False) as c:
        assert c.committed([T("t", 0), T("t", 1)]) == {T("t", 0): 3000, T("t", 1): 3000}
