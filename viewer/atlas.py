"""The atlas: a TOML manifest plus one mesh file per structure (see ``docs/atlas-format.md``).

Loading validates everything and reports every problem at once as an :class:`AtlasError`.
This module knows nothing of VTK: meshes are read into numpy arrays (binary PLY with numpy, other
formats with trimesh).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from viewer.atlas_cache import MeshCache, cache_file, file_digest
from viewer.errors import AtlasError
from viewer.levels import VERTEBRAE

MANIFEST = "atlas.toml"
SIDES = ("left", "right", "midline")
KINDS = ("muscle", "bone", "disc", "fascia", "ligament", "other")
MESH_SUFFIXES = (".ply", ".stl", ".obj", ".off")

#: Sanity limits on loading (the atlas is in mm): extent of the whole atlas, size of a muscle,
#: spacing of vertebral body centres (adjacent ones are 15-45 mm apart in adults).
MIN_EXTENT_MM, MAX_EXTENT_MM = 5.0, 5000.0
MIN_MUSCLE_MM, MIN_THICKNESS_MM = 2.0, 0.2
MIN_LANDMARK_SPACING_MM = 5.0

_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
_ATLAS_KEYS = {"name", "version", "units", "frame", "description", "sources"}
_ATLAS_REQUIRED = {"name", "version", "units", "frame"}
_SOURCE_KEYS = {"name", "version", "licence", "licence_file", "attribution"}
_SOURCE_REQUIRED = {"name", "licence", "attribution"}
_LAYER_KEYS = {"name", "depth", "colour", "description"}
_LAYER_REQUIRED = {"name", "depth", "colour"}
_STRUCTURE_KEYS = {
    "id", "name", "muscle", "group", "side", "kind", "layer", "colour", "mesh", "levels", "teaching",
}
_STRUCTURE_REQUIRED = {"id", "name", "muscle", "group", "side", "kind", "layer", "mesh"}
_TEACHING_KEYS = ("origin", "insertion", "innervation", "action", "notes")
_SPINE_KEYS = {"name", "centre"}


@dataclass(frozen=True)
class Source:
    """A data source of the atlas with its licence."""

    name: str
    licence: str
    attribution: str
    version: str = ""
    licence_file: str = ""


@dataclass(frozen=True)
class Layer:
    """A layer of structures; ``depth`` 1 is outermost."""

    name: str
    depth: int
    colour: str
    description: str = ""


@dataclass(frozen=True)
class Teaching:
    """Teaching text for a structure, in the project's own words."""

    origin: str = ""
    insertion: str = ""
    innervation: str = ""
    action: str = ""
    notes: str = ""


@dataclass(frozen=True, eq=False)
class MeshData:
    """Triangle mesh as arrays.

    Attributes
    ----------
    vertices : (n, 3) float64 array, mm in the atlas frame.
    faces : (m, 3) int64 array of vertex indices.
    point_data : mapping of name to (n,) array of per-vertex data (e.g. ``segment``, ``side``).
    digest : SHA-256 of the file the mesh was read from ("" for a mesh made in memory); the key of
        what :class:`~viewer.atlas_cache.MeshCache` keeps for it.
    """

    vertices: np.ndarray
    faces: np.ndarray
    point_data: Mapping[str, np.ndarray] = field(default_factory=dict)
    digest: str = ""

    @property
    def n_triangles(self) -> int:
        return int(len(self.faces))


@dataclass(frozen=True)
class Structure:
    """One muscle, bone or other structure of the atlas (metadata only; geometry is in ``Atlas.meshes``)."""

    id: str
    name: str
    muscle: str
    group: str
    side: str
    kind: str
    layer: str
    colour: str
    mesh: Path
    levels: tuple[str, ...] = ()
    teaching: Teaching = Teaching()


