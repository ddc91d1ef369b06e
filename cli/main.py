"""The ``logstore`` command: a thin click layer over the library.

Data goes to stdout, messages to stderr. Exit codes: 0 ok, 1 error, 2 usage, 3 not found,
4 conflict, 130 interrupted. A library error becomes one line on stderr: ``Error: <what>. <fix>``.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
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

    def store(self, create: bool = True, read_only: bool = False) -> LogStore:
        return LogStore(self.directory, create=create, read_only=read_only)

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
        except OSError as e:  # a file the store expects is missing or unreadable: no traceback
            where = f" ({e.filename})" if e.filename else ""
            click.echo(
                f"Error: {e.strerror or e}{where}. Check the path and its permissions; "
                "'logstore verify' lists what is wrong with a store.",
                err=True,
            )
            sys.exit(1)

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


def _store_dir(ctx: click.Context) -> str:
    root = ctx.find_root()
    return str(root.params.get("directory") or os.environ.get("LOGSTORE_DIR") or DEFAULT_DIR)


def _complete_topics(ctx: click.Context, incomplete: str) -> list[Any]:
    """Shell completion of topic names (read-only look at the store; nothing on error)."""
    from click.shell_completion import CompletionItem

    try:
        with LogStore(_store_dir(ctx), create=False, read_only=True) as store:
            return [CompletionItem(t) for t in store.topic_names() if t.startswith(incomplete)]
    except Exception:
        return []


def _complete_groups(ctx: click.Context, incomplete: str) -> list[Any]:
    """Shell completion of consumer group ids."""
    from click.shell_completion import CompletionItem

    from logstore.groups.coordinator import list_group_ids

    try:
        return [CompletionItem(g) for g in list_group_ids(_store_dir(ctx)) if g.startswith(incomplete)]
    except Exception:
        return []


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
@click.option(
    "--output",
    "-o",
    type=click.Choice(["text", "json", "jsonl"]),
    default="text",
    help="Output format: text, json (one document), jsonl (one JSON object per line).",
)
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
@click.argument("name", shell_complete=lambda c, p, i: _complete_topics(c, i))
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
    if obj.output != "text":
        _emit(obj.output, [{"topic": t.name, "partition_count": t.partition_count} for t in topics])
    else:
        for t in topics:
            click.echo(t.name)


@topic.command("describe")
@click.argument("names", nargs=-1, required=True, shell_complete=lambda c, p, i: _complete_topics(c, i))
@click.pass_obj
@run
def topic_describe(obj: Ctx, names: tuple[str, ...]) -> None:
    """Describe topics: config, then per partition its offsets, segments and size."""
    docs = []
    with obj.store(create=False) as store:
        for name in names:
            info = store.describe_topic(name)
            if obj.output != "text":
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
    if obj.output != "text":
        _emit(obj.output, docs, indent=2)


@topic.command("delete")
@click.argument("name", shell_complete=lambda c, p, i: _complete_topics(c, i))
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


@topic.command("alter")
@click.argument("name", shell_complete=lambda c, p, i: _complete_topics(c, i))
@click.option("--config", "-c", "configs", multiple=True, metavar="KEY=VALUE", help="Set a topic config (repeatable).")
@click.option("--delete-config", "deletes", multiple=True, metavar="KEY", help="Back to the store default.")
@click.option("--dry-run", is_flag=True, help="Print the changes; apply nothing.")
@click.pass_obj
@run
def topic_alter(obj: Ctx, name: str, configs: tuple[str, ...], deletes: tuple[str, ...], dry_run: bool) -> None:
    """Change topic NAME's configs (kafka-configs --alter), e.g. --config retention.ms=3d. Prints
    each change as KEY: OLD -> NEW."""
    from logstore.config import validate_topic_config

    if not configs and not deletes:
        raise click.UsageError("Give --config KEY=VALUE or --delete-config KEY.")
    with obj.store(create=False, read_only=dry_run) as store:
        before = vars(store.topic_config(name))
        if dry_run:
            from logstore.config import TOPIC_KEYS
            from logstore.errors import InvalidConfigError, did_you_mean

            for key in deletes:
                if key.replace("_", ".") not in TOPIC_KEYS:
                    raise InvalidConfigError(
                        f"unknown topic config '{key}'.",
                        did_you_mean(key, TOPIC_KEYS) or "See 'logstore topic describe'.",
                    )
            changes = validate_topic_config(parse_configs(configs))
            after_own = {k.replace(".", "_"): v for k, v in changes.items()}
            after = dict(before) | after_own
            for key in deletes:  # shown as back to the default: what alter would compute
                after[key.replace(".", "_").replace("-", "_")] = "(default)"
        else:
            after = vars(store.alter_topic_config(name, parse_configs(configs), deletes))
    changes = [
        {"config": key.replace("_", "."), "old": before.get(key), "new": after.get(key)}
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    ]
    if obj.output != "text":
        _emit(obj.output, {"topic": name, "dry_run": dry_run, "changes": changes})
        return
    for c in changes:
        dotted, old, new = c["config"], c["old"], c["new"]
        shown_old = human(dotted, old) if old is not None else "-"
        shown_new = human(dotted, new) if isinstance(new, int) else str(new)
        click.echo(f"{dotted}: {shown_old} -> {shown_new}")
    click.echo(f"{'Would alter' if dry_run else 'Altered'} topic {name}.")


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


# Fields of `produce --input jsonl` objects; those `consume -J` adds that produce does not use
# are accepted and ignored, so `consume -J | produce --input jsonl` copies records.
JSONL_FIELDS = {"key", "value", "headers", "partition", "timestamp"} | {
    "key_encoding",
    "value_encoding",
    "headers_encoding",
}
JSONL_IGNORED = {"topic", "offset", "timestamp_type"}


def _parse_jsonl(line: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(line)
    except ValueError as e:
        raise BadLine(f"not JSON ({e})") from None
    if not isinstance(doc, dict):
        raise BadLine("not a JSON object")
    unknown = set(doc) - JSONL_FIELDS - JSONL_IGNORED
    if unknown:
        raise BadLine(f"unknown field(s) {', '.join(sorted(unknown))}")
    for field in ("key", "value"):
        if doc.get(field) is not None and not isinstance(doc[field], str):
            raise BadLine(f"'{field}' must be a string or null")
        encoding = doc.get(f"{field}_encoding")
        if encoding not in (None, "utf-8", "base64"):
            raise BadLine(f'\'{field}_encoding\' must be "base64" or "utf-8"')
        if doc.get(field) is not None:
            try:
                text = doc[field]
                doc[field] = base64.b64decode(text, validate=True) if encoding == "base64" else text.encode()
            except (ValueError, UnicodeEncodeError) as e:
                raise BadLine(f"'{field}' is not valid {encoding or 'text'} ({e})") from None
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
        b64 = doc.get("headers_encoding") == "base64"
        try:
            doc["headers"] = [
                (k, None if v is None else base64.b64decode(v, validate=True) if b64 else v.encode()) for k, v in pairs
            ]
        except (ValueError, UnicodeEncodeError) as e:
            raise BadLine(f"a header value is not valid {'base64' if b64 else 'text'} ({e})") from None
    if doc.get("timestamp") == -1:
        doc["timestamp"] = None  # no timestamp (what consume -J prints for one): stamped now
    for field in ("partition", "timestamp"):
        v = doc.get(field)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
            raise BadLine(f"'{field}' must be a non-negative integer")
    return doc


@cli.command()
@click.argument("topic", shell_complete=lambda c, p, i: _complete_topics(c, i))
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
                    check(v, k, [(hk, hv) for hk, hv in (doc.get("headers") or [])])
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
                        nbytes += len(v or b"")
                        continue
                    vals.append(v)
                    assert keys is not None and hdrs is not None
                    keys.append(k)
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


# --- consume ------------------------------------------------------------------------------------


def parse_when(text: str) -> int:
    """A point in time as ms since the epoch: epoch ms, an ISO-8601 date or date-time (no zone means
    UTC), or a time relative to now such as -1h, -30m or -7d."""
    text = text.strip()
    if text.lstrip("-").isdigit() and not text.startswith("-"):
        return int(text)
    if text.startswith("-") and len(text) > 1:
        from logstore.config import parse_duration_ms

        try:
            return int(time.time() * 1000) - parse_duration_ms(text[1:], "time")
        except LogStoreError:
            pass
    import datetime as dt

    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"'{text}' is not a time: give epoch ms (1718000000000), ISO-8601 (2024-06-10T08:00:00Z) "
            "or a relative time (-1h, -7d)"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return int(when.timestamp() * 1000)


def parse_partitions(text: str | None, count: int, topic: str) -> list[int]:
    if text is None:
        return list(range(count))
    out = []
    for part in text.split(","):
        try:
            p = int(part)
        except ValueError:
            raise click.BadParameter(f"'{part}' is not a partition number (e.g. -p 0,2)", param_hint="-p") from None
        if not 0 <= p < count:
            raise click.BadParameter(f"{topic} has partitions 0..{count - 1}, not {p}", param_hint="-p")
        out.append(p)
    return list(dict.fromkeys(out))


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "\\": "\\"}


def unescape(text: str) -> str:
    """Turn \\n, \\t, \\r, \\0 and \\\\ into the characters they name (kcat's -f and -D)."""
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text) and text[i + 1] in _ESCAPES:
            out.append(_ESCAPES[text[i + 1]])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


