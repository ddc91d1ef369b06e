"""The batching producer: records in, compressed Kafka batches appended to partition logs.

``send()`` routes a record to a partition and adds it to that partition's open batch. A batch is
closed when it reaches ``batch_size`` bytes or has waited ``linger_ms``, or on ``flush()`` /
``close()``; a background sender thread then builds one magic-2 batch from it (compressed with
``compression_type``) and appends it with one write. Each record's delivery handle resolves once
the append returned, i.e. once the record is as durable as the topic's ``flush.messages`` /
``flush.ms`` policy promises, or fails with the append's error.

``send_many()`` is the bulk path: a whole column of records routed with numpy and appended in
large batches, for loading data fast.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from time import time_ns as _time_ns
from typing import Any, NamedTuple

import numpy as np

from .config import client_settings
from .errors import (
    InvalidConfigError,
    LogClosedError,
    LogStoreError,
    RecordTooLargeError,
    UnknownPartitionError,
    UnknownTopicError,
)
from .partitioner import crc32_partition, murmur2_partition, murmur2_partitions
from .records.batch import _timestamps as batch_timestamps
from .records.batch import build_batch, encode_records, frame_batch, lengths_of
from .records.compression import codec_id

_OVERHEAD = 21  # bytes a record costs besides its key, value and headers (Kafka's MAX_RECORD_OVERHEAD)
# send_many routes and encodes its input a slice at a time: at least this many records, and this
# many per partition (a few full 1 MiB requests of small records), so slicing adds few appends.
_SLICE_RECORDS = 1 << 18
_SLICE_PER_PARTITION = 1 << 15


class RecordMetadata(NamedTuple):
    """Where a record landed: kafka-python's field names. ``timestamp`` is ms since the epoch
    (the append time for LogAppendTime topics)."""

    topic: str
    partition: int
    offset: int
    timestamp: int


_DEFAULTS: dict[str, Any] = {
    "linger_ms": 5,  # Kafka 4.0's default
    "batch_size": 16384,
    "compression_type": "lz4",
    "max_request_size": 1048576,
    "partitioner": "murmur2_random",
    "null_key_partitioner": "sticky",
    "auto_create_topics": False,
    "max_block_ms": 60000,
    "buffer_memory": 33554432,
}
_PARTITIONERS = ("murmur2_random", "murmur2", "consistent_random", "consistent", "crc32")


def _config(config: Mapping[str, Any] | None, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    out = client_settings("producer", _DEFAULTS, config, kwargs, {"auto.create.topics.enable": "auto_create_topics"})
    for name in ("linger_ms", "batch_size", "max_request_size", "max_block_ms", "buffer_memory"):
        v = out[name]
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise InvalidConfigError(f"{name}={v!r} must be a whole number >= 0.", "Give e.g. linger_ms=5.")
    if out["compression_type"] in (None, "uncompressed"):
        out["compression_type"] = "none"
    codec_id(out["compression_type"])  # raises UnsupportedCodecError for an unknown name
    if out["partitioner"] not in _PARTITIONERS:
        raise InvalidConfigError(
            f"partitioner={out['partitioner']!r} is not known.", f"Use one of: {', '.join(_PARTITIONERS)}."
        )
    if out["null_key_partitioner"] not in ("sticky", "round_robin"):
        raise InvalidConfigError(
            f"null_key_partitioner={out['null_key_partitioner']!r} is not known.", "Use 'sticky' or 'round_robin'."
        )
    return out


class _Batch:
    """Records accumulated for one partition, then the outcome of appending them."""

    __slots__ = (
        "callbacks",
        "created",
        "done",
        "error",
        "headers",
        "keys",
        "partition",
        "result",
        "size",
        "sticky",
        "timestamps",
        "topic",
        "values",
    )

    def __init__(self, topic: str, partition: int, created: float) -> None:
        self.topic = topic
        self.partition = partition
        self.created = created
        self.values: list[bytes | None] = []
        self.keys: list[bytes | None] = []
        self.timestamps: list[int] = []
        self.headers: list[Any] | None = None
        self.callbacks: dict[int, Callable[..., Any]] | None = None
        self.size = 61
        self.sticky = False  # holds null-key records routed by the sticky partitioner
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None


class _TopicState:
    """What ``send`` needs per topic without a lookup: partition count, limits, key routes, and the
    open batch of each partition."""

    __slots__ = ("batch_cap", "codec", "config", "count", "limit", "name", "open", "routes")

    def __init__(self, name: str, count: int, config: Any, max_request: int) -> None:
        self.name = name
        self.count = count
        self.config = config
        self.limit = min(max_request, config.max_message_bytes - 61)
        # A batch must stay under the topic's max.message.bytes (with room for compression overhead).
        self.batch_cap = max(64, int(config.max_message_bytes * 0.95) - 64)
        self.routes: dict[bytes, int] = {}
        self.open: list[_Batch | None] = [None] * count


class FutureRecordMetadata:
    """A record's delivery handle (as kafka-python's): ``get(timeout)`` waits for the append and
    returns :class:`RecordMetadata` or raises the error that failed the record's batch."""

    __slots__ = ("_batch", "_index")

    def __init__(self, batch: _Batch, index: int) -> None:
        self._batch = batch
        self._index = index

    def is_done(self) -> bool:
        return self._batch.done.is_set()

    def succeeded(self) -> bool:
        return self._batch.done.is_set() and self._batch.error is None

    def failed(self) -> bool:
        return self._batch.done.is_set() and self._batch.error is not None

    @property
    def exception(self) -> BaseException | None:
        """The error that failed the record, or None (also while pending)."""
        return self._batch.error

    def get(self, timeout: float | None = None) -> RecordMetadata:
        """Wait up to ``timeout`` seconds (None: forever) for delivery. Raises TimeoutError when it
        is still pending, or the LogStoreError that failed the record's batch."""
        b = self._batch
        if not b.done.wait(timeout):
            raise TimeoutError(f"record to {b.topic}-{b.partition} not delivered within {timeout}s")
        if b.error is not None:
            raise b.error
        return _metadata(b, self._index)

    def __repr__(self) -> str:
        state = "pending" if not self.is_done() else ("failed" if self.failed() else "delivered")
        return f"FutureRecordMetadata({self._batch.topic}-{self._batch.partition}, {state})"


