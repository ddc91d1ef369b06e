"""Magic-2 record batches (logstore.records.batch): the fact sheet's golden bytes, round trips over
every codec, interop with kafka-python in both directions, corruption and torn tails."""

from __future__ import annotations

import random
import struct
import zlib

import lz4.block
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder
from kafka.record.memory_records import MemoryRecords

import logstore.records.batch as batch_module
from logstore.errors import CorruptRecordError, UnsupportedCodecError
from logstore.records import (
    CREATE_TIME,
    LOG_APPEND_TIME,
    RECORD_BATCH_OVERHEAD,
    BatchHeader,
    build_batch,
    check_batch,
    compression,
    decode_batch,
    decode_batches,
    iter_batches,
    read_header,
)
from logstore.records.batch import HEADER, RecordArrays, crc32c, find_timestamp, set_base_offset

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
CODEC_ID = {name: i for i, name in enumerate(CODECS)}

# --- golden vectors (fact sheet section 2) ------------------------------------------------------

V1 = bytes.fromhex(
    "0000000000000000" "0000003a" "00000000" "02" "fe917cab" "0000" "00000000"
    "0000000000000000" "0000000000000000" "ffffffffffffffff" "ffff" "ffffffff" "00000001"
    "10" "00" "00" "00" "02" "6b" "02" "76" "00"
)  # fmt: skip
V2 = bytes.fromhex(
    "0000000000000064" "0000004b" "00000000" "02" "8881cee8" "0000" "00000001"
    "0000018bcfe56800" "0000018bcfe56805" "ffffffffffffffff" "ffff" "ffffffff" "00000002"
    "1e" "00" "00" "00" "01" "0a" "68656c6c6f" "02" "02" "68" "02" "31"
    "12" "00" "0a" "02" "00" "01" "02" "02" "6e" "01"
)  # fmt: skip
V3 = bytes.fromhex(
    "00000000000000000000003affffffff0248c3d3190000000000000000000000000000000000000000000000000000"
    "000003e80000000000000000000110000000026b027600"
)
V4 = bytes.fromhex(
    "000000000000000000000049ffffffff0218abbf2600030000000000000000000000000000000000000000ffffffffff"
    "ffffffffffffffffff0000000104224d186040820900008010000000026b02760000000000"
)


def build_v1(**kw):
    return build_batch([b"v"], [b"k"], timestamps=0, **kw)


def build_v2():
    return build_batch(
        [b"hello", None],
        [None, b""],
        headers=[[("h", b"1")], [("n", None)]],
        base_offset=100,
        partition_leader_epoch=0,
        timestamps=[1700000000000, 1700000000005],
    )


def test_crc32c_check_value():
    assert crc32c(b"123456789") == 0xE3069283
    assert zlib.crc32(b"123456789") == 0xCBF43926  # the legacy v0/v1 checksum differs
    assert crc32c(b"6789", crc32c(b"12345")) == 0xE3069283  # chained, as build_batch uses it


def test_v1_golden_bytes():
    batch = build_v1(partition_leader_epoch=0)
    assert len(batch) == 70
    assert batch == V1
    assert batch[17:21] == bytes.fromhex("fe917cab")


def test_v1_with_java_leader_epoch_has_the_same_crc():
    batch = build_v1()  # default epoch -1, as the Java producer sends
    assert batch[12:16] == b"\xff\xff\xff\xff"
    assert batch[:12] + batch[16:] == V1[:12] + V1[16:]


def test_v2_golden_bytes():
    batch = build_v2()
    assert len(batch) == 87
    assert batch == V2
    assert read_header(batch) == BatchHeader(
        base_offset=100,
        batch_length=0x4B,
        partition_leader_epoch=0,
        magic=2,
        crc=0x8881CEE8,
        attributes=0,
        last_offset_delta=1,
        base_timestamp=1700000000000,
        max_timestamp=1700000000005,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        records_count=2,
    )


def test_v3_golden_bytes():
    batch = build_v1(producer_id=1000, producer_epoch=0, base_sequence=0)
    assert batch == V3
    h = read_header(batch)
    assert (h.producer_id, h.producer_epoch, h.base_sequence, h.crc) == (1000, 0, 0, 0x48C3D319)


def test_v4_golden_bytes():
    batch = build_v1(compression_type="lz4")
    assert len(batch) == 85
    assert batch == V4
    h = read_header(batch)
    assert (h.batch_length, h.attributes, h.compression, h.crc) == (0x49, 3, 3, 0x18ABBF26)


@pytest.mark.parametrize("batch", [V1, V3, V4], ids=["V1", "V3", "V4"])
def test_golden_v1_v3_v4_decode(batch):
    cols = decode_batch(batch)
    assert cols.offsets == [0]
    assert cols.timestamps == [0]
    assert cols.keys == [b"k"]
    assert cols.values == [b"v"]
    assert cols.headers == [()]
    assert cols.timestamp_types == [CREATE_TIME]


def test_golden_v2_decode():
    cols = decode_batch(V2)
    assert cols.offsets == [100, 101]
    assert cols.timestamps == [1700000000000, 1700000000005]
    assert cols.keys == [None, b""]
    assert cols.values == [b"hello", None]
    assert cols.headers == [(("h", b"1"),), (("n", None),)]
    assert len(cols) == 2


@pytest.mark.parametrize("batch", [V1, V2, V3, V4], ids=["V1", "V2", "V3", "V4"])
def test_golden_vectors_parse_in_kafka_python(batch):
    kb = DefaultRecordBatch(batch)
    assert kb.validate_crc()
    ours = decode_batch(batch)
    recs = list(kb)
    assert [r.offset for r in recs] == ours.offsets
    assert [r.timestamp for r in recs] == ours.timestamps
    assert [r.key for r in recs] == ours.keys
    assert [r.value for r in recs] == ours.values
    assert [tuple(r.headers) for r in recs] == ours.headers


# --- an independent encoder, written from the fact sheet ----------------------------------------


def zz(value: int) -> bytes:
    """Zigzag varint/varlong in plain Python ints."""
    z = ((value << 1) ^ (value >> 63)) & ((1 << 64) - 1)
    out = bytearray()
    while z >= 0x80:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


def ref_bytes_field(b: bytes | None) -> bytes:
    return b"\x01" if b is None else zz(len(b)) + b


def ref_record(offset_delta, ts_delta, key, value, headers, attributes=b"\x00") -> bytes:
    body = attributes + zz(ts_delta) + zz(offset_delta) + ref_bytes_field(key) + ref_bytes_field(value)
    body += zz(len(headers))
    for hk, hv in headers:
        body += ref_bytes_field(hk.encode("utf-8")) + ref_bytes_field(hv)
    return zz(len(body)) + body


