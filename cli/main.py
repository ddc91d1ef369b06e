"""The ``logstore`` command: a thin click layer over the library.

Data goes to stdout, messages to stderr. Exit codes: 0 ok, 1 error, 2 usage, 3 not found,
4 conflict, 130 interrupted. A library error becomes one line on stderr: ``Error: <what>. <fix>``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import click

import logstore
from logstore import LogStore, LogStoreError
from logstore.config import format_duration_ms, format_size

DEFAULT_DIR = os.path.join(os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share"), "logstore")
EPILOG = """\b
Exit codes: 0 ok, 1 error, 2 usage, 3 not found, 4 conflict, 130 interrupted.
Durations accept ms, 500ms, 30s, 12h, 7d, PT1H; sizes accept bytes, 64KiB, 512MiB, 1GiB."""


class Ctx:
    def __init__(self, directory: str, output: str, verbose: int) -> None:
        self.directory = directory
        self.output = output
        self.verbose = verbose

    def store(self, create: bool = True) -> LogStore:
        return LogStore(self.directory, create=create)

    def info(self, message: str) -> None:
        if self.verbose >= 0:
            click.echo(message, err=True)


def run(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn library errors into one stderr line and the error's exit code."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except LogStoreError as e:
            click.echo(f"Error: {e}", err=True)
            sys.exit(e.exit_code)
        except KeyboardInterrupt:
            sys.exit(130)

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


@click.group(epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--dir",
    "directory",
    envvar="LOGSTORE_DIR",
    default=DEFAULT_DIR,
    show_default=True,
    type=click.Path(file_okay=False),
    help="Store directory (env LOGSTORE_DIR).",
)
@click.option("--output", "-o", type=click.Choice(["text", "json"]), default="text", help="Output format.")
@click.option("-q", "--quiet", count=True, help="Fewer messages on stderr.")
@click.option("-v", "--verbose", count=True, help="More messages on stderr.")
@click.version_option(logstore.__version__, prog_name="logstore")
@click.pass_context
def cli(ctx: click.Context, directory: str, output: str, quiet: int, verbose: int) -> None:
    """logstore: a Kafka-compatible partitioned log store on local disk."""
    ctx.obj = Ctx(directory, output, verbose - quiet)


# --- topics ---------------------------------------------------------------------------------------


@cli.group()
def topic() -> None:
    """Create, list, describe and delete topics."""


def parse_configs(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise click.BadParameter(f"'{pair}' is not key=value (e.g. retention.ms=7d)", param_hint="--config")
        k, v = pair.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def human(key: str, value: Any) -> str:
    if key.endswith(".ms") and isinstance(value, int):
        return f"{value} ({format_duration_ms(value)})"
    if key.endswith(".bytes") and isinstance(value, int):
        return f"{value} ({format_size(value)})"
    return str(value)


@topic.command("create")
@click.argument("name")
@click.option("--partitions", "-p", default=1, show_default=True, type=click.IntRange(min=1))
@click.option("--config", "-c", "configs", multiple=True, metavar="KEY=VALUE", help="Topic config (repeatable).")
@click.option("--if-not-exists", is_flag=True, help="Succeed when the topic exists already.")
@click.pass_obj
@run
def topic_create(obj: Ctx, name: str, partitions: int, configs: tuple[str, ...], if_not_exists: bool) -> None:
    """Create topic NAME.

    \b
    Example:
      logstore topic create orders --partitions 4 --config retention.ms=7d
    """
    with obj.store() as store:
        existed = if_not_exists and name in store.topic_names()
        store.create_topic(name, partitions, parse_configs(configs), exist_ok=if_not_exists)
    click.echo(f"Topic {name} already exists." if existed else f"Created topic {name}.")


@topic.command("list")
@click.pass_obj
@run
def topic_list(obj: Ctx) -> None:
    """List topics, one per line."""
    with obj.store(create=False) as store:
        topics = store.list_topics()
    if obj.output == "json":
        click.echo(json.dumps([{"topic": t.name, "partition_count": t.partition_count} for t in topics]))
    else:
        for t in topics:
            click.echo(t.name)


@topic.command("describe")
@click.argument("names", nargs=-1, required=True)
@click.pass_obj
@run
def topic_describe(obj: Ctx, names: tuple[str, ...]) -> None:
    """Describe topics: config, then per partition its offsets, segments and size."""
    docs = []
    with obj.store(create=False) as store:
        for name in names:
            info = store.describe_topic(name)
            if obj.output == "json":
                docs.append(
                    {
                        "topic": info.name,
                        "topic_id": info.topic_id,
                        "partition_count": info.partition_count,
                        "configs": info.config,
                        "partitions": [vars(p) for p in info.partitions],
                    }
                )
                continue
            configs = ",".join(f"{k}={human(k, v)}" for k, v in sorted(info.config.items()))
            click.echo(
                f"Topic: {info.name}\tTopicId: {info.topic_id}\tPartitionCount: {info.partition_count}"
                + f"\tConfigs: {configs}"
            )
            for p in info.partitions:
                click.echo(
                    f"\tTopic: {info.name}\tPartition: {p.partition}\tStartOffset: {p.start_offset}"
                    f"\tEndOffset: {p.end_offset}\tSegments: {p.segments}"
                    f"\tSize: {p.size_bytes} ({format_size(p.size_bytes)})"
                )
    if obj.output == "json":
        click.echo(json.dumps(docs, indent=2))


@topic.command("delete")
@click.argument("name")
@click.option("--if-exists", is_flag=True, help="Succeed when the topic does not exist.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--dry-run", is_flag=True, help="Say what would be deleted; change nothing.")
@click.pass_obj
@run
def topic_delete(obj: Ctx, name: str, if_exists: bool, yes: bool, dry_run: bool) -> None:
    """Delete topic NAME and all its data."""
    with obj.store(create=False) as store:
        if name not in store.topic_names():
            if if_exists:
                obj.info(f"Topic {name} does not exist; nothing to do.")
                return
            store.describe_topic(name)  # raises UnknownTopicError with a suggestion
        info = store.describe_topic(name)
        size = sum(p.size_bytes for p in info.partitions)
        records = sum(p.end_offset - p.start_offset for p in info.partitions)
        plan = f"topic {name}: {info.partition_count} partitions, {records} records, {format_size(size)}"
        if dry_run:
            click.echo(f"Would delete {plan}.")
            return
        if not yes:
            if not sys.stdin.isatty():
                raise click.UsageError("refusing to delete without --yes when stdin is not a terminal")
            click.confirm(f"Delete {plan}?", abort=True, err=True)
        store.delete_topic(name)
    click.echo(f"Deleted topic {name}.")


# --- produce ------------------------------------------------------------------------------------

CHUNK_LINES = 65536


def _lines(stream: Any) -> Any:
    """Yield ``(line_number, bytes)`` for each line of a binary stream (without the newline)."""
    number = 0
    rest = b""
    while True:
        block = stream.read(1 << 20)
        if not block:
            break
        parts = (rest + block).split(b"\n")
        rest = parts.pop()
        for line in parts:
            number += 1
            yield number, line  # binary-safe: a trailing \r is data too
    if rest:
        yield number + 1, rest


class BadLine(Exception):
    pass


def _parse_jsonl(line: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(line)
    except ValueError as e:
        raise BadLine(f"not JSON ({e})") from None
    if not isinstance(doc, dict):
        raise BadLine("not a JSON object")
    unknown = set(doc) - {"key", "value", "headers", "partition", "timestamp"}
    if unknown:
        raise BadLine(f"unknown field(s) {', '.join(sorted(unknown))}")
    for field in ("key", "value"):
        if doc.get(field) is not None and not isinstance(doc[field], str):
            raise BadLine(f"'{field}' must be a string or null")
    if doc.get("headers") is not None:
        h = doc["headers"]
        if isinstance(h, dict):
            pairs = list(h.items())
        elif isinstance(h, list) and all(isinstance(p, list) and len(p) == 2 for p in h):
            pairs = [(p[0], p[1]) for p in h]
        else:
            raise BadLine("'headers' must be an object or a list of [key, value] pairs")
        if not all(isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in pairs):
            raise BadLine("header keys must be strings and values strings or null")
        doc["headers"] = [(k, None if v is None else v.encode()) for k, v in pairs]
    for field in ("partition", "timestamp"):
        v = doc.get(field)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
            raise BadLine(f"'{field}' must be a non-negative integer")
    return doc


@cli.command()
@click.argument("topic")
@click.option("--file", "-l", "file_", type=click.File("rb"), help="Read records from FILE (default: stdin).")
@click.option("--input", "input_format", type=click.Choice(["lines", "jsonl"]), default="lines", show_default=True)
@click.option("--key-separator", "-K", help="Split each line into key SEP value (Kafka's parse.key).")
@click.option("--partition", "-p", type=click.IntRange(min=0), help="Send every record to this partition.")
@click.option("--header", "-H", "headers", multiple=True, metavar="KEY=VALUE", help="Header on every record.")
@click.option("--compression", type=click.Choice(["none", "gzip", "snappy", "lz4", "zstd"]), default="lz4")
@click.option("--linger-ms", type=click.IntRange(min=0), default=5, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=16384, show_default=True)
@click.option("--skip-bad-lines", is_flag=True, help="Report malformed lines and go on (default: stop).")
@click.option("-v", "--verbose", count=True, help="Print each record's partition and offset to stderr.")
@click.pass_obj
@run
def produce(
    obj: Ctx,
    topic: str,
    file_: Any,
    input_format: str,
    key_separator: str | None,
    partition: int | None,
    headers: tuple[str, ...],
    compression: str,
    linger_ms: int,
    batch_size: int,
    skip_bad_lines: bool,
    verbose: int,
) -> None:
    """Append records to TOPIC from stdin or --file: one value per line (binary-safe), or
    key SEP value with -K, or JSON objects {"key","value","headers","partition","timestamp"}
    with --input jsonl. A summary goes to stderr; -v prints each record's offset.

    \b
    Example:
      seq 1 1000 | logstore produce orders
      logstore produce orders -K : --file keyed.txt
    """
    from logstore import Producer
    from logstore.producer import headers_size

    stream = file_ or sys.stdin.buffer
    common: list[tuple[str, bytes | None]] = []
    for h in headers:
        if "=" not in h:
            raise click.BadParameter(f"'{h}' is not key=value", param_hint="--header")
        k, v = h.split("=", 1)
        common.append((k, v.encode()))
    if key_separator == "":
        raise click.BadParameter("the key separator cannot be empty", param_hint="--key-separator")
    sep = key_separator.encode() if key_separator else None
    verbose = bool(verbose) or obj.verbose > 0
    started = time.monotonic()
    total = nbytes = bad = 0
    used: set[int] = set()
    show_progress = sys.stderr.isatty() and obj.verbose >= 0
    with (
        obj.store(create=False) as store,
        Producer(store, compression_type=compression, linger_ms=linger_ms, batch_size=batch_size) as prod,
    ):

        def flush_chunk(vals: list[Any], keys: list[Any] | None, hdrs: list[Any] | None, nums: list[int]) -> None:
            nonlocal total, nbytes
            if not vals:
                return
            res = prod.send_many(topic, vals, keys, partition=partition, headers=hdrs if hdrs and any(hdrs) else None)
            total += len(vals)
            nbytes += sum(len(v) for v in vals if v is not None)
            used.update(int(p) for p in set(res.partitions.tolist()))
            if verbose:
                for p, o in zip(res.partitions.tolist(), res.offsets.tolist(), strict=True):
                    click.echo(f"Produced to partition {p} at offset {o}.", err=True)
            if show_progress:
                click.echo(f"\r{total} records", err=True, nl=False)

        # Limits checked per line, so a bad record is a numbered bad line (skippable), not a failed
        # chunk of good ones.
        limit = min(prod.config["max_request_size"], store.topic_config(topic).max_message_bytes - 61)
        partitions = store.partition_count(topic)
        common_size = headers_size(common)

        def check(value: bytes | None, key: bytes | None, extra: Any = None) -> None:
            size = 21 + len(value or b"") + len(key or b"") + common_size
            size += headers_size(extra)
            if size > limit:
                raise BadLine(f"a {size}-byte record exceeds the limit of {limit} bytes")

        vals: list[Any] = []
        keys: list[Any] | None = [] if (sep or input_format == "jsonl") else None
        hdrs: list[Any] | None = [] if (common or input_format == "jsonl") else None
        nums: list[int] = []
        pending: list[Any] = []  # records sent one by one (jsonl with partition or timestamp)
        for number, line in _lines(stream):
            try:
                if input_format == "jsonl":
                    if not line.strip():
                        continue
                    doc = _parse_jsonl(line)
                    if doc.get("partition") is not None and doc["partition"] >= partitions:
                        raise BadLine(f"partition {doc['partition']} does not exist (0..{partitions - 1})")
                    v = doc.get("value")
                    k = doc.get("key")
                    check(
                        v.encode() if v is not None else None,
                        k.encode() if k is not None else None,
                        [(hk, hv) for hk, hv in (doc.get("headers") or [])],
                    )
                    if doc.get("partition") is not None or doc.get("timestamp") is not None:
                        # Per-record placement or time: send individually (still batched).
                        flush_chunk(vals, keys, hdrs, nums)
                        vals, keys, hdrs, nums = [], [], [], []
                        pending.append(
                            prod.send(
                                topic,
                                doc.get("value"),
                                doc.get("key"),
                                partition=doc.get("partition", partition),
                                timestamp=doc.get("timestamp"),
                                headers=(doc.get("headers") or []) + common or None,
                            )
                        )
                        nbytes += len(doc.get("value") or "")
                        continue
                    v = doc.get("value")
                    k = doc.get("key")
                    vals.append(v.encode() if v is not None else None)
                    assert keys is not None and hdrs is not None
                    keys.append(k.encode() if k is not None else None)
                    hdrs.append((doc.get("headers") or []) + common or None)
                elif sep is not None:
                    k, found, v = line.partition(sep)
                    if not found:
                        raise BadLine(f"no key separator {key_separator!r}")
                    check(v, k)
                    vals.append(v)
                    assert keys is not None
                    keys.append(k)
                    if hdrs is not None:
                        hdrs.append(common)
                else:
                    check(line, None)
                    vals.append(line)
                    if hdrs is not None:
                        hdrs.append(common)
                nums.append(number)
            except BadLine as e:
                bad += 1
                click.echo(f"line {number}: {e}", err=True)
                if not skip_bad_lines:
                    flush_chunk(vals, keys, hdrs, nums)
                    click.echo(
                        f"Error: stopped at malformed line {number} after {total} records "
                        "(pass --skip-bad-lines to report and go on).",
                        err=True,
                    )
                    sys.exit(1)
            if len(vals) >= CHUNK_LINES:
                flush_chunk(vals, keys, hdrs, nums)
                vals, nums = [], []
                keys = [] if keys is not None else None
                hdrs = [] if hdrs is not None else None
        flush_chunk(vals, keys, hdrs, nums)
        prod.flush()
        for f in pending:
            md = f.get()
            total += 1
            used.add(md.partition)
            if verbose:
                click.echo(f"Produced to partition {md.partition} at offset {md.offset}.", err=True)
    elapsed = time.monotonic() - started
    if show_progress:
        click.echo("", err=True)
    skipped = f", {bad} bad line(s) skipped" if bad else ""
    obj.info(
        f"Produced {total} records ({format_size(nbytes)}) to {len(used)} partition(s) of {topic} "
        f"in {elapsed:.2f}s{skipped}."
    )


# --- verification ---------------------------------------------------------------------------------


@cli.command()
@click.option("--topic", "-t", "topic_name", help="Only this topic.")
@click.pass_obj
@run
def verify(obj: Ctx, topic_name: str | None) -> None:
    """Check every batch CRC, offset order and index against the log; change nothing.

    Exits 1 and lists each problem (file, byte position, what) when there are any.
    """
    with obj.store(create=False) as store:
        problems = store.verify(topic_name)
    for p in problems:
        click.echo(str(p))
    if problems:
        click.echo(f"{len(problems)} problem(s) found.", err=True)
        sys.exit(1)
    obj.info("ok: no problems found.")


# --- the demo -------------------------------------------------------------------------------------


@cli.command()
@click.option(
    "--input",
    "input_path",
    default="data/events.jsonl",
    show_default=True,
    type=click.Path(exists=True, dir_okay=False),
)
@click.option("--topic", "topic_name", default="events", show_default=True)
@click.option("--partitions", default=4, show_default=True, type=click.IntRange(min=1))
@click.pass_obj
@run
def demo(obj: Ctx, input_path: str, topic_name: str, partitions: int) -> None:
    """Walk through the embedded store: load sample events, replay, look up by time, verify."""
    from logstore.partitioner import murmur2_partition

    with open(input_path, encoding="utf-8") as f:
        events = [json.loads(line) for line in f if line.strip()]
    with obj.store() as store:
        click.echo(f"store: {store.path}")
        store.create_topic(topic_name, partitions, exist_ok=True)
        count = store.describe_topic(topic_name).partition_count
        routed: dict[int, list[dict[str, Any]]] = {p: [] for p in range(count)}
        for e in events:
            routed[murmur2_partition(e["key"].encode(), count)].append(e)
        click.echo(f"appending {len(events)} events from {input_path} (keys routed with Kafka's murmur2):")
        for p, evs in routed.items():
            if not evs:
                continue
            r = store.append(
                topic_name,
                p,
                [e["value"].encode() for e in evs],
                [e["key"].encode() for e in evs],
                timestamps=[e["timestamp"] for e in evs],
                compression_type="lz4",
            )
            click.echo(
                f"  {topic_name}-{p}: {len(evs)} records at offsets {r.first_offset}..{r.last_offset} (one lz4 batch)"
            )
        log = store.partition(topic_name, 0)
        start = max(log.log_start_offset, log.next_offset - 5)
        cols = store.read(topic_name, 0, start, max_records=3)
        click.echo(f"replay {topic_name}-0 from offset {start}:")
        for off, key, val in zip(cols.offsets, cols.keys, cols.values, strict=True):
            click.echo(f"  offset {off} key={key.decode()} value={val.decode()[:60]}")
        mid = events[len(events) // 2]["timestamp"]
        hit = store.offset_for_time(topic_name, 0, mid)
        click.echo(f"first record of {topic_name}-0 at or after timestamp {mid}: {hit}")
        info = store.describe_topic(topic_name)
        for p in info.partitions:
            click.echo(
                f"  partition {p.partition}: offsets {p.start_offset}..{p.end_offset}, "
                f"{p.segments} segment(s), {format_size(p.size_bytes)}"
            )
        problems = store.verify(topic_name)
        click.echo(f"verify: {len(problems)} problem(s)")
        for pr in problems:
            click.echo(f"  {pr}")


def main() -> None:
    cli(prog_name="logstore")


if __name__ == "__main__":
    main()
