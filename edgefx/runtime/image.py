"""Turn untrusted image bytes into an RGB uint8 array, checking format and size before decoding."""

from __future__ import annotations

import struct

import cv2
import numpy as np

from edgefx.runtime.errors import ImageTooLarge, ImageTooSmall, InvalidImage, UnsupportedFormat

ALLOWED_FORMATS = ("jpeg", "png", "webp", "bmp")
MIN_SIDE = 32


def sniff_format(data: bytes) -> str:
    """The container format from the magic bytes; raises UnsupportedFormat otherwise."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:2] == b"BM":
        return "bmp"
    raise UnsupportedFormat("not a JPEG, PNG, WebP or BMP image")


def header_size(data: bytes, fmt: str) -> tuple[int, int]:
    """(width, height) read from the header alone, so that a decompression bomb is refused before decoding."""
    try:
        if fmt == "png":
            if data[12:16] != b"IHDR":
                raise InvalidImage("PNG without an IHDR header")
            return struct.unpack(">II", data[16:24])
        if fmt == "bmp":
            w, h = struct.unpack("<ii", data[18:26])
            return abs(w), abs(h)
        if fmt == "webp":
            chunk = data[12:16]
            if chunk == b"VP8 ":
                w, h = struct.unpack("<HH", data[26:30])
                return w & 0x3FFF, h & 0x3FFF
            if chunk == b"VP8L":
                b = data[21:25]
                w = 1 + (((b[1] & 0x3F) << 8) | b[0])
                h = 1 + (((b[3] & 0xF) << 10) | (b[2] << 2) | ((b[1] & 0xC0) >> 6))
                return w, h
            if chunk == b"VP8X":
                w = 1 + int.from_bytes(data[24:27], "little")
                h = 1 + int.from_bytes(data[27:30], "little")
                return w, h
            raise InvalidImage("WebP with an unknown chunk")
        return _jpeg_size(data)
    except (struct.error, IndexError):
        raise InvalidImage(f"truncated {fmt.upper()} header") from None


def _jpeg_size(data: bytes) -> tuple[int, int]:
    pos = 2
    n = len(data)
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            raise InvalidImage("corrupt JPEG: bad marker")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return w, h
        pos += 2 + length
    raise InvalidImage("truncated JPEG: no frame header")


def decode_image(data: bytes, max_pixels: int = 40_000_000) -> np.ndarray:
    """RGB uint8 HxWx3 from JPEG/PNG/WebP/BMP bytes; EXIF orientation applied; gray, RGBA, 16-bit converted."""
    if not data:
        raise InvalidImage("empty image (0 bytes)")
    fmt = sniff_format(bytes(data[:32]))
    width, height = header_size(bytes(data[:65536]) if fmt != "jpeg" else bytes(data), fmt)
    if width * height > max_pixels:
        raise ImageTooLarge(f"image is {width}x{height} = {width * height / 1e6:.1f} MP; the limit is {max_pixels / 1e6:.0f} MP")
    if min(width, height) < MIN_SIDE:
        raise ImageTooSmall(f"image is {width}x{height}; at least {MIN_SIDE}x{MIN_SIDE} pixels are needed")
    if fmt == "jpeg" and b"\xff\xd9" not in bytes(data[-64:]):
        raise InvalidImage("truncated JPEG: the end-of-image marker is missing")
    buf = np.frombuffer(data, dtype=np.uint8)
    # IMREAD_COLOR applies EXIF orientation and converts gray, alpha and 16-bit to 8-bit BGR.
    bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if bgr is None:
        raise InvalidImage(f"the {fmt.upper()} data could not be decoded (corrupt or truncated)")
    if min(bgr.shape[:2]) < MIN_SIDE:
        raise ImageTooSmall(f"image is {bgr.shape[1]}x{bgr.shape[0]}; at least {MIN_SIDE}x{MIN_SIDE} pixels are needed")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def read_image(path: str, max_pixels: int = 40_000_000) -> np.ndarray:
    """`decode_image` on a file's bytes."""
    with open(path, "rb") as fh:
        return decode_image(fh.read(), max_pixels)
