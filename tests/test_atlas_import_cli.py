"""`dorsum atlas import` as a user runs it: recognising BodyParts3D files (OBJ header, file name, the
official FJ element tables, zips), installing safely, and one line with exit 2 for every mistake.

The geometry is made by ``viewer.atlas_import.build``; most tests here replace it with a small fake
that writes the fixture atlas, so that they test the plumbing. One test runs the real import of
``../shared/anatomy/bodyparts3d`` (never copied into the repository).
"""

from __future__ import annotations

import errno
import json
import shutil
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import trimesh
from fixture_atlas import make_atlas

from viewer.atlas import load_atlas
from viewer.atlas_import import install
from viewer.atlas_import.sources import find_sources, scan_sources
from viewer.atlases import atlases_dir
from viewer.cli import main
from viewer.errors import DorsumError

BP3D = Path(__file__).resolve().parents[1].parent / "shared" / "anatomy" / "bodyparts3d"
CREDIT = ("BodyParts3D, © The Database Center for Life Science licensed under CC Attribution-Share Alike "
          "2.1 Japan")
L4 = 13075  # fourth lumbar vertebra: required by the fake builder


@dataclass(frozen=True)
class FakeSummary:
    structures: int
    triangles: int
    missing_optional: tuple[str, ...]
    notes: tuple[str, ...]


class FakeBuilder:
    """Stands in for viewer.atlas_import.build: checks the files it is given, writes the fixture atlas."""

    def __init__(self, fail: BaseException | None = None):
        self.fail = fail
        self.files: dict[int, list[Path]] = {}

    @staticmethod
    def known_fma_ids() -> set[int]:
        return {L4, 9914, 22709, 22751, 22753, 22878}

    @staticmethod
    def missing_required(fma_ids: Iterable[int]) -> list[str]:
        return [] if L4 in set(fma_ids) else [f"FMA{L4} fourth lumbar vertebra"]

    def build_atlas_from_files(self, files: Mapping[int, Sequence[Path]], out: Path, *,
                               progress: Callable[[str, float], None] = lambda s, f: None) -> FakeSummary:
        self.files = {k: list(v) for k, v in files.items()}
        progress("reading meshes", 0.0)
        for paths in files.values():
            for path in paths:
                assert path.is_file(), path
                trimesh.load(path, force="mesh")
        progress("reading meshes", 1.0)
        make_atlas(out)
        (out / "atlas.toml").write_text((out / "atlas.toml").read_text().replace('name = "Fixture"',
                                                                                  'name = "Fake import"'))
        progress("writing the atlas", 0.5)
        if self.fail is not None:
            (out / "half-written.ply").write_bytes(b"ply\n")
            raise self.fail
        return FakeSummary(5, 1234, ("FMA22726 right splenius cervicis",), ())


@pytest.fixture
def fake(monkeypatch) -> FakeBuilder:
    builder = FakeBuilder()
    monkeypatch.setattr(install, "_builder", lambda: builder)
    return builder


def obj_text(fma: int | None = None, *, offset: float = 0.0) -> str:
    """A small closed OBJ (a box), with a BodyParts3D-style header when ``fma`` is given."""
    box = trimesh.creation.box(extents=(10, 10, 10))
    header = f"# Concept ID : FMA{fma}\n# English name : test\n" if fma else "# no header\n"
    lines = [f"v {x + offset:.3f} {y:.3f} {z:.3f}" for x, y, z in box.vertices]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in box.faces]
    return header + "\n".join(lines) + "\n"


def official_download(root: Path) -> Path:
    """A synthetic download in the official layout: FJ element files and an IS-A element table."""
    root.mkdir(parents=True)
    for index, element in enumerate(("FJ100", "FJ101", "FJ101M", "FJ200")):
        (root / f"{element}.obj").write_text(obj_text(offset=20.0 * index))
    (root / "isa_element_parts.txt").write_text(
        "concept id\tname\telement file id\n"
        f"FMA{L4}\tfourth lumbar vertebra\tFJ100\n"
        "FMA9914\tvertebra\tFJ100\nFMA9914\tvertebra\tFJ200\n"
        "FMA22751\tright longissimus thoracis\tFJ101\n"
        "FMA22753\tleft longissimus thoracis\tFJ101M\n"
        "FMA22709\tlongissimus thoracis\tFJ101\nFMA22709\tlongissimus thoracis\tFJ101M\n")
    return root