FORMAT_TOKENS = "tpokKsSThD%"


def compile_format(fmt: str) -> list[str]:
    """Split a kcat -f format into literal pieces and one-letter tokens (``%t`` -> ``"%t"``)."""
    fmt = unescape(fmt)
    parts: list[str] = []
    lit = ""
    i = 0
    while i < len(fmt):
        if fmt[i] == "%":
            if i + 1 >= len(fmt) or fmt[i + 1] not in FORMAT_TOKENS:
                bad = fmt[i : i + 2]
                raise click.BadParameter(
                    f"unknown token '{bad}' (known: %t topic, %p partition, %o offset, %k key, %K key length, "
                    "%s value, %S value length, %T timestamp ms, %h headers, %D ISO time, %% a percent sign)",
                    param_hint="--format",
                )
            if fmt[i + 1] == "%":
                lit += "%"
            else:
                if lit:
                    parts.append(lit)
                    lit = ""
                parts.append("%" + fmt[i + 1])
            i += 2
        else:
            lit += fmt[i]
            i += 1
    if lit:
        parts.append(lit)
    return parts


def _iso(ms: int) -> str:
    import datetime as dt

    if ms < 0:
        return ""
    return (
        dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def _text(b: bytes | None) -> tuple[str | None, bool]:
    """JSON form of bytes: (text, False) when UTF-8, else (base64, True)."""
    if b is None:
        return None, False
    try:
        return b.decode("utf-8"), False
    except UnicodeDecodeError:
        return base64.b64encode(b).decode("ascii"), True


def _rows(a: Any) -> Any:
    """``(offset, timestamp, timestamp_type, key, value, headers)`` per record of a chunk."""
    return zip(
        a.offsets_list(), a.timestamps_list(), a.timestamp_types(), a.keys(), a.values(), a.headers(), strict=True
    )


PRINT_FLAGS = ("print.key", "print.value", "print.timestamp", "print.partition", "print.offset", "print.headers")


class Formatter:
    """Turns one partition's chunk of records into output bytes."""

    def __init__(self, mode: str, fmt: list[str] | None, props: dict[str, str]) -> None:
        self.mode = mode
        self.fmt = fmt
        self.props = props
        truth = {"true": True, "false": False}
        for k in PRINT_FLAGS:
            if k in props and props[k].lower() not in truth:
                raise click.BadParameter(f"{k} must be true or false, not '{props[k]}'", param_hint="--property")
        self.flags = {k: truth.get(props.get(k, "").lower(), k == "print.value") for k in PRINT_FLAGS}
        self.sep = unescape(props.get("key.separator", "\t")).encode()
        self.line_sep = unescape(props.get("line.separator", "\n")).encode()
        self.hsep = unescape(props.get("headers.separator", ",")).encode()
        self.null = unescape(props.get("null.literal", "null")).encode()

    def render(self, topic: str, partition: int, a: Any) -> bytes:
        if self.mode == "values":
            vals = a.values()
            if len(vals) and int(a.value_lengths.min()) < 0:
                vals = [b"" if v is None else v for v in vals]
            vals.append(b"")
            return b"\n".join(vals)
        if self.mode == "jsonl":
            return self._jsonl(topic, partition, a)
        if self.mode == "format":
            return self._format(topic, partition, a)
        return self._kafka(partition, a)

    def _jsonl(self, topic: str, partition: int, a: Any) -> bytes:
        lines = []
        for off, ts, tt, k, v, hs in _rows(a):
            doc: dict[str, Any] = {"topic": topic, "partition": partition, "offset": off, "timestamp": ts}
            doc["timestamp_type"] = tt
            doc["key"], kb = _text(k)
            doc["value"], vb = _text(v)
            if hs:
                texts = [_text(hv) for _, hv in hs]
                hb = any(b for _, b in texts)
                doc["headers"] = [
                    [hk, None if hv is None else base64.b64encode(hv).decode() if hb else t[0]]
                    for (hk, hv), t in zip(hs, texts, strict=True)
                ]
                if hb:
                    doc["headers_encoding"] = "base64"
            else:
                doc["headers"] = []
            if kb:
                doc["key_encoding"] = "base64"
            if vb:
                doc["value_encoding"] = "base64"
            lines.append(json.dumps(doc, ensure_ascii=False))
        lines.append("")
        return "\n".join(lines).encode()

    def _format(self, topic: str, partition: int, a: Any) -> bytes:
        assert self.fmt is not None
        out = []
        tb, pb = topic.encode(), str(partition).encode()
        lit = {piece: piece.encode() for piece in self.fmt if not piece.startswith("%") or len(piece) != 2}
        for off, ts, _, k, v, hs in _rows(a):
            for piece in self.fmt:
                if piece in lit:
                    out.append(lit[piece])
                    continue
                c = piece[1]
                if c == "s":
                    out.append(v or b"")
                elif c == "k":
                    out.append(k or b"")
                elif c == "o":
                    out.append(str(off).encode())
                elif c == "p":
                    out.append(pb)
                elif c == "t":
                    out.append(tb)
                elif c == "T":
                    out.append(str(ts).encode())
                elif c == "D":
                    out.append(_iso(ts).encode())
                elif c == "K":
                    out.append(str(-1 if k is None else len(k)).encode())
                elif c == "S":
                    out.append(str(-1 if v is None else len(v)).encode())
                elif c == "h":
                    out.append(b",".join(hk.encode() + b"=" + (hv or b"") for hk, hv in hs))
        return b"".join(out)

    def _kafka(self, partition: int, a: Any) -> bytes:
        f = self.flags
        out = []
        null = self.null
        for off, ts, tt, k, v, hs in _rows(a):
            fields = []
            if f["print.timestamp"]:
                kind = "LogAppendTime" if tt == "log_append" else "CreateTime"
                fields.append(f"{kind}:{ts}".encode())  # magic-2 records always have a type
            if f["print.partition"]:
                fields.append(b"Partition:%d" % partition)
            if f["print.offset"]:
                fields.append(b"Offset:%d" % off)
            if f["print.headers"]:
                fields.append(
                    self.hsep.join(hk.encode() + b":" + (null if hv is None else hv) for hk, hv in hs)
                    if hs
                    else b"NO_HEADERS"
                )
            if f["print.key"]:
                fields.append(null if k is None else k)
            if f["print.value"]:
                fields.append(null if v is None else v)
            out.append(self.sep.join(fields) + self.line_sep)
        return b"".join(out)


@cli.command()
@click.argument("topic", shell_complete=lambda c, p, i: _complete_topics(c, i))
@click.option("--partition", "-p", "partitions", metavar="N[,N...]", help="Only these partitions (default: all).")
@click.option(
    "--offset",
    "-o",
    "offset_spec",
    metavar="SPEC",
    help="Where to start: beginning (default), end, N, -N (N before the end of each partition), "
    "+N (N after the start), @TIME or s@TIME (first record at or after TIME: epoch ms, ISO-8601, -1h).",
)
@click.option("--from-beginning", is_flag=True, help="Start at the beginning (Kafka's flag; the default here).")
@click.option("--max-messages", "-n", type=click.IntRange(min=1), help="Exit after N records.")
@click.option("--exit", "-e", "exit_at_end", is_flag=True, help="Exit at the end of the log instead of waiting.")
@click.option("--timeout-ms", type=click.IntRange(min=0), help="Exit when no record has come for MS.")
@click.option("--format", "-f", "fmt", help="kcat format: %t %p %o %k %K %s %S %T %h %D, escapes \\n \\t.")
@click.option("-J", "json_out", is_flag=True, help="JSON lines (same as --output jsonl).")
@click.option("--output", "output", type=click.Choice(["text", "jsonl"]), default="text", show_default=True)
@click.option(
    "--property", "props", multiple=True, metavar="KEY=VALUE", help="Kafka console-consumer formatter setting."
)
@click.option(
    "--group",
    "-g",
    "group_id",
    metavar="GROUP",
    help="Read as a member of consumer group GROUP: its share of the partitions, from the committed offsets "
    "(else from -o beginning|end), committing as it goes and on exit.",
)
@click.option("-q", "--quiet", count=True, help="No notes on stderr.")
@click.pass_obj
@run
def consume(
    obj: Ctx,
    topic: str,
    partitions: str | None,
    offset_spec: str | None,
    from_beginning: bool,
    max_messages: int | None,
    exit_at_end: bool,
    timeout_ms: int | None,
    fmt: str | None,
    json_out: bool,
    output: str,
    props: tuple[str, ...],
    group_id: str | None,
    quiet: int,
) -> None:
    """Print TOPIC's records to stdout, one value per line by default, from the beginning unless
    -o says otherwise; follow new records until Ctrl-C, or exit at the end with -e.

    \b
    --property keys (Kafka's DefaultMessageFormatter): print.key, print.value, print.timestamp,
    print.partition, print.offset, print.headers, key.separator, line.separator,
    headers.separator, null.literal.
    Notes ("% Reached end of ...", the total) go to stderr; -q silences them.

    \b
    Examples:
      logstore consume orders -e
      logstore consume orders -o -10 -e -f '%p:%o %k=%s\\n'
      logstore consume orders -o @2024-06-10T08:00:00Z -J
      logstore consume orders --property print.key=true --property print.offset=true
      logstore consume orders -g billing        (run several: they share the partitions)
    """
    from logstore import Consumer, TopicPartition

    if from_beginning and offset_spec is not None:
        raise click.UsageError("Options --from-beginning and --offset cannot be specified together.")
    mode = "values"
    if json_out or output == "jsonl":
        mode = "jsonl"
    if fmt is not None:
        if mode == "jsonl":
            raise click.UsageError("Options --format and -J/--output jsonl cannot be specified together.")
        mode = "format"
    properties = parse_configs(props) if props else {}
    known_props = {*PRINT_FLAGS, "key.separator", "line.separator", "headers.separator", "null.literal"}
    for k in properties:
        if k not in known_props:
            raise click.BadParameter(f"unknown property '{k}' (known: {', '.join(sorted(known_props))})")
    if properties:
        if mode != "values":
            raise click.UsageError("--property formats like Kafka's console consumer; it cannot go with -f or -J.")
        mode = "kafka"
    formatter = Formatter(mode, compile_format(fmt) if fmt is not None else None, properties)
    notes = obj.verbose >= 0 and not quiet
    spec = "beginning" if offset_spec is None else offset_spec.strip()
    out = sys.stdout.buffer
    total = 0

    def on_eof(tp: TopicPartition, offset: int) -> None:
        if notes:
            click.echo(f"% Reached end of topic {tp.topic} [{tp.partition}] at offset {offset}", err=True)

    if group_id is not None:
        if partitions is not None:
            raise click.UsageError("-p cannot go with -g: the group assigns the partitions.")
        if spec not in ("beginning", "end"):
            raise click.UsageError(
                "with -g, -o may only be beginning or end (where partitions without a committed offset start); "
                "move a group's offsets with 'logstore group reset-offsets'."
            )
    with obj.store(create=False) as store:
        parts = parse_partitions(partitions, store.partition_count(topic), topic)
        tps = [TopicPartition(topic, p) for p in parts]
        explicit = re.fullmatch(r"[+-]?[0-9]+", spec) is not None
        consumer = Consumer(
            store,
            auto_offset_reset="none" if explicit else ("latest" if group_id and spec == "end" else "earliest"),
            stop_at_end=exit_at_end,
            consumer_timeout_ms=timeout_ms,
            on_partition_eof=on_eof,
            group_id=group_id,
        )
        with consumer:
            if group_id is not None:
                consumer.subscribe([topic])
            else:
                consumer.assign(tps)
            if group_id is not None:
                pass  # positions come from the group's committed offsets
            elif spec == "beginning":
                consumer.seek_to_beginning()
            elif spec == "end":
                consumer.seek_to_end()
            elif spec == "stored":
                raise click.BadParameter("'stored' needs a consumer group, which this version does not have")
            elif spec.startswith(("@", "s@")):
                consumer.seek_to_time(parse_when(spec.split("@", 1)[1]))
            elif explicit:
                n = int(spec)
                for tp in tps:
                    low, high = consumer.get_watermark_offsets(tp)
                    if spec.startswith("-"):
                        consumer.seek(tp, max(low, high + n))
                    elif spec.startswith("+"):
                        consumer.seek(tp, min(high, low + n))
                    else:
                        consumer.seek(tp, n)
            else:
                raise click.BadParameter(
                    f"'{spec}' is not an offset: use beginning, end, N, -N, +N or @TIME", param_hint="--offset"
                )
            # Ctrl-C only sets a flag (a signal handler must not take locks), seen within 0.2 s:
            # a chunk is always written and counted together, and the total is what reached stdout.
            interrupted = False

            def on_sigint(signum: int, frame: Any) -> None:
                nonlocal interrupted
                interrupted = True

            ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN  # nohup, a background job
            previous = signal.getsignal(signal.SIGINT) if ignored else signal.signal(signal.SIGINT, on_sigint)
            deadline = None if timeout_ms is None else time.monotonic() + timeout_ms / 1000
            chunk = None
            try:
                while not interrupted and (max_messages is None or total < max_messages):
                    wait = 0.0 if exit_at_end else 0.2
                    if deadline is not None:
                        wait = max(0.0, min(wait, deadline - time.monotonic()))
                    if exit_at_end and consumer.rebalancing:
                        wait = 0.05  # not yet given partitions by the group: its end is not known
                    chunk = consumer.poll_columns(wait)
                    if chunk is None:
                        at_end = exit_at_end and not consumer.rebalancing
                        if at_end or (deadline is not None and time.monotonic() >= deadline):
                            break
                        continue
                    records = chunk.records
                    if max_messages is not None and total + len(records) > max_messages:
                        records = records[: max_messages - total]
                        if group_id is not None:  # commit only what was printed
                            consumer.seek((chunk.topic, chunk.partition), int(records.offsets[-1]) + 1)
                    out.write(formatter.render(chunk.topic, chunk.partition, records))
                    total += len(records)
                    if deadline is not None:
                        deadline = time.monotonic() + timeout_ms / 1000  # type: ignore[operator]
                out.flush()
            except BrokenPipeError:
                # The reader went away (| head): stop quietly, as cat does. A group member does
                # not commit the chunk that may not have reached it.
                if group_id is not None and chunk is not None and len(records):
                    consumer.seek((chunk.topic, chunk.partition), int(records.offsets[0]))
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
            finally:
                if not ignored:
                    signal.signal(signal.SIGINT, previous)
    # The consumer is closed here (a group member has committed what was printed and left).
    if notes:
        click.echo(f"Processed a total of {total} messages", err=True)
    if interrupted:
        sys.exit(130)


@cli.command()
@click.argument("topic", shell_complete=lambda c, p, i: _complete_topics(c, i))
@click.option("--partition", "-p", "partitions", metavar="N[,N...]", help="Only these partitions (default: all).")
@click.option(
    "--time",
    "when",
    default="latest",
    show_default=True,
    help="latest (log end), earliest (log start), max-timestamp (the record with the largest timestamp), "
    "or a time (epoch ms, ISO-8601, -1h): the first offset whose timestamp is at or after it. "
    "Kafka's -1, -2 and -3 mean latest, earliest and max-timestamp.",
)
@click.pass_obj
@run
def offsets(obj: Ctx, topic: str, partitions: str | None, when: str) -> None:
    """Print topic:partition:offset per partition, as Kafka's GetOffsetShell. A time after every
    record prints no line for that partition.

    \b
    Examples:
      logstore offsets orders
      logstore offsets orders --time earliest
      logstore offsets orders --time 2024-06-10T08:00:00Z
    """
    from logstore import TopicPartition

    spec = {"-1": "latest", "-2": "earliest", "-3": "max-timestamp"}.get(when.strip(), when.strip())
    if re.fullmatch(r"-[0-9]+", spec):
        raise click.BadParameter(
            f"'{spec}': Kafka's negative codes here are -1 latest, -2 earliest, -3 max-timestamp; "
            "for a time before now write it as -1h, -30m or -7d",
            param_hint="--time",
        )
    with obj.store(create=False) as store:
        parts = parse_partitions(partitions, store.partition_count(topic), topic)
        ts = None if spec in ("latest", "earliest", "max-timestamp") else parse_when(spec.lstrip("@"))
        lines = []
        for p in parts:
            log = store.partition(topic, p)
            if spec == "latest":
                log.refresh()
                off: int | None = log.next_offset
            elif spec == "earliest":
                off = log.log_start_offset
            elif spec == "max-timestamp":
                off = log.offset_of_max_timestamp()
            else:
                assert ts is not None
                found = log.offset_for_time(ts)
                off = None if found is None else found.offset
            if off is not None:
                lines.append(f"{TopicPartition(topic, p).topic}:{p}:{off}")
        if lines:
            click.echo("\n".join(lines))


# --- consumer groups ------------------------------------------------------------------------------


@cli.group()
def group() -> None:
    """List, describe, reset and delete consumer groups (kafka-consumer-groups.sh)."""


def _table(rows: list[list[Any]], header: list[str]) -> str:
    """Columns padded as Kafka's tools print them; None shows as '-'."""
    cells = [header] + [["-" if v is None else str(v) for v in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return "\n".join(" ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells)


def _fmt(obj: Ctx, output: str | None) -> str:
    return output or obj.output


def _emit(fmt: str, docs: Any, indent: int | None = None) -> None:
    """Print ``docs`` as one JSON document, or with ``jsonl`` one object per line (a list's items)."""
    if fmt == "jsonl":
        for doc in docs if isinstance(docs, list) else [docs]:
            click.echo(json.dumps(doc))
    else:
        click.echo(json.dumps(docs, indent=indent))


OUTPUT_OPTION = click.option(
    "--output",
    "output",
    type=click.Choice(["text", "json", "jsonl"]),
    default=None,
    help="Output format: text (default), json (one document), jsonl (one JSON object per line).",
)


@group.command("list")
@click.option("--state", "with_state", is_flag=True, help="Show each group's state too.")
@OUTPUT_OPTION
@click.pass_obj
@run
def group_list(obj: Ctx, with_state: bool, output: str | None) -> None:
    """List consumer groups, one per line."""
    from logstore.groups.admin import describe_group, list_groups

    with obj.store(create=False) as store:
        names = list_groups(store)
        states = {g: describe_group(store, g).state for g in names} if with_state or _fmt(obj, output) != "text" else {}
    if _fmt(obj, output) != "text":
        _emit(_fmt(obj, output), [{"group": g, "state": states[g]} for g in names])
    elif with_state:
        if names:
            click.echo(_table([[g, states[g]] for g in names], ["GROUP", "STATE"]))
    else:
        for g in names:
            click.echo(g)


@group.command("describe")
@click.argument("groups", nargs=-1, required=True, shell_complete=lambda c, p, i: _complete_groups(c, i))
@click.option("--members", "view", flag_value="members", help="Members and their partition counts.")
@click.option("--state", "view", flag_value="state", help="Assignor, state, generation and member count.")
@click.option("--offsets", "view", flag_value="offsets", default=True, help="Per-partition offsets and lag (default).")
@click.option("--verbose", "verbose", is_flag=True, help="With --members: list each member's partitions.")
@OUTPUT_OPTION
@click.pass_obj
@run
def group_describe(obj: Ctx, groups: tuple[str, ...], view: str, verbose: bool, output: str | None) -> None:
    """Describe consumer GROUPS: per partition the committed offset (CURRENT-OFFSET), the log end
    and the lag, with the member that owns it, in Kafka's columns.

    \b
    Examples:
      logstore group describe billing
      logstore group describe billing --members --verbose
      logstore group describe billing --output json
    """
    from logstore.groups.admin import describe_group

    with obj.store(create=False) as store:
        descs = [describe_group(store, g) for g in groups]
    if _fmt(obj, output) != "text":
        docs = []
        for d in descs:
            docs.append(
                {
                    "group": d.group,
                    "state": d.state,
                    "generation": d.generation,
                    "assignment_strategy": d.protocol,
                    "members": [
                        {
                            "consumer_id": m.member_id,
                            "host": m.host,
                            "client_id": m.client_id,
                            "pid": m.pid,
                            "partitions": [[tp.topic, tp.partition] for tp in m.partitions],
                        }
                        for m in d.members
                    ],
                    "offsets": [
                        {
                            "topic": r.topic,
                            "partition": r.partition,
                            "current_offset": r.current_offset,
                            "log_end_offset": r.log_end_offset,
                            "lag": r.lag,
                            "consumer_id": r.member_id,
                            "host": r.host,
                            "client_id": r.client_id,
                        }
                        for r in d.partitions
                    ],
                    "problems": list(d.problems),
                }
            )
        _emit(_fmt(obj, output), docs if len(groups) > 1 or _fmt(obj, output) == "jsonl" else docs[0], indent=2)
        return
    for i, d in enumerate(descs):
        if i:
            click.echo("")
        for note in (*d.problems, *(f"expired {e}" for e in d.expired)):
            obj.info(f"Note: {note}")
        if view == "state":
            click.echo(
                _table(
                    [[d.group, d.protocol, d.state, d.generation, len(d.members)]],
                    ["GROUP", "ASSIGNMENT-STRATEGY", "STATE", "GENERATION", "#MEMBERS"],
                )
            )
            continue
        if not d.members:
            obj.info(f"Consumer group '{d.group}' has no active members.")
        if view == "members":
            header = ["GROUP", "CONSUMER-ID", "HOST", "CLIENT-ID", "#PARTITIONS"]
            rows = [[d.group, m.member_id, m.host, m.client_id, len(m.partitions)] for m in d.members]
            if verbose:
                header.append("ASSIGNMENT")
                for row, m in zip(rows, d.members, strict=True):
                    row.append(",".join(f"{tp.topic}({tp.partition})" for tp in m.partitions) or "-")
            if rows:
                click.echo(_table(rows, header))
            continue
        rows = [
            [d.group, r.topic, r.partition, r.current_offset, r.log_end_offset, r.lag, r.member_id, r.host, r.client_id]
            for r in d.partitions
        ]
        header = ["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST"]
        click.echo(_table(rows, [*header, "CLIENT-ID"]))


def _reset_scope(topics: tuple[str, ...], all_topics: bool) -> list[Any] | None:
    if all_topics == bool(topics):
        raise click.UsageError("Give the scope: --all-topics, or --topic TOPIC[:P,P...] (repeatable).")
    if all_topics:
        return None
    out: list[Any] = []
    for t in topics:
        name, _, parts = t.partition(":")
        if not parts:
            out.append(name)
            continue
        try:
            out.append((name, [int(p) for p in parts.split(",")]))
        except ValueError:
            raise click.BadParameter(
                f"'{t}' is not TOPIC or TOPIC:P,P (e.g. orders:0,2)", param_hint="--topic"
            ) from None
    return out


@group.command("reset-offsets")
@click.argument("group_id", metavar="GROUP", shell_complete=lambda c, p, i: _complete_groups(c, i))
@click.option("--topic", "topics", multiple=True, metavar="TOPIC[:P,P...]", help="Topic (and partitions) to reset.")
@click.option("--all-topics", is_flag=True, help="Every topic the group has committed offsets for.")
@click.option("--to-earliest", is_flag=True, help="To the log start.")
@click.option("--to-latest", is_flag=True, help="To the log end.")
@click.option("--to-current", is_flag=True, help="Keep the committed offsets (a no-op plan).")
@click.option("--to-offset", type=click.IntRange(min=0), help="To offset N.")
@click.option("--shift-by", type=int, help="Move the committed offset by N (negative: back).")
@click.option("--to-datetime", help="To the first record at or after this time (ISO-8601, UTC if no zone; epoch ms).")
@click.option("--by-duration", help="To the first record at or after now minus this (7d, 12h, PT30M).")
@click.option("--execute", is_flag=True, help="Apply the plan (without it, only print it).")
@click.option("--dry-run", is_flag=True, help="Only print the plan (the default).")
@click.option("--clamp", is_flag=True, help="Move a target outside the log to the nearest end instead of refusing.")
@OUTPUT_OPTION
@click.pass_obj
@run
def group_reset_offsets(
    obj: Ctx,
    group_id: str,
    topics: tuple[str, ...],
    all_topics: bool,
    to_earliest: bool,
    to_latest: bool,
    to_current: bool,
    to_offset: int | None,
    shift_by: int | None,
    to_datetime: str | None,
    by_duration: str | None,
    execute: bool,
    dry_run: bool,
    clamp: bool,
    output: str | None,
) -> None:
    """Plan, and with --execute apply, new committed offsets for GROUP. Refused while the group
    has live members. Prints GROUP TOPIC PARTITION NEW-OFFSET.

    \b
    Examples:
      logstore group reset-offsets billing --all-topics --to-earliest --execute
      logstore group reset-offsets billing --topic orders:0,1 --shift-by -100
      logstore group reset-offsets billing --topic orders --by-duration 7d --execute
    """
    from logstore.config import parse_duration_ms
    from logstore.groups.admin import ResetTarget, reset_offsets

    if execute and dry_run:
        raise click.UsageError("Options --execute and --dry-run cannot be specified together.")
    chosen = [
        x
        for x in (
            to_earliest and ResetTarget.earliest(),
            to_latest and ResetTarget.latest(),
            to_current and ResetTarget.current(),
            to_offset is not None and ResetTarget.to_offset(to_offset),
            shift_by is not None and ResetTarget.shift_by(shift_by),
            to_datetime is not None and ResetTarget.to_timestamp(parse_when(to_datetime)),
            by_duration is not None
            and ResetTarget.to_timestamp(int(time.time() * 1000) - parse_duration_ms(by_duration, "--by-duration")),
        )
        if x
    ]
    if len(chosen) != 1:
        raise click.UsageError(
            "Give exactly one of --to-earliest, --to-latest, --to-current, --to-offset, --shift-by, "
            "--to-datetime, --by-duration."
        )
    scope = _reset_scope(topics, all_topics)
    with obj.store(create=False) as store:
        try:
            plan = reset_offsets(store, group_id, chosen[0], topics=scope, execute=execute, clamp=clamp)
        except ValueError as e:
            raise click.UsageError(str(e)) from None
    if _fmt(obj, output) != "text":
        _emit(
            _fmt(obj, output),
            [
                {
                    "group": r.group,
                    "topic": r.topic,
                    "partition": r.partition,
                    "current_offset": r.current_offset,
                    "new_offset": r.new_offset,
                }
                for r in plan
            ],
        )
    elif plan:
        click.echo(
            _table(
                [[r.group, r.topic, r.partition, r.new_offset] for r in plan],
                ["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"],
            )
        )
    else:
        obj.info(f"Nothing to reset: group '{group_id}' has no committed offsets (name topics with --topic).")
    if not execute:
        obj.info("Dry run: nothing was changed. Add --execute to apply this plan.")


@group.command("delete")
@click.argument("groups", nargs=-1, required=True, shell_complete=lambda c, p, i: _complete_groups(c, i))
@click.option("--dry-run", is_flag=True, help="Say what would be deleted; change nothing.")
@click.pass_obj
@run
def group_delete(obj: Ctx, groups: tuple[str, ...], dry_run: bool) -> None:
    """Delete consumer GROUPS and their committed offsets. Refused while a group has live members."""
    from logstore.groups.admin import delete_group, describe_group

    docs = []
    with obj.store(create=False, read_only=dry_run) as store:
        for g in groups:
            if dry_run:
                d = describe_group(store, g)
                docs.append(
                    {"group": g, "deleted": False, "live_members": len(d.members), "offsets": len(d.partitions)}
                )
                state = f"{len(d.members)} live member(s): it would be refused" if d.members else "no live members"
                if obj.output == "text":
                    click.echo(f"Would delete consumer group '{g}' ({len(d.partitions)} committed offset(s), {state}).")
                continue
            delete_group(store, g)
            docs.append({"group": g, "deleted": True})
            if obj.output == "text":
                click.echo(f"Deleted consumer group '{g}'.")
    if obj.output != "text":
        _emit(obj.output, docs)


# --- retention ----------------------------------------------------------------------------------


@cli.group()
def retention() -> None:
    """Delete old segments by each topic's retention.ms / retention.bytes."""


@retention.command("run")
@click.option("--topic", "-t", "topic_name", help="Only this topic (default: all).")
@click.option("--dry-run", is_flag=True, help="Print the plan; change nothing.")
@click.option("--loop", is_flag=True, help="Run again every --interval until SIGTERM or Ctrl-C.")
@click.option("--interval", default="5m", show_default=True, help="Time between passes with --loop (30s, 5m, 1h).")
@OUTPUT_OPTION
@click.pass_obj
@run
def retention_run(
    obj: Ctx, topic_name: str | None, dry_run: bool, loop: bool, interval: str, output: str | None
) -> None:
    """Delete the whole segments that are due, oldest first, and print what went: TOPIC PARTITION
    SEGMENTS-DELETED BYTES-FREED NEW-START-OFFSET REASON (partitions where nothing was due are not
    listed). Exit 0 whether or not anything was due; suitable for cron.

    \b
    Examples:
      logstore retention run --dry-run
      logstore retention run --topic orders --output json
      logstore retention run --loop --interval 5m
    """
    from logstore.config import parse_duration_ms

    pause = parse_duration_ms(interval, "--interval") / 1000.0
    if pause <= 0:
        raise click.BadParameter("must be more than 0", param_hint="--interval")
    stop = False

    def on_signal(signum: int, frame: Any) -> None:
        nonlocal stop
        stop = True

    if loop:
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
    with obj.store(create=False, read_only=dry_run) as store:
        while True:
            try:
                results = store.apply_retention(topic_name, dry_run=dry_run)
            except LogStoreError as e:
                if not loop:
                    raise
                click.echo(f"Error: {e}", err=True)  # a long-running job reports and goes on
                results = []
            due = [r for r in results if r.segments_deleted]
            if _fmt(obj, output) != "text":
                _emit(
                    _fmt(obj, output),
                    [
                        {
                            "topic": r.topic,
                            "partition": r.partition,
                            "segments_deleted": r.segments_deleted,
                            "bytes_freed": r.bytes_freed,
                            "new_start_offset": r.log_start_offset,
                            "reason": r.reason,
                            "dry_run": r.dry_run,
                        }
                        for r in due
                    ],
                )
            elif due:
                header = ["TOPIC", "PARTITION", "SEGMENTS-DELETED", "BYTES-FREED", "NEW-START-OFFSET", "REASON"]
                rows = [
                    [r.topic, r.partition, r.segments_deleted, r.bytes_freed, r.log_start_offset, r.reason] for r in due
                ]
                click.echo(_table(rows, header))
            freed = sum(r.bytes_freed for r in due)
            what = "would delete" if dry_run else "deleted"
            obj.info(
                f"{what} {sum(r.segments_deleted for r in due)} segment(s), {format_size(freed)}, "
                f"in {len(due)} of {len(results)} partition(s)."
                if due
                else "Nothing was due."
            )
            if not loop:
                return
            sys.stdout.flush()
            deadline = time.monotonic() + pause
            while not stop and time.monotonic() < deadline:
                time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
            if stop:
                obj.info("Stopped.")
                return


# --- inspection -----------------------------------------------------------------------------------


@cli.command("dump-log")
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False))
@click.option("--files", "files_opt", metavar="F,F...", help="Comma-separated files (Kafka's spelling).")
@click.option("--print-data-log", is_flag=True, help="Print each record's key and payload (implies --deep-iteration).")
@click.option("--deep-iteration", is_flag=True, help="Print one line per record, not only per batch.")
@click.option("--skip-record-metadata", is_flag=True, help="Print only key and payload for each record.")
@OUTPUT_OPTION
@click.pass_obj
@run
def dump_log(
    obj: Ctx,
    files: tuple[str, ...],
    files_opt: str | None,
    print_data_log: bool,
    deep_iteration: bool,
    skip_record_metadata: bool,
    output: str | None,
) -> None:
    """Print segment (.log), offset index (.index) and time index (.timeindex) files as Kafka's
    kafka-dump-log does, line for line. Works on any Kafka segment file; needs no store.

    \b
    Examples:
      logstore dump-log data/store/orders-0/00000000000000000000.log --print-data-log
      logstore dump-log --files orders-0/00000000000000000000.index,orders-0/00000000000000000000.timeindex
    """
    from logstore.dump import dump_file

    paths = list(files) + ([f for f in files_opt.split(",") if f] if files_opt else [])
    if not paths:
        raise click.UsageError("Give the files to dump (FILE... or --files F,F...).")
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        click.echo(
            f"Error: no such file: {missing[0]}. Check the path (segments live in <store>/<topic>-<n>/).", err=True
        )
        sys.exit(3)
    out = sys.stdout
    fmt = _fmt(obj, output)
    docs = []
    for path in paths:
        for line in dump_file(
            path, deep=deep_iteration, print_data=print_data_log, skip_record_metadata=skip_record_metadata
        ):
            if line.to_stderr:
                click.echo(line.text, err=True)
            elif fmt == "text":
                out.write(line.text + "\n")
            elif line.fields is not None:  # json: the data lines as objects (the headings are left out)
                if fmt == "jsonl":
                    out.write(json.dumps(line.fields) + "\n")
                else:
                    docs.append(line.fields)
    if fmt == "json":
        _emit("json", docs)
    out.flush()


@cli.command()
@OUTPUT_OPTION
@click.pass_obj
@run
def info(obj: Ctx, output: str | None) -> None:
    """The store at a glance: path, format version, topics, partitions, size, consumer groups."""
    from logstore.groups.admin import list_groups

    with obj.store(create=False, read_only=True) as store:
        topics = store.list_topics()
        details = [store.describe_topic(t.name) for t in topics]
        groups = list_groups(store)
        doc = {
            "path": store.path,
            "format_version": store.format_version,
            "topics": len(topics),
            "partitions": sum(t.partition_count for t in topics),
            "records": sum(p.end_offset - p.start_offset for d in details for p in d.partitions),
            "size_bytes": sum(p.size_bytes for d in details for p in d.partitions),
            "segments": sum(p.segments for d in details for p in d.partitions),
            "groups": groups,
        }
    if _fmt(obj, output) != "text":
        _emit(_fmt(obj, output), doc)
        return
    click.echo(f"Store: {doc['path']}")
    click.echo(f"Format version: {doc['format_version']}")
    click.echo(
        f"Topics: {doc['topics']} ({doc['partitions']} partitions, {doc['segments']} segments, "
        f"{doc['records']} records, {format_size(doc['size_bytes'])})"
    )
    for d in details:
        size = sum(p.size_bytes for p in d.partitions)
        click.echo(f"  {d.name}: {d.partition_count} partition(s), {format_size(size)}")
    click.echo(f"Consumer groups: {len(groups)}" + (f" ({', '.join(groups)})" if groups else ""))


# --- verification ---------------------------------------------------------------------------------


@cli.command()
@click.option("--topic", "-t", "topic_name", help="Only this topic.")
@click.pass_obj
@run
def verify(obj: Ctx, topic_name: str | None) -> None:
    """Check every batch CRC, offset order and index against the log; change nothing.

    Exits 1 and lists each problem (file, byte position, what) when there are any.
    """
    with obj.store(create=False, read_only=True) as store:
        problems = store.verify(topic_name)
    for p in problems:
        click.echo(str(p))
    if problems:
        click.echo(f"{len(problems)} problem(s) found.", err=True)
        sys.exit(1)
    obj.info("ok: no problems found.")


@cli.command()
@click.option("--topic", "-t", "topic_name", help="Only this topic (default: all).")
@click.option("--dry-run", is_flag=True, help="Only verify and report; change nothing.")
@click.option("--truncate-damaged", is_flag=True, help="Cut each log at its first damaged batch (loses what follows).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask before --truncate-damaged.")
@OUTPUT_OPTION
@click.pass_obj
@run
def recover(
    obj: Ctx, topic_name: str | None, dry_run: bool, truncate_damaged: bool, yes: bool, output: str | None
) -> None:
    """Apply the documented repairs now: check every batch CRC, rebuild every index from its log,
    cut torn tails, remove leftover files. Damage inside fsynced data is reported, not cut, unless
    --truncate-damaged. Each partition must not be open in another process.

    Prints TOPIC PARTITION SEGMENTS INDEXES-REBUILT BYTES-CUT LOG-END-OFFSET RESULT; exits 1 when
    damage was left in place.
    """
    if truncate_damaged and not dry_run and not yes:
        if not sys.stdin.isatty():
            raise click.UsageError("refusing --truncate-damaged without --yes when stdin is not a terminal")
        click.confirm(
            "Cut every damaged log at its first damaged batch, losing every record after it (later segments "
            "included; run with --dry-run first to see where the damage is)?",
            abort=True,
            err=True,
        )
    with obj.store(create=False, read_only=dry_run) as store:
        results = store.recover(topic_name, truncate_damaged=truncate_damaged, dry_run=dry_run)
    if _fmt(obj, output) != "text":
        _emit(
            _fmt(obj, output),
            [{k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(r).items()} for r in results],
        )
    else:
        rows = []
        for r in results:
            if r.locked:
                result = "LOCKED"
            elif r.error and not r.dry_run:
                result = "DAMAGED"
            elif r.dry_run:
                result = f"{len(r.problems)} problem(s)" if r.problems else "ok"
                if r.error:
                    result = "DAMAGED"
            else:
                result = "repaired" if (r.bytes_cut or r.problems) else "ok"
            rows.append([r.topic, r.partition, r.segments, r.indexes_rebuilt, r.bytes_cut, r.log_end_offset, result])
        header = ["TOPIC", "PARTITION", "SEGMENTS", "INDEXES-REBUILT", "BYTES-CUT", "LOG-END-OFFSET", "RESULT"]
        if rows:
            click.echo(_table(rows, header))
        for r in results:
            for p in r.problems:
                obj.info(f"{'found' if not r.dry_run else 'would repair'}: {p}")
            if r.deleted_segments or r.records_lost:
                obj.info(
                    f"{r.topic}-{r.partition}: cut {r.records_lost} record(s); segments dropped after the cut: "
                    f"{', '.join(r.deleted_segments) or 'none'}"
                )
            if r.error:
                click.echo(f"Error: {r.error}", err=True)
    if any(r.locked for r in results):
        sys.exit(4)
    if any(r.error for r in results):
        sys.exit(1)


@cli.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell completion script for SHELL (it completes commands, options, topic and
    group names). Install: eval "$(logstore completion bash)" in ~/.bashrc (zsh: ~/.zshrc;
    fish: logstore completion fish > ~/.config/fish/completions/logstore.fish)."""
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    assert cls is not None
    click.echo(cls(cli, {}, "logstore", "_LOGSTORE_COMPLETE").source())


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
    from logstore import Consumer, Producer, TopicPartition

    with open(input_path, encoding="utf-8") as f:
        events = [json.loads(line) for line in f if line.strip()]
    with obj.store() as store:
        click.echo(f"store: {store.path}")
        store.create_topic(topic_name, partitions, exist_ok=True)
        click.echo(f"producing {len(events)} events from {input_path} (keys routed with Kafka's murmur2, lz4):")
        with Producer(store) as producer:
            result = producer.send_many(
                topic_name,
                [e["value"].encode() for e in events],
                [e["key"].encode() for e in events],
                timestamps=[e["timestamp"] for e in events],
            )
        parts, offs = result.partitions.tolist(), result.offsets.tolist()
        for p in sorted(set(parts)):
            mine = [o for q, o in zip(parts, offs, strict=True) if q == p]
            click.echo(f"  {topic_name}-{p}: {len(mine)} records at offsets {min(mine)}..{max(mine)}")
        tp = TopicPartition(topic_name, 0)
        with Consumer(store) as consumer:
            consumer.assign([tp])
            low, high = consumer.get_watermark_offsets(tp)
            start = max(low, high - 5)
            consumer.seek(tp, start)
            click.echo(f"replay {tp} from offset {start}:")
            for r in consumer.consume(3, timeout=1.0):
                click.echo(f"  offset {r.offset} key={r.key.decode()} value={r.value.decode()[:60]}")
            mid = events[len(events) // 2]["timestamp"]
            consumer.seek_to_time(mid, tp)
            r = consumer.poll(timeout=1.0)
            where = f"offset {r.offset} ({r.datetime:%Y-%m-%d %H:%M:%S.%f} UTC)" if r else "none"
            click.echo(f"first record of {tp} at or after timestamp {mid}: {where}")
        _demo_group(store, topic_name)
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


def _demo_group(store: LogStore, topic_name: str) -> None:
    """Two members of one consumer group share the topic, commit, and the group's lag is shown."""
    from logstore import Consumer
    from logstore.groups.admin import describe_group

    group_id = "demo-readers"
    click.echo(f"consumer group {group_id}: two members share {topic_name}, from the committed offsets:")
    with Consumer(store, topic_name, group_id=group_id) as a, Consumer(store, topic_name, group_id=group_id) as b:
        counts = {id(a): 0, id(b): 0}
        idle = 0
        while idle < 3:  # members take turns; each learns of the rebalance at its next poll
            got = 0
            for c in (a, b):
                n = len(c.consume(1000, timeout=0.05))
                counts[id(c)] += n
                got += n
            idle = 0 if got else idle + 1
        for name, c in (("member 1", a), ("member 2", b)):
            parts = ",".join(str(tp.partition) for tp in sorted(c.assignment()))
            click.echo(f"  {name}: partitions {parts}, read {counts[id(c)]} records")
    for row in describe_group(store, group_id).partitions:
        click.echo(
            f"  {row.topic}-{row.partition}: committed {row.current_offset}, "
            f"log end {row.log_end_offset}, lag {row.lag}"
        )


def main() -> None:
    cli(prog_name="logstore")


if __name__ == "__main__":
    main()
