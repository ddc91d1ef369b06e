"""The batch codecs (logstore.records.compression): golden bytes, the frame formats Java Kafka and
librdkafka accept, malformed input, and missing optional packages."""

from __future__ import annotations

import gzip
import random
import struct
import zlib

import cramjam
import lz4.block
import lz4.frame
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka import codec as kafka_codec

from logstore.errors import UnsupportedCodecError
from logstore.records import compression
from logstore.records.batch import build_batch, decode_batch
from logstore.records.compression import GZIP, LZ4, NONE, SNAPPY, ZSTD, codec_id, compress, decompress

ALL_CODECS = [NONE, GZIP, SNAPPY, LZ4, ZSTD]
CODEC_NAMES = {NONE: "none", GZIP: "gzip", SNAPPY: "snappy", LZ4: "lz4", ZSTD: "zstd"}

# V1's records section: len 8, attr, tsDelta 0, offDelta 0, keyLen 1 'k', valLen 1 'v', 0 headers.
V1_RECORDS = bytes.fromhex("10000000026b027600")
# Fact sheet section 3: xerial snappy of those 9 bytes (Java and kafka-python agree).
XERIAL_V1 = bytes.fromhex("82534e41505059000000000100000001" + "0000000b" + "092010000000026b027600")
# Fact sheet V4: the LZ4 frame of those 9 bytes, byte-identical to Kafka's Lz4BlockOutputStream.
LZ4_V1 = bytes.fromhex("04224d18" + "604082" + "09000080" + V1_RECORDS.hex() + "00000000")


def sample(size: int, seed: int = 0, compressible: bool = True) -> bytes:
    rng = random.Random(seed)
    if not compressible:
        return rng.randbytes(size)
    words = [rng.randbytes(rng.randrange(1, 12)) for _ in range(64)]
    out = bytearray()
    while len(out) < size:
        out += rng.choice(words)
    return bytes(out[:size])


# --- xxh32 (for the LZ4 frame header checksum), written from the xxHash spec -------------------

_P1, _P2, _P3, _P4, _P5 = 0x9E3779B1, 0x85EBCA77, 0xC2B2AE3D, 0x27D4EB2F, 0x165667B1
_M32 = 0xFFFFFFFF


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & _M32


def xxh32(data: bytes, seed: int = 0) -> int:
    n, p = len(data), 0
    if n >= 16:
        v = [(seed + _P1 + _P2) & _M32, (seed + _P2) & _M32, seed & _M32, (seed - _P1) & _M32]
        while p + 16 <= n:
            for i in range(4):
                (lane,) = struct.unpack_from("<I", data, p + 4 * i)
                v[i] = (_rotl((v[i] + lane * _P2) & _M32, 13) * _P1) & _M32
            p += 16
        h = (_rotl(v[0], 1) + _rotl(v[1], 7) + _rotl(v[2], 12) + _rotl(v[3], 18)) & _M32
    else:
        h = (seed + _P5) & _M32
    h = (h + n) & _M32
    while p + 4 <= n:
        (word,) = struct.unpack_from("<I", data, p)
        h = (_rotl((h + word * _P3) & _M32, 17) * _P4) & _M32
        p += 4
    while p < n:
        h = (_rotl((h + data[p] * _P5) & _M32, 11) * _P1) & _M32
        p += 1
    h ^= h >> 15
    h = (h * _P2) & _M32
    h ^= h >> 13
    h = (h * _P3) & _M32
    h ^= h >> 16
    return h


def test_xxh32_reference_values():
    # published xxHash32 test values
    assert xxh32(b"") == 0x02CC5D05
    assert xxh32(b"a") == 0x550D7456
    assert xxh32(b"abc") == 0x32D153FF
    assert xxh32(b"Nobody inspects the spammish repetition") == 0xE2293B2F
    # the fact sheet: HC of FLG 0x60, BD 0x40 is 0x82
    assert (xxh32(b"\x60\x40") >> 8) & 0xFF == 0x82


# --- LZ4 frame inspection -----------------------------------------------------------------------


