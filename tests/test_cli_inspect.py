"""`logstore dump-log` (Kafka's DumpLogSegments, line for line) and `logstore info`."""

from __future__ import annotations

import json

import crc32c
from click.testing import CliRunner

from cli.main import cli
from logstore import LogStore

T0 = 1_718_000_000_000


def run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def make(path, **config):
    with LogStore(path) as s:
        s.create_topic("t", 1, config)
        s.append(
            "t",
            0,
            [b'{"amount":3}', None],
            [b"user-7", None],
            timestamps=[T0, T0 + 5],
            headers=[[("trace", b"x"), ("src", None)], None],
        )
        s.append("t", 0, [b"third"], timestamps=[T0 + 9], compression_type="lz4")
    return path / "t-0" / "00000000000000000000.log"


def test_dump_log_prints_kafkas_lines(tmp_path):
    seg = make(tmp_path / "s")
    data = seg.read_bytes()
    first = int.from_bytes(data[8:12], "big") + 12  # size of the first batch
    crc1 = crc32c.crc32c(data[21:first])
    crc2 = crc32c.crc32c(data[first + 21 :])
    r = run("dump-log", str(seg), "--print-data-log")
    assert r.exit_code == 0
    assert r.stdout.splitlines() == [
        f"Dumping {seg}",
        "Log starting offset: 0",
        "baseOffset: 0 lastOffset: 1 count: 2 baseSequence: -1 lastSequence: -1 producerId: -1 producerEpoch: -1 "
        "partitionLeaderEpoch: -1 isTransactional: false isControl: false deleteHorizonMs: OptionalLong.empty "
        f"position: 0 CreateTime: {T0 + 5} size: {first} magic: 2 compresscodec: none crc: {crc1} isvalid: true",
        f"| offset: 0 CreateTime: {T0} keySize: 6 valueSize: 12 sequence: -1 headerKeys: [trace,src] "
        'key: user-7 payload: {"amount":3}',
        f"| offset: 1 CreateTime: {T0 + 5} keySize: -1 valueSize: -1 sequence: -1 headerKeys: []",
        "baseOffset: 2 lastOffset: 2 count: 1 baseSequence: -1 lastSequence: -1 producerId: -1 producerEpoch: -1 "
        "partitionLeaderEpoch: -1 isTransactional: false isControl: false deleteHorizonMs: OptionalLong.empty "
        f"position: {first} CreateTime: {T0 + 9} size: {len(data) - first} magic: 2 compresscodec: lz4 crc: {crc2} "
        "isvalid: true",
        f"| offset: 2 CreateTime: {T0 + 9} keySize: -1 valueSize: 5 sequence: -1 headerKeys: [] payload: third",
    ]
    shallow = run("dump-log", "--files", str(seg)).stdout.splitlines()
    assert len(shallow) == 4 and not any(ln.startswith("|") for ln in shallow)  # batches only
    only = run("dump-log", str(seg), "--print-data-log", "--skip-record-metadata").stdout.splitlines()
    assert only[3:5] == ['| key: user-7 payload: {"amount":3}', ""]  # Kafka prints nothing for a null record


def test_dump_log_of_a_log_append_time_topic_names_the_timestamp_type(tmp_path):
    seg = make(tmp_path / "s", **{"message.timestamp.type": "LogAppendTime"})
    lines = run("dump-log", str(seg), "--deep-iteration").stdout.splitlines()
    stamp = lines[2].split("LogAppendTime: ")[1].split()[0]
    assert int(stamp) > T0 + 1000  # the append time, not the producer's
    assert lines[3].startswith(f"| offset: 0 LogAppendTime: {stamp} ")  # every record carries it


def test_dump_log_reports_damage_as_kafka_does(tmp_path):
    seg = make(tmp_path / "s")
    data = bytearray(seg.read_bytes())
    data[40] ^= 0xFF  # inside the first batch: its CRC no longer matches
    seg.write_bytes(bytes(data) + b"\x00\x00\x00")  # and a torn tail
    r = run("dump-log", str(seg), "--deep-iteration")
    lines = r.stdout.splitlines()
    assert lines[2].endswith("isvalid: false") and lines[3].startswith("baseOffset: 2")
    assert lines[-1] == "Found 3 invalid bytes at the end of 00000000000000000000.log"
    assert "Skipping the records of the batch at position 0" in r.stderr


def test_dump_index_and_time_index(tmp_path):
    path = tmp_path / "s"
    with LogStore(path) as s:
        s.create_topic("t", 1, {"index.interval.bytes": 1})
        for i in range(4):
            s.append("t", 0, [b"v%d" % i], timestamps=[T0 + i])
    d = path / "t-0"
    r = run("dump-log", str(d / "00000000000000000000.index"), str(d / "00000000000000000000.timeindex"))
    lines = r.stdout.splitlines()
    size = (d / "00000000000000000000.log").stat().st_size // 4  # four equal batches
    assert lines[1:4] == [f"offset: {o} position: {o * size}" for o in (1, 2, 3)]  # the first batch is not indexed
    assert lines[5:] == [f"timestamp: {T0 + o} offset: {o}" for o in (1, 2, 3)]
    # an index entry that names the wrong batch is reported on stderr, as Kafka does
    raw = bytearray((d / "00000000000000000000.index").read_bytes())
    raw[3] = 2  # entry 0 now says offset 2 at the position of offset 1
    (d / "00000000000000000000.index").write_bytes(bytes(raw))
    r = run("dump-log", str(d / "00000000000000000000.index"))
    assert "Mismatches in :" in r.stderr and "Index offset: 2, log offset: 1" in r.stderr