def reframe(records: bytes, count: int, codec: int = 0, *, base_offset=0, last_offset_delta=None, base_ts=0) -> bytes:
    """A batch around a (possibly malformed) records section, with a correct CRC."""
    payload = compression.compress(codec, records) if codec else records
    lod = count - 1 if last_offset_delta is None else last_offset_delta
    header = bytearray(
        HEADER.pack(base_offset, 49 + len(payload), -1, 2, 0, codec, lod, base_ts, base_ts, -1, -1, -1, count)
    )
    struct.pack_into(">I", header, 17, crc32c(bytes(header[21:]) + payload))
    return bytes(header) + payload


def test_reframe_matches_build_batch():
    # the helper is right: it rebuilds V1 and V2 byte for byte
    assert reframe(ref_record(0, 0, b"k", b"v", []), 1)[16:] == V1[16:]
    v2_records = ref_record(0, 0, None, b"hello", [("h", b"1")]) + ref_record(1, 5, b"", None, [("n", None)])
    assert v2_records == V2[61:]


# --- round trips --------------------------------------------------------------------------------


def big_value(size: int, seed: int, compressible: bool) -> bytes:
    rng = random.Random(seed)
    if not compressible:
        return rng.randbytes(size)
    unit = rng.randbytes(rng.randrange(1, 200))
    return (unit * (size // len(unit) + 1))[:size]


keys_st = st.one_of(st.none(), st.just(b""), st.binary(max_size=30))
values_st = st.one_of(st.none(), st.just(b""), st.binary(max_size=200))
large_values_st = st.builds(big_value, st.integers(65_537, 150_000), st.integers(0, 2**32), st.booleans())
header_values_st = st.one_of(st.none(), st.just(b""), st.binary(max_size=20))
headers_st = st.one_of(
    st.none(),
    st.just([]),
    st.lists(st.tuples(st.text(max_size=8), header_values_st), max_size=4),
)
timestamps_st = st.integers(0, 2**45)


@st.composite
def batches(draw, max_records=25, allow_large=True):
    n = draw(st.integers(1, max_records))
    values = draw(st.lists(values_st, min_size=n, max_size=n))
    if allow_large and draw(st.booleans()):
        for _ in range(draw(st.integers(1, 2))):
            values[draw(st.integers(0, n - 1))] = draw(large_values_st)
    keys = draw(st.one_of(st.none(), st.lists(keys_st, min_size=n, max_size=n)))
    headers = draw(st.one_of(st.none(), st.lists(headers_st, min_size=n, max_size=n)))
    first = draw(st.one_of(st.just(-1), st.just(0), timestamps_st))
    timestamps = draw(st.one_of(st.just(first), st.lists(timestamps_st, min_size=n - 1, max_size=n - 1)))
    if isinstance(timestamps, list):
        timestamps = [first, *timestamps]  # any order: decreasing timestamps inside a batch are legal
    return {"values": values, "keys": keys, "headers": headers, "timestamps": timestamps}


def expected_records(spec):
    n = len(spec["values"])
    ts = spec["timestamps"]
    ts = [ts] * n if isinstance(ts, int) else list(ts)
    keys = spec["keys"] if spec["keys"] is not None else [None] * n
    headers = [tuple(tuple(h) for h in (hs or ())) for hs in (spec["headers"] or [None] * n)]
    return ts, keys, headers


def ref_records_section(spec) -> bytes:
    ts, keys, headers = expected_records(spec)
    rows = zip(ts, keys, spec["values"], headers, strict=True)
    return b"".join(ref_record(i, t - ts[0], k, v, h) for i, (t, k, v, h) in enumerate(rows))


def check_roundtrip(batch, spec, codec, base_offset, timestamp_type=CREATE_TIME, now_ms=None):
    n = len(spec["values"])
    ts, keys, headers = expected_records(spec)
    h = read_header(batch)
    assert h.size == len(batch)
    assert h.magic == 2
    assert h.base_offset == base_offset
    assert h.records_count == n
    assert h.last_offset_delta == n - 1
    assert h.next_offset == base_offset + n
    assert h.compression == CODEC_ID[codec]
    assert h.base_timestamp == ts[0]
    assert h.crc == crc32c(batch[21:])
    assert h.timestamp_type == timestamp_type
    assert (h.producer_id, h.producer_epoch, h.base_sequence) == (-1, -1, -1)
    # the records section, decompressed, is exactly what an independent encoder writes
    section = batch[RECORD_BATCH_OVERHEAD:]
    assert compression.decompress(CODEC_ID[codec], section) == ref_records_section(spec)

    cols = decode_batch(batch)
    assert len(cols) == n
    assert cols.offsets == list(range(base_offset, base_offset + n))
    assert cols.keys == keys
    assert cols.values == spec["values"]
    assert all(v is None or type(v) is bytes for v in cols.values + cols.keys)
    assert cols.headers == headers
    if timestamp_type == LOG_APPEND_TIME:
        assert h.max_timestamp == now_ms
        assert cols.timestamps == [now_ms] * n
        assert cols.timestamp_types == [LOG_APPEND_TIME] * n
    else:
        assert h.max_timestamp == max(ts)
        assert cols.timestamps == ts
        assert cols.timestamp_types == [CREATE_TIME] * n
    return cols


@pytest.mark.parametrize("codec", CODECS)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=batches(), base_offset=st.integers(0, 2**62))
def test_roundtrip_every_codec(codec, spec, base_offset):
    batch = build_batch(
        spec["values"],
        spec["keys"],
        timestamps=spec["timestamps"],
        headers=spec["headers"],
        base_offset=base_offset,
        compression_type=codec,
    )
    check_roundtrip(batch, spec, codec, base_offset)


@pytest.mark.parametrize("codec", CODECS)
@settings(max_examples=15, deadline=None)
@given(spec=batches(max_records=10, allow_large=False), now_ms=st.integers(0, 2**45))
def test_roundtrip_log_append_time(codec, spec, now_ms):
    batch = build_batch(
        spec["values"],
        spec["keys"],
        timestamps=spec["timestamps"],
        headers=spec["headers"],
        compression_type=codec,
        timestamp_type=LOG_APPEND_TIME,
        now_ms=now_ms,
    )
    assert read_header(batch).attributes == CODEC_ID[codec] | 0x08
    check_roundtrip(batch, spec, codec, 0, LOG_APPEND_TIME, now_ms)


@st.composite
def run_batches(draw):
    """Values in runs of equal length (the decoder's vectorised paths), mixed with irregular ones."""
    values = []
    for _ in range(draw(st.integers(1, 4))):
        if draw(st.booleans()):
            length = draw(st.sampled_from([0, 1, 3, 60, 70, 300, 9000]))
            count = draw(st.integers(1, 40))
            pick = draw(st.sampled_from(["same", "distinct", "trailing-zero"]))
            seed = draw(st.integers(0, 1000))
            rng = random.Random(seed)
            for i in range(count):
                v = rng.randbytes(length) if pick != "same" or i == 0 else values[-1]
                if pick == "trailing-zero" and length:
                    v = v[:-1] + b"\x00"
                values.append(v)
        else:
            values += draw(st.lists(values_st, min_size=1, max_size=10))
    return values


@pytest.mark.parametrize("codec", ["none", "lz4"])
@settings(max_examples=40, deadline=None)
@given(values=run_batches(), with_keys=st.booleans())
def test_roundtrip_runs_of_equal_length_records(codec, values, with_keys):
    keys = [b"key-%d" % (i % 3) for i in range(len(values))] if with_keys else None
    spec = {"values": values, "keys": keys, "headers": None, "timestamps": 1_700_000_000_000}
    batch = build_batch(values, keys, timestamps=spec["timestamps"], compression_type=codec)
    check_roundtrip(batch, spec, codec, 0)


def test_roundtrip_many_small_records():
    values = [b"%d" % i for i in range(5000)]
    ts = [1_700_000_000_000 + (i * 7919) % 1000 - 500 for i in range(5000)]
    for codec in CODECS:
        batch = build_batch(values, timestamps=ts, base_offset=10**12, compression_type=codec)
        cols = decode_batch(batch)
        assert cols.values == values
        assert cols.timestamps == ts
        assert cols.offsets == list(range(10**12, 10**12 + 5000))


def test_roundtrip_unicode_and_empty_header_keys():
    hdrs = [[("", b""), ("日本語", None), ("ключ", b"\x00"), ("🙂", b"x" * 300), ("é" * 100, b"")]]
    batch = build_batch([b"v"], headers=hdrs, timestamps=5)
    assert decode_batch(batch).headers == [tuple(hdrs[0])]
    kb = DefaultRecordBatch(batch)
    assert [tuple(r.headers) for r in kb] == [tuple(hdrs[0])]


def test_timestamps_none_uses_now_ms_and_minus_one_is_allowed():
    batch = build_batch([b"a", b"b"], timestamps=None, now_ms=1234)
    assert decode_batch(batch).timestamps == [1234, 1234]
    batch = build_batch([b"a", b"b"], timestamps=-1)
    h = read_header(batch)
    assert (h.base_timestamp, h.max_timestamp) == (-1, -1)
    assert decode_batch(batch).timestamps == [-1, -1]


def test_decreasing_timestamps():
    ts = [1000, 400, 1500, 0, 999]
    batch = build_batch([b"x"] * 5, timestamps=ts)
    h = read_header(batch)
    assert (h.base_timestamp, h.max_timestamp) == (1000, 1500)
    assert decode_batch(batch).timestamps == ts


def test_producer_fields_and_transactional_flag():
    batch = build_batch([b"a", b"b", b"c"], producer_id=77, producer_epoch=3, base_sequence=41, is_transactional=True)
    h = read_header(batch)
    assert (h.producer_id, h.producer_epoch, h.base_sequence) == (77, 3, 41)
    assert h.is_transactional and not h.is_control
    assert h.attributes == 0x10
    kb = DefaultRecordBatch(batch)
    assert kb.validate_crc()
    assert (kb.producer_id, kb.producer_epoch, kb.base_sequence, kb.is_transactional) == (77, 3, 41, True)
    assert kb.last_sequence == 43


def test_set_base_offset_keeps_the_crc():
    batch = bytearray(build_v2())
    set_base_offset(batch, 5_000_000_000)
    assert read_header(batch).crc == crc32c(bytes(batch[21:]))
    assert decode_batch(bytes(batch)).offsets == [5_000_000_000, 5_000_000_001]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"values": []}, ValueError),
        ({"values": [b"a", b"b"], "keys": [b"k"]}, ValueError),
        ({"values": [b"a"], "headers": [[("h", b"1")], [("h", b"2")]]}, ValueError),
        ({"values": [b"a", b"b"], "timestamps": [1, 2, 3]}, ValueError),
        ({"values": [b"a"], "timestamps": -5}, ValueError),
        ({"values": [b"a", b"b"], "timestamps": [-2, 0]}, ValueError),
        ({"values": [b"a"], "timestamp_type": "whenever"}, ValueError),
        ({"values": ["text"]}, TypeError),
        ({"values": [b"a", 5]}, TypeError),
        ({"values": [b"a"], "keys": ["k"]}, TypeError),
        ({"values": [b"a"], "compression_type": "brotli"}, UnsupportedCodecError),
    ],
)
def test_build_batch_rejects_bad_input(kwargs, error):
    kwargs = dict(kwargs)
    values = kwargs.pop("values")
    with pytest.raises(error):
        build_batch(values, timestamps=kwargs.pop("timestamps", 0), **kwargs)


