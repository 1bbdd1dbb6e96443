"""Image files come back as uint8 RGB whatever their depth and channels; OpenCV's BGR never leaks out."""

import cv2
import numpy as np
import pytest

from blurgen.core.errors import BlurgenError
from blurgen.core.images import read_image, write_image

RGB = np.random.default_rng(0).integers(0, 256, (9, 13, 3), dtype=np.uint8)
BGR = np.ascontiguousarray(RGB[..., ::-1])


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif"])
def test_colour_files_read_as_rgb(tmp_path, suffix):
    cv2.imwrite(str(tmp_path / f"a{suffix}"), BGR)  # written by OpenCV, so stored as RGB on disk
    assert np.array_equal(read_image(tmp_path / f"a{suffix}"), RGB)
    write_image(tmp_path / "sub" / f"b{suffix}", RGB)
    assert np.array_equal(cv2.imread(str(tmp_path / "sub" / f"b{suffix}")), BGR)


def test_sixteen_bit_grey_and_alpha_become_eight_bit_rgb(tmp_path):
    cv2.imwrite(str(tmp_path / "deep.png"), BGR.astype(np.uint16) * 257)  # 257*v scales back to exactly v
    assert np.array_equal(read_image(tmp_path / "deep.png"), RGB)
    cv2.imwrite(str(tmp_path / "grey.png"), RGB[..., 0])
    assert np.array_equal(read_image(tmp_path / "grey.png"), np.repeat(RGB[..., :1], 3, axis=2))
    cv2.imwrite(str(tmp_path / "alpha.png"), np.dstack([BGR, np.full(RGB.shape[:2], 9, np.uint8)]))
    assert np.array_equal(read_image(tmp_path / "alpha.png"), RGB)


def test_a_jpeg_reads_as_opencv_decodes_it_with_the_channels_swapped(tmp_path):
    cv2.imwrite(str(tmp_path / "a.jpg"), BGR, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert np.array_equal(read_image(tmp_path / "a.jpg"), cv2.imread(str(tmp_path / "a.jpg"))[..., ::-1])


def test_missing_and_corrupt_files_name_the_file(tmp_path):
    with pytest.raises(BlurgenError, match="nope.png: image not found"):
        read_image(tmp_path / "nope.png")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(BlurgenError, match="bad.png: not a readable image"):
        read_image(tmp_path / "bad.png")


def test_first_line_names_the_type_where_the_message_alone_says_nothing():
    from blurgen.core.errors import first_line

    assert first_line(KeyError("first")) == "KeyError: 'first'"
    assert first_line(RuntimeError(101)) == "RuntimeError: 101"
    assert first_line(ValueError()) == "ValueError"
    assert first_line(OSError(2, "No such file or directory")) == "[Errno 2] No such file or directory"
    assert first_line(ValueError("bad header\nmore detail.")) == "bad header"
