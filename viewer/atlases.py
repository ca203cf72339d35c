"""The atlases a user has: the built-in one, the imported ones, and which is the default.

Imported atlases live in the user's data folder, one folder per NAME::

    platformdirs.user_data_dir("dorsum") / "atlases" / NAME      # Linux: $XDG_DATA_HOME/dorsum/atlases/NAME

``builtin`` is the atlas shipped with the program (:func:`viewer.atlas.default_atlas_dir`). The
default atlas (what every command shows without ``--atlas``) is kept in the user's config folder,
``platformdirs.user_config_dir("dorsum") / "config.toml"``, as ``default_atlas = "NAME"``. No VTK here.
"""

from __future__ import annotations

import os
import re
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from viewer.atlas import MANIFEST, default_atlas_dir
from viewer.errors import DorsumError

BUILTIN = "builtin"
CONFIG_NAME = "config.toml"
MAX_NAME_LENGTH = 64
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class AtlasEntry:
    """One installed atlas as ``dorsum atlas list`` shows it.

    ``title``/``version`` come from its manifest; ``structures`` is None when the manifest cannot be
    read (the atlas is damaged: ``dorsum atlas check --atlas NAME`` says why).
    """

    name: str
    path: Path
    builtin: bool
    default: bool
    title: str = ""
    version: str = ""
    structures: int | None = None
    sources: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "path": str(self.path), "builtin": self.builtin, "default": self.default,
                "title": self.title, "version": self.version, "structures": self.structures,
                "sources": list(self.sources)}


def _platformdirs() -> Any:
    import platformdirs  # deferred: only commands that need the user's folders import it

    return platformdirs


def atlases_dir() -> Path:
    """The folder holding the imported atlases (it may not exist yet)."""
    return Path(_platformdirs().user_data_dir("dorsum", appauthor=False)) / "atlases"


def config_path() -> Path:
    """The user's Dorsum settings file (it may not exist yet)."""
    return Path(_platformdirs().user_config_dir("dorsum", appauthor=False)) / CONFIG_NAME


def check_atlas_name(name: str) -> str:
    """``name`` if it is a safe folder name for an imported atlas, else a one-line :class:`DorsumError`."""
    if not isinstance(name, str) or not name:
        raise DorsumError("atlas name is empty; give a name such as 'bodyparts3d'")
    if len(name) > MAX_NAME_LENGTH or not _NAME.match(name) or name.endswith("."):
        raise DorsumError(f"atlas name {name!r} is not allowed: use up to {MAX_NAME_LENGTH} letters, digits, "
                          "'_', '-' or '.', starting with a letter or digit (e.g. 'bodyparts3d')")
    if name.lower() == BUILTIN:
        raise DorsumError(f"atlas name {name!r} is reserved for the atlas shipped with dorsum; choose another name")
    return name


def imported_atlas_path(name: str) -> Path:
    """Where the imported atlas ``name`` lives (checked to be a safe name; it may not exist)."""
    return atlases_dir() / check_atlas_name(name)


def imported_names() -> list[str]:
    """Names of the imported atlases (folders with a manifest), sorted."""
    folder = atlases_dir()
    try:
        children = sorted(folder.iterdir()) if folder.is_dir() else []
    except OSError:
        return []
    return [p.name for p in children if _NAME.match(p.name) and (p / MANIFEST).is_file()]


def default_atlas_name() -> str:
    """The name set with ``dorsum atlas use`` (``builtin`` when none was set)."""
    path = config_path()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return BUILTIN
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise DorsumError(f"{path}: cannot read the settings ({exc}); fix or delete the file") from None
    name = data.get("default_atlas", BUILTIN)
    if not isinstance(name, str) or not name:
        raise DorsumError(f"{path}: default_atlas must be an atlas name, not {name!r}; "
                          "run 'dorsum atlas use builtin' to reset it")
    return name


def set_default_atlas(name: str) -> Path:
    """Make ``name`` (``builtin`` or an imported atlas) the default; returns its folder."""
    folder = resolve_atlas_name(name)
    path = config_path()
    data: dict[str, Any] = {}
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            data = {}  # replaced by a valid file below
    data["default_atlas"] = BUILTIN if name.lower() == BUILTIN else name
    _write_config(path, data)
    return folder


def _write_config(path: Path, data: dict[str, Any]) -> None:
    import tomli_w

    text = "# Dorsum settings (written by 'dorsum atlas use')\n" + tomli_w.dumps(data)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                stream.write(text)
            os.replace(temp, path)
        finally:
            Path(temp).unlink(missing_ok=True)
    except OSError as exc:
        raise DorsumError(f"{path}: cannot save the settings ({exc.strerror or exc})") from None


