"""S33, S34, S35: store metadata, hostile names and partitions, symlinks and permissions.

docs/reliability.md (scenarios S33-S35 and the security notes) says what each campaign runs and
what passes. Every campaign records its counts (iterations, faults injected, anomalies seen)
before it asserts, so a failing run still reports what it found. Tests named ``test_regression_*``
are the bugs these campaigns found, one each.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import json
import os
import shutil
import stat
import unicodedata
import urllib.parse

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli.main import cli
from logstore import (
    Consumer,
    InvalidConfigError,
    InvalidTopicError,
    LogStore,
    LogStoreError,
    NotAssignedError,
    Producer,
    StoreFormatError,
    TopicPartition,
    UnknownPartitionError,
    UnsafeStoreError,
)
from logstore.config import TOPIC_KEYS, validate_topic_config
from logstore.groups.admin import ResetTarget, delete_group, describe_group, list_groups, reset_offsets
from logstore.storage.files import DIR_MODE, FILE_MODE

from .conftest import iterations

RULE = "a-z A-Z 0-9 . _ -"  # the rule as the error states it


# --- helpers ----------------------------------------------------------------------------------------


def snapshot(root) -> dict[str, tuple]:
    """Every entry under ``root``, not following links: kind, and content hash or link target."""
    out: dict[str, tuple] = {}
    root = str(root)
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(d, n)
            st_ = os.lstat(p)
            rel = os.path.relpath(p, root)
            if stat.S_ISLNK(st_.st_mode):
                out[rel] = ("link", os.readlink(p))
            elif stat.S_ISDIR(st_.st_mode):
                out[rel] = ("dir",)
            else:
                with open(p, "rb") as f:
                    out[rel] = ("file", hashlib.sha256(f.read()).hexdigest())
    return out


def changed(before: dict, after: dict) -> list[str]:
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))


@contextlib.contextmanager
def no_file_calls(monkeypatch):
    """Within the block, any file system call fails the test: what is refused must be refused
    before a path is even looked at. Yields the list of calls made (empty when all is well)."""
    calls: list[str] = []

    def trip(name):
        def call(*args, **kwargs):
            calls.append(f"{name}{args[:1]!r}")
            raise AssertionError(f"file system call {name}{args[:1]!r} before the input was checked")

        return call

    names = ["stat", "lstat", "open", "listdir", "scandir", "mkdir", "makedirs", "rename", "replace", "unlink"]
    with monkeypatch.context() as m:
        for n in names:
            m.setattr(os, n, trip(f"os.{n}"))
        m.setattr(builtins, "open", trip("open"))
        yield calls


def make_store(path, *, topic="orders", partitions=2, records=3):
    with LogStore(path) as s:
        s.create_topic(topic, partitions)
        for p in range(partitions):
            s.append(topic, p, [f"{topic}-{p}-{i}".encode() for i in range(records)])
    return path


def run_cli(path, *args):
    return CliRunner().invoke(cli, ["--dir", str(path), *args], catch_exceptions=False)


def under(path, root) -> bool:
    real, base = os.path.realpath(path), os.path.realpath(root)
    return os.path.commonpath([real, base]) == base


# --- S33: store metadata deleted or damaged -----------------------------------------------------------


def open_every_way(path):
    """Try each way a store is opened; return the errors (None where an open succeeded)."""
    out = []
    for kwargs in ({}, {"create": False}, {"read_only": True}):
        try:
            LogStore(path, **kwargs).close()
            out.append(None)
        except LogStoreError as e:
            out.append(e)
    return out


def test_deleted_store_metadata_is_refused_and_never_reinitialized(tmp_path, campaign):
    path = make_store(tmp_path / "s")
    os.unlink(path / "logstore.json")
    before = snapshot(tmp_path)
    errors = open_every_way(path)
    bad = [e for e in errors if not isinstance(e, StoreFormatError) or "logstore.json" not in str(e)]
    bad += [e for e in errors if e is not None and "format_version" not in e.hint]  # says how to fix it
    diff = changed(before, snapshot(tmp_path))
    campaign("S33").add(iterations=len(errors), faults=1, anomalies=len(bad) + len(diff))
    assert not bad and not diff, (bad, diff)
    assert "missing" in str(errors[0]) and "never made over existing data" in str(errors[0])
    # The fix the error gives works, and the data is all there.
    (path / "logstore.json").write_text('{"format_version": 1}')
    with LogStore(path) as s:
        assert s.read("orders", 1, 0).values == [b"orders-1-0", b"orders-1-1", b"orders-1-2"]


def meta_damage(original: bytes) -> dict[str, bytes]:
    return {
        "empty": b"",
        "truncated": original[: len(original) // 2],
        "garbage": bytes(range(256)) * 3,
        "array": b"[]",
        "null": b"null",
        "string": b'"logstore"',
        "no-version": b"{}",
        "version-0": b'{"format_version": 0}',
        "version-negative": b'{"format_version": -1}',
        "version-text": b'{"format_version": "1"}',
        "version-bool": b'{"format_version": true}',
        "defaults-string": b'{"format_version": 1, "defaults": "fast"}',
        "defaults-array": b'{"format_version": 1, "defaults": [["flush.ms", 1]]}',
        "defaults-bad-value": b'{"format_version": 1, "defaults": {"retention.ms": "soon"}}',
        "defaults-unknown-key": b'{"format_version": 1, "defaults": {"log.dirs": "/etc"}}',
    }


def test_damaged_store_metadata_is_refused_by_name_and_changes_nothing(tmp_path, campaign):
    path = make_store(tmp_path / "s")
    meta = path / "logstore.json"
    original = meta.read_bytes()
    anomalies = []
    cases = meta_damage(original)
    for label, content in cases.items():
        meta.write_bytes(content)
        before = snapshot(tmp_path)
        for error in open_every_way(path):
            if not isinstance(error, StoreFormatError) or str(meta) not in str(error):
                anomalies.append((label, repr(error)))
        diff = changed(before, snapshot(tmp_path))
        if diff:
            anomalies.append((label, f"files changed: {diff}"))
    meta.write_bytes(original)
    campaign("S33").add(iterations=3 * len(cases), faults=len(cases), anomalies=len(anomalies))
    assert not anomalies
    with LogStore(path) as s:
        assert s.read("orders", 0, 0).values[0] == b"orders-0-0"


def test_regression_store_metadata_of_the_wrong_json_shape_raised_attribute_error(tmp_path):
    path = make_store(tmp_path / "s")
    for content in ("[]", '"x"', '{"format_version": 1, "defaults": "x"}'):
        (path / "logstore.json").write_text(content)
        with pytest.raises(StoreFormatError, match=r"logstore\.json"):
            LogStore(path)


def test_regression_store_metadata_null_was_taken_for_a_missing_file(tmp_path):
    path = make_store(tmp_path / "s")
    (path / "logstore.json").write_text("null")
    with pytest.raises(StoreFormatError, match="holds a JSON null"):
        LogStore(path)


def test_regression_store_with_only_a_hidden_topic_left_was_reinitialized(tmp_path):
    # Every store-level file lost; only the partition directory of topic ".hidden" is left. Its
    # name starts with a dot, which the "is this directory empty?" check skipped: a new store was
    # made there, and creating the topic again then removed the old partition directory.
    path = make_store(tmp_path / "s", topic=".hidden", partitions=1)
    for n in os.listdir(path):
        if n != ".hidden-0" and os.path.isfile(path / n):
            os.unlink(path / n)
    before = snapshot(tmp_path)
    with pytest.raises(StoreFormatError, match=r"\.hidden-0.*no logstore.json"):
        LogStore(path)
    assert changed(before, snapshot(tmp_path)) == []


def registry_damage() -> dict[str, bytes]:
    entry = {"partitions": 2, "config": {}, "topic_id": "x", "created_ms": 0}

    def doc(topics, **extra):
        return json.dumps({"version": 1, "topics": topics, **extra}).encode()

    return {
        "empty": b"",
        "truncated": b'{"version": 1, "topics": {"orders": {"partit',
        "garbage": bytes(range(255, -1, -1)),
        "array": b"[]",
        "no-topics": b'{"version": 1}',
        "topics-array": b'{"version": 1, "topics": []}',
        "version-2": doc({"orders": entry}, version=2),
        "entry-number": doc({"orders": 2}),
        "partitions-text": doc({"orders": {**entry, "partitions": "2"}}),
        "partitions-0": doc({"orders": {**entry, "partitions": 0}}),
        "partitions-bool": doc({"orders": {**entry, "partitions": True}}),
        "partitions-2**31": doc({"orders": {**entry, "partitions": 2**31}}),
        "config-array": doc({"orders": {**entry, "config": []}}),
        "config-bad-value": doc({"orders": {**entry, "config": {"segment.bytes": "huge"}}}),
        "name-traversal": doc({"../orders": entry}),
        "name-absolute": doc({"/tmp/orders": entry}),
        "name-newline": doc({"orders\n": entry}),
        "name-empty": doc({"": entry}),
    }


def test_damaged_topic_registry_is_refused_by_name_and_changes_nothing(tmp_path, campaign):
    path = make_store(tmp_path / "s")
    registry = path / "topics.json"
    original = registry.read_bytes()
    anomalies = []
    cases = registry_damage()
    for label, content in cases.items():
        registry.write_bytes(content)
        before = snapshot(tmp_path)
        for error in open_every_way(path):
            if not isinstance(error, StoreFormatError) or str(registry) not in str(error):
                anomalies.append((label, repr(error)))
        diff = changed(before, snapshot(tmp_path))
        if diff:
            anomalies.append((label, f"files changed: {diff}"))
    registry.write_bytes(original)
    campaign("S33").add(iterations=3 * len(cases), faults=len(cases), anomalies=len(anomalies))
    assert not anomalies


def test_regression_deleted_topic_registry_opened_as_empty_and_create_topic_wiped_the_data(tmp_path, campaign):
    path = make_store(tmp_path / "s")
    os.unlink(path / "topics.json")
    before = snapshot(tmp_path)
    errors = open_every_way(path)
    bad = [e for e in errors if not isinstance(e, StoreFormatError) or "topics.json is missing" not in str(e)]
    diff = changed(before, snapshot(tmp_path))
    campaign("S33").add(iterations=len(errors), faults=1, anomalies=len(bad) + len(diff))
    assert not bad and not diff, (bad, diff)
    assert "orders-0" in str(errors[0]) and "Restore topics.json" in str(errors[0])


def test_missing_registry_without_partition_directories_is_an_empty_store(tmp_path):
    # The crash window of store creation: logstore.json written, topics.json not yet.
    path = tmp_path / "s"
    LogStore(path).close()
    os.unlink(path / "topics.json")
    with LogStore(path) as s:
        assert s.topic_names() == []
        s.create_topic("t")
        assert s.topic_names() == ["t"]


def test_regression_registry_naming_a_path_made_partitions_outside_the_store(tmp_path):
    path = make_store(tmp_path / "s")
    doc = json.loads((path / "topics.json").read_text())
    doc["topics"]["../escaped"] = doc["topics"]["orders"]
    (path / "topics.json").write_text(json.dumps(doc))
    before = snapshot(tmp_path)
    with pytest.raises(StoreFormatError, match=r"illegal topic.*'/'"), LogStore(path) as s:
        s.partition("../escaped", 0)
    assert changed(before, snapshot(tmp_path)) == []
    assert not (tmp_path / "escaped-0").exists()


def test_regression_missing_partition_directory_was_made_again_empty(tmp_path, campaign):
    # A partition directory the registry lists was silently re-created empty: its offsets started
    # again at 0 under the consumers' committed offsets.
    path = make_store(tmp_path / "s")
    shutil.rmtree(path / "orders-1")
    before = snapshot(tmp_path)
    anomalies = []
    with LogStore(path) as s:
        assert s.read("orders", 0, 0).values[0] == b"orders-0-0"  # the other partition reads on
        for call in (lambda: s.partition("orders", 1), lambda: s.append("orders", 1, [b"x"])):
            try:
                call()
                anomalies.append("no error")
            except StoreFormatError as e:
                if "orders-1 is missing" not in str(e):
                    anomalies.append(str(e))
        problems = s.verify()  # reported among the problems, not raised
        if not any("orders-1" in p.path and "missing" in p.what for p in problems):
            anomalies.append(f"verify: {problems}")
    diff = [k for k in changed(before, snapshot(tmp_path)) if not k.startswith("s/orders-0")]
    campaign("S33").add(iterations=3, faults=1, anomalies=len(anomalies) + len(diff))
    assert not anomalies and not diff, (anomalies, diff)
    assert not (path / "orders-1").exists()


def test_damaged_partition_metadata_is_never_read_nor_rewritten(tmp_path, campaign):
    # partition.metadata holds Kafka's topic id for Kafka's tools; logstore writes it once at topic
    # creation and never reads it, so damage to it (or its loss) changes nothing.
    path = make_store(tmp_path / "s")
    (path / "orders-0" / "partition.metadata").write_bytes(b"\x00garbage\xff")
    os.unlink(path / "orders-1" / "partition.metadata")
    with LogStore(path) as s:
        values = [s.read("orders", p, 0).values for p in (0, 1)]
        s.append("orders", 0, [b"more"])
        problems = s.verify()
    ok = values[0][0] == b"orders-0-0" and values[1][0] == b"orders-1-0" and problems == []
    ok &= (path / "orders-0" / "partition.metadata").read_bytes() == b"\x00garbage\xff"
    ok &= not (path / "orders-1" / "partition.metadata").exists()
    campaign("S33").add(iterations=1, faults=2, anomalies=0 if ok else 1)
    assert ok


# --- S34: hostile topic names and partitions -------------------------------------------------------

HOSTILE_TOPICS = [
    "../x",
    "..",
    ".",
    "a/b",
    "/abs",
    "a\\b",
    "\x00",
    "a\x00b",
    "",
    "x" * 250,
    "x" * 10_000,
    "ｔｏｐｉｃ",  # full-width letters: not ASCII
    "topic\u200b",  # zero-width space
    "\u212a",  # KELVIN SIGN, which lower-cases to ASCII 'k'
    "é",
    "sp ace",
    "tab\t",
    "orders\n",  # Python's '$' matches before a trailing newline
    "orders\r",
    "..x/../..",
    5,
    None,
    b"orders",
]


@pytest.mark.parametrize("name", HOSTILE_TOPICS, ids=lambda n: repr(n)[:30])
def test_hostile_topic_names_are_refused_before_any_file_call(tmp_path, monkeypatch, campaign, name):
    path = make_store(tmp_path / "s")
    s = LogStore(path)
    s.topic_names()
    before = snapshot(tmp_path)
    outcome = None
    with no_file_calls(monkeypatch) as calls:
        try:
            s.create_topic(name, 1)
        except InvalidTopicError as e:
            outcome = e
        except Exception as e:  # anything else is the anomaly counted
            outcome = e
    s.close()
    ok = isinstance(outcome, InvalidTopicError) and RULE in str(outcome) and not calls
    diff = changed(before, snapshot(tmp_path))
    campaign("S34").add(iterations=1, faults=1, anomalies=(0 if ok else 1) + len(diff))
    assert ok, (outcome, calls)
    assert not diff


def test_regression_topic_name_with_a_trailing_newline_was_accepted(tmp_path):
    # TOPIC_NAME.match let "orders\n" through ('$' matches before a final newline); the name then
    # went into the checkpoint files, whose lines it split, and the store could no longer close.
    with LogStore(tmp_path / "s") as s:
        with pytest.raises(InvalidTopicError, match=r"contains '\\n'"):
            s.create_topic("orders\n")
        assert s.topic_names() == []
    assert not [n for n in os.listdir(tmp_path / "s") if "\n" in n]


@pytest.mark.parametrize(
    "first, second",
    [("a", "A"), ("orders", "ORDERS"), ("Orders.v1", "orders_v1"), ("a.b", "a_b"), ("a_b", "A.B")],
)
def test_regression_topic_names_differing_only_in_case_collide(tmp_path, campaign, first, second):
    with LogStore(tmp_path / "s") as s:
        s.create_topic(first)
        before = snapshot(tmp_path)
        try:
            s.create_topic(second)
            outcome = None
        except InvalidTopicError as e:
            outcome = e
        names = s.topic_names()
        diff = changed(before, snapshot(tmp_path))
    ok = outcome is not None and "collides" in str(outcome) and f"'{first}'" in str(outcome)
    campaign("S34").add(iterations=1, faults=1, anomalies=0 if ok and names == [first] else 1)
    assert ok and names == [first]
    assert diff == []
    if first.lower() != second.lower() or first.replace(".", "_") != second.replace(".", "_"):
        assert "case-insensitive" in str(outcome) or "'.' and '_'" in str(outcome)


def test_regression_249_character_topic_could_not_be_deleted(tmp_path):
    # Deleting renames each partition directory to "<dir>.<32 hex>-delete": 40 characters more,
    # over the 255-byte file name limit. The registry entry was gone by then: an orphan directory.
    name = "t" * 249
    with LogStore(tmp_path / "s") as s:
        s.create_topic(name, 3)
        s.append(name, 2, [b"x"])
        s.delete_topic(name)
        assert s.topic_names() == []
        assert os.listdir(tmp_path / "s").count(f"{name}-2") == 0
        s.create_topic(name, 3)  # and the name can be used again, empty
        assert s.describe_topic(name).partitions[2].end_offset == 0


def test_regression_long_topic_name_with_many_partitions_failed_half_way(tmp_path, monkeypatch):
    # 249 characters + "-100000" is 256 bytes: os.makedirs failed with a raw OSError after making
    # the first 100000 directories. The combination is refused before any directory is made.
    with LogStore(tmp_path / "s") as s:
        before = snapshot(tmp_path)
        with no_file_calls(monkeypatch) as calls, pytest.raises(InvalidTopicError, match="at most 255"):
            s.create_topic("y" * 249, 100_001)
        assert not calls and changed(before, snapshot(tmp_path)) == []
        s.create_topic("y" * 249, 3)  # fine with fewer partitions


@pytest.mark.parametrize("count", [0, -1, 2**31, 2**63, True, 1.0, "2"])
def test_partition_counts_outside_int32_are_refused_before_any_file_call(tmp_path, monkeypatch, campaign, count):
    with LogStore(tmp_path / "s") as s:
        with no_file_calls(monkeypatch) as calls:
            try:
                s.create_topic("t", count)
                outcome = None
            except InvalidConfigError as e:
                outcome = e
        ok = outcome is not None and not calls and ("2147483647" in str(outcome)) and s.topic_names() == []
    campaign("S34").add(iterations=1, faults=1, anomalies=0 if ok else 1)
    assert ok, (outcome, calls)


BAD_PARTITIONS = [-1, -(2**31), 2**31, 2**31 - 1, 2**63, 2, True, "0", 0.0]


@pytest.mark.parametrize("p", BAD_PARTITIONS, ids=repr)
def test_bad_partitions_are_refused_by_every_store_call_before_any_file_call(tmp_path, monkeypatch, campaign, p):
    path = make_store(tmp_path / "s")  # topic "orders" of partitions 0 and 1
    calls_ = {
        "partition": lambda s: s.partition("orders", p),
        "append": lambda s: s.append("orders", p, [b"x"]),
        "read": lambda s: s.read("orders", p, 0),
        "offset_for_time": lambda s: s.offset_for_time("orders", p, 0),
        "delete_records": lambda s: s.delete_records("orders", p, 0),
    }
    anomalies = []
    with LogStore(path) as s:
        s.partition("orders", 0), s.partition("orders", 1)
        before = snapshot(tmp_path)
        for label, call in calls_.items():
            # Within the int32 range the topic's partition count is needed: one read of the registry.
            in_range = isinstance(p, int) and not isinstance(p, bool) and 0 <= p < 2**31 - 1
            with contextlib.ExitStack() as stack:
                trips = [] if in_range else stack.enter_context(no_file_calls(monkeypatch))
                try:
                    call(s)
                    anomalies.append((label, "accepted"))
                except UnknownPartitionError as e:
                    if ("0..1" if in_range else "0..2147483646") not in str(e):
                        anomalies.append((label, str(e)))
                except Exception as e:
                    anomalies.append((label, repr(e)))
            if trips:
                anomalies.append((label, trips))
        diff = changed(before, snapshot(tmp_path))
    campaign("S34").add(iterations=len(calls_), faults=len(calls_), anomalies=len(anomalies) + len(diff))
    assert not anomalies and not diff, (anomalies, diff)


@pytest.mark.parametrize("p", BAD_PARTITIONS, ids=repr)
def test_bad_partitions_are_refused_by_consumers_producers_and_groups(tmp_path, campaign, p):
    path = make_store(tmp_path / "s")
    with LogStore(path) as s:
        reset_offsets(s, "g", ResetTarget.earliest(), topics=["orders"], execute=True)
        c = Consumer(s, group_id="g", enable_auto_commit=False)
        c.assign([TopicPartition("orders", 0)])
        prod = Producer(s, linger_ms=0)
        prod.send("orders", b"warm", partition=0).get(timeout=10)
        prod.flush()
        before = snapshot(tmp_path)
        tp = TopicPartition("orders", p)
        attempts = {
            "assign": (lambda: c.assign([tp]), (UnknownPartitionError, TypeError)),
            "seek": (lambda: c.seek(tp, 0), (NotAssignedError, TypeError)),
            "commit": (lambda: c.commit(offsets={tp: 1}), (UnknownPartitionError, TypeError)),
            "watermarks": (lambda: c.get_watermark_offsets(tp), (UnknownPartitionError, TypeError)),
            "send": (lambda: prod.send("orders", b"x", partition=p), (UnknownPartitionError, TypeError)),
            "send_many": (lambda: prod.send_many("orders", [b"x"], partition=p), (UnknownPartitionError, TypeError)),
            "reset_offsets": (
                lambda: reset_offsets(s, "g", ResetTarget.earliest(), topics=[("orders", [p])], execute=True),
                (UnknownPartitionError, TypeError),
            ),
        }
        anomalies = []
        for label, (call, expected) in attempts.items():
            try:
                call()
                anomalies.append((label, "accepted"))
            except expected:
                pass
            except Exception as e:
                anomalies.append((label, repr(e)))
        valid = isinstance(p, int) and not isinstance(p, bool)
        committed = c.committed([tp]) if valid else {tp: None}  # (an invalid key raises TypeError there too)
        prod.close()
        c.close()
        diff = changed(before, snapshot(tmp_path))
    campaign("S34").add(iterations=len(attempts), faults=len(attempts), anomalies=len(anomalies) + len(diff))
    assert not anomalies, anomalies
    assert committed == {tp: None}
    assert not diff, diff


def test_regression_commit_for_a_partition_that_does_not_exist_was_stored(tmp_path):
    # A consumer with a manual assignment committed offsets for ("orders", -1), ("orders", 2**31)
    # and ("nope", 0) without a word; a broker answers UNKNOWN_TOPIC_OR_PARTITION.
    path = make_store(tmp_path / "s")
    with LogStore(path) as s, Consumer(s, group_id="g", enable_auto_commit=False) as c:
        c.assign([("orders", 0)])
        for tp in (("orders", -1), ("orders", 2**31), ("orders", 2)):
            with pytest.raises(UnknownPartitionError):
                c.commit(offsets={tp: 5})
        with pytest.raises(LogStoreError, match="'nope' not found"):
            c.commit(offsets={("nope", 0): 5})
        c.commit(offsets={("orders", 1): 2})
        assert c.committed([("orders", 1), ("orders", -1)]) == {("orders", 1): 2, ("orders", -1): None}


def test_no_topic_config_value_is_a_path(campaign):
    # Config values never name files: every key parses a number or is one of fixed choices, so a
    # path is refused. (A key added later that takes a path must get its own checks.)
    accepted = []
    for key in TOPIC_KEYS:
        for value in ("../../etc/passwd", "/tmp/x", "a/b"):
            try:
                validate_topic_config({key: value})
                accepted.append((key, value))
            except InvalidConfigError:
                pass
    campaign("S34").add(iterations=3 * len(TOPIC_KEYS), faults=3 * len(TOPIC_KEYS), anomalies=len(accepted))
    assert not accepted


def kafka_legal(name: str) -> bool:
    """Kafka's topic rule, written out independently of the library's."""
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
    return 1 <= len(name) <= 249 and set(name) <= allowed and name not in (".", "..")


NAMES = st.one_of(
    st.text(max_size=40),
    st.text(alphabet="aZ09._-/\\\x00\n ｔé\u212a", max_size=30),
    st.from_regex(r"[a-zA-Z0-9._-]{1,60}", fullmatch=True),
    st.sampled_from(["..", ".", "../x", "x" * 249, "x" * 250]),
)


def test_arbitrary_topic_names_are_refused_by_rule_or_created_under_the_root(tmp_path, campaign):
    root = tmp_path / "s"
    outside = tmp_path / "outside"
    outside.mkdir()
    stores = [LogStore(root)]
    seen: dict[str, str] = {}  # lower-cased, '.'->'_' form -> name, for the collision rule
    counts = {"iterations": 0, "faults": 0, "anomalies": 0}
    problems: list[str] = []

    @settings(max_examples=iterations(150), deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(name=NAMES)
    def check(name):
        counts["iterations"] += 1
        counts["faults"] += not kafka_legal(name)
        if counts["iterations"] % 40 == 0:  # every created topic's logs are open: let them go now and then
            stores[0].close()
            stores[0] = LogStore(root)
        key = name.lower().replace(".", "_")
        try:
            stores[0].create_topic(name, 2, exist_ok=True)
            created = True
        except InvalidTopicError as e:
            created = False
            if RULE not in str(e) and "collides" not in str(e):
                problems.append(f"{name!r}: the error does not state the rule: {e}")
        legal = kafka_legal(name) and seen.get(key, name) == name
        if created != legal:
            problems.append(f"{name!r}: created={created}, but Kafka's rule says {legal}")
        if created:
            seen[key] = name
            for p in range(2):
                d = root / f"{name}-{p}"
                if not d.is_dir() or os.path.dirname(os.path.realpath(d)) != os.path.realpath(root):
                    problems.append(f"{name!r}: partition directory {d} is not a directory right under the root")
        if os.listdir(outside) or set(os.listdir(tmp_path)) != {"s", "outside"}:
            problems.append(f"{name!r}: a file appeared outside the store")

    try:
        check()
    finally:
        stores[0].close()
    counts["anomalies"] = len(problems)
    campaign("S34").add(**counts)
    assert not problems, problems[:5]


# --- S34: consumer group ids ---------------------------------------------------------------------------


def group_allowed(group: str) -> bool:
    """The documented group id rule, written out independently of the library's."""
    if not group or any(unicodedata.category(c) in ("Cc", "Cs") for c in group):
        return False
    escaped = urllib.parse.quote(group, safe="")
    return len(escaped) + (2 if group.startswith(".") else 0) <= 255


