"""The CLI: exact output, exit codes, errors on stderr, every command documented."""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from cli.main import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def run(tmp_path):
    runner = CliRunner()

    def invoke(*args, input=None):
        return runner.invoke(cli, ["--dir", str(tmp_path / "s"), *args], input=input, catch_exceptions=False)

    return invoke


def test_create_list_describe(run):
    r = run("topic", "create", "orders", "-p", "2", "--config", "retention.ms=7d")
    assert (r.exit_code, r.stdout) == (0, "Created topic orders.\n")
    assert run("topic", "list").stdout == "orders\n"
    out = run("topic", "describe", "orders").stdout.splitlines()
    assert out[0].startswith("Topic: orders\t")
    assert "PartitionCount: 2" in out[0] and "retention.ms=604800000 (1w)" in out[0]
    assert out[1] == "\tTopic: orders\tPartition: 0\tStartOffset: 0\tEndOffset: 0\tSegments: 1\tSize: 0 (0B)"
    doc = json.loads(run("--output", "json", "topic", "describe", "orders").stdout)
    assert doc[0]["partition_count"] == 2 and doc[0]["configs"] == {"retention.ms": 604800000}


def test_exit_codes_and_one_line_errors(run):
    run("topic", "create", "orders")
    r = run("topic", "create", "orders")
    assert r.exit_code == 4 and r.stdout == ""
    assert r.stderr.startswith("Error: topic 'orders' already exists.") and r.stderr.count("\n") == 1
    assert run("topic", "create", "orders", "--if-not-exists").exit_code == 0
    r = run("topic", "describe", "ordrs")
    assert r.exit_code == 3 and "Did you mean 'orders'?" in r.stderr
    r = run("topic", "create", "x", "--config", "retention.mss=1")
    assert r.exit_code == 2 and "retention.ms" in r.stderr
    r = run("topic", "create", "x", "--config", "nonsense")
    assert r.exit_code == 2
    assert "Traceback" not in r.stderr


def test_delete_needs_yes_off_a_terminal(run):
    run("topic", "create", "t")
    r = run("topic", "delete", "t")
    assert r.exit_code == 2 and "--yes" in r.stderr
    r = run("topic", "delete", "t", "--dry-run")
    assert r.exit_code == 0 and r.stdout.startswith("Would delete topic t")
    assert run("topic", "delete", "t", "--yes").stdout == "Deleted topic t.\n"
    assert run("topic", "delete", "t", "--yes", "--if-exists").exit_code == 0
    assert run("topic", "delete", "t", "--yes").exit_code == 3


def test_verify_reports_damage_and_exits_1(run, tmp_path):
    run("demo", "--input", os.path.join(ROOT, "data", "events.jsonl"))
    assert run("verify").exit_code == 0
    seg = tmp_path / "s" / "events-0" / "00000000000000000000.log"
    data = bytearray(seg.read_bytes())
    data[100] ^= 0xFF
    seg.write_bytes(bytes(data))
    r = run("verify")
    assert r.exit_code == 1
    assert str(seg) in r.stdout and "at byte 0" in r.stdout and "CRC" in r.stdout


def test_demo_prints_what_it_did(run):
    r = run("demo", "--input", os.path.join(ROOT, "data", "events.jsonl"))
    assert r.exit_code == 0
    assert "producing 1850 events" in r.stdout and "verify: 0 problem(s)" in r.stdout
    assert "replay events-0 from offset" in r.stdout and "  offset " in r.stdout
    assert "first record of events-0 at or after timestamp" in r.stdout and ": offset " in r.stdout
    r2 = run("demo", "--input", os.path.join(ROOT, "data", "events.jsonl"))
    assert r2.exit_code == 0  # runs again on the same store, appending after what is there
    first = next(line for line in r.stdout.splitlines() if line.startswith("  events-0:"))
    again = next(line for line in r2.stdout.splitlines() if line.startswith("  events-0:"))
    n = int(first.split()[1])
    assert first.endswith(f"offsets 0..{n - 1}") and again.endswith(f"offsets {n}..{2 * n - 1}")

    def group_reads(out):
        lines = [ln for ln in out.splitlines() if ln.startswith("  member ")]
        assert len(lines) == 2 and all(ln.split()[3] != "" for ln in lines)
        return sum(int(ln.split()[-2]) for ln in lines)

    # the group reads everything the first time, and on the second run only what is new
    assert group_reads(r.stdout) == 1850 and group_reads(r2.stdout) == 1850
    lags = [ln for ln in r2.stdout.splitlines() if ", lag " in ln]
    assert len(lags) == 4 and all(ln.endswith("lag 0") for ln in lags)


