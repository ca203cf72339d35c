"""A view session: the whole state of the scene as plain data, saved as a small TOML file.

What a lecturer sets up in ``dorsum view`` (camera, which layers and structures are shown, their
opacities, the highlighted structure, the atrophy settings) is captured into a :class:`Session`,
saved with :func:`save_session`, and reopened with ``dorsum view --state FILE`` or re-exported
identically with ``dorsum shot --state FILE``. No Qt and no VTK here.

The file keeps only what differs from the atlas defaults for single structures, so it stays small::

    format = 1
    atlas = "Dorsum back 0.1"
    labels = true

    [camera]
    position = [0.0, -1500.0, 1100.0]
    ...

    [layers.superficial]
    visible = false
    opacity = 1.0

    [structures.multifidus_left]
    visible = false
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from viewer.errors import DorsumError
from viewer.model import SceneModel
from viewer.views import VIEWS

SESSION_FORMAT = 1
SESSION_SUFFIXES = (".toml",)


class CameraLike(Protocol):
    """Anything with the fields of :class:`viewer.render.Camera`."""

    position: tuple[float, float, float]
    focal_point: tuple[float, float, float]
    up: tuple[float, float, float]
    view_angle: float


@dataclass(frozen=True)
class CameraState:
    """A camera as plain data, field for field a :class:`viewer.render.Camera` (mm, atlas frame).

    ``view`` names the preset the camera was last set from (None once the user has moved it).
    """

    position: tuple[float, float, float]
    focal_point: tuple[float, float, float]
    up: tuple[float, float, float]
    view_angle: float
    view: str | None = None

    def camera_fields(self) -> dict[str, Any]:
        """Keyword arguments for ``viewer.render.Camera(**...)``."""
        return {"position": self.position, "focal_point": self.focal_point, "up": self.up,
                "view_angle": self.view_angle}


@dataclass(frozen=True)
class LayerState:
    visible: bool = True
    opacity: float = 1.0


@dataclass(frozen=True)
class StructureState:
    """A structure's own flags (its layer's flags apply on top)."""

    visible: bool = True
    opacity: float = 1.0


@dataclass(frozen=True)
class Session:
    """The whole view state.

    Attributes
    ----------
    camera : the camera, or None to use the default view.
    layers : layer name -> its visibility and opacity (every layer of the atlas).
    structures : structure id -> its own visibility and opacity, only where not the default.
    highlight : id of the highlighted structure, or None.
    atrophy : the atrophy parameters as plain data (field -> value; a tuple of them, one per muscle, for
        a scenario), or None for a healthy spine.
    atlas : "name version" of the atlas the session was made with (informative).
    labels : whether the visible muscles are labelled (key N in the viewer; ``dorsum shot --state``
        then labels them too).
    """

    camera: CameraState | None = None
    layers: Mapping[str, LayerState] = field(default_factory=dict)
    structures: Mapping[str, StructureState] = field(default_factory=dict)
    highlight: str | None = None
    atrophy: Mapping[str, Any] | tuple[Mapping[str, Any], ...] | None = None
    atlas: str = ""
    labels: bool = False

    def without_camera(self) -> Session:
        return dataclasses.replace(self, camera=None)


# -- capture and apply -------------------------------------------------------------------------
def camera_state(camera: CameraLike, view: str | None = None) -> CameraState:
    """Plain-data copy of a camera (floats, tuples)."""
    return CameraState(
        position=_vector(camera.position), focal_point=_vector(camera.focal_point), up=_vector(camera.up),
        view_angle=float(camera.view_angle), view=view,
    )


def capture_session(model: SceneModel, camera: CameraLike | None = None, view: str | None = None,
                    labels: bool = False) -> Session:
    """The current state of ``model`` (and ``camera`` and the labels switch, if given) as a :class:`Session`."""
    atlas = model.atlas
    layers = {name: LayerState(model.layer_visible(name), model.layer_opacity(name)) for name in atlas.layer_names}
    structures = {}
    for sid in atlas.structure_ids:
        state = StructureState(model.structure_visible(sid), model.structure_opacity(sid))
        if state != StructureState():
            structures[sid] = state
    return Session(
        camera=None if camera is None else camera_state(camera, view),
        layers=layers, structures=structures, highlight=model.highlight,
        atrophy=atrophy_to_dict(model.atrophy), atlas=f"{atlas.name} {atlas.version}", labels=bool(labels),
    )


def apply_session(session: Session, model: SceneModel) -> None:
    """Set ``model`` to the visibility, opacity, highlight and atrophy of ``session``.

    The camera is not part of the model: the caller applies ``session.camera`` to its renderer.
    Names the atlas does not have raise a :class:`DorsumError` before anything changes.
    """
    check_session_names(session, model)
    states = _structure_states(session, model.atlas)
    with model.batch():
        for sid in model.atlas.structure_ids:
            own = states.get(sid, StructureState())
            # Structure flags first, with every layer shown, so that showing a structure
            # never switches its layer to "this structure alone".
            model.set_layer_visible(model.atlas.structure(sid).layer, True)
            if model.structure_visible(sid) != own.visible:
                model.set_visible(sid, own.visible)
            if model.structure_opacity(sid) != own.opacity:
                model.set_opacity(sid, own.opacity)
        for name in model.atlas.layer_names:
            layer = session.layers.get(name, LayerState())
            model.set_layer_visible(name, layer.visible)
            if model.layer_opacity(name) != layer.opacity:
                model.set_opacity(name, layer.opacity)
    apply_atrophy_dict(model, session.atrophy)
    highlight = session.highlight
    if highlight is not None and highlight not in model.atlas.structure_ids:
        highlight = model.atlas.ids_named(highlight)[0]  # e.g. longissimus_left on a split muscle
    model.set_highlight(highlight)


def _structure_states(session: Session, atlas: Any) -> dict[str, StructureState]:
    """Structure id -> its saved state; a saved name such as ``longissimus_left`` that this atlas
    splits into parts applies to each part (an exact id wins)."""
    states: dict[str, StructureState] = {}
    for name, state in session.structures.items():
        if name not in atlas.structure_ids:
            for sid in atlas.ids_named(name):
                states[sid] = state
    for name, state in session.structures.items():
        if name in atlas.structure_ids:
            states[name] = state
    return states


def check_session_names(session: Session, model: SceneModel) -> None:
    """Raise if the session names layers or structures that the model's atlas does not have."""
    atlas = model.atlas
    unknown_layers = [name for name in session.layers if name not in atlas.layer_names]
    unknown_ids = [sid for sid in session.structures if not _names_structures(atlas, sid)]
    if session.highlight is not None and not _names_structures(atlas, session.highlight):
        unknown_ids.append(session.highlight)
    if unknown_layers or unknown_ids:
        names = ", ".join(unknown_layers + unknown_ids)
        raise DorsumError(
            f"the state was saved with atlas {session.atlas or '(unknown)'!r} and names {names}, which atlas "
            f"{atlas.name} {atlas.version} does not have; open it with the atlas it was made with "
            "(--atlas NAME or folder; see 'dorsum atlas list')"
        )