def _metadata(b: _Batch, index: int) -> RecordMetadata:
    first, append_time = b.result
    return RecordMetadata(b.topic, b.partition, first + index, append_time if append_time >= 0 else b.timestamps[index])


_BYTES_OR_NONE = frozenset({bytes, type(None)})


def _bytes_column(items: Sequence[Any], what: str) -> Sequence[bytes | None]:
    """``items`` when every one is bytes or None (checked at C speed: the set of their types),
    else a converted copy (str is UTF-8; anything else raises TypeError naming the record)."""
    if set(map(type, items)) <= _BYTES_OR_NONE:
        return items
    out = []
    for i, x in enumerate(items):
        try:
            out.append(_as_bytes(x, what))
        except TypeError as e:
            raise TypeError(f"record {i}: {e}") from None
    return out


def _gather(items: Sequence[Any], idx: list[int]) -> list[Any]:
    """``[items[i] for i in idx]`` at C speed."""
    if len(idx) == 1:
        return [items[idx[0]]]
    return list(itemgetter(*idx)(items))


class _StageFailure(NamedTuple):
    """An error of send_many's framing thread, passed to the appending thread in its batch's place."""

    error: BaseException


class BulkResult(NamedTuple):
    """Where ``send_many`` put each record: numpy arrays, one entry per record, in input order."""

    topic: str
    partitions: np.ndarray
    offsets: np.ndarray


def _as_bytes(x: Any, what: str) -> bytes | None:
    if x is None or isinstance(x, bytes):
        return x
    if isinstance(x, str):
        return x.encode("utf-8")
    if isinstance(x, (bytearray, memoryview)):
        return bytes(x)
    raise TypeError(f"record {what} is {type(x).__name__}; give bytes, str or None")


def headers_size(headers: Sequence[tuple[str, bytes | None]] | None) -> int:
    """Bytes that ``headers`` add to a record (UTF-8 keys, values, length varints), for size limits."""
    return sum(len(k.encode()) + len(v or b"") + 4 for k, v in headers) if headers else 0