def resolve_atlas_name(name: str) -> Path:
    """The folder of the installed atlas ``name`` (``builtin`` or an imported one)."""
    if name.lower() == BUILTIN:
        return default_atlas_dir()
    if _NAME.match(name) and len(name) <= MAX_NAME_LENGTH:
        folder = atlases_dir() / name
        if (folder / MANIFEST).is_file():
            return folder
    raise DorsumError(f"unknown atlas {name!r} (installed: {', '.join(installed_names())}; import one with "
                      "'dorsum atlas import SOURCE --name NAME', or give a folder holding atlas.toml)")


def remove_atlas(name: str) -> tuple[Path, bool]:
    """Delete the imported atlas ``name``; returns its former folder and whether it was the default.

    The folder is first renamed to a hidden name beside it (one atomic step, so no half-deleted
    atlas is ever listed), then deleted; a default that named it reverts to ``builtin``.
    """
    import shutil

    if isinstance(name, str) and name.lower() == BUILTIN:
        raise DorsumError("the built-in atlas cannot be removed; remove an imported one (see 'dorsum atlas list')")
    folder = resolve_atlas_name(check_atlas_name(name))
    was_default = _default_or_none() == name
    trash = Path(tempfile.mkdtemp(prefix=f".{name}.removing.", dir=folder.parent))
    try:
        folder.rename(trash / name)
    except OSError as exc:
        trash.rmdir()
        raise DorsumError(f"{folder}: cannot remove the atlas ({exc.strerror or exc})") from None
    shutil.rmtree(trash, ignore_errors=True)
    if was_default:
        set_default_atlas(BUILTIN)
    return folder, was_default


def _default_or_none() -> str | None:
    try:
        return default_atlas_name()
    except DorsumError:
        return None


def installed_names() -> list[str]:
    return [BUILTIN, *imported_names()]


def resolve_atlas(name_or_folder: str | Path | None) -> Path:
    """The atlas folder meant by an ``--atlas`` value.

    None means the default atlas (``dorsum atlas use``); a NAME means an installed atlas
    (``builtin`` or imported); anything else is a folder holding ``atlas.toml``. Whether the
    folder holds a valid atlas is for :func:`viewer.atlas.load_atlas` to say.
    """
    if name_or_folder is None:
        name = default_atlas_name()
        try:
            return resolve_atlas_name(name)
        except DorsumError:
            raise DorsumError(f"the default atlas {name!r} is not installed any more (installed: "
                              f"{', '.join(installed_names())}); choose one with 'dorsum atlas use NAME'") from None
    text = str(name_or_folder)
    if not text:
        raise DorsumError("--atlas is empty; give an atlas name (see 'dorsum atlas list') or a folder")
    if isinstance(name_or_folder, str) and _looks_like_name(text):
        if text.lower() == BUILTIN or (atlases_dir() / text / MANIFEST).is_file():
            return resolve_atlas_name(text)
        if not Path(text).is_dir():
            resolve_atlas_name(text)  # raises: unknown name, listing the installed ones
    return Path(name_or_folder)


def _looks_like_name(text: str) -> bool:
    return bool(_NAME.match(text)) and len(text) <= MAX_NAME_LENGTH and "/" not in text and os.sep not in text


def list_atlases() -> list[AtlasEntry]:
    """The built-in atlas, then every imported one by name, with the default marked."""
    try:
        default = default_atlas_name()
    except DorsumError:
        default = ""
    entries = [_entry(BUILTIN, default_atlas_dir(), builtin=True, default=default.lower() == BUILTIN)]
    entries += [_entry(name, atlases_dir() / name, builtin=False, default=name == default) for name in imported_names()]
    return entries


def _entry(name: str, path: Path, *, builtin: bool, default: bool) -> AtlasEntry:
    try:
        data = tomllib.loads((path / MANIFEST).read_text(encoding="utf-8"))
        meta = data.get("atlas", {})
        structures = data.get("structures", [])
        return AtlasEntry(name, path, builtin, default, str(meta.get("name", "")), str(meta.get("version", "")),
                          len(structures) if isinstance(structures, list) else None,
                          tuple(str(s.get("name", "")) for s in meta.get("sources", []) if isinstance(s, dict)))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, AttributeError):
        return AtlasEntry(name, path, builtin, default)


def atlas_name_of_folder(folder: Path) -> str | None:
    """The installed name of the atlas in ``folder`` (``builtin`` or imported), or None."""
    try:
        target = folder.resolve()
    except OSError:
        return None
    for entry in list_atlases():
        if entry.path.resolve() == target:
            return entry.name
    return None


def find_atlas_by_label(label: str) -> Path | None:
    """The installed atlas whose manifest reads ``label`` ("name version", as state files record it).

    None when the default atlas has that label (nothing to switch) or no installed atlas has it.
    """
    entries = list_atlases()
    matching = [e for e in entries if e.title and f"{e.title} {e.version}" == label]
    if not matching or any(e.default for e in matching):
        return None
    return matching[0].path