def lz4_blocks(frame: bytes) -> list[tuple[bool, bytes]]:
    """Split a frame with FLG 0x60 / BD 0x40 into (stored_raw, block) pairs; check everything else."""
    assert frame[:4] == b"\x04\x22\x4d\x18", "LZ4 frame magic"
    flg, bd, hc = frame[4], frame[5], frame[6]
    assert flg == 0x60, f"FLG {flg:#04x}: want version 01, independent blocks, no checksums, no size"
    assert bd == 0x40, f"BD {bd:#04x}: want 64 KiB blocks"
    assert hc == (xxh32(frame[4:6]) >> 8) & 0xFF, "header checksum"
    pos, blocks = 7, []
    while True:
        (size,) = struct.unpack_from("<I", frame, pos)
        pos += 4
        if size == 0:
            break
        raw, size = bool(size & 0x80000000), size & 0x7FFFFFFF
        assert size <= 65536
        blocks.append((raw, frame[pos : pos + size]))
        pos += size
    assert pos == len(frame), "nothing (no content checksum) after the end mark"
    return blocks


def decode_blocks_independently(frame: bytes) -> bytes:
    """Decode each block on its own, without the previous block as a dictionary."""
    out = []
    for raw, block in lz4_blocks(frame):
        out.append(block if raw else lz4.block.decompress(block, uncompressed_size=65536))
    return b"".join(out)


def test_lz4_golden_frame_v1():
    assert compress(LZ4, V1_RECORDS) == LZ4_V1
    assert decompress(LZ4, LZ4_V1) == V1_RECORDS
    # the 9 bytes do not shrink, so the single block is stored raw (high bit of the size)
    assert lz4_blocks(LZ4_V1) == [(True, V1_RECORDS)]