def _check_headers(headers: Any) -> list[tuple[str, bytes | None]]:
    items = headers.items() if isinstance(headers, Mapping) else headers
    out = []
    try:
        for k, v in items:
            if not isinstance(k, str):
                raise TypeError(f"header key {k!r} is {type(k).__name__}; header keys are str")
            out.append((k, _as_bytes(v, f"header '{k}' value")))
    except (TypeError, ValueError) as e:
        raise TypeError(f"headers must be a mapping or a sequence of (str, bytes) pairs: {e}") from None
    return out


class Producer:
    """A thread-safe batching producer on a :class:`~logstore.LogStore`; a context manager whose
    exit flushes and closes.

    Settings (kafka-python spelling as keyword arguments, or Kafka's dotted names in ``config``):
        linger_ms (5): how long a batch waits for more records before it is appended.
        batch_size (16384): bytes of records that close a batch.
        compression_type ("lz4"): none, gzip, snappy, lz4 or zstd.
        max_request_size (1048576): the largest record accepted (bytes, with key and headers).
        partitioner ("murmur2_random"): keyed records by Kafka's Java client (murmur2, "murmur2" also
            hashes null keys as empty) or librdkafka's "consistent" (crc32; also "crc32").
        null_key_partitioner ("sticky"): records without a key fill a batch on one partition, then
            move on ("sticky", Kafka's KIP-480/794 behaviour) or rotate per record ("round_robin").
        auto_create_topics (False): create an unknown topic (one partition) instead of raising.
        buffer_memory (32 MiB) / max_block_ms (60000): ``send`` blocks while more than
            ``buffer_memory`` bytes wait for the sender, and raises after ``max_block_ms``.

    ``clock`` (seconds, monotonic) is injectable for tests of ``linger_ms``.
    """

    def __init__(
        self,
        store: Any,
        config: Mapping[str, Any] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        **kwargs: Any,
    ) -> None:
        self._store = store
        self.config = _config(config, kwargs)
        self._linger = self.config["linger_ms"] / 1000.0
        self._batch_size = self.config["batch_size"]
        self._max_request = self.config["max_request_size"]
        self._buffer_memory = self.config["buffer_memory"]
        self._codec = self.config["compression_type"]
        self._clock = clock
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._ready: deque[_Batch] = deque()
        self._in_flight: set[_Batch] = set()
        self._buffered = 0
        self._closed = False
        self._failures: list[BaseException] = []  # errors since the last flush(), raised by it
        self._dead: LogStoreError | None = None  # set if the sender thread died
        self._topics: dict[str, _TopicState] = {}
        self._sticky: dict[str, int] = {}
        self._rr: dict[str, int] = {}
        self._rng = np.random.default_rng()
        keyed = self.config["partitioner"]
        self._hash = crc32_partition if keyed in ("consistent", "consistent_random", "crc32") else murmur2_partition
        self._hash_null = keyed in ("murmur2", "consistent")
        self._empty_is_null = keyed == "consistent_random"  # librdkafka: key length 0 -> random
        self._sender = threading.Thread(target=self._run, name="logstore-producer", daemon=True)
        self._sender.start()

    # --- routing ------------------------------------------------------------------------------------

    def _topic(self, topic: str) -> _TopicState:
        info = self._topics.get(topic)
        if info is None:
            if not isinstance(topic, str):
                raise TypeError(f"topic is {type(topic).__name__}; give the topic name as str")
            names = self._store.topic_names()
            if topic not in names:
                if not self.config["auto_create_topics"]:
                    raise UnknownTopicError(topic, names, self._store.path)
                self._store.create_topic(topic, 1, exist_ok=True)
            cfg = self._store.topic_config(topic)
            created = _TopicState(topic, self._store.partition_count(topic), cfg, self._max_request)
            with self._lock:
                # Several threads may race to the first send to a topic: exactly one state wins,
                # or batches would sit in a copy the sender never looks at.
                info = self._topics.setdefault(topic, created)
        return info

    def partition_for(self, topic: str, key: bytes | None) -> int:
        """The partition ``send`` picks for ``key`` (a null key: the sticky or round-robin choice)."""
        return self._route(self._topics.get(topic) or self._topic(topic), key)

    def _route(self, ts: _TopicState, key: bytes | None) -> int:
        if (key is None and not self._hash_null) or (not key and self._empty_is_null):
            return self._null_partition(ts.name, ts.count)
        k = key if key is not None else b""
        p = ts.routes.get(k)
        if p is None:
            p = self._hash(k, ts.count)
            if len(ts.routes) >= 100_000:
                ts.routes.clear()
            ts.routes[k] = p
        return p

    def _null_partition(self, topic: str, n: int) -> int:
        if self.config["null_key_partitioner"] == "round_robin":
            p = self._rr.get(topic, -1) + 1
            self._rr[topic] = p
            return p % n
        p = self._sticky.get(topic)
        if p is None or p >= n:
            p = int(self._rng.integers(n))
            self._sticky[topic] = p
        return p

    def _rotate_sticky(self, topic: str, n: int, current: int) -> None:
        """A sticky batch closed: move null-key records to another partition (KIP-480)."""
        if n > 1 and self._sticky.get(topic) == current:
            p = int(self._rng.integers(n - 1))
            self._sticky[topic] = p + (p >= current)

    # --- sending ------------------------------------------------------------------------------------

    def send(
        self,
        topic: str,
        value: bytes | str | None = None,
        key: bytes | str | None = None,
        *,
        partition: int | None = None,
        timestamp: int | None = None,
        headers: Mapping[str, bytes | str | None] | Sequence[tuple[str, bytes | str | None]] | None = None,
        on_delivery: Callable[[LogStoreError | None, RecordMetadata | None], Any] | None = None,
    ) -> FutureRecordMetadata:
        """Queue one record; returns its delivery handle. ``timestamp`` is ms since the epoch
        (default: now). ``on_delivery(err, metadata)`` is called from the sender thread once the
        record is appended (err None) or failed (metadata None), as confluent-kafka's callback.

        Raises at once (nothing queued): UnknownTopicError / UnknownPartitionError, TypeError for a
        key, value or headers of the wrong type, RecordTooLargeError above ``max_request_size`` or
        the topic's ``max.message.bytes``, LogClosedError after close.
        """
        if value.__class__ is not bytes:
            value = _as_bytes(value, "value")
        if key is not None and key.__class__ is not bytes:
            key = _as_bytes(key, "key")
        ts = self._topics.get(topic) or self._topic(topic)
        if partition is None:
            if key is None:
                partition = self._route(ts, None)
            else:
                partition = ts.routes.get(key)
                if partition is None:
                    partition = self._route(ts, key)
        elif partition.__class__ is not int or not 0 <= partition < ts.count:
            if isinstance(partition, int) and not isinstance(partition, bool):
                raise UnknownPartitionError(topic, partition, ts.count)
            raise TypeError(f"partition is {type(partition).__name__}; give an int")
        size = 21 + (len(value) if value is not None else 0) + (len(key) if key is not None else 0)
        hdrs = None
        if headers:
            hdrs = _check_headers(headers)
            size += headers_size(hdrs)
        if size > ts.limit:
            raise self._too_large(ts, partition, size)
        if timestamp is None:
            timestamp = _time_ns() // 1_000_000
        elif timestamp.__class__ is not int or timestamp < 0:
            raise TypeError(f"timestamp {timestamp!r}: give ms since the epoch as a non-negative int")
        with self._lock:
            if self._closed:
                raise LogClosedError("send() on a closed producer.", "Create a new Producer.")
            if self._dead is not None:
                raise self._dead
            if self._buffered > self._buffer_memory:
                self._block_for_room()
            b = ts.open[partition]
            if b is None:
                b = ts.open[partition] = _Batch(topic, partition, self._clock())
                self._wake.notify()  # the sender sleeps until the oldest batch's linger deadline
            elif b.size + size > self._batch_size or b.size + size > ts.batch_cap:
                self._close_batch(ts, b)
                b = ts.open[partition] = _Batch(topic, partition, self._clock())
            i = len(b.values)
            b.values.append(value)
            b.keys.append(key)
            b.timestamps.append(timestamp)
            if hdrs is not None:
                if b.headers is None:
                    b.headers = [None] * i
                b.headers.append(hdrs)
            elif b.headers is not None:
                b.headers.append(None)
            if on_delivery is not None:
                if b.callbacks is None:
                    b.callbacks = {}
                b.callbacks[i] = on_delivery
            if key is None and not self._hash_null:
                b.sticky = True
            b.size += size
            self._buffered += size
            if b.size >= self._batch_size or b.size >= ts.batch_cap or self._linger == 0:
                self._close_batch(ts, b)
        return FutureRecordMetadata(b, i)

    def _too_large(self, ts: _TopicState, partition: int, size: int) -> RecordTooLargeError:
        """The error for one record over a limit, naming the limit that applies."""
        if self._max_request <= ts.config.max_message_bytes - 61:
            return RecordTooLargeError(
                ts.name, partition, size, self._max_request, what="record", setting="max_request_size"
            )
        return RecordTooLargeError(ts.name, partition, size + 61, ts.config.max_message_bytes, what="record")

    def produce(
        self,
        topic: str,
        value: bytes | str | None = None,
        key: bytes | str | None = None,
        partition: int = -1,
        on_delivery: Callable[..., Any] | None = None,
        timestamp: int = 0,
        headers: Any = None,
    ) -> None:
        """confluent-kafka's spelling of :meth:`send` (partition -1 = any, timestamp 0 = now)."""
        self.send(
            topic,
            value,
            key,
            partition=None if partition == -1 else partition,
            timestamp=timestamp or None,
            headers=headers,
            on_delivery=on_delivery,
        )

    def _close_batch(self, ts: _TopicState, b: _Batch) -> None:
        """Hand an open batch to the sender (lock held)."""
        if ts.open[b.partition] is b:
            ts.open[b.partition] = None
        self._ready.append(b)
        if b.sticky and self.config["null_key_partitioner"] == "sticky":
            self._rotate_sticky(b.topic, ts.count, b.partition)
        self._wake.notify()

    def _open_batches(self) -> list[tuple[_TopicState, _Batch]]:
        return [(ts, b) for ts in self._topics.values() for b in ts.open if b is not None]

    def _block_for_room(self) -> None:
        # Lingering batches would never free room on their own: hand them to the sender now.
        for ts, b in self._open_batches():
            self._close_batch(ts, b)
        deadline = time.monotonic() + self.config["max_block_ms"] / 1000.0
        while self._buffered > self._buffer_memory:
            left = deadline - time.monotonic()
            if left <= 0:
                raise LogStoreError(
                    f"producer buffer full ({self._buffered} bytes waiting) for {self.config['max_block_ms']} ms.",
                    "The sender cannot keep up: check the disk, or raise buffer_memory / max_block_ms.",
                )
            self._wake.wait(min(left, 0.05))

    # --- the bulk path --------------------------------------------------------------------------------

    def send_many(
        self,
        topic: str,
        values: Sequence[bytes | None],
        keys: Sequence[bytes | None] | None = None,
        *,
        partition: int | None = None,
        timestamps: int | Sequence[int] | None = None,
        headers: Sequence[Sequence[tuple[str, bytes | None]] | None] | None = None,
    ) -> BulkResult:
        """Append many records at once and wait for them: routed like ``send`` (keys by the
        partitioner, null keys spread round-robin over partitions in runs of ``batch_size``),
        batched up to ``max_request_size`` per append, in input order per partition.

        Returns each record's partition and offset. Keys and values must be bytes (or None).
        Raises like ``send``; a failed append raises after the batches before it were appended
        (their offsets are in the log; the error names the partition).
        """
        n = len(values)
        state = self._topics.get(topic) or self._topic(topic)
        count, cfg = state.count, state.config
        if self._closed:
            raise LogClosedError("send_many() on a closed producer.", "Create a new Producer.")
        # Check every input before anything is appended: nothing half-done on bad input.
        values = _bytes_column(values, "value")
        if keys is not None:
            if len(keys) != n:
                raise ValueError(f"{len(keys)} keys for {n} values; pass one key (or None) per value")
            keys = _bytes_column(keys, "key")
        if headers is not None:
            if len(headers) != n:
                raise ValueError(f"{len(headers)} header lists for {n} values; pass one (or None) per value")
            headers = [_check_headers(h) if h else None for h in headers]
        if timestamps is not None and not isinstance(timestamps, int):
            if len(timestamps) != n:
                raise ValueError(f"{len(timestamps)} timestamps for {n} values; pass one per value or one int")
            if n and int(np.min(np.asarray(timestamps, dtype=np.int64))) < 0:
                raise ValueError("timestamps must be ms since the epoch (non-negative)")
        elif isinstance(timestamps, int) and timestamps < 0:
            raise ValueError("timestamp must be ms since the epoch (non-negative)")
        # Lists from here on: the slices below must be cheap and must be lists.
        values = values if isinstance(values, list) else list(values)
        if keys is not None and not isinstance(keys, list):
            keys = list(keys)
        # One pass over each column for its lengths (-1 for None), shared by routing, sizing and
        # encoding.
        vlens = lengths_of(values, "value")
        klens = lengths_of(keys, "key") if keys is not None else None
        # Records sent earlier with send() to these partitions go first (order per partition).
        self._drain()
        if partition is not None and (
            isinstance(partition, bool) or not isinstance(partition, int) or not 0 <= partition < count
        ):
            raise UnknownPartitionError(topic, partition, count)
        per = max(1, self._batch_size // 128)
        spread = int(self._rng.integers(count)) if keys is None and partition is None else 0

        def route(lo: int, hi: int) -> np.ndarray:
            """The partitions of records lo..hi-1."""
            if partition is not None:
                return np.full(hi - lo, partition, dtype=np.int64)
            if keys is None:  # null keys: runs of ``per`` records, partition after partition
                return (np.arange(lo, hi, dtype=np.int64) // per + spread) % count
            if self._hash is murmur2_partition:
                return murmur2_partitions(
                    keys[lo:hi], count, hash_null=self._hash_null, rng=self._rng, lengths=klens[lo:hi]
                )
            return np.fromiter((self._route(state, k) for k in keys[lo:hi]), np.int64, hi - lo)

        offsets = np.full(n, -1, dtype=np.int64)
        if timestamps is None:
            timestamps = time.time_ns() // 1_000_000
        ts_arr = None if isinstance(timestamps, int) else np.asarray(timestamps, dtype=np.int64)
        limit = state.limit
        codec = self._codec if cfg.compression_type == "producer" else cfg.compression_type
        codec = "none" if codec == "uncompressed" else codec
        sizes = _OVERHEAD + np.maximum(vlens, 0)
        if klens is not None:
            sizes += np.maximum(klens, 0)
        if headers is not None:
            sizes += np.fromiter(map(headers_size, headers), np.int64, n)
        if n and int(sizes.max()) > limit:
            i = int(np.argmax(sizes))
            raise self._too_large(state, int(route(i, i + 1)[0]), int(sizes[i]))
        gather = count > 1 and partition is None
        # A three-stage pipeline: this thread encodes (Python, holding the GIL), one thread
        # compresses and frames (lz4 and CRC-32C release the GIL) and one appends (write and fsync
        # release it too). Each stage is FIFO, so batches reach a partition in input order.
        compress_q: queue.Queue[Any] = queue.Queue(maxsize=2)
        append_q: queue.Queue[Any] = queue.Queue(maxsize=2)
        failure: list[BaseException] = []

        def framer(item: tuple[Any, ...]) -> tuple[Any, ...]:
            log, records, count, base_ts, max_ts, where = item
            return log, frame_batch(records, count, base_ts, max_ts, compression_type=codec), where

        def appender(item: tuple[Any, ...]) -> None:
            log, batch, where = item
            r = log.append(batch, validate=False)
            offsets[where] = np.arange(r.first_offset, r.last_offset + 1)

        def frame_stage() -> None:
            # A framing error travels down the queue in its batch's place, so the appender stops
            # exactly there: the error raised is always the earliest batch's, in input order.
            failed = False
            while (item := compress_q.get()) is not None:
                if failed or failure:  # after a failure here, or the appender's: frame no more
                    continue
                try:
                    append_q.put(framer(item))
                except BaseException as e:
                    failed = True
                    append_q.put(_StageFailure(e))
            append_q.put(None)

        def append_stage() -> None:
            # The batches before a failed one are appended, none after it. Either stage keeps
            # draining its queue after a failure, so no put() upstream blocks.
            while (item := append_q.get()) is not None:
                if failure:
                    continue
                if isinstance(item, _StageFailure):
                    failure.append(item.error)
                    continue
                try:
                    appender(item)
                except BaseException as e:
                    failure.append(e)

        threads: list[threading.Thread] = []
        if n and int(sizes.sum()) <= limit:
            # Input that fits one request per partition: no pipeline to overlap, so no threads to
            # start; the stages run here, in order.
            def submit(item: tuple[Any, ...]) -> None:
                try:
                    appender(framer(item))
                except BaseException as e:
                    failure.append(e)
        else:
            threads = [
                threading.Thread(target=frame_stage, name="logstore-frame", daemon=True),
                threading.Thread(target=append_stage, name="logstore-append", daemon=True),
            ]
            for t in threads:
                t.start()
            submit = compress_q.put
        # Route, sort and encode a slice of the input at a time, so the other stages start on the
        # first slice's batches while this thread works on the next.
        step = max(_SLICE_RECORDS, count * _SLICE_PER_PARTITION)
        parts = np.empty(n, dtype=np.int64)
        try:
            for lo in range(0, n, step):
                if failure:
                    break
                hi = min(n, lo + step)
                parts[lo:hi] = route(lo, hi)
                if gather:
                    # numpy's stable sort of 16-bit ints is a radix sort: much faster than int64's.
                    key = parts[lo:hi].astype(np.int16) if count <= 0x7FFF else parts[lo:hi]
                    order = np.argsort(key, kind="stable") + lo
                else:
                    order = np.arange(lo, hi)
                sorted_parts = parts[order]
                bounds = np.flatnonzero(np.diff(sorted_parts)) + 1
                for s, e in zip([0, *bounds.tolist()], [*bounds.tolist(), hi - lo], strict=True):
                    if failure:
                        break
                    p = int(sorted_parts[s])
                    idx = order[s:e]
                    il = idx.tolist()
                    vals = _gather(values, il) if gather else values[lo:hi]
                    ks = None if keys is None else (_gather(keys, il) if gather else keys[lo:hi])
                    hs = None if headers is None else _gather(headers, il)
                    vl = vlens[idx]
                    kl = None if klens is None else klens[idx]
                    cum = np.cumsum(sizes[idx])
                    log = self._store.partition(topic, p)
                    pos, m, done_bytes = 0, len(il), 0
                    while pos < m and not failure:
                        # As many records as fit the request limit (at least one), uncompressed.
                        end = max(pos + 1, int(np.searchsorted(cum, done_bytes + limit - 61, side="right")))
                        end = min(end, pos + 65536, m)
                        chunk_ts: Any = timestamps if ts_arr is None else ts_arr[idx[pos:end]]
                        base_ts, max_ts, deltas = batch_timestamps(end - pos, chunk_ts, None)
                        records = encode_records(
                            vals[pos:end],
                            ks[pos:end] if ks is not None else None,
                            deltas,
                            hs[pos:end] if hs is not None else None,
                            value_lengths=vl[pos:end],
                            key_lengths=kl[pos:end] if kl is not None else None,
                        )
                        submit((log, records, end - pos, base_ts, max_ts, idx[pos:end]))
                        done_bytes = int(cum[end - 1])
                        pos = end
        finally:
            if threads:
                compress_q.put(None)
                for t in threads:
                    t.join()
        if failure:
            raise failure[0]
        return BulkResult(topic, parts, offsets)

    # --- the sender ---------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as e:  # the sender must never die silently: fail what is pending
            dead = LogStoreError(
                f"the producer's sender thread stopped: {e!r}.",
                "Records not yet delivered have failed; create a new Producer.",
            )
            with self._lock:
                self._dead = dead
                pending = list(self._ready) + list(self._in_flight) + [b for _, b in self._open_batches()]
                for ts in self._topics.values():
                    ts.open = [None] * ts.count
                self._ready.clear()
                self._failures.append(dead)
            for b in pending:
                if not b.done.is_set():
                    b.error = dead
                    b.done.set()

    def _loop(self) -> None:
        while True:
            with self._lock:
                while True:
                    now = self._clock()
                    opened = self._open_batches()
                    if self._closed and opened:
                        for ts, b in opened:  # closing: no more lingering
                            self._close_batch(ts, b)
                        opened = []
                    if self._linger and opened:
                        for ts, b in opened:
                            if now - b.created >= self._linger:
                                self._close_batch(ts, b)
                    if self._ready:
                        batches = list(self._ready)
                        self._ready.clear()
                        self._in_flight.update(batches)
                        break
                    if self._closed and not opened:
                        return
                    timeout = 0.5
                    if opened:
                        oldest = min(b.created for _, b in opened)
                        timeout = max(0.0005, oldest + self._linger - now)
                    self._wake.wait(timeout)
            self._deliver(batches)
            with self._lock:
                for b in batches:
                    self._in_flight.discard(b)
                    self._buffered -= b.size - 61
                self._wake.notify_all()

    def _deliver(self, batches: list[_Batch]) -> None:
        """Append ready batches, grouped per partition into one write (and one fsync) each: while
        the sender waits on a disk flush, the next round's batches fill up (group commit)."""
        groups: dict[tuple[str, int], list[_Batch]] = {}
        for b in batches:
            groups.setdefault((b.topic, b.partition), []).append(b)
        for (topic, partition), group in groups.items():
            built: list[bytes] = []
            try:
                cfg = self._topics[topic].config
                codec = self._codec if cfg.compression_type == "producer" else cfg.compression_type
                codec = "none" if codec == "uncompressed" else codec
                for b in group:
                    built.append(
                        build_batch(
                            b.values,
                            b.keys if any(k is not None for k in b.keys) else None,
                            timestamps=b.timestamps,
                            headers=b.headers,
                            compression_type=codec,
                        )
                    )
                r = self._store.partition(topic, partition).append(b"".join(built), validate=False)
                offset = r.first_offset
                for b in group:
                    b.result = (offset, r.log_append_time)
                    offset += len(b.values)
            except Exception as e:
                err = (
                    e
                    if isinstance(e, LogStoreError)
                    else LogStoreError(
                        f"append to {topic}-{partition} failed: {e!r}.", "The records of this batch were not delivered."
                    )
                )
                for b in group:
                    b.error = err
                with self._lock:
                    self._failures.append(err)
            for b in group:
                b.done.set()
                if b.callbacks:
                    for i, cb in b.callbacks.items():
                        try:
                            if b.error is None:
                                cb(None, _metadata(b, i))
                            else:
                                cb(b.error, None)
                        except BaseException:  # a callback's own bug must not stop delivery of the rest
                            pass

    # --- flushing and closing -----------------------------------------------------------------------

    def _drain(self, timeout: float | None = None) -> None:
        """Close every open batch and wait until everything sent so far was appended or failed.
        Raises TimeoutError when ``timeout`` seconds pass first."""
        if threading.current_thread() is self._sender:
            raise LogStoreError(
                "flush() or close() called from an on_delivery callback would wait for itself.",
                "Call it from your own thread; callbacks run on the producer's sender thread.",
            )
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            for ts, b in self._open_batches():
                self._close_batch(ts, b)
            waiting = list(self._ready) + list(self._in_flight)
        for b in waiting:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not b.done.wait(left):
                raise TimeoutError(f"records still pending after {timeout}s")

    def flush(self, timeout: float | None = None) -> int:
        """Send every open batch now and wait until everything sent so far is appended (durable per
        the topic policy). Returns 0. Raises TimeoutError when ``timeout`` seconds pass first, or
        the first error that failed a record since the last flush (also records whose futures
        nobody looked at)."""
        self._drain(timeout)
        with self._lock:
            failures, self._failures = self._failures, []
        if failures:
            raise failures[0]
        return 0

    def close(self, timeout: float | None = None) -> None:
        """Stop accepting records, flush, stop the sender thread. Idempotent. Raises like
        :meth:`flush`."""
        with self._lock:
            if self._closed:
                return
            self._closed = True  # from here send() raises; nothing can slip in after the flush
            self._wake.notify_all()
        try:
            self.flush(timeout)
        finally:
            self._sender.join(timeout)

    def __enter__(self) -> Producer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