GROUPS = st.one_of(
    st.text(max_size=40),
    st.text(alphabet="aA0._-~/\\\x00\n%!é ", max_size=30),
    st.sampled_from(["..", ".", "../x", "groups", "a!b", "%2E", "g" * 214, "g" * 255, "g" * 256, "é" * 42, "é" * 43]),
)


def test_arbitrary_group_ids_are_refused_by_rule_or_kept_under_the_groups_directory(tmp_path, campaign):
    root = tmp_path / "s"
    make_store(root)
    store = LogStore(root)
    counts = {"iterations": 0, "faults": 0, "anomalies": 0}
    problems: list[str] = []

    @settings(max_examples=iterations(100), deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(group=GROUPS)
    def check(group):
        counts["iterations"] += 1
        allowed = group_allowed(group)
        counts["faults"] += not allowed
        try:
            reset_offsets(store, group, ResetTarget.earliest(), topics=["orders"], execute=True)
            created = True
        except InvalidConfigError as e:
            created = False  # (each group made is deleted again, so no case collision arises here)
            if "%-escaped" not in str(e):
                problems.append(f"{group!r}: the error does not state the rule: {e}")
        if created != allowed:
            problems.append(f"{group!r}: created={created}, but the rule says {allowed}")
        if created:
            if group not in list_groups(store):
                problems.append(f"{group!r}: not listed back")
            for d, dirs, files in os.walk(root / "groups"):
                for n in dirs + files:
                    if not under(os.path.join(d, n), root / "groups"):
                        problems.append(f"{group!r}: {os.path.join(d, n)} is outside groups/")
            try:
                delete_group(store, group)
            except LogStoreError as e:
                problems.append(f"{group!r}: cannot be deleted: {e}")
        if set(os.listdir(tmp_path)) != {"s"}:
            problems.append(f"{group!r}: a file appeared outside the store")
        leftovers = [n for n in os.listdir(root / "groups")] if (root / "groups").exists() else []
        if any(n in ("members", "offsets.log", "group.lock", "state.json") for n in leftovers):
            problems.append(f"{group!r}: group files were written into groups/ itself")

    try:
        check()
    finally:
        store.close()
    counts["anomalies"] = len(problems)
    campaign("S34").add(**counts)
    assert not problems, problems[:5]


@pytest.mark.parametrize("group", ["", "\ud800", "a\udc80b", "g" * 256, "a\nb", "\x1b]0;owned\x07"])
def test_regression_bad_group_ids_crashed_or_wrote_into_groups_itself(tmp_path, monkeypatch, group):
    # "" made groups/ itself the group's directory; lone surrogates raised UnicodeEncodeError; a
    # 256-byte name failed only at mkdir; control characters broke 'group list' lines (and could
    # drive the terminal). All are refused before any file is looked at.
    path = make_store(tmp_path / "s")
    with LogStore(path) as s:
        before = snapshot(tmp_path)
        refused = pytest.raises(InvalidConfigError, match="not a valid consumer group id")
        with no_file_calls(monkeypatch) as calls, refused as e:
            Consumer(s, "orders", group_id=group)
        assert not calls
        for call in (
            lambda: reset_offsets(s, group, ResetTarget.earliest(), topics=["orders"], execute=True),
            lambda: reset_offsets(s, group, ResetTarget.earliest(), topics=["orders"]),
            lambda: describe_group(s, group),
            lambda: delete_group(s, group),
        ):
            with pytest.raises(InvalidConfigError, match="%-escaped"):
                call()
        assert changed(before, snapshot(tmp_path)) == []
        assert "%-escaped" in str(e.value)


def test_regression_group_with_a_long_id_could_not_be_deleted(tmp_path):
    # Deletion renames the directory to "<name>!<32 hex>.deleted", 41 bytes more: a group id of
    # 215-255 bytes was made, then could never be deleted (StorageError: file name too long).
    path = make_store(tmp_path / "s")
    with LogStore(path) as s:
        for group in ("g" * 255, "é" * 42):
            reset_offsets(s, group, ResetTarget.earliest(), topics=["orders"], execute=True)
            assert group in list_groups(s)
            delete_group(s, group)
            assert group not in list_groups(s)
        assert os.listdir(path / "groups") == []


def test_regression_group_ids_differing_only_in_case_shared_a_directory(tmp_path):
    path = make_store(tmp_path / "s")
    with LogStore(path) as s:
        with Consumer(s, "orders", group_id="Billing", stop_at_end=True) as c:
            list(c)
        with pytest.raises(InvalidConfigError, match="collides with existing group 'Billing'"):
            Consumer(s, "orders", group_id="billing")
        with pytest.raises(InvalidConfigError, match="case-insensitive"):
            reset_offsets(s, "BILLING", ResetTarget.earliest(), topics=["orders"], execute=True)
        assert list_groups(s) == ["Billing"]
        with Consumer(s, "orders", group_id="Billing", stop_at_end=True) as c:  # the same id still works
            assert list(c) == []


def test_regression_long_client_id_made_a_member_file_name_too_long(tmp_path):
    path = make_store(tmp_path / "s")
    with LogStore(path) as s:
        for client_id, expected in (("c" * 300, 6), ("\udc80client", 0)):
            with Consumer(s, "orders", group_id="g", client_id=client_id, stop_at_end=True) as c:
                assert len(list(c)) == expected
                c.commit()
        assert describe_group(s, "g").state == "Empty"


def test_existing_group_ids_keep_their_directories(tmp_path):
    # The escaping is unchanged: groups made by earlier versions open as before.
    path = make_store(tmp_path / "s")
    expected = {"billing": "billing", "a/b c": "a%2Fb%20c", "..": "%2E.", "Ünï": "%C3%9Cn%C3%AF", "x~y": "x~y"}
    with LogStore(path) as s:
        for group in expected:
            reset_offsets(s, group, ResetTarget.earliest(), topics=["orders"], execute=True)
        assert sorted(os.listdir(path / "groups")) == sorted(expected.values())
        assert list_groups(s) == sorted(expected)


def test_cli_group_commands_refuse_bad_ids_and_keep_odd_ones_under_the_store(tmp_path, campaign):
    path = make_store(tmp_path / "s")
    results = []
    for args in (
        ("group", "describe", ""),
        ("group", "delete", ""),
        ("group", "reset-offsets", "a\nb", "--all-topics", "--to-earliest", "--execute"),
        ("consume", "orders", "-g", "", "-e"),
    ):
        before = snapshot(tmp_path)
        r = run_cli(path, *args)
        refused = r.exit_code == 2 and "not a valid consumer group id" in r.output
        results.append(refused and not changed(before, snapshot(tmp_path)))
    r = run_cli(path, "group", "reset-offsets", "../../x", "--topic", "orders", "--to-earliest", "--execute")
    results.append(r.exit_code == 0 and os.listdir(path / "groups") == ["%2E.%2F..%2Fx"])
    results.append(set(os.listdir(tmp_path)) == {"s"})
    r = run_cli(path, "group", "list")
    results.append(r.stdout.splitlines() == ["../../x"])
    r = run_cli(path, "group", "delete", "../../x")
    results.append(r.exit_code == 0 and os.listdir(path / "groups") == [])
    campaign("S34").add(iterations=len(results), faults=5, anomalies=results.count(False))
    assert all(results), results


# --- S35: symbolic links, a world-writable root, file modes -----------------------------------------------


@pytest.fixture
def linked(tmp_path):
    """A store whose orders-1 directory was replaced by a link to a copy of it outside the store."""
    path = make_store(tmp_path / "s")
    outside = tmp_path / "elsewhere"
    shutil.move(str(path / "orders-1"), str(outside))
    os.symlink(outside, path / "orders-1")
    return path, outside


def test_regression_symlinked_partition_directory_was_followed_and_written_through(linked, campaign):
    path, outside = linked
    before = snapshot(outside)
    anomalies = []
    with LogStore(path) as s:
        attempts = {
            "partition": lambda: s.partition("orders", 1),
            "append": lambda: s.append("orders", 1, [b"x"]),
            "read": lambda: s.read("orders", 1, 0),
            "describe": lambda: s.describe_topic("orders"),
            "recover": lambda: s.recover("orders"),
            "retention": lambda: s.apply_retention("orders"),
            "delete_topic": lambda: s.delete_topic("orders"),
        }
        for label, call in attempts.items():
            try:
                call()
                anomalies.append((label, "accepted"))
            except UnsafeStoreError as e:
                if "symbolic link" not in str(e) or str(path / "orders-1") not in str(e):
                    anomalies.append((label, str(e)))
            except Exception as e:
                anomalies.append((label, repr(e)))
        problems = s.verify()
        if not any("symbolic link" in p.what for p in problems):
            anomalies.append(("verify", problems))
        assert s.read("orders", 0, 0).values[0] == b"orders-0-0"  # the rest of the store works
    r = run_cli(path, "verify")
    if r.exit_code != 1 or "symbolic link" not in r.output:
        anomalies.append(("cli verify", r.output))
    diff = changed(before, snapshot(outside))
    campaign("S35").add(iterations=len(attempts) + 2, faults=1, anomalies=len(anomalies) + len(diff))
    assert not anomalies, anomalies
    assert not diff, diff  # nothing was read-recovered, locked or written through the link
    assert os.path.islink(path / "orders-1") and (path / "topics.json").exists()


def test_symlinked_leftover_of_a_deleted_topic_is_unlinked_not_followed(tmp_path):
    # A link named like a partition of a topic being created (a leftover, or planted) is removed
    # as a link; what it points to is not touched.
    path = tmp_path / "s"
    LogStore(path).close()
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "data").write_text("keep")
    os.symlink(outside, path / "fresh-0")
    with LogStore(path) as s:
        s.create_topic("fresh")
        s.append("fresh", 0, [b"x"])
    LogStore(path).close()
    assert not os.path.islink(path / "fresh-0") and (outside / "data").read_text() == "keep"
    assert os.listdir(outside) == ["data"]
    assert not [n for n in os.listdir(path) if n.endswith("-delete")]  # the link did not stay behind


