"""Storage-level benchmark of logstore: append, read back, random lookups, and the baselines they
are judged against, all measured in one run on one machine.

Run from the repository root (``make bench`` / ``make bench-quick``)::

    python bench/storage_bench.py            # full run, about 1.5 minutes on 2 cores
    python bench/storage_bench.py --quick    # smoke run, a few seconds (smaller sizes, no profiles)
    python bench/storage_bench.py --dir /mnt/nvme/tmp   # put the bench files on another filesystem

Measurements (see bench/README.md for what each one means):

    a  raw ``os.write`` + ``os.fsync`` of 1 MiB frames vs ``PartitionLog.append`` of a prebuilt ~1 MiB
       batch with ``flush.messages=1`` (an fsync per append): MB/s each, and their ratio
    b  ``build_batch`` (lz4, 100-byte values, 10-byte keys) + ``PartitionLog.append`` end to end,
       fsync on every append, in one thread: records/s; for context also with ``validate=True``,
       without fsync, with two threads building while one appends, and as a two-stage pipeline
       (a builder thread handing batches through a queue to an appender thread)
    c  read the partition of b back with ``read_records`` and decode every record: records/s
    d  ``read_records(offset, max_records=1)`` and ``offset_for_time`` at random positions in
       partitions of 1M and 10M records written in the batches a default-configured Kafka producer
       makes (batch.size 16384 bytes: ~137 records), and of 1M records in 1000-record batches:
       median and p99 latency
    e  crc32c and lz4 (logstore's frame settings) on 1 MiB buffers: MB/s

Every measurement checks its result (offsets, a CRC-32C of all values read, the value found by each
lookup) so no work can be skipped. All reads hit a warm page cache: the files were just written and
dropping the cache needs privileges this bench does not ask for. When a target is missed the
workload is re-run under cProfile (full mode, or ``--profile``) and the top functions printed.

The printed table goes to stdout, progress to stderr; the numbers, machine details and profiles are
written to ``bench/results/<YYYY-MM-DD>.json`` (``<YYYY-MM-DD>-quick.json`` for ``--quick``).
MB is 10^6 bytes, MiB 2^20.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime
import json
import math
import os
import platform
import pstats
import queue
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)  # run as a script from a checkout, installed or not

import lz4.frame  # noqa: E402
import numpy as np  # noqa: E402
from crc32c import crc32c  # noqa: E402

import logstore  # noqa: E402
from logstore import LogStore, PartitionLog, build_batch  # noqa: E402
from logstore.records import compression  # noqa: E402
from logstore.records.batch import (  # noqa: E402
    RECORD_BATCH_OVERHEAD,
    _timestamps,
    decode_batch,
    encode_records,
    frame_batch,
    read_header,
)

EVENTS = os.path.join(REPO, "data", "events.jsonl")
RESULTS_DIR = os.path.join(REPO, "bench", "results")
LONG_MAX = 2**63 - 1
MiB = 1 << 20
T0 = 1_700_000_000_000  # timestamp (ms) of offset 0
RECORDS_PER_MS = 10  # offset o is stamped T0 + o // 10: a fast producer stamps ~10 records per ms
KAFKA_BATCH_BYTES = 16384  # a default Kafka producer's batch.size (uncompressed records per batch)
FSYNC_EVERY_APPEND = {"segment.bytes": "1GiB", "flush.messages": 1}
FSYNC_NEVER = {"segment.bytes": "1GiB", "flush.messages": LONG_MAX}


@dataclass(frozen=True)
class Sizes:
    """How much work each measurement does (full and quick mode)."""

    a_rounds: int  # raw and logstore alternate, this many rounds each
    a_mib_per_round: int
    b_records: int  # per variant
    b_batch: int  # records per batch in b (and so c)
    b_rounds: int  # b's variants take turns, this many rounds each
    c_rounds: int  # c1 reads the whole b1 partition this many times
    d_partitions: tuple[int, ...]  # records in each lookup partition (Kafka-default batches)
    d_info_batch: int  # records per batch of the extra (info) partition, as large as the smallest
    d_rounds: int  # the lookup partitions take turns, this many rounds each
    d_lookups: int  # random lookups per partition per round
    d_warmup: int  # untimed lookups before each round
    profile_share: float  # part of a workload re-run under cProfile when its target is missed


FULL = Sizes(12, 32, 4_000_000, 4000, 8, 5, (1_000_000, 10_000_000), 1000, 5, 2000, 200, 0.25)
QUICK = Sizes(6, 4, 400_000, 4000, 2, 2, (100_000, 1_000_000), 1000, 2, 300, 50, 0.25)

TARGET_A_RATIO = 0.70
TARGET_B_RPS = 1_500_000
TARGET_C_RPS = 1_200_000
TARGET_D_MEDIAN_US = 50.0
TARGET_D_FLAT = 1.25  # "flat": the largest partition's median within 1.25x of the smallest's


# --- results ----------------------------------------------------------------------------------------


@dataclass
class Result:
    id: str
    what: str
    value: float
    unit: str
    target: str = "-"
    ok: bool | None = None  # None: informational, no target
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        return "info" if self.ok is None else ("PASS" if self.ok else "FAIL")


def fmt_value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "rec/s":
        return f"{value:,.0f}"
    if unit == "x":
        return f"{value:.2f}"
    return f"{value:,.1f}"


def table(results: list[Result]) -> str:
    rows = [("id", "what", "value", "unit", "target", "result")]
    for r in results:
        rows.append((r.id, r.what, fmt_value(r.value, r.unit), r.unit, r.target, r.verdict))
    widths = [max(len(row[i]) for row in rows) for i in range(6)]
    lines = []
    for i, row in enumerate(rows):
        cells = [
            row[0].ljust(widths[0]),
            row[1].ljust(widths[1]),
            row[2].rjust(widths[2]),
            row[3].ljust(widths[3]),
            row[4].ljust(widths[4]),
            row[5],
        ]
        lines.append("  ".join(cells).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def progress(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- sample data --------------------------------------------------------------------------------------


class Events:
    """The sample events of data/events.jsonl; offset ``o`` of every bench partition holds event
    ``o % len`` (value and key) stamped ``T0 + o // RECORDS_PER_MS``."""

    def __init__(self, path: str) -> None:
        if not os.path.exists(path):
            sys.exit(f"{path} is missing: run 'python data/generate.py' (or 'make data') first.")
        values, keys = [], []
        with open(path, encoding="utf-8") as f:
            for line in f:
                row = json.loads(line)
                values.append(row["value"].encode())
                keys.append(row["key"].encode())
        self.values: list[bytes] = values
        self.keys: list[bytes] = keys
        self.n = len(values)
        self.cycle = b"".join(values)
        self._stamps = np.empty(0, dtype=np.int64)

    def reserve(self, count: int) -> None:
        """Precompute the timestamps of offsets ``0..count-1`` (so no timed loop allocates them)."""
        if count > len(self._stamps):
            self._stamps = T0 + np.arange(count, dtype=np.int64) // RECORDS_PER_MS

    def stamps(self, first: int, count: int) -> np.ndarray:
        """The timestamps (int64 ms) of offsets ``first..first+count-1``: ``T0 + o // RECORDS_PER_MS``."""
        self.reserve(first + count)
        return self._stamps[first : first + count]

    def columns(self, batch: int) -> tuple[list[bytes], list[bytes]]:
        """Values and keys repeated so that ``[s : s + batch]`` works for any ``s < n``."""
        reps = batch // self.n + 2
        return self.values * reps, self.keys * reps

    def values_crc(self, count: int) -> int:
        """CRC-32C of the values of offsets ``0..count-1`` concatenated."""
        crc = 0
        full, rest = divmod(count, self.n)
        for _ in range(full):
            crc = crc32c(self.cycle, crc)
        return crc32c(b"".join(self.values[:rest]), crc)


