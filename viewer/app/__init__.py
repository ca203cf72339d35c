"""The desktop application: PySide6 + pyvistaqt around the scene model and its renderer.

This is the only package that imports Qt; nothing outside it imports this package at import time
(``dorsum view`` imports it when it runs), so ``import viewer`` and the other commands stay Qt-free.
"""

from __future__ import annotations

import argparse
from typing import Any


def run_app(args: argparse.Namespace, scene: tuple[Any, Any, Any] | None = None) -> int:
    """Open the main window for the scene ``args`` describe and run until it closes; the exit code.

    ``scene`` is ``viewer.session.scene_from_args(args)`` when the caller has loaded it already.
    """
    from viewer.app.main import run_app as run

    return run(args, scene)


def run_scene(model: object, **options: object) -> int:
    """Open the main window on an existing scene model (``viewer.api.Scene.show``); the exit code."""
    from viewer.app.main import run_scene as run

    return run(model, **options)  # type: ignore[arg-type]