# --- kafka-python cross-check -------------------------------------------------------------------


def kafka_python_view(batch: bytes):
    kb = DefaultRecordBatch(batch)
    assert kb.validate_crc()
    recs = list(kb)
    return kb, recs


@pytest.mark.parametrize("codec", CODECS)
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=batches(max_records=15), base_offset=st.integers(0, 2**62), log_append=st.booleans())
def test_kafka_python_parses_our_batches(codec, spec, base_offset, log_append):
    now_ms = 1_800_000_000_000
    batch = build_batch(
        spec["values"],
        spec["keys"],
        timestamps=spec["timestamps"],
        headers=spec["headers"],
        base_offset=base_offset,
        compression_type=codec,
        timestamp_type=LOG_APPEND_TIME if log_append else CREATE_TIME,
        now_ms=now_ms,
    )
    ts, keys, headers = expected_records(spec)
    n = len(spec["values"])
    kb, recs = kafka_python_view(batch)
    assert kb.compression_type == CODEC_ID[codec]
    assert kb.base_offset == base_offset
    assert kb.records_count == n
    assert kb.last_offset_delta == n - 1
    assert kb.first_timestamp == ts[0]
    assert kb.timestamp_type == int(log_append)
    assert [r.offset for r in recs] == list(range(base_offset, base_offset + n))
    assert [r.timestamp for r in recs] == ([now_ms] * n if log_append else ts)
    assert [r.key for r in recs] == keys
    assert [r.value for r in recs] == spec["values"]
    assert [tuple(r.headers) for r in recs] == headers


def test_kafka_python_memory_records_reads_back_to_back_batches():
    batches_ = [
        build_batch([b"a" * 100] * 20, [b"k"] * 20, timestamps=i, base_offset=20 * i, compression_type=c)
        for i, c in enumerate(CODECS)
    ]
    buf = b"".join(batches_)
    mr = MemoryRecords(buf)
    seen = []
    while mr.has_next():
        kb = mr.next_batch()
        assert kb.validate_crc()
        seen.append((kb.base_offset, kb.compression_type, [r.offset for r in kb]))
    assert seen == [(20 * i, i, list(range(20 * i, 20 * i + 20))) for i in range(5)]
    assert mr.valid_bytes() == len(buf)
    assert [p for p, _ in iter_batches(buf)] == [sum(map(len, batches_[:i])) for i in range(5)]


