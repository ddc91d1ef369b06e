"""H1: the acking writer, run as a subprocess the parent SIGKILLs at random times.

    python tests/reliability/writer.py STORE SEED [--topic t] [--fsync always]
        [--mode log|producer] [--batches N] [--max-records 64]
        [--retention-every N] [--commit-every N --group G]

It appends batches of 1..max-records unique records to random partitions of an existing topic and
reports on stdout, one ``os.write`` per line group so a kill never tears a line:

* ``send D1 D2 ...`` before a batch is handed to the store (its records are now in flight);
* ``ack TOPIC PARTITION OFFSET D`` for each record, only after the append returned, i.e. once it
  is as durable as the fsync policy promises;
* ``fail D`` when the append raised an error that leaves nothing written, ``info D`` when the
  error leaves the outcome unknown (records written, fsync failed);
* ``commit TOPIC PARTITION OFFSET`` after an offset commit to group G returned (every
  ``--commit-every`` batches, the partition's log end offset), ``committing ...`` before it;
* ``retention`` after each ``apply_retention`` pass (every ``--retention-every`` batches).

The parent feeds these lines to :class:`checker.History`. ``--batches`` 0 means until killed.
"""

from __future__ import annotations

import argparse
import os
import random
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from logstore import LogStore, Producer  # noqa: E402
from logstore.errors import LogStoreError  # noqa: E402

try:
    from .checker import digest
except ImportError:  # run as a script
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from checker import digest  # type: ignore[no-redef]


def say(text: str) -> None:
    data = text.encode()
    while data:
        data = data[os.write(1, data) :]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("store")
    ap.add_argument("seed", type=int)
    ap.add_argument("--topic", default="t")
    ap.add_argument("--fsync", default="always")
    ap.add_argument("--mode", choices=["log", "producer"], default="log")
    ap.add_argument("--batches", type=int, default=0)
    ap.add_argument("--max-records", type=int, default=64)
    ap.add_argument("--value-bytes", type=int, default=100)
    ap.add_argument("--retention-every", type=int, default=0)
    ap.add_argument("--commit-every", type=int, default=0)
    ap.add_argument("--group", default="g")
    args = ap.parse_args(argv)
    rnd = random.Random(args.seed)
    n = 0
    with LogStore(args.store, create=False, fsync=args.fsync) as store:
        partitions = store.partition_count(args.topic)
        producer = Producer(store, linger_ms=0) if args.mode == "producer" else None
        committer = None
        if args.commit_every:
            from logstore import Consumer
            from logstore.types import TopicPartition

            committer = Consumer(store, group_id=args.group, enable_auto_commit=False)
            committer.assign([TopicPartition(args.topic, p) for p in range(partitions)])
        b = 0
        while not args.batches or b < args.batches:
            b += 1
            p = rnd.randrange(partitions)
            k = rnd.randint(1, args.max_records)
            values = []
            for _ in range(k):
                head = f"{args.seed}:{n}:".encode()
                n += 1
                values.append(head + rnd.randbytes(max(0, args.value_bytes - len(head))))
            ds = [digest(v) for v in values]
            say("send " + " ".join(ds) + "\n")
            try:
                if producer is not None:
                    res = producer.send_many(args.topic, values, partition=p)
                    offsets = [int(o) for o in res.offsets]
                else:
                    r = store.partition(args.topic, p).append_records(values)
                    offsets = list(range(r.first_offset, r.last_offset + 1))
            except LogStoreError as e:
                kind = "info" if getattr(e, "records_written", False) else "fail"
                why = f"{type(e).__name__}: {e}".replace("\n", " ")
                say("".join(f"{kind} {d}\n" for d in ds) + f"error {why}\n")
                continue
            say("".join(f"ack {args.topic} {p} {o} {d}\n" for o, d in zip(offsets, ds, strict=True)))
            if committer is not None and b % args.commit_every == 0:
                cp = rnd.randrange(partitions)
                end = store.partition(args.topic, cp).next_offset
                say(f"committing {args.topic} {cp} {end}\n")
                committer.commit(offsets={TopicPartition(args.topic, cp): end})
                say(f"commit {args.topic} {cp} {end}\n")
            if args.retention_every and b % args.retention_every == 0:
                store.apply_retention()
                say("retention\n")
        if producer is not None:
            producer.close()
        if committer is not None:
            committer.close(autocommit=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
