"""The coarse int8 scan of a large gallery: every template quantized to int8 and scored by onnxruntime's u8s8
integer kernel (a quarter of the float32 matrix's memory traffic), with a proven bound on its error so that the
float32 re-rank of the shortlist returns exactly what the full float32 search would."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

GALLERY_SCALE = 127.0  # unit-norm rows: every coordinate is in [-1, 1], so one fixed scale fills int8
PROBE_OFFSET = 128  # the int8 probe goes in as uint8 with zero point 128: exact, and onnxruntime's u8s8 kernel
# The float32 score the re-rank computes differs from the real dot product by at most ~D * 2^-24 * sum|x_i p_i|
# (< 1e-5 for D <= 512 and unit vectors); this slack covers it and the float rounding of the bound itself.
FLOAT_SLACK = 1e-4


# -- a minimal ONNX protobuf writer (the `onnx` package is a build-time dependency only) ------------------------------
def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def proto_field(number: int, payload: bytes | str | int) -> bytes:
    """One protobuf field: an int as a varint, bytes or str length-delimited."""
    if isinstance(payload, int):
        return varint(number << 3) + varint(payload)
    data = payload.encode() if isinstance(payload, str) else payload
    return varint(number << 3 | 2) + varint(len(data)) + data


ONNX_INT32, ONNX_UINT8, ONNX_INT8 = 6, 2, 3


def tensor_value(name: str, elem_type: int, dims: tuple[int, ...]) -> bytes:
    """ValueInfoProto: name, TypeProto.tensor_type (elem_type, shape)."""
    shape = b"".join(proto_field(1, proto_field(1, d)) for d in dims)
    return proto_field(1, name) + proto_field(2, proto_field(1, proto_field(1, elem_type) + proto_field(2, shape)))


def initializer(name: str, array: np.ndarray, elem_type: int) -> bytes:
    """TensorProto: dims, data_type, name, raw_data (little-endian, row-major)."""
    dims = b"".join(proto_field(1, d) for d in array.shape)
    raw = np.ascontiguousarray(array).tobytes()
    return dims + proto_field(2, elem_type) + proto_field(8, name) + proto_field(9, raw)


def matmul_integer_model(gallery_t: np.ndarray) -> bytes:
    """ONNX model y[1, N] (int32) = (a[1, D] (uint8) - 128) @ B[D, N] (int8), B a constant (prepacked once)."""
    dim, rows = gallery_t.shape
    node = b"".join(proto_field(1, name) for name in ("a", "B", "a_zero")) + proto_field(2, "y") + \
        proto_field(3, "scan") + proto_field(4, "MatMulInteger")
    graph = proto_field(1, node) + proto_field(2, "coarse_scan") + \
        proto_field(5, initializer("B", gallery_t, ONNX_INT8)) + \
        proto_field(5, initializer("a_zero", np.array(PROBE_OFFSET, np.uint8), ONNX_UINT8)) + \
        proto_field(11, tensor_value("a", ONNX_UINT8, (1, dim))) + \
        proto_field(12, tensor_value("y", ONNX_INT32, (1, rows)))
    return proto_field(1, 8) + proto_field(8, proto_field(1, "") + proto_field(2, 13)) + proto_field(7, graph)


# -- the scan ----------------------------------------------------------------------------------------------------------
@dataclass
class CoarseScan:
    """int8 copies of the rows in an onnxruntime session, and the per-gallery terms of the error bound."""

    session: Any
    row_error: float  # max over rows of ||x - q/127||_2: the gallery's quantization error
    row_norm: float  # max over rows of ||q/127||_2

    @classmethod
    def build(cls, embeddings: np.ndarray, threads: int = 1) -> "CoarseScan":
        import onnxruntime as ort

        quantized = np.clip(np.rint(embeddings * GALLERY_SCALE), -127, 127).astype(np.int8)
        row_error = row_norm = 0.0
        for first in range(0, len(embeddings), 8192):  # float64 in blocks: no 100 MB transient at 100,000 rows
            dequantized = quantized[first:first + 8192].astype(np.float64) / GALLERY_SCALE
            exact = embeddings[first:first + 8192].astype(np.float64)
            row_error = max(row_error, float(np.linalg.norm(exact - dequantized, axis=1).max()))
            row_norm = max(row_norm, float(np.linalg.norm(dequantized, axis=1).max()))
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")  # other sessions share the cores
        opts.log_severity_level = 3
        session = ort.InferenceSession(matmul_integer_model(np.ascontiguousarray(quantized.T)), sess_options=opts,
                                       providers=["CPUExecutionProvider"])
        return cls(session, row_error, row_norm)

    def scores(self, probe: np.ndarray) -> tuple[np.ndarray, float, float]:
        """(N,) int32 coarse scores, the factor that turns them into cosines, and the bound eps such that
        |float32 score - coarse * factor| <= eps for every row.

        With x = x^ + ex (x^ = q/127) and p = p^ + ep (p^ the probe's int8 image / its scale):
        x.p - x^.p^ = ex.p + x^.ep, so |error| <= ||ex|| ||p|| + ||x^|| ||ep|| (Cauchy-Schwarz), both measured."""
        probe64 = probe.astype(np.float64)
        peak = float(np.abs(probe64).max())
        scale = 127.0 / peak if peak > 0 else 1.0
        quantized = np.clip(np.rint(probe64 * scale), -127, 127)
        probe_error = float(np.linalg.norm(probe64 - quantized / scale))
        eps = self.row_error * float(np.linalg.norm(probe64)) + self.row_norm * probe_error + FLOAT_SLACK
        feed = (quantized.astype(np.int16) + PROBE_OFFSET).astype(np.uint8)[None, :]
        return self.session.run(None, {"a": feed})[0][0], 1.0 / (GALLERY_SCALE * scale), eps


def shortlist(coarse_best: np.ndarray, factor: float, eps: float, top: int, generous: int) -> np.ndarray:
    """Indices of every subject that can be in the exact top `top`, from each subject's best coarse score.

    A subject's exact score lies within eps of its coarse one. If its coarse score is below the k-th best coarse
    score minus 2 eps, k subjects are provably above it exactly, so it cannot be in the top k. The `generous` best
    by coarse score are kept too (a margin for the bound's own arithmetic, at no cost in exactness)."""
    count = len(coarse_best)
    if top >= count or generous >= count:
        return np.arange(count)
    best_generous = np.partition(coarse_best, count - generous)[count - generous:]  # one pivot: 5x cheaper than two
    kth_top = np.partition(best_generous, generous - top)[generous - top]
    floor = min(math.ceil(float(kth_top) - 2.0 * eps / factor), int(best_generous.min()))
    return np.flatnonzero(coarse_best >= floor)