def leftovers() -> list[Path]:
    """Everything the import left in the user's data folder."""
    data = atlases_dir().parent
    return sorted(data.rglob("*")) if data.exists() else []


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("dorsum atlas: error: ")
    return err


# -- recognising files ---------------------------------------------------------------------------
def test_files_are_recognised_by_header_and_by_name(tmp_path):
    src = tmp_path / "src"
    (src / "deep" / "er").mkdir(parents=True)
    (src / "muscle.obj").write_text(obj_text(22878))                          # header only
    (src / "deep" / "FMA13075.obj").write_text(obj_text())                    # name only
    (src / "deep" / "er" / "FJ859_BP4191_FMA12519_Atlas.obj").write_text(obj_text())
    trimesh.creation.box().export(src / "deep" / "FMA7487.glb")
    trimesh.creation.box().export(src / "x_FMA7488_y.stl")
    trimesh.creation.box().export(src / "FMA7489.ply")
    (src / "FMA999.txt").write_text("not a mesh")
    files = find_sources([src], tmp_path / "work")
    assert sorted(files) == [7487, 7488, 7489, 12519, 13075, 22878]
    assert files[22878] == [src / "muscle.obj"]
    assert files[12519][0].name == "FJ859_BP4191_FMA12519_Atlas.obj"


def test_obj_is_preferred_when_a_concept_comes_twice(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "FMA13075.obj").write_text(obj_text())
    trimesh.creation.box().export(src / "FMA13075.glb")
    scan = scan_sources([src])
    assert [o.name for o in scan.assignment[13075]] == ["FMA13075.obj"]
    assert any("ignored" in note and "FMA13075.glb" in note for note in scan.notes)


def test_official_layout_maps_element_files_through_the_table(tmp_path):
    download = official_download(tmp_path / "bp3d")
    files = find_sources([download], tmp_path / "work")
    # Each FJ file goes to its most specific concept: the one drawn by the fewest element files.
    assert {k: [p.name for p in v] for k, v in files.items()} == {
        L4: ["FJ100.obj"], 9914: ["FJ200.obj"], 22751: ["FJ101.obj"], 22753: ["FJ101M.obj"]}
    # When the importer knows only the whole muscle, both sides' elements draw it.
    wanted = find_sources([download], tmp_path / "work2", wanted={L4, 22709})
    assert {k: [p.name for p in v] for k, v in wanted.items()} == {L4: ["FJ100.obj"],
                                                                   22709: ["FJ101.obj", "FJ101M.obj"]}


def test_official_layout_from_a_zip_and_the_real_data(tmp_path):
    download = official_download(tmp_path / "bp3d")
    # The element files come from the real data: two real vertebrae renamed as FJ files.
    shutil.copy(BP3D / "meshes" / "FMA13075.obj", download / "FJ100.obj")
    archive = tmp_path / "isa_BP3D_4.0_obj_99.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(download.iterdir()):
            zf.write(path, f"isa_BP3D_4.0_obj_99/{path.name}")
    work = tmp_path / "work"
    files = find_sources([archive], work)
    assert sorted(files) == [9914, L4, 22751, 22753]
    extracted = files[L4][0]
    assert extracted.is_relative_to(work) and extracted.read_bytes() == (BP3D / "meshes" / "FMA13075.obj").read_bytes()
    assert sorted(p.name for p in work.rglob("*.obj")) == ["FJ100.obj", "FJ101.obj", "FJ101M.obj", "FJ200.obj"]


def test_zip_slip_members_are_never_written_outside(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../../escaped_FMA13075.obj", obj_text())
        zf.writestr("/abs/FMA13076.obj", obj_text())
        zf.writestr("ok/FMA13077.obj", obj_text())
    work = tmp_path / "deep" / "work"
    scan = scan_sources([archive])
    assert scan.fma_ids == [13077]
    assert sum("leads outside" in note for note in scan.notes) == 2
    files = scan.materialise(work)
    assert files[13077][0] == (work / "zip0" / "ok" / "FMA13077.obj").resolve()
    written = sorted(p.name for p in tmp_path.rglob("*.obj"))
    assert written == ["FMA13077.obj"]


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 this is not really a zip", b"<html>404</html>"])
def test_a_zip_that_is_not_a_zip_is_one_line(tmp_path, fake, capsys, content):
    bad = tmp_path / "isa_BP3D_4.0_obj_99.zip"
    bad.write_bytes(content)
    assert main(["atlas", "import", str(bad)]) == 2
    err = one_error_line(capsys)
    assert f"{bad}: not a zip archive" in err
    assert leftovers() == []


# -- errors: one line, exit 2, nothing left behind ---------------------------------------------
def test_a_folder_without_recognisable_files(tmp_path, fake, capsys):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "readme.txt").write_text("hello")
    assert main(["atlas", "import", str(tmp_path / "empty")]) == 2
    assert "no BodyParts3D mesh files found" in one_error_line(capsys)
    assert leftovers() == []


