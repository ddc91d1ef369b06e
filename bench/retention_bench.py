"""Retention benchmark: a retention pass that finds nothing due over many segments, and deleting
many segments, beside the file-system floors measured in the same run.

Workload: 100 partitions of 100 segments each (quick: 20 x 50), one 4 KiB lz4 batch per segment
with timestamps of now, ``retention.ms`` 7 days and ``retention.bytes`` 1 GiB per partition, so
nothing is due. Then 10 partitions of 100 segments each (quick: 5 x 40) whose records are 30 days
old, all due.

Lines (targets from the issue):
  1.cold     ``LogStore(path).apply_retention()`` in a fresh process over 10,000 segments in 100
             partitions, nothing due: what a cron job pays, opening every partition included
                                                                             <= 500 ms
  1.warm     the same pass again in the same process (a long-lived embedding process)   (info)
  1.floor    ``os.stat`` of every segment file (the least any pass that looks at each segment
             can cost)                                                                   (info)
  2.delete   ``apply_retention()`` deleting 1,000 segments (10 partitions x 100), in a fresh
             process: renames, fsyncs, checkpoints, unlinks                  <= 2000 ms
  2.floor    rename + unlink of the same number of segment files (.log, .index, .timeindex)
             with one directory fsync per partition                                      (info)

Run: ``python bench/retention_bench.py`` (about a minute) or ``--quick``. Prints a table to stdout
(progress to stderr) and writes ``bench/results/<date>-retention[-quick].json``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for p in (REPO, os.path.join(REPO, "bench")):
    if p not in sys.path:
        sys.path.insert(0, p)

import storage_bench as sb  # noqa: E402

from logstore import LogStore  # noqa: E402
from logstore.records import build_batch  # noqa: E402
from logstore.storage.files import fsync_dir  # noqa: E402

Result = sb.Result
progress = sb.progress
DAY_MS = 86_400_000


@dataclass(frozen=True)
class Sizes:
    idle_partitions: int
    idle_segments: int
    due_partitions: int
    due_segments: int
    rounds: int


FULL = Sizes(100, 100, 10, 100, 5)
QUICK = Sizes(20, 50, 5, 40, 2)

TOPIC_CONFIG = {
    "segment.index.bytes": 4096,  # small preallocation: the setup makes thousands of segments
    "flush.messages": 1 << 62,  # the setup's appends need not be fsynced one by one
    "retention.bytes": 1 << 30,
}


def build(path: str, topic: str, partitions: int, segments: int, ts_ms: int) -> int:
    """A topic of ``partitions`` partitions with ``segments`` sealed one-batch segments each (plus
    an empty active one). Returns the number of segment files."""
    with LogStore(path) as store:
        store.create_topic(topic, partitions, TOPIC_CONFIG)
        batch = build_batch([os.urandom(60) for _ in range(40)], timestamps=ts_ms, compression_type="lz4")
        for p in range(partitions):
            log = store.partition(topic, p)
            for _ in range(segments):
                log.append(batch, validate=False)
                log.roll()
            log.flush()
    return partitions * segments


def in_child(path: str, topic: str | None) -> dict[str, Any]:
    """Time a retention pass in a fresh interpreter (the cron job's cost) and a second one there."""
    code = (
        "import json, sys, time\n"
        f"sys.path.insert(0, {REPO!r})\n"
        "t0 = time.perf_counter()\n"
        "from logstore import LogStore\n"
        "t1 = time.perf_counter()\n"
        f"s = LogStore({path!r})\n"
        f"r = s.apply_retention({topic!r})\n"
        "t2 = time.perf_counter()\n"
        f"r2 = s.apply_retention({topic!r})\n"
        "t3 = time.perf_counter()\n"
        "s.close()\n"
        "print(json.dumps({'import_s': t1 - t0, 'cold_s': t2 - t1, 'warm_s': t3 - t2,\n"
        "  'deleted': sum(x.segments_deleted for x in r), 'partitions': len(r),\n"
        "  'deleted_again': sum(x.segments_deleted for x in r2)}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    import json

    return json.loads(out.stdout)


def stat_floor(path: str) -> float:
    t0 = time.perf_counter()
    for d in os.listdir(path):
        full = os.path.join(path, d)
        if os.path.isdir(full):
            for name in os.listdir(full):
                if name.endswith(".log"):
                    os.stat(os.path.join(full, name))
    return time.perf_counter() - t0


def delete_floor(root: str, partitions: int, segments: int) -> float:
    """rename + unlink of segments x 3 files in each of ``partitions`` directories, one directory
    fsync per partition: the file-system work of a deletion, without logstore."""
    dirs = []
    for p in range(partitions):
        d = os.path.join(root, f"floor-{p}")
        os.makedirs(d)
        for s in range(segments):
            for suffix in (".log", ".index", ".timeindex"):
                with open(os.path.join(d, f"{s:020d}{suffix}"), "wb") as f:
                    f.write(b"x" * (4096 if suffix == ".log" else 0))
        dirs.append(d)
    os.sync()
    t0 = time.perf_counter()
    for d in dirs:
        names = os.listdir(d)
        for n in names:
            os.rename(os.path.join(d, n), os.path.join(d, n + ".deleted"))
        fsync_dir(d)
        for n in names:
            os.unlink(os.path.join(d, n + ".deleted"))
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller: 20 x 50 idle and 5 x 40 due segments, 2 rounds")
    ap.add_argument("--dir", help="directory to create the bench files in (default: the system temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the bench directory afterwards")
    ap.add_argument("--out", help="results JSON path (default bench/results/<date>-retention[-quick].json)")
    args = ap.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    root = sb.make_root("logstore-rbench-", args.dir)
    started = time.time()
    t_start = time.perf_counter()
    info = sb.machine(root)
    mode = "quick" if args.quick else "full"
    header = sb.run_header("retention", mode, info, root)
    results: list[Any] = []
    try:
        now = int(time.time() * 1000)
        store_path = os.path.join(root, "store")
        idle_n = sizes.idle_partitions * sizes.idle_segments
        progress(f"building {idle_n} segments in {sizes.idle_partitions} partitions")
        t0 = time.perf_counter()
        build(store_path, "idle", sizes.idle_partitions, sizes.idle_segments, now)
        progress(f"  {time.perf_counter() - t0:.1f} s")
        cold, warm, floor = [], [], []
        for i in range(sizes.rounds):
            got = in_child(store_path, "idle")
            assert got["deleted"] == 0 and got["partitions"] == sizes.idle_partitions, got
            cold.append(got["cold_s"] * 1000)
            warm.append(got["warm_s"] * 1000)
            floor.append(stat_floor(store_path) * 1000)
            progress(f"  round {i + 1}: cold {cold[-1]:.0f} ms, warm {warm[-1]:.1f} ms, stat floor {floor[-1]:.1f} ms")
        med = statistics.median(cold)
        results.append(
            Result(
                "1.cold",
                f"retention pass, nothing due, {idle_n:,} segments / {sizes.idle_partitions} partitions, fresh process",
                med,
                "ms",
                "<= 500",
                med <= 500 if not args.quick else None,
                note=f"median of {len(cold)} processes: {', '.join(f'{x:.0f}' for x in cold)} ms "
                "(opening the store and every partition included; interpreter start and imports not)",
            )
        )
        results.append(
            Result("1.warm", "  the same pass again in that process", statistics.median(warm), "ms", note="")
        )
        results.append(
            Result("1.floor", "  floor: os.stat of every segment's .log", statistics.median(floor), "ms", note="")
        )

        due_n = sizes.due_partitions * sizes.due_segments
        deletes, floors = [], []
        for i in range(sizes.rounds):
            progress(f"round {i + 1}: building {due_n} due segments")
            build(store_path, f"due{i}", sizes.due_partitions, sizes.due_segments, now - 30 * DAY_MS)
            os.sync()
            got = in_child(store_path, f"due{i}")
            assert got["deleted"] == due_n and got["deleted_again"] == 0, got
            deletes.append(got["cold_s"] * 1000)
            floors.append(
                delete_floor(os.path.join(root, f"floor{i}"), sizes.due_partitions, sizes.due_segments) * 1000
            )
            progress(f"  delete {deletes[-1]:.0f} ms, floor {floors[-1]:.0f} ms")
        med = statistics.median(deletes)
        results.append(
            Result(
                "2.delete",
                f"retention pass deleting {due_n:,} segments ({sizes.due_partitions} partitions), fresh process",
                med,
                "ms",
                "<= 2000",
                med <= 2000 if not args.quick else None,
                note=f"median of {len(deletes)}: {', '.join(f'{x:.0f}' for x in deletes)} ms; each partition: "
                "rename of 3 files per segment, a directory fsync, the log-start-offset checkpoint "
                "(write, fsync, rename, directory fsync), then the unlinks",
            )
        )
        fl = statistics.median(floors)
        results.append(
            Result(
                "2.floor",
                "  floor: rename + dir fsync + unlink of the same files, no logstore",
                fl,
                "ms",
                note=f"logstore / floor = {med / fl:.2f}x",
            )
        )
    finally:
        sb.remove_root(root, args.keep)
    elapsed = time.perf_counter() - t_start
    load_end = sb.print_report(header, results, elapsed, info["load_average_start"], {})
    doc = sb.run_doc("bench/retention_bench.py", mode, started, elapsed, info, load_end, sizes.__dict__)
    doc["results"] = sb.result_rows(results)
    sb.write_results(args.out or sb.default_out("-retention", args.quick), doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
