"""Bad and unusual image inputs get typed errors or are converted correctly."""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest

from edgefx.runtime.errors import ImageTooLarge, ImageTooSmall, InvalidImage, UnsupportedFormat
from edgefx.runtime.image import decode_image, header_size, sniff_format
from imagegen import exif_orientation_jpeg


def _encode(img: np.ndarray, ext: str, params: list[int] | None = None) -> bytes:
    ok, buf = cv2.imencode(ext, img, params or [])
    assert ok
    return buf.tobytes()


def _photo() -> np.ndarray:
    rng = np.random.default_rng(0)
    img = np.zeros((80, 60, 3), np.uint8)
    img[:, :, 0] = 200  # blue in BGR
    img[10:20] = rng.integers(0, 255, (10, 60, 3))
    return img


def test_empty_bytes() -> None:
    with pytest.raises(InvalidImage):
        decode_image(b"")


def test_not_an_image() -> None:
    with pytest.raises(UnsupportedFormat):
        decode_image(b"hello, this is text and not a picture at all" * 10)


def test_truncated_jpeg() -> None:
    data = _encode(_photo(), ".jpg")
    with pytest.raises(InvalidImage):
        decode_image(data[: len(data) // 2])


def test_truncated_header() -> None:
    with pytest.raises(InvalidImage):
        decode_image(b"\x89PNG\r\n\x1a\n\x00\x00")


def test_one_pixel_image() -> None:
    with pytest.raises(ImageTooSmall):
        decode_image(_encode(np.zeros((1, 1, 3), np.uint8), ".png"))


def test_pixel_limit_is_checked_from_the_header() -> None:
    # A 20000x20000 PNG header followed by garbage: refused before any decoding is attempted.
    ihdr = struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    assert header_size(png, "png") == (20000, 20000)
    with pytest.raises(ImageTooLarge):
        decode_image(png + b"\x00" * 100, max_pixels=40_000_000)


def test_colour_order_is_rgb() -> None:
    rgb = decode_image(_encode(_photo(), ".png"))
    assert rgb.shape == (80, 60, 3)
    assert rgb[50, 5, 2] == 200 and rgb[50, 5, 0] == 0  # BGR blue arrives as RGB blue


def test_grayscale_rgba_and_16bit_png_are_converted() -> None:
    gray = _photo()[:, :, 0]
    assert decode_image(_encode(gray, ".png")).shape == (80, 60, 3)
    rgba = np.dstack([_photo(), np.full((80, 60), 255, np.uint8)])
    out = decode_image(_encode(rgba, ".png"))
    assert out.shape == (80, 60, 3) and out[50, 5, 2] == 200
    deep = (_photo().astype(np.uint16) * 257)
    out16 = decode_image(_encode(deep, ".png"))
    assert out16.dtype == np.uint8 and out16.shape == (80, 60, 3) and abs(int(out16[50, 5, 2]) - 200) <= 1


def test_webp_and_bmp_sizes_from_header() -> None:
    for ext in (".webp", ".bmp"):
        data = _encode(_photo(), ext)
        fmt = sniff_format(data)
        assert header_size(data, fmt) == (60, 80)
        assert decode_image(data).shape == (80, 60, 3)


def test_exif_rotation_is_applied() -> None:
    img = np.zeros((40, 100, 3), np.uint8)  # landscape, stored sideways
    img[:, :50] = 255
    out = decode_image(exif_orientation_jpeg(img, 6))  # 6 = rotate 90 degrees clockwise to display
    assert out.shape == (100, 40, 3)
    assert out[:50].mean() > 200 and out[50:].mean() < 50  # the white half is now on top