def test_fj_files_without_their_table(tmp_path, fake, capsys):
    download = official_download(tmp_path / "bp3d")
    (download / "isa_element_parts.txt").unlink()
    assert main(["atlas", "import", str(download)]) == 2
    assert "found 4 FJ element files but no element table" in one_error_line(capsys)
    assert leftovers() == []


def test_a_source_that_does_not_exist_or_cannot_be_read(tmp_path, fake, capsys, monkeypatch):
    assert main(["atlas", "import", str(tmp_path / "nowhere")]) == 2
    assert f"{tmp_path / 'nowhere'}: no such file or folder" in one_error_line(capsys)
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "FMA13075.obj").write_text(obj_text())
    real_open = Path.open

    def refuse(self, *args, **kwargs):  # the tests run as root, who reads everything: simulate it
        if self.name == "FMA13075.obj":
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", refuse)
    assert main(["atlas", "import", str(locked)]) == 2
    assert f"{locked / 'FMA13075.obj'}: cannot read it (Permission denied)" in one_error_line(capsys)
    assert leftovers() == []


def test_a_required_structure_missing(tmp_path, fake, capsys):
    src = tmp_path / "src"
    src.mkdir()
    (src / "FMA22878.obj").write_text(obj_text())
    assert main(["atlas", "import", str(src)]) == 2
    assert "the sources lack 1 required structure(s): FMA13075 fourth lumbar vertebra" in one_error_line(capsys)
    assert leftovers() == []


