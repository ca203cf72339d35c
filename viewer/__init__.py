"""Dorsum: the muscles of the human back in 3D, layer by layer, and multifidus atrophy.

The package is split so that the model never needs VTK or Qt: :mod:`viewer.atlas` (data),
:mod:`viewer.model` (state and events), :mod:`viewer.render` (the only module that draws),
:mod:`viewer.cli` (the ``dorsum`` command), :mod:`viewer.api` (the Python interface:
``import viewer as dorsum; scene = dorsum.Scene()``).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["DorsumError", "Picture", "Scene", "__version__", "render_lesson"]


def __getattr__(name: str) -> Any:
    # The API loads on first use, so that `import viewer` (and every CLI start) stays light.
    if name in ("Scene", "Picture", "render_lesson"):
        from viewer import api

        return getattr(api, name)
    if name == "DorsumError":
        from viewer.errors import DorsumError

        return DorsumError
    raise AttributeError(f"module 'viewer' has no attribute {name!r}")
