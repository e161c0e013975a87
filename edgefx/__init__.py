"""edgefx: explainable face verification for edge devices (verify, explain, talk, serve)."""

from edgefx.errors import EdgefxError

__version__ = "0.1.0"
__all__ = ["EdgefxError", "__version__"]