# --- machine --------------------------------------------------------------------------------------------


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def filesystem_of(path: str) -> dict[str, Any]:
    real = os.path.realpath(path)
    best = ("", "?", "?", "")
    for line in _read("/proc/mounts").splitlines():
        parts = line.split()
        if len(parts) < 4:
            continue
        device, mount, fstype, options = parts[0], parts[1].replace("\\040", " "), parts[2], parts[3]
        inside = real == mount or real.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) >= len(best[0]):
            best = (mount, fstype, device, options)
    st = os.statvfs(real)
    return {  # the bench directory itself is a temporary name: not recorded
        "mount_point": best[0],
        "type": best[1],
        "device": best[2],
        "options": best[3],
        "free_bytes": st.f_bavail * st.f_frsize,
    }


def git_commit() -> str | None:
    """The checked-out commit, read from .git (no git command is run)."""
    head = _read(os.path.join(REPO, ".git", "HEAD")).strip()
    if not head.startswith("ref: "):
        return head or None
    ref = head[5:]
    direct = _read(os.path.join(REPO, ".git", ref)).strip()
    if direct:
        return direct
    for line in _read(os.path.join(REPO, ".git", "packed-refs")).splitlines():
        if line.endswith(" " + ref):
            return line.split()[0]
    return None


def machine(bench_dir: str) -> dict[str, Any]:
    cpuinfo = _read("/proc/cpuinfo")
    model = next((ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines() if ln.startswith("model name")), "")
    flags = next((ln.split(":", 1)[1].split() for ln in cpuinfo.splitlines() if ln.startswith("flags")), [])
    mhz = next((ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines() if ln.startswith("cpu MHz")), "")
    meminfo = {ln.split(":")[0]: ln.split(":")[1].strip() for ln in _read("/proc/meminfo").splitlines() if ":" in ln}
    mem_kb = int(meminfo.get("MemTotal", "0 kB").split()[0])

    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "?"

    return {
        "cpu_model": model or platform.processor() or "?",
        "cpu_mhz": mhz,
        "cpu_has_sse4_2": "sse4_2" in flags,  # crc32c uses the SSE4.2 instruction when present
        "cores_online": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "numpy": version("numpy"),
        "lz4": version("lz4"),
        "crc32c": version("crc32c"),
        "logstore": logstore.__version__,
        "logstore_commit": git_commit(),
        "bench_filesystem": filesystem_of(bench_dir),
        "page_cache": "warm (files just written; no cold-cache runs)",
        "load_average_start": os.getloadavg(),
    }


# --- helpers ------------------------------------------------------------------------------------------


def open_log(root: str, name: str, config: dict[str, Any]) -> tuple[LogStore, PartitionLog]:
    store = LogStore(os.path.join(root, name))
    store.create_topic("bench", 1, config=config)
    return store, store.partition("bench", 0)


def drop(store: LogStore) -> None:
    path = store.path
    store.close()
    shutil.rmtree(path, ignore_errors=True)


def size_label(records: int) -> str:
    return f"{records // 1_000_000}M" if records >= 1_000_000 else f"{records // 1000}k"


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    k = max(0, math.ceil(q / 100 * len(sorted_values)) - 1)
    return sorted_values[k]


def profile(fn: Callable[[], Any], top: int = 12) -> dict[str, Any]:
    """Run ``fn`` under cProfile; return the top functions by self time and by inclusive time."""
    pr = cProfile.Profile()
    pr.enable()
    try:
        fn()
    finally:
        pr.disable()
    st = pstats.Stats(pr)
    total = st.total_tt or 1e-9

    def label(key: tuple[str, int, str]) -> str:
        path, line, name = key
        if path == "~":
            return name  # a builtin, e.g. <built-in method posix.fsync>
        for prefix in (os.path.dirname(np.__path__[0]) + os.sep, REPO + os.sep):  # site-packages first
            if path.startswith(prefix):
                return f"{path[len(prefix) :]}:{line}({name})"
        # Anything else (the standard library): from the interpreter's lib directory on, so that
        # no path of this machine is recorded.
        parts = path.split(os.sep)
        tail = os.sep.join(parts[-2:]) if len(parts) >= 2 else path
        return f"{tail}:{line}({name})"

    rows = [(label(k), v[1], v[2], v[3]) for k, v in st.stats.items()]  # type: ignore[attr-defined]
    by_self = sorted(rows, key=lambda r: r[2], reverse=True)[:top]
    inclusive = [r for r in rows if r[0].startswith("logstore")]
    by_incl = sorted(inclusive, key=lambda r: r[3], reverse=True)[:top]
    return {
        "total_s": round(total, 4),
        "self": [
            {"function": f, "calls": c, "self_s": round(t, 4), "self_pct": round(100 * t / total, 1)}
            for f, c, t, _ in by_self
        ],
        "inclusive": [
            {"function": f, "calls": c, "incl_s": round(ct, 4), "incl_pct": round(100 * ct / total, 1)}
            for f, c, _, ct in by_incl
        ],
    }


def print_profile(title: str, prof: dict[str, Any]) -> None:
    print(f"\nprofile: {title} (cProfile, {prof['total_s']:.2f} s profiled; cProfile inflates Python-level calls)")
    print("  self time (where the CPU is spent):")
    for row in prof["self"]:
        print(f"    {row['self_pct']:5.1f}%  {row['self_s']:8.3f} s  {row['calls']:>8}  {row['function']}")
    print("  inclusive time of logstore functions:")
    for row in prof["inclusive"]:
        print(f"    {row['incl_pct']:5.1f}%  {row['incl_s']:8.3f} s  {row['calls']:>8}  {row['function']}")


# --- report (shared by the bench scripts) -------------------------------------------------------------


def run_header(title: str, mode: str | None, info: dict[str, Any], root: str, *extra: str) -> str:
    """The lines every bench prints first: what ran and when, the machine and package versions,
    the logstore commit, the bench directory's filesystem, the load average, then ``extra``."""
    fs = info["bench_filesystem"]
    when = datetime.datetime.now().isoformat(timespec="seconds")
    lines = [
        f"logstore {title} bench, {mode} mode, {when}" if mode else f"logstore {title} bench, {when}",
        f"machine: {info['cpu_model']}, {info['cores_usable']} usable cores (os.cpu_count() {os.cpu_count()}), "
        f"{info['memory_gib']} GiB RAM, {info['kernel']}, {info['python']}, numpy {info['numpy']}, "
        f"lz4 {info['lz4']}, crc32c {info['crc32c']}",
        f"logstore {info['logstore']}, commit {(info['logstore_commit'] or '?')[:10]} (uncommitted changes not shown)",
        f"bench dir: {root} ({fs['type']} on {fs['device']}, mounted at {fs['mount_point']}, "
        f"{fs['free_bytes'] / 1e9:.0f} GB free)",
        f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
        "(other processes on the machine skew every number)",
        *extra,
    ]
    return "\n".join(lines)


def shown_path(path: str) -> str:
    """``path`` as the results record it: relative to the repository when inside it, else just
    the file's name (no path of this machine goes into a results file)."""
    path = os.path.abspath(path)
    return os.path.relpath(path, REPO) if path.startswith(REPO + os.sep) else os.path.basename(path)


