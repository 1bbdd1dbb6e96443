"""Each flow format against bytes written here from its definition, not only round trips."""

import struct
import zlib

import numpy as np
import pytest

from blurgen.core.errors import BlurgenError
from blurgen.core.flow_io import read_flow, write_flow

RNG = np.random.default_rng(0)
FLOW = RNG.normal(scale=20, size=(5, 7, 2)).astype(np.float32)  # asymmetric: a flip or swap shows


def flo_bytes(flow):
    h, w = flow.shape[:2]
    return b"PIEH" + struct.pack("<ii", w, h) + flow.astype("<f4").tobytes()


def pfm_bytes(flow, big_endian):
    """PF: 3 channels, rows stored bottom-to-top; a negative scale means little-endian."""
    h, w = flow.shape[:2]
    data = np.dstack([flow, np.zeros((h, w), np.float32)])[::-1]
    order = ">f4" if big_endian else "<f4"
    return b"PF\n%d %d\n%s\n" % (w, h, b"1.0" if big_endian else b"-1.0") + data.astype(order).tobytes()


def kitti_png_bytes(flow, valid):
    """16-bit RGB PNG: u*64+2^15, v*64+2^15, valid; written with zlib, no imaging library."""
    h, w = flow.shape[:2]
    px = np.dstack([flow * 64 + 2**15, valid]).astype(">u2")
    raw = b"".join(b"\x00" + px[y].tobytes() for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def test_flo_reads_middlebury_bytes_and_writes_them(tmp_path):
    (tmp_path / "a.flo").write_bytes(flo_bytes(FLOW))
    flow, valid = read_flow(tmp_path / "a.flo")
    assert flow.shape == (5, 7, 2) and flow.dtype == np.float32
    assert np.array_equal(flow, FLOW) and valid.all()
    write_flow(tmp_path / "b.flo", FLOW)
    assert (tmp_path / "b.flo").read_bytes() == flo_bytes(FLOW)


@pytest.mark.parametrize("big_endian", [False, True])
def test_pfm_flips_rows_and_honours_endianness(tmp_path, big_endian):
    (tmp_path / "a.pfm").write_bytes(pfm_bytes(FLOW, big_endian))
    flow, valid = read_flow(tmp_path / "a.pfm")
    assert np.array_equal(flow, FLOW) and valid.all()
    write_flow(tmp_path / "b.pfm", FLOW)
    assert np.array_equal(read_flow(tmp_path / "b.pfm")[0], FLOW)
    assert (tmp_path / "b.pfm").read_bytes()[-4 * 3 * 7 :] == pfm_bytes(FLOW, False)[
        -4 * 3 * 7 :
    ]  # last row stored = top row


def test_kitti_png_scale_offset_and_valid_bit(tmp_path):
    flow = np.round(FLOW * 64) / 64  # representable exactly
    valid = np.ones((5, 7), np.uint16)
    valid[2, 3] = 0
    (tmp_path / "a.png").write_bytes(kitti_png_bytes(flow, valid))
    got, got_valid = read_flow(tmp_path / "a.png")
    assert np.array_equal(got_valid, valid) and got[2, 3].tolist() == [0, 0]
    assert np.allclose(got[valid > 0], flow[valid > 0], atol=1e-6)
    write_flow(tmp_path / "b.png", flow, valid)
    again, again_valid = read_flow(tmp_path / "b.png")
    assert np.array_equal(again_valid, valid) and np.allclose(again[valid > 0], flow[valid > 0], atol=1e-6)


def test_npy(tmp_path):
    np.save(tmp_path / "a.npy", FLOW)
    assert np.array_equal(read_flow(tmp_path / "a.npy")[0], FLOW)
    write_flow(tmp_path / "b.npy", FLOW)
    assert np.array_equal(np.load(tmp_path / "b.npy"), FLOW)


@pytest.mark.parametrize(
    "name, content, says",
    [
        ("a.flo", b"PIEH" + struct.pack("<ii", 7, 5) + b"\0" * 20, "truncated"),
        ("a.flo", b"XXXX" + b"\0" * 40, "PIEH"),
        ("a.pfm", b"P5\n1 1\n-1\n" + b"\0" * 12, "not a readable .pfm"),
        ("a.png", b"not a png", "not a readable .png"),
        ("a.xyz", b"", "unknown flow format"),
    ],
)
def test_corrupt_files_give_one_line_naming_the_file(tmp_path, name, content, says):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(BlurgenError) as e:
        read_flow(tmp_path / name)
    assert says in str(e.value) and name in str(e.value) and "\n" not in str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(BlurgenError, match="not found"):
        read_flow(tmp_path / "nope.flo")