def kafka_python_build(codec, records, *, producer=(-1, -1, -1), transactional=False):
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=CODEC_ID[codec],
        is_transactional=transactional,
        producer_id=producer[0],
        producer_epoch=producer[1],
        base_sequence=producer[2],
        batch_size=1 << 30,
    )
    for i, (ts, key, value, headers) in enumerate(records):
        assert builder.append(i, timestamp=ts, key=key, value=value, headers=headers) is not None
    return bytes(builder.build())


@pytest.mark.parametrize("codec", CODECS)
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=batches(max_records=15), base_offset=st.integers(0, 2**62))
def test_we_decode_kafka_python_batches(codec, spec, base_offset):
    ts, keys, headers = expected_records(spec)
    records = [(t, k, v, [tuple(x) for x in h]) for t, k, v, h in zip(ts, keys, spec["values"], headers, strict=True)]
    batch = bytearray(kafka_python_build(codec, records))
    set_base_offset(batch, base_offset)
    batch = bytes(batch)
    theirs = list(DefaultRecordBatch(batch))
    cols = decode_batch(batch)
    n = len(records)
    assert cols.offsets == [r.offset for r in theirs] == list(range(base_offset, base_offset + n))
    assert cols.timestamps == [r.timestamp for r in theirs] == ts
    assert cols.keys == [r.key for r in theirs] == keys
    assert cols.values == [r.value for r in theirs] == spec["values"]
    assert cols.headers == [tuple(r.headers) for r in theirs] == headers
    h = read_header(batch)
    assert h.records_count == n and h.max_timestamp == max(ts)


@pytest.mark.parametrize("codec", CODECS)
def test_we_decode_kafka_python_compressed_batches(codec):
    # compressible values, so kafka-python really compresses (it falls back to none otherwise)
    records = [
        (1_700_000_000_000 - i, b"key-%d" % (i % 5), b"value " * (i + 10), [("h", b"%d" % i)]) for i in range(200)
    ]
    records.append((1_700_000_000_123, None, big_value(100_000, 1, True), [("n", None)]))
    batch = kafka_python_build(codec, records, producer=(1000, 2, 17), transactional=True)
    h = read_header(batch)
    assert h.compression == CODEC_ID[codec]
    assert (h.producer_id, h.producer_epoch, h.base_sequence, h.is_transactional) == (1000, 2, 17, True)
    assert h.partition_leader_epoch == 0  # kafka-python's leader epoch
    cols = decode_batch(batch)
    assert cols.offsets == list(range(len(records)))
    assert cols.timestamps == [r[0] for r in records]
    assert cols.keys == [r[1] for r in records]
    assert cols.values == [r[2] for r in records]
    assert cols.headers == [tuple(r[3]) for r in records]


# --- LZ4 interop ---------------------------------------------------------------------------------


