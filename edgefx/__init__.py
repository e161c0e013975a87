"""edgefx: explainable face verification for edge devices (verify, explain, talk, serve)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from edgefx.runtime.errors import EdgefxError

if TYPE_CHECKING:
    from edgefx.engine import Engine
    from edgefx.runtime.config import Settings

__version__ = "0.1.0"
__all__ = ["EdgefxError", "Engine", "Settings", "__version__"]


def __getattr__(name: str) -> Any:
    """`from edgefx import Engine, Settings` without loading the models' runtimes on `import edgefx`."""
    if name == "Engine":
        from edgefx.engine import Engine

        return Engine
    if name == "Settings":
        from edgefx.runtime.config import Settings

        return Settings
    raise AttributeError(f"module 'edgefx' has no attribute {name!r}")