def _names_structures(atlas: Any, name: str) -> bool:
    """A structure id of ``atlas``, or a name such as ``longissimus_left`` naming some of its structures."""
    return name not in atlas.layer_names and bool(atlas.ids_named(name))


def atrophy_to_dict(params: Any) -> dict[str, Any] | tuple[dict[str, Any], ...] | None:
    """Atrophy parameters (a dataclass, a tuple of them for a scenario, or None) as TOML-ready plain data."""
    if params is None:
        return None
    if isinstance(params, tuple):
        return tuple(atrophy_to_dict(p) for p in params)  # type: ignore[misc]
    if not dataclasses.is_dataclass(params):
        raise TypeError(f"atrophy parameters must be a dataclass, not {type(params).__name__}")
    return {key: _plain(value) for key, value in dataclasses.asdict(params).items() if value is not None}


def apply_atrophy_dict(model: SceneModel, atrophy: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None) -> None:
    """Apply atrophy given as plain data (None: the healthy atlas geometry) through :mod:`viewer.atrophy`."""
    if atrophy is None and model.atrophy is None:
        return
    from viewer import atrophy as atrophy_module  # deferred: only sessions with atrophy need it

    if atrophy is None:
        atrophy_module.apply_atrophy(model, None)
        return
    params = atrophy_params(atrophy)
    if params != model.atrophy:  # undoing a visibility change must not recompute the shape
        atrophy_module.apply_atrophy(model, params)