def test_lz4_batch_frame_is_what_java_reads():
    value = big_value(200_000, 3, True)
    batch = build_batch([value, b"tail"], [b"k", None], timestamps=1, compression_type="lz4")
    frame = batch[RECORD_BATCH_OVERHEAD:]
    records = ref_record(0, 0, b"k", value, []) + ref_record(1, 0, None, b"tail", [])
    assert len(records) > 65536
    assert frame[:4] == bytes.fromhex("04224d18")
    assert frame[4:6] == b"\x60\x40"  # FLG: independent blocks, no checksums/size; BD: 64 KiB
    assert frame[6] == 0x82  # (xxh32(60 40) >> 8) & 0xff, checked in test_compression.py
    # walk the blocks and decode each on its own (Java rejects linked blocks)
    pos, out = 7, []
    while True:
        (size,) = struct.unpack_from("<I", frame, pos)
        pos += 4
        if size == 0:
            break
        raw, size = size & 0x80000000, size & 0x7FFFFFFF
        block = frame[pos : pos + size]
        out.append(block if raw else lz4.block.decompress(block, uncompressed_size=65536))
        pos += size
    assert pos == len(frame)
    assert len(out) == -(-len(records) // 65536)
    assert b"".join(out) == records
    assert decode_batch(batch).values == [value, b"tail"]


# --- corruption ---------------------------------------------------------------------------------


def _corruption_samples():
    out = {}
    for codec in CODECS:
        out[codec] = build_batch(
            [b"value-%d" % i * 3 for i in range(6)] + [None],
            [b"k%d" % i for i in range(6)] + [b""],
            headers=[[("h", b"x")]] * 3 + [None] * 4,
            timestamps=[1_700_000_000_000 + i for i in range(7)],
            base_offset=42,
            compression_type=codec,
        )
    return out


SAMPLES = _corruption_samples()


@pytest.mark.parametrize("codec", CODECS)
@settings(max_examples=40, deadline=None)
@given(where=st.floats(0, 1, exclude_max=True), bit=st.integers(0, 7))
def test_any_flipped_bit_after_byte_21_is_detected(codec, where, bit):
    batch = bytearray(SAMPLES[codec])
    pos = 21 + int(where * (len(batch) - 21))
    batch[pos] ^= 1 << bit
    with pytest.raises(CorruptRecordError):
        decode_batch(bytes(batch))


@pytest.mark.parametrize("codec", CODECS)
def test_every_byte_after_21_is_covered(codec):
    base = SAMPLES[codec]
    assert len(decode_batch(base)) == 7
    for pos in range(21, len(base)):
        batch = bytearray(base)
        batch[pos] ^= 0xA5
        with pytest.raises(CorruptRecordError, match="CRC-32C mismatch"):
            decode_batch(bytes(batch))


@pytest.mark.parametrize("pos", [17, 18, 19, 20])
def test_flipped_crc_byte_is_detected(pos):
    batch = bytearray(V2)
    batch[pos] ^= 0x01
    with pytest.raises(CorruptRecordError, match="CRC-32C mismatch"):
        decode_batch(bytes(batch))
    # verify=False skips the check and decodes the (intact) records
    assert decode_batch(bytes(batch), verify=False).values == [b"hello", None]


def test_bytes_outside_the_crc_do_not_break_it():
    batch = bytearray(V2)
    batch[0:8] = struct.pack(">q", 7)  # baseOffset
    batch[12:16] = struct.pack(">i", 99)  # partitionLeaderEpoch
    assert decode_batch(bytes(batch)).offsets == [7, 8]


@pytest.mark.parametrize("codec", CODECS)
def test_truncated_batch_is_corrupt(codec):
    batch = SAMPLES[codec]
    for cut in range(len(batch)):
        with pytest.raises(CorruptRecordError):
            decode_batch(batch[:cut])


def test_error_carries_path_and_position():
    bad = bytearray(V2)
    bad[70] ^= 0x10
    buf = b"\x00" * 13 + bytes(bad)
    with pytest.raises(CorruptRecordError) as e:
        decode_batch(buf, 13, path="t-0/00000000000000000000.log", file_position=4096)
    assert e.value.path == "t-0/00000000000000000000.log"
    assert e.value.position == 4096
    assert "t-0/00000000000000000000.log at byte 4096" in str(e.value)
    # without file_position the position is the batch's position in the buffer
    with pytest.raises(CorruptRecordError) as e:
        decode_batch(buf, 13, path="x.log")
    assert (e.value.path, e.value.position) == ("x.log", 13)
    # a cut-off header and a cut-off batch, too
    for cut in (30, 80):
        with pytest.raises(CorruptRecordError) as e:
            decode_batch(buf[: 13 + cut], 13, path="y.log", file_position=777)
        assert (e.value.path, e.value.position) == ("y.log", 777)
    # and a structural error under a valid CRC
    broken = reframe(ref_record(0, 0, b"k", b"v", []), 2)
    with pytest.raises(CorruptRecordError) as e:
        decode_batch(b"pad" + broken, 3, path="z.log", file_position=9)
    assert (e.value.path, e.value.position) == ("z.log", 9)


def test_check_batch_rejects_other_magic_and_short_length():
    for magic in (0, 1, 3):
        batch = bytearray(V1)
        batch[16] = magic
        with pytest.raises(CorruptRecordError, match=f"magic {magic}"):
            decode_batch(bytes(batch))
    batch = bytearray(V1)
    struct.pack_into(">i", batch, 8, 48)
    with pytest.raises(CorruptRecordError, match="below the minimum 49"):
        check_batch(bytes(batch), 0, read_header(batch))
    check_batch(V1, 0, read_header(V1))  # and the intact one passes


R_K = ref_record(0, 0, b"k", b"v", [])
R_1 = ref_record(1, 1, None, b"w", [("h", b"1")])


def raw_record(body: bytes) -> bytes:
    return zz(len(body)) + body


STRUCTURAL = {
    "count 3, 2 records": (R_K + R_1, 3),
    "count 1, 2 records": (R_K + R_1, 1),
    "trailing byte": (R_K + b"\x00", 1),
    "trailing bytes after 2": (R_K + R_1 + b"\x02\x00", 2),
    "key length -2": (raw_record(b"\x00\x00\x00\x03\x01\x00"), 1),
    "value length -3": (raw_record(b"\x00\x00\x00\x01\x05\x00"), 1),
    "headers count -1": (raw_record(b"\x00\x00\x00\x01\x01\x01"), 1),
    "header key length -1": (raw_record(b"\x00\x00\x00\x01\x01\x02\x01\x01"), 1),
    "header key not utf-8": (raw_record(b"\x00\x00\x00\x01\x01\x02\x02\xff\x01"), 1),
    "header runs past record": (raw_record(b"\x00\x00\x00\x01\x01\x02\x04hh\x0a") + R_1, 2),
    "byte left inside record": (raw_record(b"\x00\x00\x00\x01\x01\x00\x00"), 1),
    "record longer than fields": (b"\x12" + R_K[1:], 1),
    "record shorter than fields": (b"\x0e" + R_K[1:], 1),
    "body below 6 bytes": (b"\x08\x00\x00\x00\x01", 1),
    "negative record length": (b"\x03" + R_K[1:], 1),
    "key runs past the end": (raw_record(b"\x00\x00\x00\x7e\x01\x00"), 1),
    "6-byte offsetDelta": (raw_record(b"\x00\x00\x80\x80\x80\x80\x80\x00\x01\x01\x00"), 1),
    "11-byte timestampDelta": (raw_record(b"\x00" + b"\x80" * 10 + b"\x00\x00\x01\x01\x00"), 1),
    "empty section, count 1": (b"", 1),
    "record cut in its length": (R_K + b"\x80", 2),
    "negative count": (R_K, -1),
}


@pytest.mark.parametrize("codec", [0, 1, 2, 3, 4], ids=CODECS)
@pytest.mark.parametrize("case", list(STRUCTURAL))
def test_structurally_wrong_records_with_valid_crc(case, codec):
    records, count = STRUCTURAL[case]
    batch = reframe(records, count, codec)
    check_batch(batch, 0, read_header(batch))  # the CRC is fine ...
    with pytest.raises(CorruptRecordError, match="does not parse") as e:  # ... the records are not
        decode_batch(batch, path="p.log", file_position=100)
    assert (e.value.path, e.value.position) == ("p.log", 100)


@pytest.mark.parametrize("codec", [1, 2, 3, 4], ids=CODECS[1:])
@pytest.mark.parametrize("payload", [b"", b"garbage!", b"\x00" * 40])
def test_undecompressable_payload_with_valid_crc(codec, payload):
    header = bytearray(HEADER.pack(0, 49 + len(payload), -1, 2, 0, codec, 0, 0, 0, -1, -1, -1, 1))
    struct.pack_into(">I", header, 17, crc32c(bytes(header[21:]) + payload))
    with pytest.raises(CorruptRecordError):
        decode_batch(bytes(header) + payload)


@pytest.mark.parametrize("codec", [5, 6, 7])
def test_unknown_codec_id_in_a_batch(codec):
    payload = R_K
    header = bytearray(HEADER.pack(0, 49 + len(payload), -1, 2, 0, codec, 0, 0, 0, -1, -1, -1, 1))
    struct.pack_into(">I", header, 17, crc32c(bytes(header[21:]) + payload))
    with pytest.raises(UnsupportedCodecError):
        decode_batch(bytes(header) + payload)


def test_valid_structures_that_look_odd_are_accepted():
    # attributes byte of a record is ignored (as in Java), header values < -1 read as null,
    # and a compacted-away empty batch decodes to nothing
    odd = ref_record(0, 0, b"k", b"v", [], attributes=b"\x7f")
    assert decode_batch(reframe(odd, 1)).values == [b"v"]
    hv = raw_record(b"\x00\x00\x00\x01\x01\x02\x04hh\x05")
    assert decode_batch(reframe(hv, 1)).headers == [(("hh", None),)]
    empty = reframe(b"", 0, last_offset_delta=4)
    assert len(decode_batch(empty)) == 0
    assert read_header(empty).next_offset == 5


def test_negative_record_length_at_chunk_end_is_corrupt():
    # 255 records of irregular sizes (the decoder walks them in Python, 256 at a time) ...
    good = b"".join(ref_record(i, 0, None, b"x" * (i % 7), []) for i in range(255))
    # ... then record 255 declares a body of -8192 bytes (a 2-byte varint), then 50 more
    bad = zz(-8192) + b"\x00" * 10
    tail = b"".join(ref_record(256 + i, 0, None, b"y", []) for i in range(50))
    records = good + bad + tail
    assert len(good) + 2 - 8192 < -len(records)  # the walk lands before the buffer's start
    batch = reframe(records, 306)
    with pytest.raises(CorruptRecordError):
        decode_batch(batch)


def test_gzip_payload_without_trailer_is_corrupt():
    records = R_K + R_1
    payload = compression.compress(compression.GZIP, records)[:-8]
    header = bytearray(HEADER.pack(0, 49 + len(payload), -1, 2, 0, 1, 1, 0, 1, -1, -1, -1, 2))
    struct.pack_into(">I", header, 17, crc32c(bytes(header[21:]) + payload))
    batch = bytes(header) + payload
    with pytest.raises(EOFError):  # kafka-python refuses it
        list(DefaultRecordBatch(batch))
    with pytest.raises(CorruptRecordError):
        decode_batch(batch)


# --- a reference parser, and fuzzing the records section under a valid CRC -----------------------


def _ref_varint(data, pos, max_bytes):
    result = 0
    for i in range(max_bytes):
        if pos + i >= len(data):
            raise ValueError("varint runs past the end")
        b = data[pos + i]
        result |= (b & 0x7F) << (7 * i)
        if b < 0x80:
            return (result >> 1) ^ -(result & 1), pos + i + 1
    raise ValueError("varint too long")


def ref_parse(data: bytes, count: int, base_offset: int, base_ts: int):
    """Read ``count`` records the way the fact sheet says Kafka's readFrom does, one at a time, plus
    the rule our readers add (Kafka's broker checks it on produce): offset deltas strictly increase
    within 0..lastOffsetDelta (count - 1 here)."""
    if count < 0:
        raise ValueError("negative count")
    pos, out = 0, []
    prev = -1
    for _ in range(count):
        length, pos = _ref_varint(data, pos, 5)
        end = pos + length
        if length < 0 or end > len(data):
            raise ValueError("bad record length")
        pos += 1  # attributes
        tsd, pos = _ref_varint(data, pos, 10)
        od, pos = _ref_varint(data, pos, 5)
        if od <= prev or od > count - 1:
            raise ValueError("offset deltas not increasing within 0..lastOffsetDelta")
        prev = od
        fields = []
        for _f in range(2):
            n, pos = _ref_varint(data, pos, 5)
            if n < -1:
                raise ValueError("negative length")
            if n == -1:
                fields.append(None)
            else:
                if pos + n > end:
                    raise ValueError("field past the record")
                fields.append(data[pos : pos + n])
                pos += n
        hc, pos = _ref_varint(data, pos, 5)
        if hc < 0:
            raise ValueError("negative header count")
        hdrs = []
        for _h in range(hc):
            kl, pos = _ref_varint(data, pos, 5)
            if kl < 0 or pos + kl > end:
                raise ValueError("bad header key")
            k = data[pos : pos + kl].decode("utf-8")
            pos += kl
            vl, pos = _ref_varint(data, pos, 5)
            v = None
            if vl >= 0:
                if pos + vl > end:
                    raise ValueError("header value past the record")
                v = data[pos : pos + vl]
                pos += vl
            hdrs.append((k, v))
        if pos != end:
            raise ValueError("record size mismatch")
        out.append((base_offset + od, base_ts + tsd, fields[0], fields[1], tuple(hdrs)))
    if count > 0 and pos != len(data):
        raise ValueError("records still remaining")
    return out


mutations = st.lists(
    st.tuples(st.sampled_from(["set", "del", "ins", "count"]), st.floats(0, 1, exclude_max=True), st.integers(0, 255)),
    min_size=0,
    max_size=3,
)


@settings(max_examples=300, deadline=None)
@given(spec=batches(max_records=30, allow_large=False), muts=mutations)
def test_mutated_records_agree_with_reference_parser(spec, muts):
    """Under a valid CRC, decode_batch either raises CorruptRecordError (and nothing else) where
    the reference parser fails, or returns exactly what the reference parser reads."""
    ts, _, _ = expected_records(spec)
    data = bytearray(ref_records_section(spec))
    count = len(spec["values"])
    for op, where, byte in muts:
        i = int(where * len(data))
        if op == "set" and data:
            data[i] = byte
        elif op == "del" and data:
            del data[i]
        elif op == "ins":
            data[i:i] = bytes([byte])
        elif op == "count":
            count += 1 if byte & 1 else -1
    data = bytes(data)
    try:
        expected = ref_parse(data, count, 0, ts[0])
    except ValueError:
        expected = None
    batch = reframe(data, count, base_ts=ts[0])
    event("reference rejects" if expected is None else "reference accepts")
    if expected is None:
        with pytest.raises(CorruptRecordError):
            decode_batch(batch)
    else:
        cols = decode_batch(batch)
        got = list(zip(cols.offsets, cols.timestamps, cols.keys, cols.values, cols.headers, strict=True))
        assert got == expected


# --- iter_batches -------------------------------------------------------------------------------


def _log():
    parts = [
        V1,
        V2,
        build_batch([b"x" * 70_000, b"y"], timestamps=3, base_offset=102, compression_type="lz4"),
        build_batch([b"z"] * 50, timestamps=4, base_offset=104, compression_type="gzip"),
        V3,
    ]
    return parts, b"".join(parts)


def test_iter_batches_positions_of_back_to_back_batches():
    parts, buf = _log()
    got = list(iter_batches(buf))
    positions = [sum(map(len, parts[:i])) for i in range(len(parts))]
    assert [p for p, _ in got] == positions
    assert [h for _, h in got] == [read_header(p) for p in parts]
    assert [h.size for _, h in got] == [len(p) for p in parts]
    for (pos, h), part in zip(got, parts, strict=True):
        assert decode_batch(buf, pos, header=h).values == decode_batch(part).values
    # start and end select a window; a window ending inside a batch stops before it
    assert [p for p, _ in iter_batches(buf, start=positions[2])] == positions[2:]
    assert [p for p, _ in iter_batches(buf, positions[1], positions[3])] == positions[1:3]
    assert [p for p, _ in iter_batches(buf, 0, positions[3] + 100)] == positions[:3]
    assert list(iter_batches(buf, len(buf))) == []


def test_iter_batches_stops_quietly_at_a_torn_tail():
    parts, _ = _log()
    head = b"".join(parts[:2])
    positions = [0, len(parts[0])]
    last = parts[3]
    for cut in range(len(last)):
        torn = head + last[:cut]
        assert [p for p, _ in iter_batches(torn)] == positions
    assert [p for p, _ in iter_batches(head + last)] == [*positions, len(head)]


@pytest.mark.parametrize("tail", [b"\x00" * 61, b"\x00" * 200, b"\xff" * 70, b"\x00" * 12])
def test_iter_batches_stops_at_garbage(tail):
    # zeros (a preallocated or zero-filled tail) declare batchLength 0; 0xff declares -1
    assert [p for p, _ in iter_batches(V1 + tail)] == [0]


def test_iter_batches_does_not_check_crcs():
    bad = bytearray(V2)
    bad[80] ^= 1
    assert [p for p, _ in iter_batches(V1 + bytes(bad))] == [0, len(V1)]


# --- decoding many batches at once (the consumer's fetch path) -----------------------------------


def decode_one_by_one(buf):
    """The reference: every batch decoded on its own, control batches left out."""
    out = {c: [] for c in ("offsets", "timestamps", "timestamp_types", "keys", "values", "headers")}
    for pos, h in iter_batches(buf):
        if h.is_control:
            continue
        cols = decode_batch(buf, pos)
        for c in out:
            out[c].extend(getattr(cols, c))
    return out


@st.composite
def batch_runs(draw):
    """Several batches back to back, as a segment holds them: mixed codecs, sizes, timestamp types,
    and now and then a control batch or a batch of many equal records."""
    parts, specs, offset = [], [], draw(st.integers(0, 2**40))
    for _ in range(draw(st.integers(1, 12))):
        codec = draw(st.sampled_from(["none", "lz4", "gzip"]))
        if draw(st.integers(0, 5)) == 0:
            n = draw(st.integers(60, 200))  # two-byte offset deltas part-way: strides change
            spec = {
                "values": [b"v" * 40] * n,
                "keys": [b"k%03d" % i for i in range(n)],
                "headers": None,
                "timestamps": 7,
            }
        else:
            spec = draw(batches(max_records=12, allow_large=False))
        tt = draw(st.sampled_from([CREATE_TIME, LOG_APPEND_TIME]))
        batch = bytearray(
            build_batch(
                spec["values"], spec["keys"], headers=spec["headers"], timestamps=spec["timestamps"],
                base_offset=offset, compression_type=codec, timestamp_type=tt, now_ms=123,
            )
        )  # fmt: skip
        if draw(st.integers(0, 7)) == 0:  # mark it a control batch: readers must skip it
            attrs = struct.unpack_from(">h", batch, 21)[0] | 0x20 | 0x10
            struct.pack_into(">h", batch, 21, attrs)
            struct.pack_into(">I", batch, 17, crc32c(bytes(batch[21:])))
        parts.append(bytes(batch))
        specs.append(spec)
        offset += len(spec["values"]) + draw(st.integers(0, 3))  # gaps, as compaction leaves
    return b"".join(parts)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(buf=batch_runs(), data=st.data())
def test_decode_batches_matches_one_by_one(buf, data):
    ref = decode_one_by_one(buf)
    offsets = ref["offsets"]
    lo = read_header(buf).base_offset
    start = data.draw(st.one_of(st.none(), st.integers(lo, lo + len(offsets) + 20)))
    limit = data.draw(st.one_of(st.none(), st.integers(1, 40)))
    got = decode_batches(buf, start_offset=start, max_records=limit)
    keep = [i for i, o in enumerate(offsets) if start is None or o >= start]
    if limit is not None:
        keep = keep[:limit]
    cols = got.to_columns()
    for c, want in ref.items():
        assert getattr(cols, c) == [want[i] for i in keep], c
    assert got.offsets.tolist() == cols.offsets
    last = [h for _, h in iter_batches(buf)][-1]
    if limit is not None and len(keep) == limit:
        assert got.next_offset == offsets[keep[-1]] + 1
    else:
        assert got.next_offset == last.next_offset  # past trailing control batches and gaps too
    for i in range(len(got)):
        assert got.key(i) == cols.keys[i] and got.value(i) == cols.values[i]
    # A bytes buffer parses uncompressed sections where they lie; any other buffer copies them
    # out first. Both ways give the same records.
    copied = decode_batches(bytearray(buf), start_offset=start, max_records=limit)
    assert copied.next_offset == got.next_offset
    for c in ref:
        assert getattr(copied.to_columns(), c) == getattr(cols, c), c


def test_decode_batches_reads_uncompressed_batches_in_place():
    buf = b"".join(build_batch([b"v%d" % i] * 3, [b"k"] * 3, base_offset=3 * i, now_ms=1) for i in range(6))
    got = decode_batches(buf)
    assert got.data is buf  # no copy of the records sections
    assert got.values() == [b"v%d" % (i // 3) for i in range(18)] and got.keys() == [b"k"] * 18
    assert got.offsets.tolist() == list(range(18)) and got.next_offset == 18
    part = buf[: 2 * len(buf) // 6]
    few = decode_batches(part)  # under 4 batches: walked one by one, in place
    assert few.data is part and few.values() == [b"v0"] * 3 + [b"v1"] * 3


def test_decode_batches_slices_share_the_buffer_and_track_next_offset():
    buf = b"".join(build_batch([b"x%d" % i for i in range(5)], base_offset=b * 5) for b in range(3))
    got = decode_batches(buf)
    assert got.offsets.tolist() == list(range(15)) and got.next_offset == 15
    head, tail = got[:4], got[4:]
    assert head.next_offset == 4 and tail.next_offset == 15
    assert head.data is got.data and tail.values()[0] == b"x4"


def test_decode_batches_names_the_damaged_batch():
    # Many similar batches take the side-by-side walk; break one batch's records but keep its CRC
    # valid, so only the record walk can notice.
    parts = [build_batch([b"v" * 30] * 20, base_offset=20 * b) for b in range(6)]
    bad = bytearray(parts[3])
    bad[RECORD_BATCH_OVERHEAD] = 0x02  # first record's length varint: 1 byte, below the minimum
    struct.pack_into(">I", bad, 17, crc32c(bytes(bad[21:])))
    parts[3] = bytes(bad)
    where = sum(len(p) for p in parts[:3])
    with pytest.raises(CorruptRecordError) as e:
        decode_batches(b"".join(parts), path="x.log", file_position=1000)
    assert e.value.position == 1000 + where and "offset 60" in str(e.value)
    parts[3] = bytes(bad[:30]) + b"\xff" + bytes(bad[31:])  # now a CRC mismatch
    with pytest.raises(CorruptRecordError, match="CRC") as e:
        decode_batches(b"".join(parts), path="x.log", file_position=1000)
    assert e.value.position == 1000 + where


@pytest.mark.parametrize("counts", [[20] * 6, [20, 18, 20, 15, 20, 19], [3, 5, 4, 5, 2]])
def test_decode_batches_side_by_side_walk_of_uneven_batches(counts):
    parts, base = [], 0
    for b, n in enumerate(counts):
        values = [bytes([65 + b]) * (10 + (i * 7) % 150) for i in range(n)]  # one- and two-byte lengths
        parts.append(build_batch(values, [b"k%d" % i for i in range(n)], base_offset=base, compression_type="lz4"))
        base += n
    buf = b"".join(parts)
    got = decode_batches(buf).to_columns()
    ref = decode_one_by_one(buf)
    assert got.values == ref["values"] and got.keys == ref["keys"] and got.offsets == list(range(base))


def test_record_arrays_from_columns_round_trips_and_slices():
    src = decode_batch(
        build_batch(
            [b"v0", None, b"", b"v3"],
            [None, b"k1", b"k2", b""],
            headers=[None, [("h", b"1")], None, [("x", None)]],
            base_offset=40,
            timestamps=[7, 8, 9, 10],
        )
    )
    a = RecordArrays.from_columns(src)
    assert len(a) == 4 and a.next_offset == 44 and a.offsets.tolist() == [40, 41, 42, 43]
    for name in ("offsets", "timestamps", "keys", "values", "headers", "timestamp_types"):
        assert getattr(a.to_columns(), name) == getattr(src, name), name
    # The numpy side agrees with the lists (poll_columns users read only that side).
    plain = RecordArrays.from_columns(src)
    assert plain.offsets.tolist() == [40, 41, 42, 43]  # made on first use
    plain._lists = None
    assert plain.keys() == src.keys and plain.values() == src.values and plain.headers() == src.headers
    tail = a[2:]
    assert tail.keys() == [b"k2", b""] and tail.values() == [b"", b"v3"] and tail.next_offset == 44
    head = a[:1]
    assert head.values() == [b"v0"] and head.next_offset == 41
    empty = RecordArrays.from_columns(decode_batch(build_batch([b"x"]), start_offset=5))
    assert len(empty) == 0


def test_offset_deltas_out_of_order_are_corrupt():
    records = ref_record(0, 0, None, b"a", ()) + ref_record(2, 0, None, b"b", ()) + ref_record(1, 0, None, b"c", ())
    bad = reframe(records, 3)
    with pytest.raises(CorruptRecordError, match="offset deltas"):
        decode_batches(bad)
    records = ref_record(0, 0, None, b"a", ()) + ref_record(1, 0, None, b"b", ()) + ref_record(7, 0, None, b"c", ())
    with pytest.raises(CorruptRecordError, match="offset deltas"):
        decode_batches(reframe(records, 3))  # a delta past lastOffsetDelta (2)


def test_a_huge_record_count_is_corrupt_not_a_memory_error():
    parts = []
    for b in range(4):
        batch = bytearray(build_batch([b"x"], base_offset=b))
        struct.pack_into(">i", batch, 57, 2**31 - 1)
        struct.pack_into(">I", batch, 17, crc32c(bytes(batch[21:])))
        parts.append(bytes(batch))
    with pytest.raises(CorruptRecordError, match="declares 2147483647 records"):
        decode_batches(b"".join(parts))


@settings(max_examples=150, deadline=None)
@given(
    deltas=st.lists(st.integers(-3000, 3000), min_size=1, max_size=300),
    codec=st.sampled_from(["none", "lz4", "gzip"]),
    log_append=st.booleans(),
    base=st.integers(0, 10**9),
    target=st.integers(-3100, 3100),
    skip=st.integers(0, 320),
    value_size=st.sampled_from([0, 5, 70, 300]),
    walk_limit=st.sampled_from([0, 800]),
)
def test_find_timestamp_matches_a_full_decode(deltas, codec, log_append, base, target, skip, value_size, walk_limit):
    """The lookup by time inside a batch (scalar walk, or numpy above walk_limit records) agrees
    with decoding every record."""
    t0 = 1_700_000_000_000
    values = [bytes([i % 251]) * value_size for i in range(len(deltas))]
    batch = build_batch(
        values,
        timestamps=[t0 + d for d in deltas],
        base_offset=base,
        compression_type=codec,
        timestamp_type=LOG_APPEND_TIME if log_append else CREATE_TIME,
        now_ms=t0 + 7,
    )
    cols = decode_batch(batch)
    want = next(
        ((o, t) for o, t in zip(cols.offsets, cols.timestamps, strict=True) if t >= t0 + target and o >= base + skip),
        None,
    )
    saved = batch_module._SCALAR_TIME_WALK
    batch_module._SCALAR_TIME_WALK = walk_limit
    try:
        assert find_timestamp(batch, timestamp=t0 + target, min_offset=base + skip) == want
    finally:
        batch_module._SCALAR_TIME_WALK = saved


def test_find_timestamp_names_a_damaged_batch():
    batch = bytearray(build_batch([b"x" * 50] * 10, timestamps=list(range(10))))
    batch[61] = 0x01  # the first record's length becomes -1; then make the CRC match again
    struct.pack_into(">I", batch, 17, crc32c(bytes(batch[21:])))
    with pytest.raises(CorruptRecordError, match="does not parse") as e:
        find_timestamp(bytes(batch), timestamp=5, path="00000000000000000000.log", file_position=4096)
    assert e.value.position == 4096
    batch[40] ^= 1  # a CRC mismatch is caught before any record is read
    with pytest.raises(CorruptRecordError, match="CRC"):
        find_timestamp(bytes(batch), timestamp=5)
    # A count of 3 over 5 records (CRC matching): a walk past the third record finds the rest.
    short = bytearray(build_batch([b"x"] * 5, timestamps=[10, 20, 30, 40, 50]))
    struct.pack_into(">i", short, 57, 3)
    struct.pack_into(">I", short, 17, crc32c(bytes(short[21:])))
    assert find_timestamp(bytes(short), timestamp=25) == (2, 30)  # found before the damage
    with pytest.raises(CorruptRecordError, match="remaining after the declared count"):
        find_timestamp(bytes(short), timestamp=45)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    spec=batches(max_records=90, allow_large=False),
    uniform=st.integers(0, 3),
    codec=st.sampled_from(["none", "lz4"]),
    data=st.data(),
)
def test_a_lookup_of_a_few_records_matches_the_full_decode(spec, uniform, codec, data):
    """decode_batch with start_offset and up to 32 records (the scalar lookup path, which jumps
    runs of equal-length records) returns exactly the full decode's slice."""
    if uniform:  # equal-length records, in runs broken where the offset delta needs two bytes
        n = len(spec["values"])
        spec = {"values": [bytes([i % 251]) * (40 * uniform) for i in range(n)], "keys": None, "headers": None}
        spec["timestamps"] = 1_700_000_000_000
    batch = build_batch(
        spec["values"], spec["keys"], headers=spec["headers"], timestamps=spec["timestamps"],
        base_offset=1000, compression_type=codec, now_ms=5,
    )  # fmt: skip
    full = decode_batch(batch)
    n = len(full.offsets)
    start = data.draw(st.integers(1000, 1000 + n + 2))
    limit = data.draw(st.integers(1, 32))
    few = decode_batch(batch, start_offset=start, max_records=limit)
    i = start - 1000
    for col in ("offsets", "timestamps", "timestamp_types", "keys", "values", "headers"):
        assert getattr(few, col) == getattr(full, col)[i : i + limit], col
