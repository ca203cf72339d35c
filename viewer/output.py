"""Writing files safely: never clobber without permission, never leave a half-written file."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from viewer.errors import DorsumError

PNG_PARAMETERS_KEY = "dorsum:parameters"
PNG_CREDIT_KEY = "Copyright"


def check_output_path(path: str | Path, *, overwrite: bool, suffixes: tuple[str, ...] = ()) -> Path:
    """Validate an output path before any work is done; return it as a ``Path``."""
    out = Path(path)
    if suffixes and out.suffix.lower() not in suffixes:
        raise DorsumError(f"{out}: unsupported file type {out.suffix or '(none)'!r} (use {', '.join(suffixes)})")
    if out.exists() and out.is_dir():
        raise DorsumError(f"{out}: is a folder; give a file name, e.g. {out / ('figure' + (suffixes or ('.png',))[0])}")
    if out.exists() and not overwrite:
        raise DorsumError(f"{out}: file exists; pass --overwrite to replace it or choose another name")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise DorsumError(f"{out}: folder {parent} does not exist; create it first")
    if not os.access(parent, os.W_OK):
        raise DorsumError(f"{out}: folder {parent} is not writable; choose another place")
    return out


def write_atomically(path: str | Path, write: Callable[[Path], None], *, overwrite: bool) -> Path:
    """Call ``write(temp_path)`` for a temporary file beside ``path``, then move it into place.

    A failure (or crash) while writing leaves any existing file untouched and no partial file.
    """
    out = check_output_path(path, overwrite=overwrite)
    handle, temp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent or ".")
    os.close(handle)
    temp = Path(temp_name)
    os.chmod(temp, 0o666 & ~_umask())  # mkstemp makes files private; a saved figure should not be
    try:
        write(temp)
        if out.exists() and not overwrite:  # appeared while we were rendering
            raise DorsumError(f"{out}: file exists; pass --overwrite to replace it or choose another name")
        os.replace(temp, out)
    finally:
        temp.unlink(missing_ok=True)
    return out


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def png_bytes_writer(pixels: np.ndarray, parameters: Mapping[str, Any] | None = None,
                     dpi: float | None = None, credits: Sequence[str] = ()) -> Callable[[Path], None]:
    """A writer for :func:`write_atomically` that saves ``pixels`` as PNG with the parameters as text.

    ``credits`` (the attribution lines of the atlas's data sources) go into the standard
    ``Copyright`` text field, one per line, so that the credit travels with the picture.
    """
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    def write(target: Path) -> None:
        info = PngInfo()
        info.add_text("Software", "dorsum")
        if credits:
            info.add_itxt(PNG_CREDIT_KEY, "\n".join(credits))
        if parameters is not None:
            info.add_text(PNG_PARAMETERS_KEY, json.dumps(parameters, sort_keys=True))
        image = Image.fromarray(np.ascontiguousarray(pixels))
        extra = {"dpi": (dpi, dpi)} if dpi else {}
        image.save(target, format="PNG", pnginfo=info, **extra)

    return write


def save_png(path: str | Path, pixels: np.ndarray, *, parameters: Mapping[str, Any] | None = None,
             overwrite: bool = False, dpi: float | None = None, credits: Sequence[str] = ()) -> Path:
    """Save an (h, w, 3|4) uint8 image as PNG, atomically, with reproducible parameters and the
    data credits (see :func:`png_bytes_writer`) in its metadata."""
    return write_atomically(path, png_bytes_writer(pixels, parameters, dpi, credits), overwrite=overwrite)


def read_png_credits(path: str | Path) -> list[str]:
    """The credit lines stored in a PNG written by :func:`save_png` (empty if none)."""
    from PIL import Image

    with Image.open(path) as image:
        text = image.text.get(PNG_CREDIT_KEY, "") if hasattr(image, "text") else ""
    return [line for line in text.split("\n") if line]


def read_png_parameters(path: str | Path) -> dict[str, Any]:
    """The parameters stored in a PNG written by :func:`save_png` (empty if none)."""
    from PIL import Image

    with Image.open(path) as image:
        text = image.text.get(PNG_PARAMETERS_KEY) if hasattr(image, "text") else None
    return json.loads(text) if text else {}
