"""The ``logstore`` command: a thin click layer over the library.

Data goes to stdout, messages to stderr. Exit codes: 0 ok, 1 error, 2 usage, 3 not found,
4 conflict, 130 interrupted. A library error becomes one line on stderr: ``Error: <what>. <fix>``.
"""

from __future__ import annotations

import json
import os
import sys
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
