"""Finding the BodyParts3D mesh files in what a user downloaded: folders and zip archives.

A SOURCE is a folder or a ``.zip``, searched recursively (zips found inside a folder are opened
too). A mesh file (OBJ, GLB/glTF, STL, PLY) is recognised by the FMA id of the concept it draws:

1. the OBJ header, ``# Concept ID : FMA22878``;
2. the file name, ``FMA22878.obj`` or ``FJ859_BP4191_FMA12519_Atlas.obj``;
3. for the official download, whose element files are named ``FJ<n>.obj`` (``FJ<n>M`` for the
   mirrored left side), the tables shipped with it (``isa_element_parts.txt``,
   ``partof_element_parts.txt``: ``concept id<TAB>name<TAB>element file id``). One concept is drawn by
   several element files and one element file belongs to many concepts (``right longissimus
   thoracis``, ``longissimus thoracis``, ``back muscle``...); an element file is given to the most
   specific concept (fewest element files) among those the importer asks for.

:func:`scan_sources` only reads (OBJ headers, tables, zip directories), so every error a user can
cause is found before anything is written; :meth:`SourceScan.materialise` then extracts the zip
members that are used into a temporary folder (never outside it). :func:`find_sources` does both.
"""

from __future__ import annotations

import os
import re
import shutil
import zipfile
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from viewer.errors import DorsumError

MESH_SUFFIXES = (".obj", ".glb", ".gltf", ".stl", ".ply")
#: When one concept is given as several direct files (e.g. an OBJ and a GLB), the first kind here
#: wins: the OBJs carry BodyParts3D's own header and the right scale for every bone.
SUFFIX_PREFERENCE = {suffix: rank for rank, suffix in enumerate(MESH_SUFFIXES)}
TABLE_NAME = re.compile(r"(^|_)element_parts\.txt$", re.IGNORECASE)
HEADER_BYTES = 4096

_HEADER_CONCEPT = re.compile(rb"^#\s*Concept ID\s*:\s*FMA(\d+)", re.IGNORECASE | re.MULTILINE)
_NAME_CONCEPT = re.compile(r"(?:^|[^A-Za-z0-9])FMA(\d+)(?![0-9])", re.IGNORECASE)
_NAME_ELEMENT = re.compile(r"^(FJ\d+M?)(?:$|[^A-Za-z0-9])", re.IGNORECASE)


@dataclass(frozen=True)
class Origin:
    """Where a file is: a path on disk, or a member of a zip archive (``member`` set)."""

    path: Path
    member: str | None = None

    def __str__(self) -> str:
        return f"{self.path}:{self.member}" if self.member is not None else str(self.path)

    @property
    def name(self) -> str:
        return PurePosixPath(self.member).name if self.member is not None else self.path.name


@dataclass(frozen=True)
class Candidate:
    """A mesh file and what identifies it (any of the three may be missing)."""

    origin: Origin
    size: int
    header_concept: int | None
    name_concept: int | None
    element: str | None


