"""`logstore consume` and `logstore offsets`: offsets, formats (golden), binary data, exit codes."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys

import pytest
from click.testing import CliRunner

from cli.main import cli
from logstore import LogStore

T0 = 1_718_000_000_000  # 2024-06-10T06:13:20Z


@pytest.fixture
def env(tmp_path):
    """Topic t: partition 0 holds offsets 0..4 in two batches (timestamps T0, T0+1000, ...);
    partition 1 holds a binary record, a null key and value, and a record with headers."""
    path = tmp_path / "s"
    with LogStore(path) as s:
        s.create_topic("t", 2)
        s.append("t", 0, [b"v0", b"v1", b"v2"], [b"k0", b"k1", b"k2"], timestamps=[T0, T0 + 1000, T0 + 2000])
        s.append("t", 0, [b"v3", b"v4"], [b"k3", b"k4"], timestamps=[T0 + 3000, T0 + 4000], compression_type="lz4")
        s.append(
            "t",
            1,
            [b"\xff\x00bin", None, b"h"],
            [b"\xc3\x28", None, b"hk"],
            timestamps=[T0, T0 + 5000, T0 + 6000],
            headers=[None, None, [("trace", b"abc"), ("nil", None)]],
        )
    runner = CliRunner()

    def invoke(*args, input=None):
        return runner.invoke(cli, ["--dir", str(path), *args], input=input, catch_exceptions=False)

    return invoke, path


def test_default_prints_values_from_the_beginning_and_exits_at_end(env):
    invoke, _ = env
    r = invoke("consume", "t", "-e", "-p", "0")
    assert r.exit_code == 0
    assert r.stdout_bytes == b"v0\nv1\nv2\nv3\nv4\n"
    assert "% Reached end of topic t [0] at offset 5" in r.stderr
    assert "Processed a total of 5 messages" in r.stderr


def test_quiet_leaves_stderr_empty_and_all_partitions_are_read(env):
    invoke, _ = env
    r = invoke("consume", "t", "-e", "-q")
    assert r.exit_code == 0 and r.stderr == ""
    lines = r.stdout_bytes.split(b"\n")
    assert sorted(lines) == sorted([b"v0", b"v1", b"v2", b"v3", b"v4", b"\xff\x00bin", b"", b"h", b""])


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("beginning", b"v0\nv1\nv2\nv3\nv4\n"),
        ("0", b"v0\nv1\nv2\nv3\nv4\n"),
        ("1", b"v1\nv2\nv3\nv4\n"),  # the middle of the first batch
        ("4", b"v4\n"),  # the last offset
        ("5", b""),  # the end
        ("end", b""),
        ("-2", b"v3\nv4\n"),
        ("-99", b"v0\nv1\nv2\nv3\nv4\n"),  # clamped to the log start
        ("+3", b"v3\nv4\n"),
        (f"@{T0 - 1}", b"v0\nv1\nv2\nv3\nv4\n"),  # before the data
        (f"@{T0 + 2000}", b"v2\nv3\nv4\n"),  # exactly a record's time
        (f"s@{T0 + 2500}", b"v3\nv4\n"),  # between two records (and across batches)
        (f"@{T0 + 9999}", b""),  # after the data
        ("@2024-06-10T06:13:22Z", b"v2\nv3\nv4\n"),  # ISO-8601, UTC
    ],
)
def test_offset_specs(env, spec, expected):
    invoke, _ = env
    r = invoke("consume", "t", "-p", "0", "-e", "-q", "-o", spec)
    assert r.exit_code == 0, r.stderr
    assert r.stdout_bytes == expected


def test_minus_n_is_per_partition(env):
    invoke, _ = env
    r = invoke("consume", "t", "-e", "-q", "-o", "-1", "-f", "%p:%o\\n")
    assert sorted(r.stdout.splitlines()) == ["0:4", "1:2"]


def test_max_messages(env):
    invoke, _ = env
    r = invoke("consume", "t", "-p", "0", "-n", "2")
    assert r.exit_code == 0 and r.stdout_bytes == b"v0\nv1\n"
    assert "Processed a total of 2 messages" in r.stderr


def test_kcat_format_golden(env):
    invoke, _ = env
    r = invoke("consume", "t", "-p", "1", "-e", "-q", "-f", "%t|%p|%o|%k|%K|%s|%S|%T|%h|%D|%%\\n")
    assert r.exit_code == 0
    assert r.stdout_bytes == (
        b"t|1|0|\xc3\x28|2|\xff\x00bin|5|1718000000000||2024-06-10T06:13:20.000Z|%\n"
        b"t|1|1||-1||-1|1718000005000||2024-06-10T06:13:25.000Z|%\n"
        b"t|1|2|hk|2|h|1|1718000006000|trace=abc,nil=|2024-06-10T06:13:26.000Z|%\n"
    )


def test_jsonl_golden_with_base64_for_binary(env):
    invoke, _ = env
    r = invoke("consume", "t", "-p", "1", "-e", "-q", "-J")
    assert r.exit_code == 0
    docs = [json.loads(line) for line in r.stdout.splitlines()]
    assert docs == [
        {
            "topic": "t", "partition": 1, "offset": 0, "timestamp": T0, "timestamp_type": "create",
            "key": base64.b64encode(b"\xc3\x28").decode(), "key_encoding": "base64",
            "value": base64.b64encode(b"\xff\x00bin").decode(), "value_encoding": "base64", "headers": [],
        },
        {
            "topic": "t", "partition": 1, "offset": 1, "timestamp": T0 + 5000, "timestamp_type": "create",
            "key": None, "value": None, "headers": [],
        },
        {
            "topic": "t", "partition": 1, "offset": 2, "timestamp": T0 + 6000, "timestamp_type": "create",
            "key": "hk", "value": "h", "headers": [["trace", "abc"], ["nil", None]],
        },
    ]  # fmt: skip
    assert invoke("consume", "t", "-p", "1", "-e", "-q", "--output", "jsonl").stdout == r.stdout


def test_jsonl_copies_a_topic_through_produce(env):
    invoke, path = env
    with LogStore(path) as s:
        s.create_topic("copy", 2)
    dump = invoke("consume", "t", "-e", "-q", "-J").stdout
    r = invoke("produce", "copy", "--input", "jsonl", input=dump)
    assert r.exit_code == 0, r.stderr
    with LogStore(path) as s:
        for p in (0, 1):
            a, b = s.read("t", p, 0), s.read("copy", p, 0)
            assert (a.keys, a.values, a.headers, a.timestamps) == (b.keys, b.values, b.headers, b.timestamps)


def test_kafka_properties_golden(env):
    invoke, _ = env
    r = invoke(
        "consume", "t", "-p", "1", "-e", "-q",
        "--property", "print.timestamp=true", "--property", "print.partition=true",
        "--property", "print.offset=true", "--property", "print.headers=true", "--property", "print.key=true",
    )  # fmt: skip
    assert r.exit_code == 0
    assert r.stdout_bytes == (
        b"CreateTime:1718000000000\tPartition:1\tOffset:0\tNO_HEADERS\t\xc3\x28\t\xff\x00bin\n"
        b"CreateTime:1718000005000\tPartition:1\tOffset:1\tNO_HEADERS\tnull\tnull\n"
        b"CreateTime:1718000006000\tPartition:1\tOffset:2\ttrace:abc,nil:null\thk\th\n"
    )
    r = invoke(
        "consume", "t", "-p", "1", "-e", "-q", "-o", "1",
        "--property", "print.key=true", "--property", "key.separator=::", "--property", "null.literal=<nil>",
    )  # fmt: skip
    assert r.stdout_bytes == b"<nil>::<nil>\nhk::h\n"


def test_log_append_time_is_labelled(tmp_path):
    path = tmp_path / "s"
    with LogStore(path) as s:
        s.create_topic("lat", 1, config={"message.timestamp.type": "LogAppendTime"})
        s.append("lat", 0, [b"x"], timestamps=[5])
    r = CliRunner().invoke(
        cli, ["--dir", str(path), "consume", "lat", "-e", "-q", "--property", "print.timestamp=true"]
    )
    assert r.exit_code == 0
    kind, _, rest = r.stdout.partition(":")
    assert kind == "LogAppendTime" and int(rest.split("\t")[0]) > T0


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["consume", "nope", "-e"], 3, "topic 'nope' not found"),
        (["consume", "t", "-p", "7", "-e"], 2, "t has partitions 0..1, not 7"),
        (["consume", "t", "-p", "0", "-o", "99", "-e"], 4, "offset 99 is out of range for t-0: valid offsets are 0..5"),
        (["consume", "t", "-o", "xyz"], 2, "'xyz' is not an offset"),
        (["consume", "t", "-o", "stored"], 2, "needs a consumer group"),
        (["consume", "t", "-o", "@yesterday-ish"], 2, "is not a time"),
        (["consume", "t", "-o", "0", "--from-beginning"], 2, "cannot be specified together"),
        (["consume", "t", "-f", "%x"], 2, "unknown token '%x'"),
        (["consume", "t", "-f", "%s", "-J"], 2, "cannot be specified together"),
        (["consume", "t", "--property", "print.keys=true"], 2, "unknown property 'print.keys'"),
        (["consume", "t", "--property", "print.key=yes"], 2, "print.key must be true or false"),
        (["offsets", "nope"], 3, "topic 'nope' not found"),
    ],
)
def test_bad_input_exit_codes(env, args, code, message):
    invoke, _ = env
    r = invoke(*args)
    assert r.exit_code == code, (r.stdout, r.stderr)
    assert message in r.stderr
    assert r.stdout == ""


def test_offsets_like_get_offset_shell(env):
    invoke, _ = env
    assert invoke("offsets", "t").stdout == "t:0:5\nt:1:3\n"
    assert invoke("offsets", "t", "--time", "-1").stdout == "t:0:5\nt:1:3\n"
    assert invoke("offsets", "t", "--time", "earliest").stdout == "t:0:0\nt:1:0\n"
    assert invoke("offsets", "t", "--time", "-2", "-p", "1").stdout == "t:1:0\n"
    assert invoke("offsets", "t", "--time", str(T0 + 2500)).stdout == "t:0:3\nt:1:1\n"
    # after every record of partition 0: no line for it (Kafka prints none either)
    assert invoke("offsets", "t", "--time", str(T0 + 5500)).stdout == "t:1:2\n"
    assert invoke("offsets", "t", "--time", "2099-01-01").stdout == ""


def _cli(*args):
    return [sys.executable, "-m", "cli", *args]


def test_follow_sees_new_records_and_ctrl_c_exits_130(env):
    _, path = env
    proc = subprocess.Popen(
        _cli("--dir", str(path), "consume", "t", "-p", "0", "-o", "end"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        # The EOF note says it is positioned at the end and waiting.
        assert proc.stderr.readline() == b"% Reached end of topic t [0] at offset 5\n"
        with LogStore(path) as s:
            s.append("t", 0, [b"new-1", b"new-2"])
        assert proc.stdout.readline() == b"new-1\n"
        assert proc.stdout.readline() == b"new-2\n"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert out == b""
    assert b"Processed a total of 2 messages" in err


def test_closed_pipe_ends_quietly(env):
    _, path = env
    with LogStore(path) as s:
        s.create_topic("big", 1)
        for _ in range(10):
            s.append("big", 0, [b"x" * 100] * 5_000)
    r = subprocess.run(
        f"{sys.executable} -m cli --dir {path} consume big -e -q | head -n 1",
        shell=True,
        capture_output=True,
        timeout=60,
    )
    assert r.stdout == b"x" * 100 + b"\n"
    assert b"Traceback" not in r.stderr and b"Error" not in r.stderr


def test_offsets_max_timestamp_and_bad_negative_codes(env):
    invoke, path = env
    with LogStore(path) as s:
        s.append("t", 0, [b"late", b"early"], timestamps=[T0 + 99_000, T0 + 1])
    # partition 0: the record at offset 5 has the largest timestamp; partition 1: offset 2
    assert invoke("offsets", "t", "--time", "max-timestamp").stdout == "t:0:5\nt:1:2\n"
    assert invoke("offsets", "t", "--time", "-3").stdout == "t:0:5\nt:1:2\n"
    r = invoke("offsets", "t", "--time", "-4")
    assert r.exit_code == 2 and "-3 max-timestamp" in r.stderr


@pytest.mark.parametrize("spec", ["--5", "+-5", "\u00b2", "5-"])
def test_malformed_offsets_are_usage_errors(env, spec):
    invoke, _ = env
    r = invoke("consume", "t", "-e", "-o", spec)
    assert r.exit_code == 2 and "is not an offset" in r.stderr


def test_a_record_without_timestamp_survives_the_jsonl_copy(tmp_path):
    path = tmp_path / "s"
    with LogStore(path) as s:
        s.create_topic("a", 1)
        s.create_topic("b", 1)
        s.append("a", 0, [b"x"], timestamps=[-1])
    runner = CliRunner()
    dump = runner.invoke(cli, ["--dir", str(path), "consume", "a", "-e", "-q", "-J"]).stdout
    assert json.loads(dump)["timestamp"] == -1
    r = runner.invoke(cli, ["--dir", str(path), "produce", "b", "--input", "jsonl"], input=dump)
    assert r.exit_code == 0, r.stderr
    with LogStore(path) as s:
        assert s.read("b", 0, 0).values == [b"x"]
    r = runner.invoke(cli, ["--dir", str(path), "consume", "a", "-e", "-q", "--property", "print.timestamp=true"])
    assert r.stdout == "CreateTime:-1\tx\n"