def save_figure(fig: Any, path: str) -> str:
    """Lay out, save (110 dpi PNG) and close a matplotlib figure; say so on stdout. Returns ``path``."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"wrote {os.path.relpath(path, os.getcwd())}")
    return path


def make_root(prefix: str, directory: str | None) -> str:
    """A new temp directory for the bench files, in ``directory`` (created if needed) or the system temp dir."""
    if directory:
        os.makedirs(directory, exist_ok=True)
    return tempfile.mkdtemp(prefix=prefix, dir=directory)


def remove_root(root: str, keep: bool) -> None:
    """Remove the bench directory, or with ``keep`` say where it was kept."""
    if keep:
        progress(f"kept {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)


def print_report(
    header: str,
    results: list[Any],
    elapsed: float,
    load_start: tuple[float, ...],
    profiles: dict[str, Any],
    load_note: str = "the bench itself keeps one core busy",
) -> tuple[float, float, float]:
    """Print the end of a bench run: header, table, notes, targets, run time, load average and
    profiles. ``results`` are ``Result``s, with or without a ``skipped`` field. Returns the load
    average at the end."""
    print(header)
    print()
    print(table(results))
    print("\nnotes:")
    for r in results:
        if r.note:
            print(f"  {r.id}: {r.note}")
    missed = [r.id for r in results if r.ok is False]
    skipped = [r.id for r in results if getattr(r, "skipped", "")]
    met = sum(r.ok is True for r in results)
    print()
    print(
        f"targets: {met} met, {len(missed)} missed"
        + (f" ({', '.join(missed)})" if missed else "")
        + (f", {len(skipped)} not measured ({', '.join(skipped)})" if skipped else "")
    )
    load_end = os.getloadavg()
    print(f"run time {elapsed:.0f} s")
    print(
        f"load average at start: {' '.join(f'{x:.2f}' for x in load_start)}, "
        f"at end: {' '.join(f'{x:.2f}' for x in load_end)} ({load_note})"
    )
    for key, prof in profiles.items():
        print_profile(f"{key}: {prof['title']}", prof)
    return load_end


def default_out(suffix: str, quick: bool) -> str:
    """``bench/results/<YYYY-MM-DD><suffix>[-quick].json``."""
    return os.path.join(RESULTS_DIR, f"{datetime.date.today().isoformat()}{suffix}{'-quick' if quick else ''}.json")


def run_doc(
    script: str,
    mode: str,
    started: float,
    elapsed: float,
    info: dict[str, Any],
    load_end: tuple[float, ...],
    sizes: dict[str, Any],
) -> dict[str, Any]:
    """The keys every results JSON starts with (``info``: ``machine()``, perhaps with more keys)."""
    return {
        "bench": script,
        "mode": mode,
        "started": datetime.datetime.fromtimestamp(started).isoformat(timespec="seconds"),
        "run_seconds": round(elapsed, 1),
        "load_average": {"start": list(info["load_average_start"]), "end": list(load_end)},
        "machine": info,
        "sizes": sizes,
    }


def result_rows(results: list[Any], digits: int = 3) -> list[dict[str, Any]]:
    """The ``results`` of a results JSON (a value of None stays None)."""
    return [
        {
            "id": r.id,
            "what": r.what.strip(),
            "value": None if r.value is None else round(r.value, digits),
            "unit": r.unit,
            "target": r.target,
            "result": r.verdict,
            "note": r.note,
            **({"detail": r.extra} if r.extra else {}),
        }
        for r in results
    ]


def write_results(out: str, doc: dict[str, Any]) -> None:
    """Write ``doc`` to ``out`` as indented JSON (through a temp file and a rename) and say so."""
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    tmp = out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    os.replace(tmp, out)
    print(f"\nwrote {os.path.relpath(out, os.getcwd())}")


# --- workloads ----------------------------------------------------------------------------------------


def append_stream(
    log: PartitionLog, ev: Events, records: int, batch: int, *, validate: bool, codec: str = "lz4"
) -> dict[str, float]:
    """Build and append ``records`` records (lz4, ``batch`` per batch) continuing the log's offsets.

    Returns seconds spent in build_batch and in append (which includes the fsync when the topic
    flushes on every append).
    """
    values, keys = ev.columns(batch)
    build_s = append_s = 0.0
    first = log.next_offset
    end = first + records
    clock = time.perf_counter
    for o in range(first, end, batch):
        s = o % ev.n
        k = min(batch, end - o)
        t0 = clock()
        data = build_batch(values[s : s + k], keys[s : s + k], timestamps=ev.stamps(o, k), compression_type=codec)
        t1 = clock()
        result = log.append(data, validate=validate)
        t2 = clock()
        build_s += t1 - t0
        append_s += t2 - t1
        if result.first_offset != o:
            raise AssertionError(f"append landed at {result.first_offset}, expected {o}")
    return {"build_s": build_s, "append_s": append_s}


def append_stream_threaded(log: PartitionLog, ev: Events, records: int, batch: int, *, threads: int) -> None:
    """append_stream with ``threads`` threads building batches while this one appends them in order.

    lz4, pwritev and fsync release the GIL, so building overlaps the append (and its fsync), and on
    two cores two builders compress at once. The log and its offsets are the same as append_stream's.
    """
    values, keys = ev.columns(batch)
    first = log.next_offset
    end = first + records
    starts = list(range(first, end, batch))
    built: list[bytes | None] = [None] * len(starts)
    ready = [threading.Event() for _ in starts]
    failed: list[BaseException] = []

    def builder(k: int) -> None:
        try:
            for i in range(k, len(starts), threads):
                o = starts[i]
                s = o % ev.n
                k = min(batch, end - o)
                built[i] = build_batch(
                    values[s : s + k], keys[s : s + k], timestamps=ev.stamps(o, k), compression_type="lz4"
                )
                ready[i].set()
        except BaseException as e:  # surfaced by the appending thread
            failed.append(e)
            for r in ready:
                r.set()

    workers = [threading.Thread(target=builder, args=(k,), daemon=True) for k in range(threads)]
    for w in workers:
        w.start()
    try:
        for i, o in enumerate(starts):
            ready[i].wait()
            if failed:
                raise failed[0]
            data = built[i]
            built[i] = None
            assert data is not None
            result = log.append(data, validate=False)
            if result.first_offset != o:
                raise AssertionError(f"append landed at {result.first_offset}, expected {o}")
    finally:
        for w in workers:
            w.join()


def append_stream_pipelined(
    log: PartitionLog, ev: Events, records: int, batch: int, *, depth: int = 4
) -> dict[str, float]:
    """Two stages: this thread builds the batches (build_batch: Python encoding, then lz4, which
    releases the GIL) and hands them through a ``queue.Queue(maxsize=depth)`` to one appender thread
    that calls ``log.append(batch, validate=False)`` (pwritev and fsync release the GIL). That is how
    a producer's sender thread works. The log and its offsets are the same as append_stream's.

    Returns the seconds the builder spent in build_batch (wall) and on the CPU (its thread's CPU
    time), blocked on a full queue (the appender is behind), and the seconds the appender spent
    waiting on an empty queue (the builder is behind).
    """
    values, keys = ev.columns(batch)
    first = log.next_offset
    end = first + records
    handoff: queue.Queue[tuple[int, bytes] | None] = queue.Queue(maxsize=depth)
    failed: list[BaseException] = []
    waits = {"builder_blocked_s": 0.0, "appender_idle_s": 0.0}
    clock = time.perf_counter

    def appender() -> None:
        idle = 0.0
        try:
            while True:
                t0 = clock()
                item = handoff.get()
                idle += clock() - t0
                if item is None:
                    return
                o, data = item
                result = log.append(data, validate=False)
                if result.first_offset != o:
                    raise AssertionError(f"append landed at {result.first_offset}, expected {o}")
        except BaseException as e:  # surfaced by the building thread
            failed.append(e)
            while handoff.get() is not None:  # keep draining so the builder never blocks
                pass
        finally:
            waits["appender_idle_s"] = idle

    worker = threading.Thread(target=appender, name="bench-appender", daemon=True)
    worker.start()
    blocked = building = 0.0
    cpu0 = time.thread_time()
    try:
        for o in range(first, end, batch):
            if failed:
                break
            s = o % ev.n
            k = min(batch, end - o)
            t0 = clock()
            data = build_batch(values[s : s + k], keys[s : s + k], timestamps=ev.stamps(o, k), compression_type="lz4")
            t1 = clock()
            handoff.put((o, data))
            building += t1 - t0
            blocked += clock() - t1
    finally:
        handoff.put(None)
        worker.join()
    if failed:
        raise failed[0]
    if log.next_offset != end:
        raise AssertionError(f"the log ends at {log.next_offset}, expected {end}")
    waits["builder_blocked_s"] = blocked
    waits["build_s"] = building
    waits["builder_cpu_s"] = time.thread_time() - cpu0
    return waits


def append_stream_staged(
    log: PartitionLog, ev: Events, records: int, batch: int, *, depth: int = 2
) -> dict[str, float]:
    """Three stages, as ``Producer.send_many`` runs them: this thread encodes the records
    (``encode_records``, Python), one thread compresses and frames them (``frame_batch``: lz4 and
    CRC-32C release the GIL) and one appends (``log.append(batch, validate=False)``: pwritev and
    fsync release it too), joined by ``queue.Queue(maxsize=depth)``. The log and its offsets are
    the same as append_stream's. Returns the seconds this thread spent encoding."""
    values, keys = ev.columns(batch)
    first = log.next_offset
    end = first + records
    to_frame: queue.Queue[Any] = queue.Queue(maxsize=depth)
    to_append: queue.Queue[Any] = queue.Queue(maxsize=depth)
    failed: list[BaseException] = []

    def stage(inbox: queue.Queue[Any], outbox: queue.Queue[Any] | None) -> None:
        while (item := inbox.get()) is not None:
            if failed:
                continue  # keep draining so no stage upstream blocks
            try:
                if outbox is not None:
                    o, rec, k, base_ts, max_ts = item
                    outbox.put((o, frame_batch(rec, k, base_ts, max_ts, compression_type="lz4")))
                else:
                    o, data = item
                    result = log.append(data, validate=False)
                    if result.first_offset != o:
                        raise AssertionError(f"append landed at {result.first_offset}, expected {o}")
            except BaseException as e:  # surfaced by this thread
                failed.append(e)
        if outbox is not None:
            outbox.put(None)

    workers = [
        threading.Thread(target=stage, args=(to_frame, to_append), name="bench-frame", daemon=True),
        threading.Thread(target=stage, args=(to_append, None), name="bench-append", daemon=True),
    ]
    for w in workers:
        w.start()
    encoding = 0.0
    clock = time.perf_counter
    try:
        for o in range(first, end, batch):
            if failed:
                break
            s = o % ev.n
            k = min(batch, end - o)
            t0 = clock()
            base_ts, max_ts, deltas = _timestamps(k, ev.stamps(o, k), None)
            rec = encode_records(values[s : s + k], keys[s : s + k], deltas)
            encoding += clock() - t0
            to_frame.put((o, rec, k, base_ts, max_ts))
    finally:
        to_frame.put(None)
        for w in workers:
            w.join()
    if failed:
        raise failed[0]
    if log.next_offset != end:
        raise AssertionError(f"the log ends at {log.next_offset}, expected {end}")
    return {"encode_s": encoding}


