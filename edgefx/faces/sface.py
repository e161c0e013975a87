"""SFace face embeddings (128-d), behind the recognizer seam (`edgefx.faces.recognizer`)."""

from __future__ import annotations

from edgefx.faces.recognizer import CROP_SIZE, OnnxEmbedder, l2_normalize

EMBEDDING_SIZE = 128

__all__ = ["CROP_SIZE", "EMBEDDING_SIZE", "SFace", "l2_normalize"]


class SFace(OnnxEmbedder):
    """The SFace recognizer (ArcFace-family, 128-d): raw RGB 0..255 NCHW in, un-normalised embedding out."""

    name = "sface"
    dim = EMBEDDING_SIZE
