"""Kafka's magic-2 record format: varints, batches and codecs. Pure functions over bytes; no files."""

from .batch import (
    CREATE_TIME,
    LOG_APPEND_TIME,
    RECORD_BATCH_OVERHEAD,
    BatchHeader,
    RecordArrays,
    RecordColumns,
    build_batch,
    check_batch,
    decode_batch,
    decode_batch_arrays,
    decode_batches,
    iter_batches,
    read_header,
)

__all__ = [
    "CREATE_TIME",
    "LOG_APPEND_TIME",
    "RECORD_BATCH_OVERHEAD",
    "BatchHeader",
    "RecordArrays",
    "RecordColumns",
    "build_batch",
    "check_batch",
    "decode_batch",
    "decode_batch_arrays",
    "decode_batches",
    "iter_batches",
    "read_header",
]
