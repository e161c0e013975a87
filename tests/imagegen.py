"""Test images made on the fly (nothing from LFW is committed)."""

from __future__ import annotations

import struct

import cv2
import numpy as np


def exif_orientation_jpeg(img: np.ndarray, orientation: int) -> bytes:
    """A JPEG with an APP1 EXIF segment holding only the Orientation tag."""
    jpg = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
    tiff = b"MM\x00\x2a\x00\x00\x00\x08" + struct.pack(">H", 1) + struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0)
    tiff += struct.pack(">I", 0)
    app1 = b"Exif\x00\x00" + tiff
    segment = b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1
    return jpg[:2] + segment + jpg[2:]