@dataclass
class SourceScan:
    """What the sources hold, before anything is extracted.

    Attributes
    ----------
    assignment : concept FMA id -> the files that draw it (zip members not yet extracted).
    names : concept FMA id -> its English name from the element tables (where known).
    notes : things the user may want to know (ignored duplicates, unsafe zip members...).
    """

    assignment: dict[int, list[Origin]] = field(default_factory=dict)
    names: dict[int, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    sizes: dict[Origin, int] = field(default_factory=dict)

    @property
    def fma_ids(self) -> list[int]:
        return sorted(self.assignment)

    def used_origins(self) -> list[Origin]:
        return sorted({o for origins in self.assignment.values() for o in origins}, key=str)

    @property
    def input_bytes(self) -> int:
        """Bytes of every file used (uncompressed)."""
        return sum(self.sizes[o] for o in self.used_origins())

    @property
    def extract_bytes(self) -> int:
        """Bytes that :meth:`materialise` writes (the zip members used)."""
        return sum(self.sizes[o] for o in self.used_origins() if o.member is not None)

    def check_meshes(self) -> None:
        """Refuse an empty or obviously corrupt mesh file now, before anything is written.

        A cheap look at each file's structure (OBJ vertex and face lines, the GLB header, PLY and
        STL headers); the builder, which parses every file, remains the final judge.
        """
        by_archive: dict[Path, list[Origin]] = {}
        for origin in self.used_origins():
            if origin.member is None:
                _check_mesh_bytes(origin, _read_file(origin.path))
            else:
                by_archive.setdefault(origin.path, []).append(origin)
        for archive, members in by_archive.items():
            with zipfile.ZipFile(archive) as zf:
                for origin in members:
                    try:
                        data = zf.read(origin.member)
                    except (zipfile.BadZipFile, OSError, EOFError) as exc:
                        raise DorsumError(f"{origin}: damaged member of the archive ({exc})") from None
                    _check_mesh_bytes(origin, data)

    def materialise(self, workdir: Path) -> dict[int, list[Path]]:
        """Extract the zip members used into ``workdir`` and return concept -> files on disk.

        Members keep their path inside the archive below ``workdir/zip<n>``; a name that would
        land outside that folder was refused when the archive was scanned.
        """
        archives = {o.path for o in self.used_origins() if o.member is not None}
        folders = {archive: workdir / f"zip{i}" for i, archive in enumerate(sorted(archives))}
        local: dict[Origin, Path] = {}
        for archive in sorted(archives):
            members = [o for o in self.used_origins() if o.path == archive and o.member is not None]
            local.update(_extract(archive, members, folders[archive]))
        return {fma: [local.get(o, o.path) for o in origins] for fma, origins in sorted(self.assignment.items())}


def find_sources(sources: Sequence[str | Path], workdir: Path,
                 wanted: Collection[int] | None = None) -> dict[int, list[Path]]:
    """The mesh files of ``sources`` by concept FMA id, zip members extracted into ``workdir``.

    Parameters
    ----------
    sources : folders, zip files or single mesh files
    workdir : an empty temporary folder for extracted zip members (the caller removes it)
    wanted : the concept ids the importer knows; element files are given to the most specific of
        these (None: to the most specific concept of the tables)

    Raises
    ------
    DorsumError
        A source is missing or unreadable, a ``.zip`` is not a zip archive, or nothing is recognised.
    """
    return scan_sources(sources, wanted).materialise(workdir)


def scan_sources(sources: Sequence[str | Path], wanted: Collection[int] | None = None) -> SourceScan:
    """Recognise the mesh files of ``sources`` without writing anything (see :func:`find_sources`)."""
    if not sources:
        raise DorsumError("give at least one SOURCE: a folder or .zip of a BodyParts3D download")
    scan = SourceScan()
    candidates: dict[tuple[str, str | None], Candidate] = {}
    tables: dict[int, set[str]] = {}
    for source in sources:
        for item in _walk_source(Path(source), scan.notes):
            if isinstance(item, Candidate):
                # The same file reached twice (a source given twice, or inside another) counts once.
                candidates.setdefault((str(item.origin.path.resolve()), item.origin.member), item)
            else:
                _read_table(item, tables, scan.names)
    for candidate in candidates.values():
        scan.sizes[candidate.origin] = candidate.size
    scan.assignment = _assign(list(candidates.values()), tables, wanted, scan.notes)
    if not scan.assignment:
        raise DorsumError(_nothing_recognised(sources, list(candidates.values()), tables))
    return scan


# -- walking folders and zips ------------------------------------------------------------------
def _walk_source(source: Path, notes: list[str]) -> Iterator[Candidate | tuple[Origin, bytes]]:
    """Mesh candidates and element tables (origin, raw text) of one SOURCE."""
    try:
        if not source.exists():
            raise DorsumError(f"{source}: no such file or folder")
        if source.is_dir():
            yield from _walk_folder(source, notes)
        elif source.suffix.lower() == ".zip":
            yield from _walk_zip(source, notes)
        elif source.suffix.lower() in MESH_SUFFIXES:
            yield _candidate_from_file(source)
        elif TABLE_NAME.search(source.name):
            yield Origin(source), source.read_bytes()
        else:
            raise DorsumError(f"{source}: not a folder or a .zip (give the folder or the .zip of a BodyParts3D "
                              "download)")
    except OSError as exc:
        where = exc.filename or source
        raise DorsumError(f"{where}: cannot read it ({exc.strerror or exc})") from None


def _walk_folder(folder: Path, notes: list[str]) -> Iterator[Candidate | tuple[Origin, bytes]]:
    def raise_error(exc: OSError) -> None:
        raise exc

    for root, dirs, files in os.walk(folder, onerror=raise_error):
        dirs.sort()
        for name in sorted(files):
            path = Path(root) / name
            suffix = path.suffix.lower()
            if suffix in MESH_SUFFIXES:
                yield _candidate_from_file(path)
            elif suffix == ".zip":
                yield from _walk_zip(path, notes, nested=True)
            elif TABLE_NAME.search(name):
                yield Origin(path), path.read_bytes()


def _candidate_from_file(path: Path) -> Candidate:
    with path.open("rb") as handle:
        head = handle.read(HEADER_BYTES) if path.suffix.lower() == ".obj" else b""
    return _candidate(Origin(path), path.stat().st_size, head)


def _walk_zip(archive: Path, notes: list[str], nested: bool = False) -> Iterator[Candidate | tuple[Origin, bytes]]:
    """Candidates and tables in ``archive``; a damaged archive is an error when the user named it,
    and a note when it was merely found inside a folder (a Downloads folder holds all sorts)."""
    if nested and not zipfile.is_zipfile(archive):
        notes.append(f"{archive}: ignored (not a zip archive, or a damaged one)")
        return
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = [info for info in zf.infolist() if not info.is_dir()]
            for info in sorted(infos, key=lambda i: i.filename):
                name = PurePosixPath(info.filename).name
                suffix = PurePosixPath(name).suffix.lower()
                if suffix not in MESH_SUFFIXES and not TABLE_NAME.search(name):
                    continue
                if _unsafe_member(info.filename):
                    notes.append(f"{archive}: ignored {info.filename!r} (its path leads outside the archive's folder)")
                    continue
                origin = Origin(archive, info.filename)
                if suffix in MESH_SUFFIXES:
                    with zf.open(info) as handle:
                        head = handle.read(HEADER_BYTES) if suffix == ".obj" else b""
                    yield _candidate(origin, info.file_size, head)
                else:
                    yield origin, zf.read(info)
    except zipfile.BadZipFile as exc:
        raise DorsumError(f"{archive}: not a zip archive, or a damaged one ({exc}); download it again") from None
    except (zipfile.LargeZipFile, NotImplementedError, RuntimeError) as exc:
        # Encrypted members, unknown compression methods.
        raise DorsumError(f"{archive}: cannot read this zip archive ({exc})") from None


def _unsafe_member(name: str) -> bool:
    """True for a member name that would be written outside the extraction folder (zip-slip)."""
    path = PurePosixPath(name.replace("\\", "/"))
    return (path.is_absolute() or ".." in path.parts or (len(name) > 1 and name[1] == ":")
            or any(part.startswith("/") for part in path.parts[1:]))


def _candidate(origin: Origin, size: int, head: bytes) -> Candidate:
    # The element id comes from the file name only: the "File ID" in an OBJ header may belong to
    # another release of BodyParts3D than the tables.
    concept = _HEADER_CONCEPT.search(head)
    stem = PurePosixPath(origin.name).stem
    name_concept = _NAME_CONCEPT.search(stem)
    element = _NAME_ELEMENT.match(stem)
    return Candidate(origin, size, int(concept.group(1)) if concept else None,
                     int(name_concept.group(1)) if name_concept else None,
                     element.group(1).upper() if element else None)


def _read_table(item: tuple[Origin, bytes], tables: dict[int, set[str]], names: dict[int, str]) -> None:
    """Add the rows ``FMA<id><TAB>name<TAB>FJ<n>`` of an element table."""
    origin, raw = item
    text = raw.decode("utf-8", errors="replace")
    for line in text.splitlines():
        columns = line.rstrip("\r").split("\t")
        if len(columns) < 3 or not columns[0].upper().startswith("FMA") or not columns[0][3:].isdigit():
            continue  # the header row, blank lines
        fma = int(columns[0][3:])
        element = columns[2].strip().upper()
        if not re.fullmatch(r"FJ\d+M?", element):
            continue
        tables.setdefault(fma, set()).add(element)
        names.setdefault(fma, columns[1].strip())


# -- assigning files to concepts ---------------------------------------------------------------
def _assign(candidates: list[Candidate], tables: dict[int, set[str]], wanted: Collection[int] | None,
            notes: list[str]) -> dict[int, list[Origin]]:
    """Concept -> files: direct (header, name) first, then element files through the tables."""
    wanted_set = set(wanted) if wanted is not None else None
    direct: dict[int, list[Candidate]] = {}
    by_element: dict[str, list[Candidate]] = {}
    for candidate in candidates:
        concept = candidate.header_concept or candidate.name_concept
        if concept is not None:
            direct.setdefault(concept, []).append(candidate)
        elif candidate.element is not None:
            by_element.setdefault(candidate.element, []).append(candidate)
    assignment: dict[int, list[Origin]] = {}
    for concept, found in direct.items():
        found.sort(key=_preference)
        assignment[concept] = [found[0].origin]
        if len(found) > 1:
            notes.append(f"FMA{concept}: used {found[0].origin.name}, ignored "
                         + ", ".join(str(c.origin) for c in found[1:]))
    owners = _element_owners(tables, wanted_set)
    for element, found in sorted(by_element.items()):
        first = min(found, key=_preference)
        for concept in owners.get(element, ()):
            if concept not in direct:
                assignment.setdefault(concept, []).append(first.origin)
    return {concept: sorted(origins, key=str) for concept, origins in sorted(assignment.items())}


def _preference(candidate: Candidate) -> tuple[int, str]:
    """Sort key: the preferred file type first, then the path (deterministic)."""
    return SUFFIX_PREFERENCE[PurePosixPath(candidate.origin.name).suffix.lower()], str(candidate.origin)


def _element_owners(tables: dict[int, set[str]], wanted: set[int] | None) -> dict[str, list[int]]:
    """Element file id -> the most specific concepts (fewest element files) that include it."""
    best: dict[str, tuple[int, list[int]]] = {}
    for concept, elements in tables.items():
        if wanted is not None and concept not in wanted:
            continue
        size = len(elements)
        for element in elements:
            current = best.get(element)
            if current is None or size < current[0]:
                best[element] = (size, [concept])
            elif size == current[0]:
                current[1].append(concept)
    return {element: sorted(concepts) for element, (_, concepts) in best.items()}


def _nothing_recognised(sources: Sequence[str | Path], candidates: list[Candidate],
                        tables: dict[int, set[str]]) -> str:
    where = ", ".join(str(s) for s in sources)
    elements = [c for c in candidates if c.element is not None]
    if elements and not tables:
        return (f"{where}: found {len(elements)} FJ element files but no element table (isa_element_parts.txt "
                "or partof_element_parts.txt) to tell what they are; give the folder or zip that holds it too")
    if candidates:
        return (f"{where}: none of the {len(candidates)} mesh files is a structure the importer knows "
                "(recognised by the FMA id in the OBJ header or file name, or FJ files listed in the element tables)")
    return (f"{where}: no BodyParts3D mesh files found (OBJ, GLB/glTF, STL or PLY, named by FMA id "
            "or FJ element id); give the folder or .zip of a BodyParts3D download")


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DorsumError(f"{path}: cannot read it ({exc.strerror or exc})") from None


def _check_mesh_bytes(origin: Origin, data: bytes) -> None:
    """Raise naming ``origin`` when ``data`` is empty or not a mesh of its file type."""
    suffix = PurePosixPath(origin.name).suffix.lower()
    if not data.strip():
        raise DorsumError(f"{origin}: empty mesh file (0 triangles); download it again or remove it")
    problem = _mesh_problem(suffix, data)
    if problem:
        raise DorsumError(f"{origin}: corrupt mesh file ({problem}); download it again or remove it")


def _mesh_problem(suffix: str, data: bytes) -> str | None:
    if suffix == ".obj":
        if not re.search(rb"(?m)^\s*v\s+[-+.\d]", data):
            return "no vertices"
        if not re.search(rb"(?m)^\s*f\s+\d", data):
            return "no faces"
        return None
    if suffix == ".glb":
        if len(data) < 20 or data[:4] != b"glTF":
            return "not a GLB file"
        version, length = int.from_bytes(data[4:8], "little"), int.from_bytes(data[8:12], "little")
        if version != 2 or length > len(data):
            return f"GLB header says version {version}, {length} bytes; the file has {len(data)}"
        return None
    if suffix == ".gltf":
        return None if data.lstrip()[:1] == b"{" and b'"meshes"' in data else "not a glTF file with meshes"
    if suffix == ".ply":
        head = data[:4096]
        if not head.startswith(b"ply") or b"end_header" not in head:
            return "not a PLY file"
        faces = re.search(rb"element face (\d+)", head)
        return None if faces and int(faces.group(1)) > 0 else "no faces"
    if suffix == ".stl":
        if data.lstrip()[:5].lower() == b"solid" and b"facet" in data[:65536]:
            return None
        count = int.from_bytes(data[80:84], "little") if len(data) >= 84 else 0
        return None if count > 0 and len(data) >= 84 + 50 * count else "not an STL file with triangles"
    return None


def _extract(archive: Path, members: list[Origin], folder: Path) -> dict[Origin, Path]:
    """Extract ``members`` of ``archive`` below ``folder``; returns where each went."""
    base = folder.resolve()
    placed: dict[Origin, Path] = {}
    with zipfile.ZipFile(archive) as zf:
        for origin in members:
            assert origin.member is not None
            target = (base / PurePosixPath(origin.member.replace("\\", "/"))).resolve()
            if not target.is_relative_to(base):  # checked when scanning; never write outside
                raise DorsumError(f"{archive}: member {origin.member!r} leads outside the extraction folder")
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(origin.member) as source, target.open("wb") as sink:
                shutil.copyfileobj(source, sink, 1 << 20)
            placed[origin] = target
    return placed