def test_dump_log_errors(tmp_path):
    r = run("dump-log")
    assert r.exit_code == 2
    r = run("dump-log", str(tmp_path / "nope.log"))
    assert r.exit_code == 3 and "no such file" in r.stderr
    other = tmp_path / "notes.txt"
    other.write_text("x")
    r = run("dump-log", str(other))
    assert r.exit_code == 0 and f"Ignoring unknown file {other}" in r.stderr


def test_info(tmp_path):
    path = tmp_path / "s"
    make(path)
    r = run("--dir", str(path), "info")
    assert r.exit_code == 0
    lines = r.stdout.splitlines()
    assert lines[0] == f"Store: {path}" and lines[1] == "Format version: 1"
    assert lines[2].startswith("Topics: 1 (1 partitions, 1 segments, 3 records, ")
    assert lines[-1] == "Consumer groups: 0"
    doc = json.loads(run("--dir", str(path), "info", "--output", "json").stdout)
    assert (doc["topics"], doc["partitions"], doc["records"], doc["groups"]) == (1, 1, 3, [])
    assert run("--dir", str(tmp_path / "none"), "info").exit_code == 3


def test_shell_completion_completes_topics_and_groups(tmp_path):
    import os
    import subprocess
    import sys

    path = tmp_path / "s"
    make(path)
    with LogStore(path) as s:
        s.create_topic("orders", 1)
        s.create_topic("other", 1)
    from logstore import Consumer, TopicPartition

    with LogStore(path) as s, Consumer(s, group_id="billing", enable_auto_commit=False) as c:
        c.assign([TopicPartition("t", 0)])
        c.commit(offsets={TopicPartition("t", 0): 1})
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    def complete(words):
        env = dict(
            os.environ,
            _LOGSTORE_COMPLETE="bash_complete",
            COMP_WORDS=" ".join(["logstore", *words]),
            COMP_CWORD=str(len(words)),
            LOGSTORE_DIR=str(path),
        )
        code = "from cli.main import cli; cli(prog_name='logstore')"
        out = subprocess.run([sys.executable, "-c", code], env=env, cwd=root, capture_output=True, text=True)
        return [ln.split(",", 1)[1] for ln in out.stdout.splitlines() if ln.startswith("plain,")]

    assert complete(["consume", "o"]) == ["orders", "other"]
    assert complete(["group", "describe", "b"]) == ["billing"]
    assert "bash" in run("completion", "bash").stdout.lower()
    assert run("completion", "tcsh").exit_code == 2


def test_recover_rebuilds_indexes_cuts_torn_tails_and_refuses_damage_unless_told(tmp_path):
    path = tmp_path / "s"
    with LogStore(path) as s:
        s.create_topic("t", 1, {"index.interval.bytes": 1})
        for i in range(6):
            s.append("t", 0, [b"v%d" % i], timestamps=[T0 + i])
    d = path / "t-0"
    seg = d / "00000000000000000000.log"
    (d / "00000000000000000000.index").write_bytes(b"\xff" * 16)  # a garbage index
    size = seg.stat().st_size
    with open(seg, "ab") as f:
        f.write(b"\x00\x00\x00\x00\x00\x00\x00\x06\x00\x00")  # a torn tail
    r = run("--dir", str(path), "recover", "--dry-run")
    assert r.exit_code == 0 and "problem(s)" in r.stdout
    assert seg.stat().st_size == size + 10  # the dry run changed nothing
    r = run("--dir", str(path), "recover")
    assert r.exit_code == 0
    row = r.stdout.splitlines()[1].split()
    assert row[:3] == ["t", "0", "1"] and row[4:] == ["10", "6", "repaired"]
    assert seg.stat().st_size == size
    with LogStore(path) as s:
        assert s.read("t", 0, 3).offsets[0] == 3  # the rebuilt index finds it
        assert s.verify() == []
    # damage in fsynced data: reported and left alone, or cut with --truncate-damaged
    data = bytearray(seg.read_bytes())
    third = size // 6 * 2
    data[third + 30] ^= 0xFF
    seg.write_bytes(bytes(data))
    r = run("--dir", str(path), "recover")
    assert r.exit_code == 1 and "DAMAGED" in r.stdout and "--truncate-damaged" in r.stderr
    assert seg.stat().st_size == size
    r = run("--dir", str(path), "recover", "--truncate-damaged")
    assert r.exit_code == 2 and "--yes" in r.output  # not a terminal: no silent data loss
    r = run("--dir", str(path), "recover", "--truncate-damaged", "--yes")
    assert r.exit_code == 0 and r.stdout.splitlines()[1].split()[5] == "2"  # offsets 0-1 kept
    with LogStore(path) as s:
        assert s.read("t", 0, 0).values == [b"v0", b"v1"] and s.verify() == []