def atrophy_params(atrophy: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> Any:
    """``viewer.atrophy.AtrophyParams`` from plain data (a tuple of them from a list, for a scenario);
    bad values raise :class:`DorsumError`."""
    from viewer import atrophy as atrophy_module

    if not isinstance(atrophy, Mapping):
        entries = tuple(atrophy_params(entry) for entry in atrophy)
        return entries[0] if len(entries) == 1 else entries

    try:
        return atrophy_module.AtrophyParams(**{k: _from_plain(v) for k, v in atrophy.items()})
    except TypeError:
        allowed = ", ".join(f.name for f in dataclasses.fields(atrophy_module.AtrophyParams))
        raise DorsumError(f"atrophy has unknown or missing fields {sorted(atrophy)} (allowed: {allowed})") from None


# -- files -------------------------------------------------------------------------------------
def session_to_toml(session: Session) -> dict[str, Any]:
    """The TOML document (as a dict) of a session."""
    document: dict[str, Any] = {"format": SESSION_FORMAT}
    if session.atlas:
        document["atlas"] = session.atlas
    if session.highlight is not None:
        document["highlight"] = session.highlight
    if session.labels:
        document["labels"] = True
    if session.camera is not None:
        camera = {key: _plain(value) for key, value in session.camera.camera_fields().items()}
        if session.camera.view is not None:
            camera = {"view": session.camera.view, **camera}
        document["camera"] = camera
    document["layers"] = {name: {"visible": s.visible, "opacity": s.opacity} for name, s in session.layers.items()}
    structures = {}
    for sid, state in session.structures.items():
        entry: dict[str, Any] = {}
        if not state.visible:
            entry["visible"] = False
        if state.opacity != 1.0:
            entry["opacity"] = state.opacity
        structures[sid] = entry
    if structures:
        document["structures"] = structures
    if session.atrophy is not None:
        document["atrophy"] = (dict(session.atrophy) if isinstance(session.atrophy, Mapping)
                               else [dict(entry) for entry in session.atrophy])
    return document


def save_session(path: str | Path, session: Session, *, overwrite: bool = False) -> Path:
    """Write ``session`` as TOML to ``path`` atomically; an existing file is kept unless ``overwrite``."""
    import tomli_w

    from viewer.output import check_output_path, write_atomically

    out = check_output_path(path, overwrite=overwrite, suffixes=SESSION_SUFFIXES)
    text = ("# Dorsum view state: open with 'dorsum view --state FILE', "
            "render with 'dorsum shot --state FILE --out picture.png'\n" + tomli_w.dumps(session_to_toml(session)))

    def write(target: Path) -> None:
        target.write_text(text, encoding="utf-8")

    return write_atomically(out, write, overwrite=overwrite)


def load_session(path: str | Path) -> Session:
    """Read a session file; every problem is a one-line :class:`DorsumError` naming the file."""
    source = Path(path)
    try:
        data = tomllib.loads(_read_small_text(source))
    except FileNotFoundError:
        raise DorsumError(f"{source}: no such state file (save one with File > Save view state in "
                          "'dorsum view')") from None
    except IsADirectoryError:
        raise DorsumError(f"{source}: is a folder; give a state file (.toml)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DorsumError(f"{source}: cannot read the state file ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise DorsumError(f"{source}: not a valid TOML state file ({exc})") from None
    try:
        session = session_from_toml(data)
        if session.atrophy is not None:
            atrophy_params(session.atrophy)
    except KeyError as exc:
        raise DorsumError(f"{source}: not a valid state file: [camera] needs {exc} "
                          "(position, focal_point, up and view_angle)") from None
    except (TypeError, ValueError, DorsumError) as exc:
        raise DorsumError(f"{source}: not a valid state file: {exc}") from None
    return session


#: A state file is a few kilobytes; anything far larger is not one (and is not read into memory).
MAX_STATE_BYTES = 1024 * 1024


def _read_small_text(source: Path) -> str:
    """The text of a regular file of at most :data:`MAX_STATE_BYTES` (never a device, FIFO or folder)."""
    import stat

    mode = source.stat().st_mode
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(source)
    if not stat.S_ISREG(mode):
        raise DorsumError(f"{source}: is not a regular file (a device, FIFO or socket); give a state file (.toml)")
    with open(source, "rb") as handle:
        data = handle.read(MAX_STATE_BYTES + 1)
    if len(data) > MAX_STATE_BYTES:
        raise DorsumError(f"{source}: is too large for a state file (over {MAX_STATE_BYTES // 1024} KiB); "
                          "give a state file saved by 'dorsum view'")
    return data.decode("utf-8")


def session_from_toml(data: Mapping[str, Any]) -> Session:
    """Build a session from its TOML document; raises ValueError naming the bad entry."""
    _check_keys("the file", data, {"format", "atlas", "highlight", "labels", "camera", "layers", "structures",
                                   "atrophy"})
    if data.get("format") != SESSION_FORMAT:
        raise ValueError(f"format is {data.get('format')!r}; this dorsum reads format {SESSION_FORMAT}")
    camera = None
    if "camera" in data:
        entry = _table("camera", data["camera"])
        _check_keys("[camera]", entry, {"view", "position", "focal_point", "up", "view_angle"})
        view = entry.get("view")
        if view is not None and view not in VIEWS:
            raise ValueError(f"camera view {view!r} is unknown (known: {', '.join(VIEWS)})")
        camera = CameraState(
            position=_vector(entry["position"], "camera position"),
            focal_point=_vector(entry["focal_point"], "camera focal_point"),
            up=_vector(entry["up"], "camera up"),
            view_angle=_number(entry["view_angle"], "camera view_angle", 1.0, 179.0), view=view,
        )
        check_camera(camera)
    layers = {}
    for name, entry in _table("layers", data.get("layers", {})).items():
        entry = _table(f"[layers.{name}]", entry)
        _check_keys(f"[layers.{name}]", entry, {"visible", "opacity"})
        layers[name] = LayerState(_bool(entry.get("visible", True), f"layers.{name}.visible"),
                                  _number(entry.get("opacity", 1.0), f"layers.{name}.opacity", 0.0, 1.0))
    structures = {}
    for sid, entry in _table("structures", data.get("structures", {})).items():
        entry = _table(f"[structures.{sid}]", entry)
        _check_keys(f"[structures.{sid}]", entry, {"visible", "opacity"})
        state = StructureState(_bool(entry.get("visible", True), f"structures.{sid}.visible"),
                               _number(entry.get("opacity", 1.0), f"structures.{sid}.opacity", 0.0, 1.0))
        if state != StructureState():
            structures[sid] = state
    highlight = data.get("highlight")
    if highlight is not None and not isinstance(highlight, str):
        raise ValueError(f"highlight must be a structure id, not {highlight!r}")
    atrophy = _atrophy_tables(data["atrophy"]) if "atrophy" in data else None
    atlas = data.get("atlas", "")
    if not isinstance(atlas, str):
        raise ValueError(f"atlas must be text, not {atlas!r}")
    labels = _bool(data.get("labels", False), "labels")
    return Session(camera=camera, layers=layers, structures=structures, highlight=highlight, atrophy=atrophy,
                   atlas=atlas, labels=labels)


# -- the command line --------------------------------------------------------------------------
def add_state_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--state FILE``; with it, ``--view`` defaults to the saved camera."""
    parser.add_argument("--state", type=Path, default=None, metavar="FILE",
                        help="view state saved from 'dorsum view' (camera, visibility, opacities, atrophy); "
                             "--view, --hide, --only and --opacity apply on top of it")
    parser.set_defaults(view=None)


def scene_from_args(args: argparse.Namespace) -> tuple[SceneModel, Any, Session | None]:
    """Model, scene options and the loaded session (or None) for a command with ``--state``.

    The session is applied first and the explicit scene options on top; the returned options'
    ``view`` is None when the session's camera should be used.
    """
    from viewer.scene_options import (
        apply_scene_options,
        load_atlas_from_args,
        print_notes,
        scene_options_from_args,
    )
    from viewer.views import DEFAULT_VIEW

    session = None if getattr(args, "state", None) is None else load_session(args.state)
    options = scene_options_from_args(args)
    if options.view is None and (session is None or session.camera is None):
        options = dataclasses.replace(options, view=DEFAULT_VIEW)
    model = SceneModel(load_atlas_from_args(args, fallback=_session_atlas(session)))
    if session is not None:
        apply_session(session, model)
    print_notes(args, apply_scene_options(model, options))
    return model, options, session


def _session_atlas(session: Session | None) -> Path | None:
    """The installed atlas a session was saved with, when it is not the default one (else None)."""
    if session is None or not session.atlas:
        return None
    from viewer.atlases import find_atlas_by_label

    return find_atlas_by_label(session.atlas)


def check_camera(camera: CameraLike) -> None:
    """Raise ValueError if ``camera`` cannot show anything (the picture would be blank).

    The camera must stand away from its focal point (at least 1 mm, the atlas unit) and its up
    vector must have a length and point across the view direction (at least 1 degree off it).
    """
    direction = [f - p for f, p in zip(camera.focal_point, camera.position)]
    distance = math.hypot(*direction)
    if distance < 1.0:
        raise ValueError(f"camera position {list(camera.position)} is the focal point (or under 1 mm from it), "
                         "so the camera looks nowhere; put the camera away from the focal point")
    up_length = math.hypot(*camera.up)
    if up_length < 1e-9:
        raise ValueError("camera up is [0, 0, 0]; give the direction that is up in the picture, e.g. [0, 0, 1]")
    cosine = sum(d * u for d, u in zip(direction, camera.up)) / (distance * up_length)
    if abs(cosine) > math.cos(math.radians(1.0)):
        raise ValueError(f"camera up {list(camera.up)} is parallel to the view direction, so the picture has "
                         "no up; give an up at right angles to the view, e.g. [0, 0, 1] for a view from behind")


# -- plain data helpers ------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if hasattr(value, "item"):  # numpy scalar
        return value.item()
    return value


def _from_plain(value: Any) -> Any:
    return tuple(_from_plain(v) for v in value) if isinstance(value, list) else value


def _vector(value: Any, name: str = "vector") -> tuple[float, float, float]:
    if not isinstance(value, list | tuple) or len(value) != 3:
        raise ValueError(f"{name} must be three numbers [x, y, z], not {value!r}")
    return tuple(_number(v, name, -math.inf, math.inf) for v in value)  # type: ignore[return-value]


def _number(value: Any, name: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a number, not {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} is {value!r}, outside {low:g} to {high:g}")
    return float(value)


def _bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, not {value!r}")
    return value


def _atrophy_tables(value: Any) -> Mapping[str, Any] | tuple[Mapping[str, Any], ...]:
    """A state's atrophy: one table (one muscle), or an array of tables (a scenario, one per muscle)."""
    if isinstance(value, list):
        if not value:
            raise ValueError("atrophy must hold at least one [[atrophy]] table")
        return tuple(dict(_table(f"atrophy[{i}]", entry)) for i, entry in enumerate(value))
    return dict(_table("atrophy", value))


def _table(name: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{name} must be a table, not {value!r}")
    return value


def _check_keys(where: str, table: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ValueError(f"{where} has unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})")