@pytest.mark.parametrize("name, content, problem", [
    ("FMA22878.obj", b"", "empty mesh file"),
    ("FMA22878.obj", b"# Concept ID : FMA22878\n\x00\x01garbage" * 10, "corrupt mesh file (no vertices)"),
    ("FMA22878.glb", b"glTF\x02\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 20, "corrupt mesh file (GLB header"),
])
def test_an_empty_or_corrupt_mesh_is_named(tmp_path, fake, capsys, name, content, problem):
    src = tmp_path / "src"
    src.mkdir()
    (src / "FMA13075.obj").write_text(obj_text())
    (src / name).write_bytes(content)
    assert main(["atlas", "import", str(src)]) == 2
    err = one_error_line(capsys)
    assert f"{src / name}: {problem}" in err
    assert leftovers() == []


def test_no_room_on_the_disk_is_found_before_the_work(tmp_path, fake, capsys, monkeypatch):
    src = tmp_path / "src"
    src.mkdir()
    (src / "FMA13075.obj").write_text(obj_text())
    monkeypatch.setattr(shutil, "disk_usage", lambda _p: SimpleNamespace(total=10**9, used=10**9, free=1000))
    assert main(["atlas", "import", str(src)]) == 2
    assert "not enough room on the disk" in one_error_line(capsys)
    assert fake.files == {}  # the long work never started
    assert leftovers() == []


@pytest.mark.parametrize("failure, code, text", [
    (OSError(errno.ENOSPC, "No space left on device"), 2, "no room left on the disk"),
    (DorsumError("FMA13075.obj: mesh has no triangles"), 2, "FMA13075.obj: mesh has no triangles"),
    (KeyboardInterrupt(), 130, "interrupted"),
])
def test_failures_during_the_build_leave_nothing_behind(tmp_path, fake, capsys, failure, code, text):
    src = tmp_path / "src"
    src.mkdir()
    (src / "FMA13075.obj").write_text(obj_text())
    fake.fail = failure
    assert main(["atlas", "import", str(src), "--name", "bp"]) == code
    assert text in capsys.readouterr().err.splitlines()[-1]
    assert leftovers() == []


def test_failure_during_overwrite_keeps_the_old_atlas(tmp_path, fake, capsys):
    src = tmp_path / "src"
    src.mkdir()
    (src / "FMA13075.obj").write_text(obj_text())
    assert main(["atlas", "import", str(src), "--name", "bp"]) == 0
    before = (atlases_dir() / "bp" / "atlas.toml").read_bytes()
    fake.fail = OSError(errno.ENOSPC, "No space left on device")
    assert main(["atlas", "import", str(src), "--name", "bp", "--overwrite"]) == 2
    assert (atlases_dir() / "bp" / "atlas.toml").read_bytes() == before
    assert [p.name for p in atlases_dir().iterdir()] == ["bp"]


@pytest.mark.parametrize("name", ["../escape", "builtin", "a/b", ""])
def test_bad_names_are_refused(tmp_path, fake, capsys, name):
    download = official_download(tmp_path / "bp3d")
    assert main(["atlas", "import", str(download), "--name", name]) == 2
    one_error_line(capsys)
    assert leftovers() == []


# -- a successful import -------------------------------------------------------------------------
def test_import_installs_lists_and_keeps_an_existing_atlas(tmp_path, fake, capsys):
    download = official_download(tmp_path / "bp3d")
    assert main(["atlas", "import", str(download), "--name", "bp"]) == 0
    captured = capsys.readouterr()
    target = atlases_dir() / "bp"
    assert f"imported atlas 'bp' into {target}" in captured.out
    assert "5 structures, 1234 triangles" in captured.out
    assert "FMA22726 right splenius cervicis" in captured.out
    # Not a terminal: stage lines only, no bar.
    assert "dorsum atlas import: reading meshes" in captured.err and "━" not in captured.err
    assert sorted(fake.files) == [9914, L4, 22751, 22753]
    assert load_atlas(target).name == "Fake import"
    assert [p.name for p in atlases_dir().iterdir()] == ["bp"]  # no temporary folder left

    # An existing atlas is kept without --overwrite, checked before any work.
    stamp = (target / "atlas.toml").stat().st_mtime_ns
    fake.files = {}
    assert main(["atlas", "import", str(download), "--name", "bp"]) == 2
    assert "an atlas named 'bp' exists" in one_error_line(capsys)
    assert fake.files == {} and (target / "atlas.toml").stat().st_mtime_ns == stamp
    assert main(["atlas", "import", str(download), "--name", "bp", "--overwrite"]) == 0
    assert fake.files and (target / "atlas.toml").stat().st_mtime_ns != stamp
    capsys.readouterr()

    assert main(["atlas", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(a["name"], a["default"]) for a in listed["atlases"]] == [("builtin", True), ("bp", False)]
    assert main(["atlas", "use", "bp"]) == 0
    assert main(["info", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.split("\n", 1)[1])["atlas"]["name"] == "Fake import"


def test_import_from_several_sources(tmp_path, fake, capsys):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    (first / "FMA13075.obj").write_text(obj_text())
    archive = second / "more.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("x/FMA22878.obj", obj_text())
    assert main(["atlas", "import", str(first), str(archive)]) == 0
    assert sorted(fake.files) == [L4, 22878]
    assert (atlases_dir() / "bodyparts3d" / "atlas.toml").is_file()
    assert [p.name for p in atlases_dir().iterdir()] == ["bodyparts3d"]


# -- the real thing --------------------------------------------------------------------------
def test_the_real_data_in_the_official_layout_gives_the_builder_the_same_files(tmp_path):
    """The shared subset repackaged as the official download (a zip of FJ element files without
    headers, and the element table) maps to the same concepts and bytes as the FMA-named files."""
    build = install._builder()
    direct = find_sources([BP3D], tmp_path / "direct")
    archive = tmp_path / "isa_BP3D_4.0_obj_99.zip"
    rows = ["concept id\tname\telement file id"]
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        for fma, (path,) in direct.items():
            element = f"FJ{fma}"
            data = path.read_bytes()
            if path.suffix == ".obj":
                data = b"".join(line for line in data.splitlines(keepends=True) if not line.startswith(b"#"))
            zf.writestr(f"isa_BP3D_4.0_obj_99/{element}{path.suffix}", data)
            rows.append(f"FMA{fma}\tconcept {fma}\t{element}")
            rows.append(f"FMA62955\tanatomical entity\t{element}")  # every element is also in the root
        zf.writestr("isa_BP3D_4.0_obj_99/isa_element_parts.txt", "\n".join(rows) + "\n")
    official = find_sources([archive], tmp_path / "official", wanted=install._wanted_ids(build))
    assert sorted(official) == sorted(direct) and build.missing_required(official) == []
    for fma, (path,) in official.items():
        original = direct[fma][0]
        assert path.name == f"FJ{fma}{original.suffix}"
        assert path.read_bytes() == (original.read_bytes() if original.suffix != ".obj" else b"".join(
            line for line in original.read_bytes().splitlines(keepends=True) if not line.startswith(b"#")))



def test_real_import_of_the_shared_bodyparts3d_subset(capsys, tmp_path):
    """`dorsum atlas import ../shared/anatomy/bodyparts3d --name bp`, with the real builder."""
    assert main(["atlas", "import", str(BP3D), "--name", "bp"]) == 0
    out = capsys.readouterr().out
    target = atlases_dir() / "bp"
    assert f"imported atlas 'bp' into {target}" in out
    atlas = load_atlas(target)
    import re

    structures, triangles = map(int, re.search(r"(\d+) structures, (\d+) triangles", out).groups())
    assert structures == len(atlas.structures)
    assert triangles == sum(mesh.n_triangles for mesh in atlas.meshes.values()) <= 1_000_000
    assert any(CREDIT in source.attribution for source in atlas.sources)
    ids = set(atlas.structure_ids)
    assert {"vertebra_l4", "sacrum", "multifidus_right", "multifidus_left"} <= ids
    assert [p.name for p in atlases_dir().iterdir()] == ["bp"]
    shot = tmp_path / "bp.png"
    assert main(["shot", "--atlas", "bp", "--only", "longissimus_left", "skeleton", "--out", str(shot),
                 "--size", "400x300"]) == 0
    from PIL import Image

    with Image.open(shot) as image:
        assert CREDIT in image.text.get("Copyright", "")
        pixels = np.asarray(image.convert("RGB"))
    assert (pixels.min(axis=2) < 200).mean() > 0.02  # something drawn


def test_the_temporary_folder_of_a_killed_import_is_removed_by_the_next(tmp_path, fake, capsys):
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    stale = atlases_dir() / f"{install.STAGING_PREFIX}{dead}-abc123"
    (stale / "atlas").mkdir(parents=True)
    (stale / "atlas" / "big.ply").write_bytes(b"x" * 1000)
    src = tmp_path / "src"
    src.mkdir()
    (src / "FMA13075.obj").write_text(obj_text())
    assert main(["atlas", "import", str(src), str(src), "--name", "bp"]) == 0  # the same source twice
    assert [p.name for p in atlases_dir().iterdir()] == ["bp"]
    assert sorted(fake.files) == [L4] and len(fake.files[L4]) == 1
    assert "ignored" not in capsys.readouterr().out


def test_sigterm_during_the_build_unwinds_and_leaves_nothing(tmp_path, monkeypatch, capsys):
    import os
    import signal

    class Terminated(FakeBuilder):
        def build_atlas_from_files(self, files, out, *, progress=lambda s, f: None):
            make_atlas(out)
            os.kill(os.getpid(), signal.SIGTERM)  # as `kill PID` from another terminal
            raise AssertionError("SIGTERM did not stop the import")

    monkeypatch.setattr(install, "_builder", Terminated)
    src = tmp_path / "src"
    src.mkdir()
    (src / "FMA13075.obj").write_text(obj_text())
    handler = signal.getsignal(signal.SIGTERM)
    assert main(["atlas", "import", str(src)]) == 130
    assert signal.getsignal(signal.SIGTERM) is handler  # restored afterwards
    assert "interrupted" in capsys.readouterr().err
    assert leftovers() == []


def test_a_broken_zip_inside_a_source_folder_is_only_a_note(tmp_path, fake, capsys):
    src = tmp_path / "Downloads"
    src.mkdir()
    (src / "FMA13075.obj").write_text(obj_text())
    (src / "holiday.zip").write_bytes(b"not a zip")
    assert main(["atlas", "import", str(src)]) == 0
    assert f"note: {src / 'holiday.zip'}: ignored (not a zip archive" in capsys.readouterr().out