@dataclass(frozen=True, eq=False)
class Atlas:
    """A loaded, validated atlas."""

    root: Path
    name: str
    version: str
    units: str
    frame: str
    description: str
    sources: tuple[Source, ...]
    layers: tuple[Layer, ...]
    structures: tuple[Structure, ...]
    spine: Mapping[str, np.ndarray]
    meshes: Mapping[str, MeshData]
    #: Normals, checks and levels of detail of the mesh files, kept between runs.
    cache: MeshCache = field(default_factory=MeshCache, repr=False)

    def normals(self, structure_id: str) -> np.ndarray:
        """(n, 3) float32 unit vertex normals of a structure's healthy mesh (cached between runs)."""
        from viewer.atlas_cache import vertex_normals

        mesh = self.meshes[structure_id]
        return self.cache.derived(mesh.digest, "normals", lambda: vertex_normals(mesh.vertices, mesh.faces))

    def is_closed(self, structure_id: str) -> bool:
        """Whether a structure's mesh is a closed surface (every edge shared by two triangles; cached)."""
        return _cached_open_edges(self.cache, self.meshes[structure_id]) == 0

    def layer(self, name: str) -> Layer:
        return next(layer for layer in self.layers if layer.name == name)

    def structure(self, structure_id: str) -> Structure:
        return next(s for s in self.structures if s.id == structure_id)

    def structures_of_muscle(self, muscle: str) -> tuple[Structure, ...]:
        return tuple(s for s in self.structures if s.muscle == muscle)

    def ids_named(self, name: str) -> tuple[str, ...]:
        """Structure ids named by a layer, a structure id, a muscle, a group, or ``<muscle>_<side>``
        (also ``<group>_<side>``).

        ``<muscle>_<side>`` (``longissimus_left``) names every structure of that muscle on that side,
        so names written for one atlas work on another that splits the muscle into parts
        (``longissimus_thoracis_left``, ``longissimus_cervicis_left``...). Empty when nothing matches.
        """
        if name in self.layer_names:
            return tuple(s.id for s in self.structures if s.layer == name)
        for attribute in ("id", "muscle", "group"):
            ids = tuple(s.id for s in self.structures if getattr(s, attribute) == name)
            if ids:
                return ids
        whole, _, side = name.rpartition("_")
        if whole and side in SIDES:
            for attribute in ("muscle", "group"):  # longissimus_left, then erector_spinae_left
                ids = tuple(s.id for s in self.structures if getattr(s, attribute) == whole and s.side == side)
                if ids:
                    return ids
        return ()

    @property
    def layer_names(self) -> tuple[str, ...]:
        return tuple(layer.name for layer in self.layers)

    @property
    def structure_ids(self) -> tuple[str, ...]:
        return tuple(s.id for s in self.structures)

    @property
    def muscles(self) -> tuple[str, ...]:
        """Names of the muscles (kind ``muscle``), in atlas order, without duplicates."""
        return tuple(dict.fromkeys(s.muscle for s in self.structures if s.kind == "muscle"))


def credit_lines(atlas: Atlas) -> tuple[str, ...]:
    """The attribution of every data source of ``atlas``: what a figure's metadata carries."""
    return tuple(dict.fromkeys(s.attribution.strip() for s in atlas.sources if s.attribution.strip()))


def printed_credit_lines(atlas: Atlas) -> tuple[str, ...]:
    """The attributions a picture must show: those of Creative Commons sources (``licence`` "CC-...",
    "CC BY-SA ..."), whose licences ask for credit wherever the work is shown. Sources under
    software licences (the built-in atlas's myo-sim, Apache-2.0) are credited in the metadata only.
    """
    return tuple(dict.fromkeys(s.attribution.strip() for s in atlas.sources
                               if s.attribution.strip() and re.match(r"(?i)^cc[\s_-]", s.licence.strip())))


def default_atlas_dir() -> Path:
    """The atlas shipped with the program: inside the installed package, else the checkout's ``meshes/``."""
    package = Path(__file__).resolve().parent
    for candidate in (package / "meshes", package.parent / "meshes"):
        if (candidate / MANIFEST).is_file():
            return candidate
    return package.parent / "meshes"