def test_every_command_has_help():
    def walk(group, path):
        for name, cmd in group.commands.items():
            yield [*path, name], cmd
            if hasattr(cmd, "commands"):
                yield from walk(cmd, [*path, name])

    runner = CliRunner()
    for path, cmd in walk(cli, []):
        assert cmd.help, f"{' '.join(path)} has no help"
        r = runner.invoke(cli, [*path, "--help"])
        assert r.exit_code == 0


def test_every_command_and_topic_config_is_in_the_readme():
    from logstore.config import TOPIC_KEYS

    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()

    def walk(group, path):
        for name, cmd in group.commands.items():
            if hasattr(cmd, "commands"):
                yield from walk(cmd, [*path, name])
            else:
                yield " ".join([*path, name])

    missing = [c for c in walk(cli, []) if f" {c}" not in readme]
    assert not missing, f"commands with no README entry: {missing}"
    undocumented = [k for k in TOPIC_KEYS if f"`{k}`" not in readme]
    assert not undocumented, f"topic configs the README does not name: {undocumented}"
    from logstore.config import reference_table

    start = readme.index("<!-- config-reference")
    table = readme[readme.index("\n", start) + 1 : readme.index("<!-- /config-reference -->")].strip()
    assert table == reference_table(), "README's config table is stale: paste logstore.config.reference_table()"


def test_version_and_dir_env(tmp_path):
    runner = CliRunner()
    assert "logstore, version" in runner.invoke(cli, ["--version"]).stdout
    r = runner.invoke(cli, ["topic", "create", "t"], env={"LOGSTORE_DIR": str(tmp_path / "e")})
    assert r.exit_code == 0 and os.path.exists(tmp_path / "e" / "topics.json")


def test_the_readme_walkthrough_runs_verbatim_on_a_fresh_store(tmp_path):
    import shutil
    import subprocess
    import sys

    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    with open(os.path.join(ROOT, "data", "walkthrough.txt"), encoding="utf-8") as f:
        walk = f.read().strip()
    start = readme.index("<!-- walkthrough")
    block = readme[start : readme.index("<!-- /walkthrough -->")]
    assert block.split("```sh\n", 1)[1].rsplit("```", 1)[0].strip() == walk, (
        "README walkthrough != data/walkthrough.txt"
    )
    (tmp_path / "data").mkdir()
    for name in ("events.jsonl", "walkthrough.txt", "walkthrough.py"):
        shutil.copy(os.path.join(ROOT, "data", name), tmp_path / "data" / name)
    r = subprocess.run(
        [sys.executable, str(tmp_path / "data" / "walkthrough.py")], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr
    commands = [ln for ln in walk.splitlines() if ln.startswith("logstore")]
    assert [ln[2:] for ln in r.stdout.splitlines() if ln.startswith("$ ")] == commands
    out = r.stdout
    assert "Created topic events." in out and "readers events 2         58             415            357" in out
    assert "0:100 user-00347" in out and "315 1700000010011 user-00025" in out
    plan = [ln.split() for ln in out.splitlines() if ln.startswith("events ")]
    assert [(p[1], p[2], p[4], p[5]) for p in plan] == [
        ("0", "1", "592", "retention.ms"),
        ("1", "1", "349", "retention.ms"),
        ("2", "1", "415", "retention.ms"),
        ("3", "1", "494", "retention.ms"),
    ]
    assert "ok: no problems found." in r.stderr and (tmp_path / "data" / "store" / "events-0").is_dir()