def test_symlinked_group_directories_are_refused(tmp_path, campaign):
    path = make_store(tmp_path / "s")
    with LogStore(path) as s:
        reset_offsets(s, "g", ResetTarget.earliest(), topics=["orders"], execute=True)
    outside = tmp_path / "elsewhere"
    anomalies = []
    for link in (path / "groups" / "g", path / "groups"):
        shutil.move(str(link), str(outside))
        os.symlink(outside, link)
        before = snapshot(outside)
        with LogStore(path) as s:
            for call in (
                lambda: Consumer(s, "orders", group_id="g"),
                lambda: describe_group(s, "g"),
                lambda: reset_offsets(s, "g", ResetTarget.latest(), topics=["orders"], execute=True),
            ):
                try:
                    made = call()
                    anomalies.append((str(link), "accepted"))
                    getattr(made, "close", lambda: None)()
                except UnsafeStoreError as e:
                    if "symbolic link" not in str(e):
                        anomalies.append((str(link), str(e)))
                except Exception as e:
                    anomalies.append((str(link), repr(e)))
        anomalies += changed(before, snapshot(outside))
        os.unlink(link)
        shutil.move(str(outside), str(link))
    campaign("S35").add(iterations=6, faults=2, anomalies=len(anomalies))
    assert not anomalies, anomalies