def load_atlas(folder: str | Path | None = None) -> Atlas:
    """Load and validate the atlas in ``folder`` (default: :func:`default_atlas_dir`).

    Raises
    ------
    AtlasError
        Listing every problem found in the manifest and the mesh files.
    """
    root = Path(folder) if folder is not None else default_atlas_dir()
    manifest = root / MANIFEST
    if not manifest.is_file():
        raise AtlasError([f"{manifest}: no atlas manifest here (an atlas folder holds {MANIFEST})"])
    try:
        data = tomllib.loads(manifest.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise AtlasError([f"{MANIFEST}: not valid TOML: {exc}"]) from None
    atlas = _Validator(root.resolve(), MeshCache(cache_file(root))).atlas(data)
    atlas.cache.save()
    return atlas


def read_mesh(path: Path) -> MeshData:
    """Read a triangle mesh file, keeping PLY per-vertex properties as ``point_data``.

    Binary triangle PLY files (what the atlas builder and importer write) are read with numpy
    alone, giving the same arrays trimesh gives; anything else goes through trimesh, whose import
    alone costs a cold start about half a second.
    Raises ``ValueError`` with a short reason when the file cannot be read as a triangle mesh.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot be read as a mesh ({exc.strerror or exc})") from None
    mesh = None
    if path.suffix.lower() == ".ply":
        try:
            mesh = _read_binary_ply(data)
        except (ValueError, KeyError, IndexError):
            mesh = None  # let trimesh try, and word the error
    if mesh is None:
        mesh = _read_with_trimesh(path)
    return replace(mesh, digest=file_digest(data))


def _read_with_trimesh(path: Path) -> MeshData:
    import trimesh  # deferred: only files the numpy reader does not handle need it

    try:
        mesh = trimesh.load(str(path), process=False, force="mesh")
    except Exception as exc:  # trimesh raises many types for corrupt files
        raise ValueError(f"cannot be read as a mesh ({type(exc).__name__}: {exc})") from None
    if not isinstance(mesh, trimesh.Trimesh):
        raise ValueError("holds no triangle mesh")
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    faces = np.asarray(mesh.faces, dtype=np.int64)
    point_data = _ply_vertex_properties(mesh.metadata, len(vertices))
    return MeshData(vertices, faces.reshape(-1, 3), MappingProxyType(point_data))


_PLY_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2",
    "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}
_PLY_SKIP = {"x", "y", "z", "nx", "ny", "nz", "red", "green", "blue", "alpha"}


def _read_binary_ply(source: bytes | Path) -> MeshData | None:
    """A binary PLY (a file or its bytes) of scalar vertex properties and triangles, or None for any
    other kind of PLY."""
    data = source if isinstance(source, bytes) else source.read_bytes()
    end = data.find(b"end_header")
    if not data.startswith(b"ply") or end < 0:
        return None
    body = data.index(b"\n", end) + 1
    lines = [line.split() for line in data[:end].decode("ascii").splitlines()[1:]]
    formats = [line for line in lines if line and line[0] == "format"]
    if len(formats) != 1 or formats[0][1] not in ("binary_little_endian", "binary_big_endian"):
        return None
    order = "<" if formats[0][1] == "binary_little_endian" else ">"
    elements: list[tuple[str, int, list[tuple[str, str]]]] = []
    for line in lines:
        if line and line[0] == "element":
            elements.append((line[1], int(line[2]), []))
        elif line and line[0] == "property":
            if line[1] == "list":  # a face list: count type and index type, three indices expected
                elements[-1][2].append((line[4], f"list:{_PLY_TYPES[line[2]]}:{_PLY_TYPES[line[3]]}"))
            else:
                elements[-1][2].append((line[2], _PLY_TYPES[line[1]]))
    if [name for name, _, _ in elements] != ["vertex", "face"]:
        return None
    (_, n_vertices, vertex_props), (_, n_faces, face_props) = elements
    if any(kind.startswith("list") for _, kind in vertex_props) or not {"x", "y", "z"} <= {n for n, _ in vertex_props}:
        return None
    lists = [(name, kind) for name, kind in face_props if kind.startswith("list")]
    if len(lists) != 1 or lists[0][0] not in ("vertex_indices", "vertex_index"):
        return None
    vertex_type = np.dtype([(name, order + kind) for name, kind in vertex_props])
    face_fields = []
    for name, kind in face_props:
        if kind.startswith("list"):
            _, count_type, index_type = kind.split(":")
            face_fields += [("count", order + count_type), ("indices", order + index_type, (3,))]
        else:
            face_fields.append((name, order + kind))
    face_type = np.dtype(face_fields)
    vertex_end = body + n_vertices * vertex_type.itemsize
    if vertex_end + n_faces * face_type.itemsize > len(data):
        raise ValueError("file is shorter than its header says")
    raw = np.frombuffer(data, vertex_type, count=n_vertices, offset=body)
    face_records = np.frombuffer(data, face_type, count=n_faces, offset=vertex_end)
    if not np.all(face_records["count"] == 3):
        return None  # polygons: trimesh triangulates them
    vertices = np.column_stack([raw[axis].astype(np.float64) for axis in "xyz"])
    faces = face_records["indices"].astype(np.int64)
    point_data = {name: np.array(raw[name]) for name in raw.dtype.names if name not in _PLY_SKIP}
    return MeshData(vertices, faces.reshape(-1, 3), MappingProxyType(point_data))


def _ply_vertex_properties(metadata: Mapping[str, Any], n_vertices: int) -> dict[str, np.ndarray]:
    raw = metadata.get("_ply_raw", {}).get("vertex", {}).get("data")
    # Binary PLY gives a structured array, ASCII PLY a dict of arrays.
    names = tuple(raw) if isinstance(raw, Mapping) else getattr(getattr(raw, "dtype", None), "names", None)
    if not names:
        return {}
    return {
        name: np.asarray(raw[name]).reshape(n_vertices, -1).squeeze(axis=1)
        for name in names
        if name not in _PLY_SKIP and np.asarray(raw[name]).size == n_vertices
    }


def open_edges(faces: np.ndarray, n_vertices: int) -> int:
    """How many edges of a triangle mesh are not shared by exactly two triangles (0 for a closed surface)."""
    kind = np.int32 if n_vertices * n_vertices < 2**31 else np.int64  # int32 sorts twice as fast
    first = faces.astype(kind, copy=False).ravel()
    second = faces[:, [1, 2, 0]].astype(kind, copy=False).ravel()
    keys = np.minimum(first, second) * kind(n_vertices) + np.maximum(first, second)
    keys.sort(kind="stable")
    if len(keys) % 2 == 0 and np.array_equal(keys[0::2], keys[1::2]) and not np.any(keys[1:-1:2] == keys[2::2]):
        return 0
    _, counts = np.unique(keys, return_counts=True)
    return int(np.count_nonzero(counts != 2))


def _cached_open_edges(cache: MeshCache, mesh: MeshData) -> int:
    return int(cache.derived(mesh.digest, "open_edges", lambda: np.array(open_edges(mesh.faces, len(mesh.vertices)))))


def _not_a_file(path: Path) -> str:
    """Why ``path`` cannot be read as a mesh file (empty if it can be opened as one)."""
    import stat

    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return "does not exist in the atlas folder"
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if stat.S_ISDIR(mode):
        return "is a folder, not a mesh file"
    if not stat.S_ISREG(mode):
        return "is not a regular file (a FIFO, device or socket), not a mesh file"
    return ""


class _Validator:
    """Collects every problem in a manifest, then builds the :class:`Atlas` or raises."""

    def __init__(self, root: Path, cache: MeshCache):
        self.root = root
        self.cache = cache
        self.problems: list[str] = []

    def fail(self, where: str, message: str) -> None:
        self.problems.append(f"{MANIFEST}: {where}: {message}")

    def atlas(self, data: dict[str, Any]) -> Atlas:
        self.keys("(top level)", data, {"atlas", "layers", "structures", "spine"}, {"atlas", "layers", "structures"})
        meta = self.table("atlas", data.get("atlas", {}))
        self.keys("atlas", meta, _ATLAS_KEYS, _ATLAS_REQUIRED)
        if "units" in meta and meta["units"] != "mm":
            self.fail("atlas.units", f"unsupported units {meta['units']!r} (allowed: mm)")
        if "frame" in meta and meta["frame"] != "RAS":
            self.fail("atlas.frame", f"unsupported frame {meta['frame']!r} (allowed: RAS)")
        sources = tuple(self.source(i, s) for i, s in enumerate(self.array("atlas.sources", meta.get("sources", []))))
        layers = tuple(self.layer(i, t) for i, t in enumerate(self.array("layers", data.get("layers", []))))
        layers = tuple(layer for layer in layers if layer is not None)
        self.unique("layers", [layer.name for layer in layers], "name")
        if not layers and "layers" in data:
            self.fail("layers", "no layers defined (define at least one [[layers]] table)")
        known_layers = {layer.name: layer for layer in layers}
        entries = self.array("structures", data.get("structures", []))
        structures = [self.structure(i, t, known_layers) for i, t in enumerate(entries)]
        self.unique("structures", [s.id for s in structures if s is not None], "id")
        spine = self.spine(self.array("spine", data.get("spine", [])))
        meshes = {s.id: self.mesh(i, s) for i, s in enumerate(structures) if s is not None}
        if not self.problems:
            self.geometry(structures, meshes, spine)  # what sections, volumes and levels depend on
        if self.problems:
            raise AtlasError(self.problems)
        return Atlas(
            root=self.root,
            name=str(meta["name"]),
            version=str(meta["version"]),
            units=meta["units"],
            frame=meta["frame"],
            description=str(meta.get("description", "")),
            sources=tuple(s for s in sources if s is not None),
            layers=tuple(sorted(layers, key=lambda layer: layer.depth)),
            structures=tuple(s for s in structures if s is not None),
            spine=MappingProxyType(spine),
            meshes=MappingProxyType(meshes),  # type: ignore[arg-type]
            cache=self.cache,
        )

    # -- generic checks ------------------------------------------------------------------------
    def keys(self, where: str, table: Mapping[str, Any], allowed: set[str], required: set[str]) -> None:
        for key in sorted(set(table) - allowed):
            self.fail(f"{where}.{key}" if where != "(top level)" else key, f"unknown key (allowed: {', '.join(sorted(allowed))})")
        for key in sorted(required - set(table)):
            self.fail(where, f"missing required key {key!r}")

    def table(self, where: str, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(where, "must be a table")
            return {}
        return value

    def array(self, where: str, value: Any) -> list[dict[str, Any]]:
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.fail(where, "must be an array of tables ([[...]])")
            return []
        return value

    def text(self, where: str, table: Mapping[str, Any], key: str, *, required: bool = False) -> str:
        value = table.get(key, "")
        if not isinstance(value, str):
            self.fail(f"{where}.{key}", f"must be a string, not {type(value).__name__}")
            return ""
        if required and key in table and not value.strip():
            self.fail(f"{where}.{key}", "must not be empty")
            return ""
        return value

    def identifier(self, where: str, value: str) -> None:
        if value and not _ID.match(value):
            self.fail(where, f"{value!r} is not snake_case (lower-case letters, digits, underscores)")

    def colour(self, where: str, value: Any) -> None:
        if not isinstance(value, str) or not _COLOUR.match(value):
            self.fail(where, f"{value!r} is not a colour of the form '#rrggbb'")

    def unique(self, where: str, values: list[str], key: str) -> None:
        seen: set[str] = set()
        for value in values:
            if value in seen:
                self.fail(where, f"duplicate {key} {value!r}")
            seen.add(value)

    # -- tables --------------------------------------------------------------------------------
    def source(self, index: int, table: dict[str, Any]) -> Source | None:
        where = f"atlas.sources[{index}]"
        self.keys(where, table, _SOURCE_KEYS, _SOURCE_REQUIRED)
        licence_file = self.text(where, table, "licence_file")
        if licence_file and not self.inside(where + ".licence_file", licence_file, must_exist=True):
            return None
        return Source(
            name=self.text(where, table, "name"),
            licence=self.text(where, table, "licence"),
            attribution=self.text(where, table, "attribution"),
            version=self.text(where, table, "version"),
            licence_file=licence_file,
        )

    def layer(self, index: int, table: dict[str, Any]) -> Layer | None:
        where = f"layers[{index}]"
        self.keys(where, table, _LAYER_KEYS, _LAYER_REQUIRED)
        name = self.text(where, table, "name", required=True)
        self.identifier(f"{where}.name", name)
        depth = table.get("depth", 0)
        if not isinstance(depth, int) or isinstance(depth, bool) or depth < 0:
            self.fail(f"{where}.depth", f"{depth!r} is not a whole number >= 0")
            depth = 0
        if "colour" in table:
            self.colour(f"{where}.colour", table["colour"])
        return Layer(name, depth, str(table.get("colour", "#808080")), self.text(where, table, "description"))

    def structure(self, index: int, table: dict[str, Any], layers: Mapping[str, Layer]) -> Structure | None:
        where = f"structures[{index}]"
        problems_before = len(self.problems)
        self.keys(where, table, _STRUCTURE_KEYS, _STRUCTURE_REQUIRED)
        text = {key: self.text(where, table, key, required=True) for key in sorted(_STRUCTURE_REQUIRED)}
        sid, side, kind, layer = text["id"], text["side"], text["kind"], text["layer"]
        self.identifier(f"{where}.id", sid)
        if side and side not in SIDES:
            self.fail(f"{where}.side", f"unknown side {side!r} (known: {', '.join(SIDES)})")
        if kind and kind not in KINDS:
            self.fail(f"{where}.kind", f"unknown kind {kind!r} (known: {', '.join(KINDS)})")
        if layer and layer not in layers:
            self.fail(f"{where}.layer", f"unknown layer {layer!r} (known: {', '.join(layers) or 'none defined'})")
        if "colour" in table:
            self.colour(f"{where}.colour", table["colour"])
        levels = table.get("levels", [])
        if not isinstance(levels, list) or any(level not in VERTEBRAE for level in levels):
            self.fail(f"{where}.levels", f"{levels!r} is not a list of vertebrae (C1-C7, T1-T12, L1-L5, S1)")
            levels = []
        teaching = self.teaching(f"{where}.teaching", table.get("teaching", {}))
        mesh_text = text["mesh"]
        mesh = self.inside(f"{where}.mesh", mesh_text, must_exist=False) if mesh_text else None
        if len(self.problems) > problems_before or mesh is None:
            return None
        default_colour = layers[layer].colour
        return Structure(
            id=sid, name=text["name"], muscle=text["muscle"],
            group=text["group"], side=side, kind=kind, layer=layer,
            colour=str(table.get("colour", default_colour)), mesh=mesh, levels=tuple(levels), teaching=teaching,
        )

    def teaching(self, where: str, table: Any) -> Teaching:
        table = self.table(where, table)
        self.keys(where, table, set(_TEACHING_KEYS), set())
        return Teaching(**{key: self.text(where, table, key) for key in _TEACHING_KEYS})

    def spine(self, entries: list[dict[str, Any]]) -> dict[str, np.ndarray]:
        centres: dict[str, np.ndarray] = {}
        for index, table in enumerate(entries):
            where = f"spine[{index}]"
            self.keys(where, table, _SPINE_KEYS, _SPINE_KEYS)
            name = table.get("name")
            if name not in VERTEBRAE:
                self.fail(f"{where}.name", f"unknown vertebra {name!r} (known: C1-C7, T1-T12, L1-L5, S1)")
                continue
            centre = table.get("centre")
            try:
                point = np.asarray(centre, dtype=float)
            except (TypeError, ValueError):
                point = np.array([np.nan])
            if point.shape != (3,) or not np.isfinite(point).all():
                self.fail(f"{where}.centre", f"{centre!r} is not three finite numbers [x, y, z] in mm")
                continue
            centres[name] = point
        return centres

    def inside(self, where: str, relative: str, *, must_exist: bool) -> Path | None:
        if "\x00" in relative:
            self.fail(where, f"{relative!r} contains a NUL character, which no file name can hold")
            return None
        try:
            path = (self.root / relative).resolve()
        except (OSError, RuntimeError, ValueError) as exc:  # e.g. a loop of symbolic links
            self.fail(where, f"{relative!r} cannot be resolved ({exc})")
            return None
        if not path.is_relative_to(self.root):
            self.fail(where, f"{relative!r} points outside the atlas folder (paths must stay inside it)")
            return None
        if must_exist and not path.is_file():
            self.fail(where, f"{relative!r} does not exist in the atlas folder")
            return None
        return path

    def geometry(self, structures: list[Structure | None], meshes: Mapping[str, MeshData],
                 spine: Mapping[str, np.ndarray]) -> None:
        """Cheap checks of what the numbers depend on: mm sizes, closed muscles, level data, landmarks."""
        lows = np.array([m.vertices.min(axis=0) for m in meshes.values()])
        highs = np.array([m.vertices.max(axis=0) for m in meshes.values()])
        extent = float(np.max(highs.max(axis=0) - lows.min(axis=0))) if len(lows) else 0.0
        if len(lows) and not MIN_EXTENT_MM <= extent <= MAX_EXTENT_MM:
            self.fail("atlas.units", f"the meshes span {extent:.3g} mm, but with units = \"mm\" a body spans "
                                     f"{MIN_EXTENT_MM:g} mm to {MAX_EXTENT_MM / 1000:g} m (are they in metres?)")
            return
        for index, structure in enumerate(structures):
            if structure is None:
                continue
            where, mesh = f"structures[{index}].mesh", meshes[structure.id]
            relative = structure.mesh.relative_to(self.root).as_posix()
            self.vertex_data(where, relative, mesh)
            if structure.kind != "muscle":
                continue  # bones may be open; muscles are measured, so they must be closed solids
            size = np.ptp(mesh.vertices, axis=0)
            open_count = _cached_open_edges(self.cache, mesh)
            if open_count:
                self.fail(where, f"{relative!r} is not a closed surface ({open_count} edges are not shared by "
                                 "exactly two triangles): a muscle must be a closed solid so that its "
                                 "cross-sections and volume can be measured")
            elif float(size.max()) < MIN_MUSCLE_MM or float(size.min()) < MIN_THICKNESS_MM:
                self.fail(where, f"{relative!r} is {' x '.join(f'{v:.3g}' for v in size)} mm: too small or flat "
                                 "for a muscle (are its coordinates in metres?)")
        self.landmarks(spine)

    def vertex_data(self, where: str, relative: str, mesh: MeshData) -> None:
        """Per-vertex ``segment`` (level coordinate) and ``side`` (0, 1, 2) data must hold sensible values."""
        if "segment" in mesh.point_data:
            levels = np.asarray(mesh.point_data["segment"], dtype=float)
            if not np.isfinite(levels).all() or levels.min() < -1.0 or levels.max() > len(VERTEBRAE):
                self.fail(where, f"{relative!r} has per-vertex 'segment' data that are not all level coordinates "
                                 f"from 0 (C1) to {len(VERTEBRAE) - 1} (S1) (NaN, infinite or out of range)")
        if "side" in mesh.point_data:
            sides = np.asarray(mesh.point_data["side"], dtype=float)
            if not np.isin(sides, (0.0, 1.0, 2.0)).all():
                self.fail(where, f"{relative!r} has per-vertex 'side' data other than 0 (left), 1 (right) "
                                 "and 2 (midline)")

    def landmarks(self, spine: Mapping[str, np.ndarray]) -> None:
        """Vertebral body centres must be distinct points (disc planes are built between neighbours)."""
        names = [name for name in VERTEBRAE if name in spine]
        if len(names) < 2:
            return
        points = np.array([spine[name] for name in names])
        distances = np.linalg.norm(points[:, None, :] - points[None, :, :], axis=2)
        distances[np.diag_indices(len(names))] = np.inf
        first, second = np.unravel_index(int(np.argmin(distances)), distances.shape)
        if distances[first, second] < MIN_LANDMARK_SPACING_MM:
            a, b = sorted((names[first], names[second]), key=VERTEBRAE.index)
            self.fail("spine", f"the centres of {a} and {b} are {distances[first, second]:.3g} mm apart; "
                               f"vertebral body centres lie at least {MIN_LANDMARK_SPACING_MM:g} mm apart")

    def mesh(self, index: int, structure: Structure) -> MeshData | None:
        where = f"structures[{index}].mesh"
        relative = structure.mesh.relative_to(self.root).as_posix()
        if structure.mesh.suffix.lower() not in MESH_SUFFIXES:
            self.fail(where, f"{relative!r} has an unsupported type (allowed: {', '.join(MESH_SUFFIXES)})")
            return None
        problem = _not_a_file(structure.mesh)
        if problem:
            self.fail(where, f"{relative!r} {problem}")
            return None
        try:
            mesh = read_mesh(structure.mesh)
        except ValueError as exc:
            self.fail(where, f"{relative!r} {exc}")
            return None
        if len(mesh.vertices) == 0 or len(mesh.faces) == 0:
            self.fail(where, f"{relative!r} is empty (no triangles)")
            return None
        if not np.isfinite(mesh.vertices).all():
            self.fail(where, f"{relative!r} has non-finite vertex coordinates (NaN or infinity)")
            return None
        if mesh.faces.min() < 0 or mesh.faces.max() >= len(mesh.vertices):
            self.fail(where, f"{relative!r} has faces that refer to missing vertices")
            return None
        return mesh
