"""ArcFace-trained MobileFaceNet face embeddings (192-d, `python -m export arcface`), behind the recognizer seam.

Same input contract as SFace (raw RGB 0..255 NCHW [N, 3, 112, 112], the (x - 127.5) / 128 normalisation is inside the
graph) and the same 5-point ArcFace alignment; its output `embeddings` is not normalised, so rows are L2-normalised
here like SFace's."""

from __future__ import annotations

from edgefx.faces.recognizer import OnnxEmbedder

EMBEDDING_SIZE = 192


class ArcFace(OnnxEmbedder):
    """MobileFaceNet trained with the ArcFace loss (sirius-ai/MobileFaceNet_TF weights), 192-d."""

    name = "arcface"
    dim = EMBEDDING_SIZE
