"""Kafka zigzag varints: the fact sheet's vectors, limits, and the numpy column functions against the
scalar ones (logstore.records.varint)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logstore.records.varint import (
    MAX_VARINT_BYTES,
    MAX_VARLONG_BYTES,
    TABLE,
    TABLE_AFTER_ZERO,
    TABLE_SIZE,
    decode_at,
    decode_varint,
    decode_varlong,
    encode_varint,
    encode_varlong,
    varint_pieces,
    varint_sizes,
    zigzag,
)

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

# Fact sheet section 2, "Varint vectors" (Kafka's ByteUtils, compiled and run).
VARINT_VECTORS = [
    (0, "00"),
    (-1, "01"),
    (1, "02"),
    (-2, "03"),
    (63, "7e"),
    (-64, "7f"),
    (64, "8001"),
    (150, "ac02"),
    (300, "d804"),
    (-300, "d704"),
    (2147483647, "feffffff0f"),
    (-2147483648, "ffffffff0f"),
]
VARLONG_VECTORS = [
    (1700000000000, "80a0abfef962"),
    (-1, "01"),
]


def reference_encode(value: int) -> bytes:
    """Independent zigzag + base-128 encoder written from the fact sheet, in plain Python ints."""
    z = (value << 1) ^ (value >> 63)
    z &= (1 << 64) - 1
    out = bytearray()
    while True:
        group = z & 0x7F
        z >>= 7
        if z:
            out.append(group | 0x80)
        else:
            out.append(group)
            return bytes(out)


# --- the fact sheet's table ---------------------------------------------------------------------


@pytest.mark.parametrize(("value", "hexbytes"), VARINT_VECTORS)
def test_varint_vectors_encode(value, hexbytes):
    assert encode_varint(value).hex() == hexbytes
    # every int32 is also a valid varlong with the same encoding
    assert encode_varlong(value).hex() == hexbytes


@pytest.mark.parametrize(("value", "hexbytes"), VARINT_VECTORS)
def test_varint_vectors_decode(value, hexbytes):
    raw = bytes.fromhex(hexbytes)
    assert decode_varint(raw, 0) == (value, len(raw))
    # decoding in the middle of a buffer returns the position after the varint
    buf = b"\xaa\xbb" + raw + b"\xcc"
    assert decode_varint(buf, 2) == (value, 2 + len(raw))
    assert decode_varint(memoryview(buf), 2) == (value, 2 + len(raw))


@pytest.mark.parametrize(("value", "hexbytes"), VARLONG_VECTORS)
def test_varlong_vectors(value, hexbytes):
    raw = bytes.fromhex(hexbytes)
    assert encode_varlong(value) == raw
    assert decode_varlong(raw, 0) == (value, len(raw))
    assert decode_varint(raw, 0, MAX_VARLONG_BYTES) == (value, len(raw))


def test_varlong_1700000000000_is_too_long_for_a_varint_reader():
    # 6 bytes: a varlong, which a 5-byte varint reader must refuse
    with pytest.raises(ValueError):
        decode_varint(bytes.fromhex("80a0abfef962"), 0)


@pytest.mark.parametrize(
    ("value", "size"),
    [(INT64_MAX, 10), (INT64_MIN, 10), (2**62, 10), (-(2**62) - 1, 10), (2**62 - 1, 9), (INT32_MIN, 5)],
)
def test_varlong_extremes(value, size):
    raw = encode_varlong(value)
    assert len(raw) == size
    assert raw == reference_encode(value)
    assert decode_varlong(raw, 0) == (value, size)


def test_zigzag_order():
    assert [zigzag(v) for v in (0, -1, 1, -2, 2, INT64_MAX, INT64_MIN)] == [0, 1, 2, 3, 4, 2**64 - 2, 2**64 - 1]


# --- limits -------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [INT32_MAX + 1, INT32_MIN - 1, 2**40, -(2**40)])
def test_encode_varint_rejects_values_outside_int32(value):
    with pytest.raises(ValueError):
        encode_varint(value)


@pytest.mark.parametrize("value", [INT64_MAX + 1, INT64_MIN - 1, 2**70])
def test_encode_varlong_rejects_values_outside_int64(value):
    with pytest.raises(ValueError):
        encode_varlong(value)


@pytest.mark.parametrize(
    "raw",
    [
        b"\x80\x80\x80\x80\x80\x00",  # 6 bytes
        b"\xff\xff\xff\xff\xff\x01",
        b"\x80" * 5 + b"\x01",
    ],
)
def test_too_long_varint_rejected(raw):
    with pytest.raises(ValueError, match="longer than 5"):
        decode_varint(raw, 0)
    # the same bytes are a fine varlong
    z = sum((b & 0x7F) << (7 * i) for i, b in enumerate(raw))
    assert decode_varlong(raw, 0) == ((z >> 1) ^ -(z & 1), len(raw))


def test_too_long_varlong_rejected():
    raw = b"\x80" * 10 + b"\x00"  # 11 bytes
    with pytest.raises(ValueError, match="longer than 10"):
        decode_varlong(raw, 0)
    with pytest.raises(ValueError):
        decode_varint(b"\xff" * 10 + b"\x01", 0, MAX_VARLONG_BYTES)


@pytest.mark.parametrize("raw", [b"", b"\x80", b"\xff\xff", b"\x80\x80\x80\x80"])
def test_varint_running_past_the_buffer_rejected(raw):
    with pytest.raises(ValueError, match="past the end"):
        decode_varint(raw, 0)


def test_varint_position_past_the_buffer_rejected():
    with pytest.raises(ValueError):
        decode_varint(b"\x02", 1)


# --- scalar properties --------------------------------------------------------------------------

int32s = st.integers(INT32_MIN, INT32_MAX)
int64s = st.integers(INT64_MIN, INT64_MAX)


@settings(max_examples=300, deadline=None)
@given(int32s)
def test_varint_roundtrip(value):
    raw = encode_varint(value)
    assert raw == reference_encode(value)
    assert 1 <= len(raw) <= MAX_VARINT_BYTES
    assert decode_varint(raw + b"\xff", 0) == (value, len(raw))


@settings(max_examples=300, deadline=None)
@given(int64s)
def test_varlong_roundtrip(value):
    raw = encode_varlong(value)
    assert raw == reference_encode(value)
    assert 1 <= len(raw) <= MAX_VARLONG_BYTES
    assert decode_varlong(raw, 0) == (value, len(raw))


# --- the numpy column functions -----------------------------------------------------------------

# Values whose zigzag is inside the 65536-entry table are -32768..32767; draw both inside and far
# outside it, and at its edges.
in_table = st.integers(-(TABLE_SIZE // 2), TABLE_SIZE // 2 - 1)
table_edges = st.sampled_from([-32769, -32768, 32767, 32768, 65535, 65536, -65536, INT64_MIN, INT64_MAX, 0, -1])
column_values = st.one_of(in_table, int64s, table_edges)
columns = st.lists(column_values, min_size=0, max_size=60)


def test_table_layout():
    assert len(TABLE) == TABLE_SIZE == 65536
    assert TABLE[zigzag(-1)] == b"\x01"
    assert TABLE[zigzag(300)] == bytes.fromhex("d804")
    assert TABLE_AFTER_ZERO[zigzag(300)] == bytes.fromhex("00d804")


@settings(max_examples=200, deadline=None)
@given(columns)
def test_varint_pieces_and_sizes_match_scalar(values):
    arr = np.array(values, dtype=np.int64)
    expected = [encode_varlong(v) for v in values]
    assert varint_pieces(arr) == expected
    assert varint_pieces(arr, TABLE_AFTER_ZERO) == [b"\x00" + e for e in expected]
    sizes = varint_sizes(arr)
    assert sizes.dtype == np.int64
    assert sizes.tolist() == [len(e) for e in expected]


@settings(max_examples=100, deadline=None)
@given(column_values)
def test_varint_pieces_single_value(value):
    # one value takes a separate path (no itemgetter)
    arr = np.array([value], dtype=np.int64)
    assert varint_pieces(arr) == [encode_varlong(value)]
    assert varint_pieces(arr, TABLE_AFTER_ZERO) == [b"\x00" + encode_varlong(value)]
    assert varint_sizes(arr).tolist() == [len(encode_varlong(value))]


@settings(max_examples=100, deadline=None)
@given(st.lists(in_table, min_size=2, max_size=40))
def test_varint_pieces_all_inside_table(values):
    arr = np.array(values, dtype=np.int64)
    assert varint_pieces(arr) == [encode_varlong(v) for v in values]


@settings(max_examples=200, deadline=None)
@given(columns, st.binary(max_size=3))
def test_decode_at_matches_scalar(values, lead):
    pieces = [encode_varlong(v) for v in values]
    positions = []
    pos = len(lead)
    for p in pieces:
        positions.append(pos)
        pos += len(p)
    buf = np.frombuffer(lead + b"".join(pieces), dtype=np.uint8)
    got_values, got_sizes = decode_at(buf, np.array(positions, dtype=np.int64), MAX_VARLONG_BYTES)
    assert got_values.dtype == np.int64
    assert got_values.tolist() == values
    assert got_sizes.tolist() == [len(p) for p in pieces]
    # and the scalar decoder agrees position by position
    raw = buf.tobytes()
    for v, p, at in zip(values, pieces, positions, strict=True):
        assert decode_varlong(raw, at) == (v, at + len(p))


@settings(max_examples=100, deadline=None)
@given(st.lists(int32s, min_size=1, max_size=40))
def test_decode_at_int32_with_varint_limit(values):
    pieces = [encode_varint(v) for v in values]
    positions = np.cumsum([0] + [len(p) for p in pieces[:-1]]).astype(np.int64)
    buf = np.frombuffer(b"".join(pieces), dtype=np.uint8)
    got, sizes = decode_at(buf, positions, MAX_VARINT_BYTES)
    assert got.tolist() == values
    assert sizes.tolist() == [len(p) for p in pieces]


def test_decode_at_empty():
    values, sizes = decode_at(np.zeros(4, np.uint8), np.zeros(0, np.int64), MAX_VARINT_BYTES)
    assert values.tolist() == [] and sizes.tolist() == []


def test_decode_at_rejects_too_long_varint_naming_position():
    good = encode_varint(5)
    bad = b"\x80" * 5 + b"\x00"
    buf = np.frombuffer(good + bad + good, dtype=np.uint8)
    positions = np.array([0, len(good), len(good) + len(bad)], dtype=np.int64)
    with pytest.raises(ValueError, match=f"byte {len(good)} is longer than 5"):
        decode_at(buf, positions, MAX_VARINT_BYTES)
    # with the varlong limit the 6-byte varint decodes (to 0)
    values, sizes = decode_at(buf, positions, MAX_VARLONG_BYTES)
    assert values.tolist() == [5, 0, 5]
    assert sizes.tolist() == [1, 6, 1]


def test_decode_at_rejects_11_byte_varlong():
    buf = np.frombuffer(b"\xff" * 10 + b"\x01", dtype=np.uint8)
    with pytest.raises(ValueError, match="longer than 10"):
        decode_at(buf, np.array([0], np.int64), MAX_VARLONG_BYTES)