def kafka_batch_records(ev: Events) -> int:
    """Records per batch of a default-configured Kafka producer with these records: the most whose
    uncompressed records section fits batch.size (16384 bytes). Every sample value is 100 bytes and
    every key 10, so every batch of the bench partitions gets the same count."""
    values, keys = ev.columns(1000)
    k = 1
    while True:
        ts = ev.stamps(0, k + 1)
        if len(encode_records(values[: k + 1], keys[: k + 1], ts - ts[0])) > KAFKA_BATCH_BYTES:
            return k
        k += 1


def read_all(log: PartitionLog, ev: Events, max_bytes: int = MiB) -> dict[str, float]:
    """Read the whole partition with read_records, checking offsets and the CRC-32C of the values."""
    off, end = log.log_start_offset, log.next_offset
    count = 0
    crc = 0
    check_s = 0.0
    clock = time.perf_counter
    t0 = clock()
    while off < end:
        cols = log.read_records(off, max_bytes=max_bytes)
        c0 = clock()
        n = len(cols)
        if n == 0 or cols.offsets[0] != off or cols.offsets[-1] != off + n - 1:
            raise AssertionError(f"read_records({off}) returned offsets {cols.offsets[:1]}..{cols.offsets[-1:]}")
        crc = crc32c(b"".join(cols.values), crc)
        count += n
        off += n
        check_s += clock() - c0
    total_s = clock() - t0
    if count != end - log.log_start_offset:
        raise AssertionError(f"read {count} records, the log holds {end - log.log_start_offset}")
    expected = ev.values_crc(end)
    if crc != expected:
        raise AssertionError(f"values CRC-32C {crc:#010x} != expected {expected:#010x}")
    return {"total_s": total_s, "check_s": check_s, "records": count, "crc": crc}


def lookup_latencies(log: PartitionLog, ev: Events, offsets: list[int], max_bytes: int = MiB) -> list[float]:
    """µs per ``read_records(o, max_records=1)`` (``max_bytes`` is read_records' default unless
    given); checks each returns offset o with its value."""
    out = []
    clock = time.perf_counter_ns
    for o in offsets:
        t0 = clock()
        cols = log.read_records(o, max_records=1, max_bytes=max_bytes)
        t1 = clock()
        out.append((t1 - t0) / 1000)
        if cols.offsets != [o] or cols.values[0] != ev.values[o % ev.n]:
            raise AssertionError(f"read_records({o}, max_records=1) returned {cols!r}")
    return out


def time_lookup_latencies(log: PartitionLog, timestamps: list[int]) -> list[float]:
    """µs per ``offset_for_time(ts)``; offset o has timestamp T0 + o // RECORDS_PER_MS, so the first
    offset stamped ts or later is (ts - T0) * RECORDS_PER_MS."""
    out = []
    clock = time.perf_counter_ns
    for ts in timestamps:
        t0 = clock()
        found = log.offset_for_time(ts)
        t1 = clock()
        out.append((t1 - t0) / 1000)
        expected = (ts - T0) * RECORDS_PER_MS
        if found is None or found.offset != expected or found.timestamp != ts:
            raise AssertionError(f"offset_for_time({ts}) returned {found}, expected offset {expected}")
    return out


def one_mib_batch(ev: Events) -> bytes:
    """An uncompressed batch of sample events just under 1 MiB (max.message.bytes is 1 MiB + 12)."""
    values, keys = ev.columns(12000)
    n = MiB // 118
    while True:
        data = build_batch(values[:n], keys[:n], timestamps=T0, compression_type="none")
        if len(data) <= MiB:
            return data
        n -= 16


def throughput(fn: Callable[[], Any], nbytes: int, min_seconds: float) -> float:
    """MB/s of ``fn`` (which processes ``nbytes``), repeated for at least ``min_seconds``."""
    fn()
    reps = 0
    t0 = time.perf_counter()
    while True:
        fn()
        reps += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= min_seconds:
            return reps * nbytes / elapsed / 1e6


