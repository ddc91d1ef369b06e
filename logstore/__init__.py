"""logstore: a Kafka-compatible partitioned, append-only log store you embed in Python.

from logstore import LogStore

with LogStore("data/store") as store:
    store.create_topic("events", partitions=4, exist_ok=True)
    store.append("events", 0, [b"hello", b"world"], keys=[b"k1", b"k2"])
    records = store.read("events", 0, offset=0)
"""

from .config import TopicConfig
from .consumer import ColumnChunk, Consumer
from .errors import (
    CorruptDataError,
    CorruptIndexError,
    CorruptLogError,
    CorruptRecordError,
    InvalidConfigError,
    InvalidTopicError,
    LogClosedError,
    LogStoreError,
    NoOffsetForPartitionError,
    NotAssignedError,
    OffsetOutOfRangeError,
    RecordTooLargeError,
    StorageError,
    StoreFormatError,
    StoreLockedError,
    StoreNotFoundError,
    TopicExistsError,
    UnknownPartitionError,
    UnknownTopicError,
    UnsafeStoreError,
    UnsupportedCodecError,
    UnsupportedFormatError,
)
from .producer import BulkResult, FutureRecordMetadata, Producer, RecordMetadata
from .records import RecordArrays, RecordColumns, build_batch
from .storage.log import AppendResult, PartitionLog, Problem
from .store import LogStore, PartitionInfo, TopicInfo
from .types import OffsetAndTimestamp, Record, TopicPartition

__version__ = "0.1.0"

__all__ = [
    "AppendResult",
    "BulkResult",
    "ColumnChunk",
    "Consumer",
    "CorruptDataError",
    "CorruptIndexError",
    "CorruptLogError",
    "CorruptRecordError",
    "FutureRecordMetadata",
    "InvalidConfigError",
    "InvalidTopicError",
    "LogClosedError",
    "LogStore",
    "LogStoreError",
    "NoOffsetForPartitionError",
    "NotAssignedError",
    "OffsetAndTimestamp",
    "OffsetOutOfRangeError",
    "PartitionInfo",
    "PartitionLog",
    "Problem",
    "Producer",
    "Record",
    "RecordArrays",
    "RecordColumns",
    "RecordMetadata",
    "RecordTooLargeError",
    "StorageError",
    "StoreFormatError",
    "StoreLockedError",
    "StoreNotFoundError",
    "TopicConfig",
    "TopicExistsError",
    "TopicInfo",
    "TopicPartition",
    "UnknownPartitionError",
    "UnknownTopicError",
    "UnsafeStoreError",
    "UnsupportedCodecError",
    "UnsupportedFormatError",
    "__version__",
    "build_batch",
]