def test_recover_refuses_a_partition_open_elsewhere(tmp_path):
    import os
    import subprocess
    import sys
    import time

    path = tmp_path / "s"
    make(path)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = (
        f"import sys, time; sys.path.insert(0, {root!r}); from logstore import LogStore; "
        f"s = LogStore({str(path)!r}); s.partition('t', 0); print('open', flush=True); time.sleep(30)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "open"
        r = run("--dir", str(path), "recover")
        assert r.exit_code == 4 and "open in another process" in r.stderr and "LOCKED" in r.stdout
    finally:
        proc.kill()
        proc.wait()
    time.sleep(0.1)
    assert run("--dir", str(path), "recover").exit_code == 0


def test_jsonl_output_is_one_object_per_line(tmp_path):
    path = tmp_path / "s"
    make(path)
    with LogStore(path) as s:
        s.create_topic("u", 3)
    lines = run("--dir", str(path), "--output", "jsonl", "topic", "list").stdout.splitlines()
    assert [json.loads(ln) for ln in lines] == [
        {"topic": "t", "partition_count": 1},
        {"topic": "u", "partition_count": 3},
    ]
    doc = json.loads(run("--dir", str(path), "-o", "json", "topic", "list").stdout)
    assert [d["topic"] for d in doc] == ["t", "u"]
    lines = run("--dir", str(path), "topic", "describe", "t", "u", "--help").stdout
    assert "Usage" in lines
    lines = run("--dir", str(path), "-o", "jsonl", "topic", "describe", "t", "u").stdout.splitlines()
    assert [json.loads(ln)["topic"] for ln in lines] == ["t", "u"]


def test_recover_reports_what_a_cut_takes_and_leaves_a_damaged_partition_usable(tmp_path):
    path = tmp_path / "s"
    with LogStore(path) as s:
        s.create_topic("t", 2, {"segment.bytes": 200})
        for p in (0, 1):
            for i in range(12):
                s.append("t", p, [b"v%02d" % i], timestamps=[T0 + i])
        segs = [x.log_path for x in s.partition("t", 0).segments]
    assert len(segs) >= 4
    first = __import__("pathlib").Path(segs[0])
    data = bytearray(first.read_bytes())
    data[-5] ^= 0xFF  # the last batch of the first segment: damage with whole segments after it
    first.write_bytes(bytes(data))
    r = run("--dir", str(path), "recover")
    assert r.exit_code == 1
    rows = [ln.split() for ln in r.stdout.splitlines()[1:]]
    assert rows[0][-1] == "DAMAGED" and rows[1][-1] == "ok"  # it went on to partition 1
    with LogStore(path) as s:  # untouched: still opens, and reads up to the damage
        assert s.read("t", 0, 0, max_records=1).offsets == [0] and s.partition("t", 0).next_offset == 12
    r = run("--dir", str(path), "recover", "--dry-run")
    assert r.exit_code == 1 and "DAMAGED" in r.stdout  # the dry run says what the real run would
    r = run("--dir", str(path), "recover", "--truncate-damaged", "--yes")
    assert r.exit_code == 0
    assert "cut" in r.stderr and "segments dropped after the cut" in r.stderr
    with LogStore(path) as s:
        end = s.partition("t", 0).next_offset
        assert 0 < end < 12 and s.verify() == []
    assert f"cut {12 - end} record(s)" in r.stderr


def test_a_missing_partition_directory_is_a_one_line_error_not_a_traceback(tmp_path):
    import shutil

    path = tmp_path / "s"
    make(path)
    shutil.rmtree(path / "t-0")
    r = run("--dir", str(path), "info")
    assert r.exit_code == 1 and r.stderr.startswith("Error: ") and "Traceback" not in r.output
    assert run("--dir", str(path), "topic", "alter", "t", "--delete-config", "bogus", "--dry-run").exit_code == 2


def test_dump_log_as_json_lines(tmp_path):
    seg = make(tmp_path / "s")
    lines = run("dump-log", str(seg), "--print-data-log", "--output", "jsonl").stdout.splitlines()
    docs = [json.loads(ln) for ln in lines]
    assert [d["type"] for d in docs] == ["batch", "record", "record", "batch", "record"]
    assert docs[0]["baseOffset"] == 0 and docs[0]["count"] == 2 and docs[0]["isvalid"] is True
    assert docs[1] == {
        "type": "record",
        "offset": 0,
        "timestampType": "CreateTime",
        "timestamp": T0,
        "keySize": 6,
        "valueSize": 12,
        "sequence": -1,
        "headerKeys": ["trace", "src"],
        "key": "user-7",
        "payload": '{"amount":3}',
    }
    assert docs[2]["key"] is None and docs[2]["payload"] is None
    assert json.loads(run("dump-log", str(seg), "--output", "json").stdout)[1]["compresscodec"] == "lz4"