# --- measurements -------------------------------------------------------------------------------------


class Bench:
    def __init__(self, root: str, sizes: Sizes, quick: bool, profiles_on: bool, b_batch: int) -> None:
        self.root = root
        self.sizes = sizes
        self.quick = quick
        self.profiles_on = profiles_on
        self.b_batch = b_batch
        self.ev = Events(EVENTS)
        self.results: list[Result] = []
        self.profiles: dict[str, dict[str, Any]] = {}

    def add(self, r: Result) -> Result:
        self.results.append(r)
        shown = f"{fmt_value(r.value, r.unit)} {r.unit}"
        progress(f"  {r.id} {r.what}: {shown} [{r.verdict}]{'  (' + r.note + ')' if r.note else ''}")
        return r

    def maybe_profile(self, key: str, title: str, failed: bool, run: Callable[[], dict[str, Any]]) -> None:
        """When ``failed`` (and profiles are on), ``run()`` the workload under cProfile and keep its profile."""
        if failed and self.profiles_on:
            progress(f"  profiling {key} ({title})")
            self.profiles[key] = {"title": title, **run()}

    # e. baselines ------------------------------------------------------------------------------

    def baselines(self) -> None:
        progress("e: crc32c and lz4 on 1 MiB")
        secs = 0.3 if self.quick else 1.5
        values, keys = self.ev.columns(12000)
        ts = self.ev.stamps(0, 10000)
        records = encode_records(values[:10000], keys[:10000], ts - ts[0])[:MiB]  # sample records section
        assert len(records) == MiB
        self.add(
            Result(
                "e1", "crc32c (crc32c package), 1 MiB buffer", throughput(lambda: crc32c(records), MiB, secs), "MB/s"
            )
        )
        packed = compression.compress(compression.LZ4, records)
        ratio = len(records) / len(packed)
        self.add(
            Result(
                "e2",
                "lz4 compress 1 MiB of sample records",
                throughput(lambda: compression.compress(compression.LZ4, records), MiB, secs),
                "MB/s",
                note=f"ratio {ratio:.2f}x; logstore's frame: 64 KiB independent blocks",
                extra={"ratio": round(ratio, 3)},
            )
        )
        self.add(
            Result(
                "e3",
                "lz4 decompress to 1 MiB",
                throughput(lambda: lz4.frame.decompress(packed), MiB, secs),
                "MB/s",
            )
        )

    # a. append vs raw fsync ----------------------------------------------------------------------

    def append_vs_raw(self) -> None:
        sz = self.sizes
        progress(f"a: raw write+fsync vs PartitionLog.append, {sz.a_rounds} rounds x {sz.a_mib_per_round} MiB each")
        batch = one_mib_batch(self.ev)
        frame = (batch * 2)[:MiB]  # a preformatted 1 MiB frame (same kind of bytes)
        records = read_header(batch).records_count
        store, log = open_log(self.root, "a", FSYNC_EVERY_APPEND)
        raw_path = os.path.join(self.root, "a-raw.bin")
        fd = os.open(raw_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        raw_s = log_s = 0.0
        raw_bytes = log_bytes = 0
        rounds: list[dict[str, float]] = []
        try:
            # Warm-up, untimed: a new segment's first indexed append touches its preallocated, sparse
            # .index map for the first time (a one-off 5-7 ms here); steady state is what is compared.
            for _ in range(3):
                log.append(batch, validate=False)
                os.write(fd, frame)
                os.fsync(fd)
            warm = log.next_offset
            for r in range(sz.a_rounds):
                order = ("raw", "log") if r % 2 == 0 else ("log", "raw")  # alternate against drift
                mbs: dict[str, float] = {}
                for which in order:
                    t0 = time.perf_counter()
                    if which == "raw":
                        for _ in range(sz.a_mib_per_round):
                            if os.write(fd, frame) != MiB:
                                raise AssertionError("short write")
                            os.fsync(fd)
                        nbytes = sz.a_mib_per_round * MiB
                    else:
                        for _ in range(sz.a_mib_per_round):
                            log.append(batch, validate=False)
                        nbytes = sz.a_mib_per_round * len(batch)
                    dt = time.perf_counter() - t0
                    mbs[which] = nbytes / dt / 1e6
                    if which == "raw":
                        raw_s, raw_bytes = raw_s + dt, raw_bytes + nbytes
                    else:
                        log_s, log_bytes = log_s + dt, log_bytes + nbytes
                rounds.append(
                    {
                        "raw_mb_s": round(mbs["raw"], 1),
                        "log_mb_s": round(mbs["log"], 1),
                        "ratio": mbs["log"] / mbs["raw"],
                    }
                )
            if log.next_offset - warm != sz.a_rounds * sz.a_mib_per_round * records:
                raise AssertionError("logstore did not append every batch")
        finally:
            os.close(fd)
            os.unlink(raw_path)
            drop(store)
        raw_mbs = raw_bytes / raw_s / 1e6
        log_mbs = log_bytes / log_s / 1e6
        # The disk's speed drifts a lot (a VM's virtual disk went from ~150 to ~900 MB/s between runs):
        # the ratio is the median over rounds of raw and logstore measured back to back.
        ratios = sorted(r["ratio"] for r in rounds)
        ratio = statistics.median(ratios)
        raw_lo, raw_hi = min(r["raw_mb_s"] for r in rounds), max(r["raw_mb_s"] for r in rounds)
        self.add(
            Result(
                "a1",
                "raw os.write+os.fsync, 1 MiB frames",
                raw_mbs,
                "MB/s",
                note=f"{sz.a_rounds} rounds of {sz.a_mib_per_round} MiB; per round {raw_lo:.0f}-{raw_hi:.0f} MB/s",
                extra={"rounds": rounds},
            )
        )
        self.add(
            Result(
                "a2",
                f"PartitionLog.append {len(batch):,} B batch, fsync each",
                log_mbs,
                "MB/s",
                note=f"uncompressed, {records} records/batch, validate=False",
            )
        )
        ok = ratio >= TARGET_A_RATIO
        self.add(
            Result(
                "a3",
                "append / raw, median of per-round ratios",
                ratio,
                "x",
                f">= {TARGET_A_RATIO:.2f}",
                ok,
                note=f"rounds {ratios[0]:.2f}-{ratios[-1]:.2f}; ratio of the totals {log_mbs / raw_mbs:.2f}",
            )
        )
        self._append_overhead(raw_mbs)
        self.maybe_profile(
            "a", "PartitionLog.append of ~1 MiB batches, fsync each", not ok, lambda: self._profile_a(batch)
        )

    def _append_overhead(self, raw_mbs: float) -> None:
        """logstore's own cost per append, free of the disk's noise: a one-record batch appended to a
        topic that does not fsync, minus os.write of the same bytes (median per call)."""
        count = 2000 if self.quick else 10000
        store, log = open_log(self.root, "a-overhead", FSYNC_NEVER)
        raw_path = os.path.join(self.root, "a-raw-small.bin")
        fd = os.open(raw_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        small = build_batch([self.ev.values[0]], [self.ev.keys[0]], timestamps=T0)
        raw_ns, log_ns = [], []
        clock = time.perf_counter_ns
        try:
            for _ in range(count):
                t0 = clock()
                os.write(fd, small)
                t1 = clock()
                log.append(small, validate=False)
                t2 = clock()
                raw_ns.append(t1 - t0)
                log_ns.append(t2 - t1)
        finally:
            os.close(fd)
            os.unlink(raw_path)
            drop(store)
        overhead = (statistics.median(log_ns) - statistics.median(raw_ns)) / 1000
        per_mib_at_raw = MiB / raw_mbs  # µs per MiB at a1's speed
        self.add(
            Result(
                "a4",
                "  append's own overhead per call (no fsync)",
                overhead,
                "us",
                note=(
                    f"1-record batch, minus os.write of it; against a1's {per_mib_at_raw:,.0f} us per MiB "
                    f"it caps the ratio at {per_mib_at_raw / (per_mib_at_raw + max(overhead, 0.0)):.3f}"
                ),
            )
        )

    def _profile_a(self, batch: bytes) -> dict[str, Any]:
        store, log = open_log(self.root, "a-prof", FSYNC_EVERY_APPEND)
        count = max(8, int(self.sizes.a_mib_per_round * self.sizes.profile_share))
        try:
            return profile(lambda: [log.append(batch, validate=False) for _ in range(count)])
        finally:
            drop(store)

    # b. build + append, c. read back ---------------------------------------------------------------

    def build_append_read(self) -> None:
        sz = self.sizes
        n = self.b_batch
        rounds = sz.b_rounds
        per_round = max(1, sz.b_records // (n * rounds)) * n
        total = per_round * rounds
        ev = self.ev
        ev.reserve(total + n)
        # Five logs fed in turns, a slice of records each per round (the order rotates every round),
        # so the disk's and the CPU's drift hit them all alike. Every variant writes the same records.
        variants = [
            ("b1", FSYNC_EVERY_APPEND),  # one thread: build_batch, then append (the target line)
            ("b2", FSYNC_EVERY_APPEND),  # the same with validate=True
            ("b3", FSYNC_NEVER),  # the same without fsync: the CPU ceiling of one thread
            ("b4", FSYNC_EVERY_APPEND),  # two builder threads, this thread appends in order
            ("b5", FSYNC_EVERY_APPEND),  # pipelined: this thread builds, one appender thread appends
            ("b6", FSYNC_EVERY_APPEND),  # three stages as send_many: encode | compress + frame | append
        ]
        progress(
            f"b: build_batch(lz4, {n} records) + append, {total:,} records per variant in {rounds} "
            "interleaved rounds: b1 one thread, b2 validate=True, b3 no fsync, b4 2 build threads, b5 pipelined, "
            "b6 three stages"
        )
        logs = {rid: open_log(self.root, f"b-{rid}", config) for rid, config in variants}
        keys = (
            "elapsed_s",
            "cpu_s",
            "build_s",
            "append_s",
            "builder_cpu_s",
            "builder_blocked_s",
            "appender_idle_s",
            "encode_s",
        )
        spent = {rid: dict.fromkeys(keys, 0.0) for rid, _ in variants}
        round_rps: dict[str, list[float]] = {rid: [] for rid, _ in variants}
        try:
            for r in range(rounds):
                shift = r % len(variants)
                for rid, _ in variants[shift:] + variants[:shift]:
                    log = logs[rid][1]
                    c0 = time.process_time()
                    t0 = time.perf_counter()
                    if rid == "b4":
                        append_stream_threaded(log, ev, per_round, n, threads=2)
                        split: dict[str, float] = {}
                    elif rid == "b5":
                        split = append_stream_pipelined(log, ev, per_round, n, depth=4)
                    elif rid == "b6":
                        split = append_stream_staged(log, ev, per_round, n)
                    else:
                        split = append_stream(log, ev, per_round, n, validate=rid == "b2")
                    dt = time.perf_counter() - t0
                    spent[rid]["cpu_s"] += time.process_time() - c0
                    spent[rid]["elapsed_s"] += dt
                    for k, v in split.items():
                        spent[rid][k] += v
                    round_rps[rid].append(per_round / dt)
            for rid, _ in variants:
                if logs[rid][1].next_offset != total:
                    raise AssertionError(f"{rid}: the log ends at {logs[rid][1].next_offset}, expected {total}")
            batches = total // n
            for rid, _ in variants:
                log = logs[rid][1]
                t = spent[rid]
                rates = round_rps[rid]
                rps = statistics.median(rates)
                extra: dict[str, Any] = {
                    "records": total,
                    "batch_records": n,
                    "rounds": rounds,
                    "round_rec_s": [round(x) for x in rates],
                    "all_rounds_rec_s": round(total / t["elapsed_s"]),
                    "log_bytes": log.size_bytes,
                    "cores_busy": round(t["cpu_s"] / t["elapsed_s"], 2),
                }
                extra |= {k: round(v, 3) for k, v in t.items() if v}
                rounds_note = (
                    f"median of {rounds} rounds of {per_round:,} records, rounds {min(rates):,.0f}-{max(rates):,.0f}; "
                    f"all rounds together {total / t['elapsed_s']:,.0f}; "
                    f"{t['cpu_s'] / t['elapsed_s']:.2f} cores busy (process CPU time / wall time)"
                )
                split_note = ""
                if t["append_s"]:
                    split_note = (
                        f"; per batch: build_batch {t['build_s'] / batches * 1e3:.2f} ms, append "
                        f"{t['append_s'] / batches * 1e3:.2f} ms ({log.size_bytes / batches / 1e3:.0f} kB)"
                    )
                versus = f"; {rps / TARGET_B_RPS:.2f}x the {TARGET_B_RPS / 1e6:.1f}M target"
                if rid == "b1":
                    ok = rps >= TARGET_B_RPS
                    what = f"build+append lz4, {n} rec/batch, 1 thread, fsync each"
                    target = f">= {TARGET_B_RPS:,}"
                    self.add(Result(rid, what, rps, "rec/s", target, ok, note=rounds_note + split_note, extra=extra))
                    self.add(Result("b1.build", "  of which build_batch alone", total / t["build_s"], "rec/s"))
                    self.add(
                        Result("b1.append", "  of which append alone (fsync each)", total / t["append_s"], "rec/s")
                    )
                    self.maybe_profile(
                        "b1",
                        "build_batch + append(validate=False), fsync each, one thread",
                        self.needs_profile(rps, TARGET_B_RPS, higher_is_better=True),
                        self._profile_b(False),
                    )
                elif rid == "b2":
                    what = "  same, validate=True"
                    self.add(Result(rid, what, rps, "rec/s", note=rounds_note + split_note + versus, extra=extra))
                elif rid == "b3":
                    what = "  same, no fsync (CPU ceiling of one thread)"
                    self.add(Result(rid, what, rps, "rec/s", note=rounds_note + split_note + versus, extra=extra))
                elif rid == "b4":
                    what = "  same, 2 build threads + appending thread"
                    note = "build_batch in 2 threads, appends in order in the main thread; " + rounds_note + versus
                    self.add(Result(rid, what, rps, "rec/s", note=note, extra=extra))
                elif rid == "b6":
                    what = "three stages (as send_many): encode | lz4 + frame thread | append thread"
                    note = (
                        "main thread encode_records, one thread frame_batch (lz4, CRC-32C), one thread appends "
                        f"(validate=False, fsync each), queues of 2; encoding {t['encode_s'] / batches * 1e3:.2f} ms "
                        "per batch in the main thread; " + rounds_note + versus
                    )
                    ok = rps >= TARGET_B_RPS
                    self.add(Result(rid, what, rps, "rec/s", f">= {TARGET_B_RPS:,}", ok, note=note, extra=extra))
                else:
                    what = "pipelined: builder thread + appender thread (two stages)"
                    note = (
                        "main thread builds, queue.Queue(maxsize=4), one thread appends (validate=False, fsync each); "
                        f"builder blocked on a full queue {t['builder_blocked_s'] / t['elapsed_s']:.0%} of the time, "
                        f"appender waiting on an empty queue {t['appender_idle_s'] / t['elapsed_s']:.0%}; "
                        f"per batch: build_batch {t['build_s'] / batches * 1e3:.2f} ms in the builder thread, of "
                        f"which {t['builder_cpu_s'] / batches * 1e3:.2f} ms on the CPU (the rest: waiting for the GIL "
                        "or a core); " + rounds_note + versus
                    )
                    self.add(Result(rid, what, rps, "rec/s", note=note, extra=extra))
        finally:
            for rid, _ in variants:
                if rid != "b1":
                    drop(logs[rid][0])

        store, log = logs["b1"]
        try:
            progress(
                f"c: read_records over the whole b1 partition ({log.next_offset:,} records, {log.size_bytes:,} B), "
                f"{sz.c_rounds} rounds"
            )
            rps, note, extra = self._read_rounds(log, sz.c_rounds)
            ok = rps >= TARGET_C_RPS
            what = f"read_records + decode, {n} rec/batch partition"
            self.add(Result("c1", what, rps, "rec/s", f">= {TARGET_C_RPS:,}", ok, note=note, extra=extra))
            share = sz.profile_share

            def read_part() -> None:
                off, end = 0, int(log.next_offset * share)
                while off < end:
                    off += len(log.read_records(off, max_bytes=MiB))

            self.maybe_profile(
                "c1",
                "read_records over the b1 partition",
                self.needs_profile(rps, TARGET_C_RPS, higher_is_better=True),
                lambda: profile(read_part),
            )
        finally:
            drop(store)

    def _read_rounds(self, log: PartitionLog, rounds: int) -> tuple[float, str, dict[str, Any]]:
        """read_all ``rounds`` times: the median round's records/s, a note, the details."""
        rates, checks = [], []
        crc = 0
        records = 0
        for _ in range(rounds):
            r = read_all(log, self.ev)
            rates.append(r["records"] / (r["total_s"] - r["check_s"]))
            checks.append(r["check_s"] / r["total_s"])
            crc, records = r["crc"], r["records"]
        rps = statistics.median(rates)
        note = (
            f"median of {rounds} rounds over {records:,} records, rounds {min(rates):,.0f}-{max(rates):,.0f}; "
            f"values CRC-32C {crc:#010x} verified; the check ({statistics.median(checks):.0%} of time) excluded"
        )
        return rps, note, {"records": records, "round_rec_s": [round(x) for x in rates]}

    def _profile_b(self, validate: bool) -> Callable[[], dict[str, Any]]:
        def run() -> dict[str, Any]:
            store, log = open_log(self.root, "b-prof", FSYNC_EVERY_APPEND)
            n = self.b_batch
            records = int(self.sizes.b_records * self.sizes.profile_share) // n * n
            try:
                return profile(lambda: append_stream(log, self.ev, records, n, validate=validate))
            finally:
                drop(store)

        return run

    @staticmethod
    def needs_profile(value: float, target: float, *, higher_is_better: bool) -> bool:
        """Profile a target line that is missed or within 25% of its target (too close to call on a
        noisy machine)."""
        return value < 1.25 * target if higher_is_better else value > target / 1.25

    # d. random lookups -------------------------------------------------------------------------------

    def lookups(self) -> None:
        sz = self.sizes
        ev = self.ev
        rng = random.Random(20231114)
        kb = kafka_batch_records(ev)
        small, large = sz.d_partitions[0], sz.d_partitions[-1]
        # (key, records, records per batch, judged against the targets). The target partitions have
        # the batches a default-configured Kafka producer writes; the last one is for comparison.
        parts = [(size_label(size), size, kb, True) for size in sz.d_partitions]
        info_key = f"{size_label(small)}.b{sz.d_info_batch}"
        parts.append((info_key, small, sz.d_info_batch, False))
        ev.reserve(large + max(kb, sz.d_info_batch))
        logs: dict[str, tuple[LogStore, PartitionLog]] = {}
        try:
            for key, size, batch, _ in parts:
                progress(f"d: building a {size:,}-record partition ({batch} rec/batch, lz4, no fsync)")
                store, log = open_log(self.root, f"d-{key}", FSYNC_NEVER)
                logs[key] = (store, log)
                t0 = time.perf_counter()
                append_stream(log, ev, size, batch, validate=False)
                log.flush()
                progress(
                    f"  built in {time.perf_counter() - t0:.1f} s: {log.size_bytes:,} B, "
                    f"{len(log.segments)} segment(s), {log.size_bytes / size:.1f} B per record"
                )
            small_key = size_label(small)
            self._decode_floor(logs[small_key][1], kb, "", "a Kafka-default")
            self._decode_floor(logs[info_key][1], sz.d_info_batch, f".b{sz.d_info_batch}", f"a {sz.d_info_batch}-rec")

            c_rounds = min(3, sz.c_rounds)
            for rid, key, batch, why in (
                ("c2", info_key, sz.d_info_batch, ""),
                ("c3", small_key, kb, " (Kafka default)"),
            ):
                log = logs[key][1]
                progress(f"c: read_records over the {key} partition ({batch} rec/batch), {c_rounds} rounds")
                rps, note, extra = self._read_rounds(log, c_rounds)
                what = f"read_records + decode, {batch} rec/batch partition{why}"
                self.add(Result(rid, what, rps, "rec/s", note=note, extra=extra))

            # The partitions take turns, round after round, so drift hits them all alike.
            progress(
                f"d: {sz.d_rounds} rounds of {sz.d_lookups} random lookups (+{sz.d_warmup} warm-up) "
                f"and {sz.d_lookups // sz.d_rounds} offset_for_time calls per partition"
            )
            lat: dict[str, list[float]] = {key: [] for key, *_ in parts}
            round_meds: dict[str, list[float]] = {key: [] for key, *_ in parts}
            tlat: dict[str, list[float]] = {key: [] for key, *_ in parts}
            t_count = max(1, sz.d_lookups // sz.d_rounds)
            for r in range(sz.d_rounds):
                shift = r % len(parts)
                for key, size, _, _ in parts[shift:] + parts[:shift]:
                    log = logs[key][1]
                    last_ms = (size - 1) // RECORDS_PER_MS
                    lookup_latencies(log, ev, [rng.randrange(size) for _ in range(sz.d_warmup)])
                    got = lookup_latencies(log, ev, [rng.randrange(size) for _ in range(sz.d_lookups)])
                    lat[key].extend(got)
                    round_meds[key].append(statistics.median(got))
                    time_lookup_latencies(log, [T0 + rng.randrange(last_ms + 1) for _ in range(max(1, t_count // 4))])
                    tlat[key].extend(
                        time_lookup_latencies(log, [T0 + rng.randrange(last_ms + 1) for _ in range(t_count)])
                    )

            judged = small >= 1_000_000  # quick mode's 100k partition is a smoke test, not judged
            for key, size, batch, target_line in parts:
                meds = round_meds[key]
                med = statistics.median(meds)
                pooled = sorted(lat[key])
                ok = med <= TARGET_D_MEDIAN_US if target_line and judged else None
                what = (
                    f"read_records(rand, max_records=1), {size_label(size)} records"
                    if target_line
                    else f"  same, {size_label(size)} records in {batch}-rec batches"
                )
                batch_note = f"{batch} rec/batch ({'Kafka batch.size 16384' if target_line else 'info'}); "
                note = (
                    batch_note + f"median of {sz.d_rounds} round medians ({sz.d_lookups} lookups each after "
                    f"{sz.d_warmup} warm-up), rounds {min(meds):,.1f}-{max(meds):,.1f} us; pooled median "
                    f"{percentile(pooled, 50):,.1f}, p90 {percentile(pooled, 90):,.1f}"
                )
                extra = {
                    "batch_records": batch,
                    "round_medians": [round(x, 2) for x in meds],
                    "p50": percentile(pooled, 50),
                    "p90": percentile(pooled, 90),
                    "p99": percentile(pooled, 99),
                    "max": pooled[-1],
                    "lookups": len(pooled),
                }
                target = f"<= {TARGET_D_MEDIAN_US:.0f} (median)" if target_line and judged else "-"
                self.add(Result(f"d.{key}.med", what, med, "us", target, ok, note=note, extra=extra))
                self.add(Result(f"d.{key}.p99", "  p99 (all rounds pooled)", percentile(pooled, 99), "us"))
                tl = sorted(tlat[key])
                self.add(
                    Result(
                        f"d.{key}.time",
                        f"  offset_for_time(rand ts), {size_label(size)} records: median",
                        percentile(tl, 50),
                        "us",
                        note=f"{len(tl)} calls over {sz.d_rounds} rounds; {batch} rec/batch",
                        extra={"p50": percentile(tl, 50), "p99": percentile(tl, 99), "max": tl[-1], "calls": len(tl)},
                    )
                )
                self.add(Result(f"d.{key}.time.p99", "    p99", percentile(tl, 99), "us"))
                if size == small and target_line:
                    small_key = key
                if size == large and target_line:
                    large_key = key

            ratios = [a / b for a, b in zip(round_meds[large_key], round_meds[small_key], strict=True)]
            flat = statistics.median(ratios)
            of_medians = statistics.median(round_meds[large_key]) / statistics.median(round_meds[small_key])
            what = f"lookup median {size_label(large)} / {size_label(small)} (flat?)"
            note = (
                f"median of the per-round ratios, rounds {min(ratios):.2f}-{max(ratios):.2f}; "
                f"ratio of the medians {of_medians:.2f}"
            )
            if judged:
                self.add(Result("d.flat", what, flat, "x", f"<= {TARGET_D_FLAT:.2f}", flat <= TARGET_D_FLAT, note=note))
            else:
                self.add(Result("d.flat", what, flat, "x", note=note + "; quick mode: indicative only"))

            worst = max(statistics.median(round_meds[k]) for k, *_ in parts if k in (small_key, large_key))
            if self.profiles_on and self.needs_profile(worst, TARGET_D_MEDIAN_US, higher_is_better=False):
                log = logs[large_key][1]
                k = max(100, int(sz.d_rounds * sz.d_lookups * sz.profile_share))
                offsets = [rng.randrange(large) for _ in range(k)]
                self.maybe_profile(
                    "d.lookup",
                    f"read_records(rand, max_records=1) x {k} on {large_key} ({kb} rec/batch)",
                    True,
                    lambda: profile(lambda: lookup_latencies(log, ev, offsets)),
                )
                stamps = [T0 + rng.randrange((large - 1) // RECORDS_PER_MS + 1) for _ in range(k // 4)]
                self.maybe_profile(
                    "d.time",
                    f"offset_for_time(rand) x {len(stamps)} on {large_key} ({kb} rec/batch)",
                    True,
                    lambda: profile(lambda: time_lookup_latencies(log, stamps)),
                )
        finally:
            for store, _ in logs.values():
                drop(store)

    def _decode_floor(self, log: PartitionLog, batch: int, suffix: str, kind: str) -> None:
        """What a lookup in ``log`` cannot avoid: decompressing the batch holding the offset, and
        (for comparison) decoding the whole batch, or just the one wanted record in it."""
        seg = log.segments[0]
        rng = random.Random(7)
        picked = []
        for _ in range(200):
            offset = rng.randrange(log.next_offset)
            found = seg.find_batch(offset)
            assert found is not None
            picked.append((offset, found[0], found[1].size))
        batches = [(offset, seg.pread(size, pos)) for offset, pos, size in picked]
        clock = time.perf_counter_ns

        def med(fn: Callable[[int, bytes], Any]) -> float:
            out = []
            for _ in range(3):  # three passes, the median of them all
                for offset, b in batches:
                    t0 = clock()
                    fn(offset, b)
                    out.append((clock() - t0) / 1000)
            return percentile(sorted(out), 50)

        avg = sum(len(b) for _, b in batches) / len(batches)

        def one(offset: int, b: bytes) -> None:
            cols = decode_batch(b, start_offset=offset, max_records=1)
            if cols.offsets != [offset]:
                raise AssertionError(f"decode_batch(start_offset={offset}) returned {cols.offsets}")

        med(lambda _, b: lz4.frame.decompress(memoryview(b)[RECORD_BATCH_OVERHEAD:]))  # warm
        self.add(
            Result(
                f"d.floor.lz4{suffix}",
                f"  floor: lz4 decompress one {batch}-rec batch",
                med(lambda _, b: lz4.frame.decompress(memoryview(b)[RECORD_BATCH_OVERHEAD:])),
                "us",
                note=f"{kind} batch: median over 200 batches of {avg / 1e3:.1f} kB, 3 passes",
            )
        )
        self.add(
            Result(
                f"d.floor.one{suffix}",
                "    decode_batch(max_records=1) of that batch",
                med(one),
                "us",
                note="CRC + lz4 + walk to the record + decode it: the lookup minus index and pread",
            )
        )
        self.add(
            Result(
                f"d.floor.decode{suffix}",
                "    decode_batch of that whole batch",
                med(lambda _, b: decode_batch(b)),
                "us",
                note="CRC + lz4 + parse all records",
            )
        )


# --- main -------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke run: small sizes, a few seconds, no profiles")
    ap.add_argument("--dir", help="directory to create the bench files in (default: the system temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the bench directory afterwards")
    ap.add_argument("--batch-records", type=int, help="records per batch in b and c1 (default 4000)")
    ap.add_argument("--profile", action=argparse.BooleanOptionalAction, default=None, help="profile missed targets")
    ap.add_argument("--out", help="results JSON path (default bench/results/<date>[-quick].json)")
    ap.add_argument("--only", help="comma-separated subset of a,b,c,d,e (b and c run together)")
    args = ap.parse_args(argv)

    sizes = QUICK if args.quick else FULL
    profiles_on = (not args.quick) if args.profile is None else args.profile
    only = set((args.only or "a,b,c,d,e").split(","))
    root = make_root("logstore-bench-", args.dir)
    mode = "quick" if args.quick else "full"
    started = time.time()
    t_start = time.perf_counter()
    info = machine(root)
    header = run_header("storage", mode, info, root, "reads: warm page cache (cold-cache runs are not available)")
    progress(header.replace("\n", "\n    "))
    bench = Bench(root, sizes, args.quick, profiles_on, args.batch_records or sizes.b_batch)
    try:
        if "e" in only:
            bench.baselines()
        if "a" in only:
            bench.append_vs_raw()
        if only & {"b", "c"}:
            bench.build_append_read()
        if "d" in only:
            bench.lookups()
    finally:
        remove_root(root, args.keep)
    elapsed = time.perf_counter() - t_start

    order = {"a": 0, "b": 1, "c": 2, "d": 3, "e": 4}
    results = sorted(bench.results, key=lambda r: order[r.id[0]])  # stable: keeps order within a group
    load_end = print_report(header, results, elapsed, info["load_average_start"], bench.profiles)
    doc = run_doc(
        "bench/storage_bench.py", mode, started, elapsed, info, load_end, sizes.__dict__ | {"b_batch": bench.b_batch}
    )
    doc |= {"results": result_rows(results), "profiles": bench.profiles}
    write_results(args.out or default_out("", args.quick), doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
