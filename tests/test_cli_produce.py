"""`logstore produce`: lines, key separator, headers, jsonl, bad lines, binary safety, summary."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cli.main import cli
from logstore import LogStore
from logstore.partitioner import murmur2_partition


@pytest.fixture
def env(tmp_path):
    path = tmp_path / "s"
    with LogStore(path) as s:
        s.create_topic("t", 3)
    runner = CliRunner()

    def invoke(*args, input=None):
        return runner.invoke(cli, ["--dir", str(path), *args], input=input, catch_exceptions=False)

    def records(p):
        with LogStore(path) as s:
            return s.read("t", p, 0, max_records=10**6)

    return invoke, records, tmp_path


def all_values(records):
    return sorted(v for p in range(3) for v in records(p).values)


def test_lines_from_stdin_with_summary(env):
    invoke, records, _ = env
    r = invoke("produce", "t", "-p", "1", input="one\ntwo\nthree\n")
    assert r.exit_code == 0 and r.stdout == ""
    assert "Produced 3 records" in r.stderr and "1 partition(s)" in r.stderr
    assert records(1).values == [b"one", b"two", b"three"]


def test_binary_safe_file_input(env):
    invoke, records, tmp = env
    f = tmp / "bin.txt"
    f.write_bytes(b"\x00\xff\xfe\n\xc3\x28invalid-utf8\nlast-without-newline")
    r = invoke("produce", "t", "-p", "0", "--file", str(f))
    assert r.exit_code == 0
    assert records(0).values == [b"\x00\xff\xfe", b"\xc3\x28invalid-utf8", b"last-without-newline"]


def test_key_separator_routes_like_kafka(env):
    invoke, records, _ = env
    r = invoke("produce", "t", "-K", ":", "-H", "src=cli", input="user-1:a\nuser-2:b:with:colons\n")
    assert r.exit_code == 0
    p = murmur2_partition(b"user-2", 3)
    cols = records(p)
    i = cols.keys.index(b"user-2")
    assert cols.values[i] == b"b:with:colons"
    assert cols.headers[i] == (("src", b"cli"),)


def test_bad_lines_stop_by_default_and_can_be_skipped(env):
    invoke, records, _ = env
    r = invoke("produce", "t", "-K", ":", input="a:1\nno-separator\nb:2\n")
    assert r.exit_code == 1
    assert "line 2: no key separator" in r.stderr and "after 1 records" in r.stderr
    assert all_values(records) == [b"1"]  # the good line before it was produced, nothing after
    r = invoke("produce", "t", "-K", ":", "--skip-bad-lines", input="c:3\nbad\nd:4\n")
    assert r.exit_code == 0 and "1 bad line(s) skipped" in r.stderr and "line 2:" in r.stderr
    assert all_values(records) == [b"1", b"3", b"4"]


def test_jsonl_with_partition_timestamp_and_headers(env):
    invoke, records, _ = env
    lines = [
        {"key": "k", "value": "v", "headers": {"h": "1"}},
        {"value": "p2", "partition": 2, "timestamp": 1_700_000_000_000},
        {"key": None, "value": None, "partition": 0},
    ]
    r = invoke("produce", "t", "--input", "jsonl", "-v", input="\n".join(json.dumps(x) for x in lines) + "\n")
    assert r.exit_code == 0
    assert r.stderr.count("Produced to partition") == 3
    cols = records(2)
    assert b"p2" in cols.values and 1_700_000_000_000 in cols.timestamps
    assert records(0).values[-1] is None  # a null value (tombstone) is kept null
    r = invoke("produce", "t", "--input", "jsonl", input='{"valu": "x"}\n')
    assert r.exit_code == 1 and "line 1: unknown field(s) valu" in r.stderr


def test_unknown_topic_is_exit_3(env):
    invoke, _, _ = env
    r = invoke("produce", "tt", input="x\n")
    assert r.exit_code == 3 and "Did you mean 't'?" in r.stderr


def test_oversized_records_and_bad_partitions_are_numbered_bad_lines(tmp_path):
    path = tmp_path / "s"
    with LogStore(path) as s:
        s.create_topic("t", 2, {"max.message.bytes": 300})
    runner = CliRunner()
    big = "x" * 400
    r = runner.invoke(cli, ["--dir", str(path), "produce", "t", "-p", "0"], input=f"ok1\n{big}\nok2\n")
    assert r.exit_code == 1 and "line 2: a 421-byte record exceeds the limit of 239 bytes" in r.stderr
    r = runner.invoke(
        cli, ["--dir", str(path), "produce", "t", "-p", "0", "--skip-bad-lines"], input=f"ok3\n{big}\nok4\n"
    )
    assert r.exit_code == 0 and "1 bad line(s) skipped" in r.stderr
    r = runner.invoke(
        cli,
        ["--dir", str(path), "produce", "t", "--input", "jsonl", "--skip-bad-lines"],
        input='{"value": "a", "partition": 5}\n{"value": "b", "partition": 1}\n',
    )
    assert r.exit_code == 0 and "line 1: partition 5 does not exist (0..1)" in r.stderr
    with LogStore(path) as s:
        assert s.read("t", 0, 0).values == [b"ok1", b"ok3", b"ok4"]
        assert s.read("t", 1, 0).values == [b"b"]


def test_jsonl_header_lists_must_be_pairs(env):
    invoke, records, _ = env
    r = invoke("produce", "t", "--input", "jsonl", "--skip-bad-lines", input='{"value": "v", "headers": ["ab"]}\n')
    assert "line 1: 'headers' must be an object or a list of [key, value] pairs" in r.stderr
    line = '{"value": "v", "headers": [["k", "1"], ["n", null]]}\n'
    r = invoke("produce", "t", "-p", "1", "--input", "jsonl", input=line)
    assert r.exit_code == 0
    assert records(1).headers == [(("k", b"1"), ("n", None))]