@pytest.mark.parametrize("mode", [0o777, 0o757, 0o1777])
def test_world_writable_store_root_is_refused_at_open(tmp_path, campaign, mode):
    path = make_store(tmp_path / "s")
    os.chmod(path, mode)
    before = snapshot(tmp_path)
    try:
        errors = open_every_way(path)
        bad = [e for e in errors if not isinstance(e, UnsafeStoreError) or f"chmod o-w {path}" not in str(e)]
        diff = changed(before, snapshot(tmp_path))
        campaign("S35").add(iterations=len(errors), faults=1, anomalies=len(bad) + len(diff))
        assert not bad and not diff, (bad, diff)
        assert f"mode {mode:04o}" in str(errors[0])
    finally:
        os.chmod(path, mode & ~0o002)
    with LogStore(path) as s:  # the fix the error gives works
        assert s.topic_names() == ["orders"]


def test_world_writable_shared_directory_is_not_made_a_store(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    with pytest.raises(UnsafeStoreError, match="directory of its own"):
        LogStore(shared)
    assert os.listdir(shared) == []
    # Under such a directory (as under /tmp) a store is fine: only the root itself is checked.
    with LogStore(shared / "mine") as s:
        s.create_topic("t")
    assert stat.S_IMODE(os.stat(shared / "mine").st_mode) & 0o002 == 0


def test_group_writable_root_is_accepted(tmp_path):
    # Sharing a store with a group (chmod g+w) is a choice the owner makes; only "other" is refused.
    path = make_store(tmp_path / "s")
    os.chmod(path, 0o775)
    with LogStore(path) as s:
        assert s.topic_names() == ["orders"]


def test_regression_directories_were_world_writable_under_umask_0(tmp_path):
    """Scope: what store.py and logstore/groups/ make. os.makedirs() without a mode made the store
    root (and its missing parents), partition directories, groups/, each group's directory and
    members/ with 0o777 less the umask: world-writable for a process running with umask 0."""
    old = os.umask(0)
    try:
        with LogStore(tmp_path / "new" / "s") as s:
            s.create_topic("t", 2)
            with Consumer(s, "t", group_id="g", stop_at_end=True) as c:
                list(c)
                members = os.listdir(tmp_path / "new" / "s" / "groups" / "g" / "members")
                member_mode = stat.S_IMODE(
                    os.stat(tmp_path / "new" / "s" / "groups" / "g" / "members" / members[0]).st_mode
                )
    finally:
        os.umask(old)
    made = ["new", "new/s", "new/s/t-0", "new/s/t-1", "new/s/groups", "new/s/groups/g", "new/s/groups/g/members"]
    modes = {d: stat.S_IMODE(os.stat(tmp_path / d).st_mode) for d in made}
    assert modes == dict.fromkeys(made, DIR_MODE)
    assert member_mode == FILE_MODE


def writable_entries(root) -> list[str]:
    out = []
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(d, n)
            mode = stat.S_IMODE(os.lstat(p).st_mode)
            if mode & 0o022:
                out.append(f"{oct(mode)} {os.path.relpath(p, root)}")
    return out


@pytest.mark.parametrize("umask", [0, 0o077])
def test_nothing_the_store_creates_is_group_or_world_writable(tmp_path, campaign, umask):
    """Scope: the WHOLE store tree, so this covers the files made by logstore/storage/*.py
    (segments, indexes, lock files, checkpoints; another change applies FILE_MODE / DIR_MODE there)
    as well as those made by store.py and logstore/groups/ (the root and its parents, partition
    directories, groups/, members/ and member files). A failure lists each offending path."""
    base = tmp_path / "new" / "parents"
    path = base / "s"
    old = os.umask(umask)
    try:
        with LogStore(path, config={"segment.bytes": 1024}) as s:
            s.create_topic("t", 2, config={"retention.ms": "1h"})
            for i in range(30):
                s.append("t", i % 2, [b"v" * 200], timestamps=[1_000 + i])
            segments = len(s.partition("t", 0).segments)
            with Consumer(s, "t", group_id="g", stop_at_end=True) as c:
                consumed = sum(1 for _ in c)
                c.commit()
                found = writable_entries(tmp_path / "new")  # members/<id> exists only while it lives
            reset_offsets(s, "h", ResetTarget.earliest(), topics=["t"], execute=True)
            deleted = sum(r.segments_deleted for r in s.apply_retention())
            s.delete_records("t", 1, 3)
    finally:
        os.umask(old)
    found += writable_entries(tmp_path / "new")
    allowed_file, allowed_dir = FILE_MODE & ~umask, DIR_MODE & ~umask
    wider = []
    for d, dirs, files in os.walk(tmp_path / "new"):
        for n, allowed in [(x, allowed_dir) for x in dirs] + [(x, allowed_file) for x in files]:
            mode = stat.S_IMODE(os.lstat(os.path.join(d, n)).st_mode)
            if mode & ~allowed:
                wider.append(f"{oct(mode)} {os.path.relpath(os.path.join(d, n), tmp_path)}")
    campaign("S35").add(iterations=1, faults=0, anomalies=len(set(found)) + len(wider))
    assert segments >= 3 and consumed == 30 and deleted >= 2  # the walk covers a store that did things
    assert not found, sorted(set(found))
    assert not wider, wider  # the umask is respected: no mode is wider than FILE_MODE / DIR_MODE allow