@pytest.mark.parametrize(
    ("size", "compressible"),
    [(65536 + 1, True), (3 * 65536 + 17, True), (200_000, False), (65536, True), (1, True)],
)
def test_lz4_frame_has_independent_64k_blocks(size, compressible):
    data = sample(size, seed=size, compressible=compressible)
    frame = compress(LZ4, data)
    blocks = lz4_blocks(frame)
    assert len(blocks) == -(-size // 65536)
    # every block decodes on its own: that is what Java's Lz4BlockInputStream requires
    assert decode_blocks_independently(frame) == data
    assert decompress(LZ4, frame) == data
    assert lz4.frame.decompress(frame) == data


def test_lz4_independence_check_catches_linked_blocks():
    # The check above must be able to fail: python-lz4's linked blocks (what Java rejects) do not
    # decode one block at a time.
    data = sample(3 * 65536, seed=7)
    linked = lz4.frame.compress(data, block_size=lz4.frame.BLOCKSIZE_MAX64KB, block_linked=True, store_size=False)
    assert linked[4] == 0x40
    bad = bytearray(linked)
    bad[4] = 0x60  # pretend independence, fix the header checksum
    bad[6] = (xxh32(bytes(bad[4:6])) >> 8) & 0xFF
    try:
        out = decode_blocks_independently(bytes(bad))
    except lz4.block.LZ4BlockError:
        return
    assert out != data


# --- snappy -------------------------------------------------------------------------------------


def test_snappy_golden_xerial_v1():
    assert compress(SNAPPY, V1_RECORDS) == XERIAL_V1
    assert kafka_codec.snappy_encode(V1_RECORDS) == XERIAL_V1
    assert decompress(SNAPPY, XERIAL_V1) == V1_RECORDS


@pytest.mark.parametrize("size", [0, 1, 32768, 32769, 100_000])
def test_snappy_xerial_chunks_hold_at_most_32k_of_input(size):
    data = sample(size, seed=size)
    out = compress(SNAPPY, data)
    assert out[:16] == bytes.fromhex("82534e41505059000000000100000001")
    pos, chunks = 16, []
    while pos < len(out):
        (n,) = struct.unpack_from(">i", out, pos)
        chunks.append(bytes(cramjam.snappy.decompress_raw(out[pos + 4 : pos + 4 + n])))
        pos += 4 + n
    assert pos == len(out)
    assert b"".join(chunks) == data
    assert len(chunks) == -(-size // 32768)
    assert all(len(c) <= 32768 for c in chunks)
    # kafka-python reads it (not the bare 16-byte header: it takes that for a raw block), and
    # writes the same framing
    if size:
        assert kafka_codec.snappy_decode(out) == data
    assert decompress(SNAPPY, kafka_codec.snappy_encode(data)) == data


def test_snappy_reads_a_raw_block_as_librdkafka_writes():
    data = sample(50_000, seed=3)
    assert decompress(SNAPPY, bytes(cramjam.snappy.compress_raw(data))) == data


@pytest.mark.parametrize(
    "bad",
    [
        XERIAL_V1[:-3],  # chunk runs past the end
        XERIAL_V1[:18],  # chunk header cut
        XERIAL_V1[:20] + b"\xff" * 11,  # garbage snappy inside a chunk
        b"\xff\x06\x00\x00sNaPpY" + b"\x00" * 8,  # Google framing: not Kafka's
        XERIAL_V1[:16] + struct.pack(">i", -5) + b"abcd",  # negative chunk length
    ],
)
def test_snappy_malformed_raises_value_error(bad):
    with pytest.raises(ValueError):
        decompress(SNAPPY, bad)


# --- gzip ---------------------------------------------------------------------------------------


def test_gzip_is_rfc1952_level6_mtime0():
    data = sample(20_000, seed=1)
    out = compress(GZIP, data)
    assert out[:3] == b"\x1f\x8b\x08"
    assert out[4:8] == b"\x00\x00\x00\x00"  # mtime 0: deterministic output
    assert compress(GZIP, data) == out
    assert gzip.decompress(out) == data
    assert kafka_codec.gzip_decode(out) == data
    # the deflate body is zlib level 6 (Java's default)
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    assert out[10:-8] == c.compress(data) + c.flush()
    assert struct.unpack("<II", out[-8:]) == (zlib.crc32(data), len(data))


def test_gzip_reads_any_member_and_concatenated_members():
    a, b = sample(1000, seed=1), sample(3000, seed=2)
    assert decompress(GZIP, gzip.compress(a, compresslevel=9, mtime=12345)) == a
    assert decompress(GZIP, kafka_codec.gzip_encode(a)) == a
    assert decompress(GZIP, gzip.compress(a) + gzip.compress(b)) == a + b


@pytest.mark.parametrize("bad", [b"not gzip at all", gzip.compress(b"abc") + b"junk!", b"\x1f\x8b\x08" + b"\xff" * 20])
def test_gzip_malformed_raises_value_error(bad):
    with pytest.raises(ValueError):
        decompress(GZIP, bad)


@pytest.mark.parametrize("cut", [1, 4, 8, 200])
def test_gzip_truncated_stream_raises(cut):
    data = sample(20_000, seed=5)
    out = compress(GZIP, data)
    with pytest.raises(ValueError):
        decompress(GZIP, out[:-cut])


# --- zstd ---------------------------------------------------------------------------------------


def test_zstd_frame_level3_with_content_size():
    data = sample(50_000, seed=2)
    out = compress(ZSTD, data)
    params = zstandard.get_frame_parameters(out)
    assert params.content_size == len(data)
    assert out == zstandard.ZstdCompressor(level=3).compress(data)
    assert zstandard.ZstdDecompressor().decompress(out) == data
    assert decompress(ZSTD, out) == data
    assert kafka_codec.zstd_decode(out) == data


def test_zstd_reads_java_style_frames_and_concatenated_frames():
    a, b = sample(70_000, seed=1), sample(5000, seed=2)
    java_like = zstandard.ZstdCompressor(level=3, write_content_size=False)
    fa, fb = java_like.compress(a), java_like.compress(b)
    assert zstandard.get_frame_parameters(fa).content_size == zstandard.CONTENTSIZE_UNKNOWN
    assert decompress(ZSTD, fa) == a
    assert decompress(ZSTD, fa + fb) == a + b
    assert decompress(ZSTD, memoryview(fa + fb)) == a + b


@pytest.mark.parametrize("bad", [b"not zstd", b"\x28\xb5\x2f\xfd" + b"\x00" + b"\xff" * 12])
def test_zstd_malformed_raises_value_error(bad):
    with pytest.raises(ValueError):
        decompress(ZSTD, bad)


@pytest.mark.parametrize("cut", [1, 4, 30])
def test_zstd_truncated_stream_raises(cut):
    data = sample(20_000, seed=5)
    out = compress(ZSTD, data)
    with pytest.raises(ValueError):
        decompress(ZSTD, out[:-cut])


@pytest.mark.parametrize("bad", [b"\x28\xb5\x2f\xfd", b"\x28\xb5\x2f\xfd" + b"\xff" * 12])
def test_zstd_incomplete_frame_header_raises(bad):
    # zstd magic followed by nothing usable: today decompress() returns b"" without complaint
    with pytest.raises(ValueError):
        decompress(ZSTD, bad)


@pytest.mark.parametrize("cut", [1, 4, 30])
def test_lz4_and_snappy_truncated_stream_raise(cut):
    data = sample(20_000, seed=5)
    for codec in (LZ4, SNAPPY):
        with pytest.raises(ValueError):
            decompress(codec, compress(codec, data)[:-cut])


def test_zstd_falls_back_to_cramjam(monkeypatch):
    data = sample(40_000, seed=9)
    native = compress(ZSTD, data)
    monkeypatch.setattr(compression, "_zstd", None)
    assert compression.available("zstd")
    out = compress(ZSTD, data)
    assert zstandard.ZstdDecompressor().decompress(out) == data
    assert decompress(ZSTD, out) == data
    assert decompress(ZSTD, native) == data
    with pytest.raises(ValueError):
        decompress(ZSTD, b"not zstd")


# --- every codec --------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    codec=st.sampled_from(ALL_CODECS),
    data=st.one_of(
        st.binary(max_size=2000),
        st.builds(sample, st.integers(0, 150_000), st.integers(0, 1000), st.booleans()),
    ),
)
def test_compress_roundtrip_every_codec(codec, data):
    out = compress(codec, data)
    assert decompress(codec, out) == data
    assert decompress(codec, memoryview(out)) == data
    if codec == NONE:
        assert out == data


def test_codec_ids():
    assert [codec_id(n) for n in ("none", "gzip", "snappy", "lz4", "zstd")] == [0, 1, 2, 3, 4]
    assert codec_id("LZ4") == 3
    assert [codec_id(i) for i in range(5)] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("bad", ["brotli", "", 5, 7, -1, True, 3.0, None])
def test_unknown_codec_rejected(bad):
    with pytest.raises(UnsupportedCodecError):
        codec_id(bad)


@pytest.mark.parametrize("bad", [5, 6, 7])
def test_unknown_codec_id_on_compress_and_decompress(bad):
    with pytest.raises(UnsupportedCodecError):
        compress(bad, b"x")
    with pytest.raises(UnsupportedCodecError):
        decompress(bad, b"x")


# --- missing optional packages ------------------------------------------------------------------


@pytest.fixture
def no_optional_codecs(monkeypatch):
    monkeypatch.setattr(compression, "_cramjam", None)
    monkeypatch.setattr(compression, "_zstd", None)


@pytest.mark.parametrize(("codec", "extra"), [(SNAPPY, "snappy"), (ZSTD, "zstd")])
def test_missing_codec_package_names_the_pip_extra(no_optional_codecs, codec, extra):
    assert not compression.available(codec)
    assert not compression.available(extra)
    with pytest.raises(UnsupportedCodecError, match=rf"pip install 'logstore\[{extra}\]'") as e:
        compress(codec, b"some records")
    assert e.value.hint and f"logstore[{extra}]" in e.value.hint
    assert extra in e.value.message
    with pytest.raises(UnsupportedCodecError, match=rf"logstore\[{extra}\]"):
        decompress(codec, b"some records")


def test_missing_codec_package_on_build_and_decode(monkeypatch):
    snappy_batch = build_batch([b"v"], [b"k"], timestamps=0, compression_type="snappy")
    zstd_batch = build_batch([b"v"], [b"k"], timestamps=0, compression_type="zstd")
    monkeypatch.setattr(compression, "_cramjam", None)
    monkeypatch.setattr(compression, "_zstd", None)
    for batch, extra in ((snappy_batch, "snappy"), (zstd_batch, "zstd")):
        with pytest.raises(UnsupportedCodecError, match=rf"logstore\[{extra}\]"):
            build_batch([b"v"], compression_type=extra)
        # a missing package is not corruption
        with pytest.raises(UnsupportedCodecError, match=rf"logstore\[{extra}\]"):
            decode_batch(batch)


def test_builtin_codecs_need_no_optional_package(no_optional_codecs):
    data = sample(70_000, seed=4)
    for codec in (NONE, GZIP, LZ4):
        assert compression.available(codec)
        assert decompress(codec, compress(codec, data)) == data
