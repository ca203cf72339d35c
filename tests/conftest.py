"""Shared fixtures: a small synthetic atlas, the shipped atlas, the imported BodyParts3D atlas, and
honest rendering."""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

import pytest

# Off-screen rendering without a display goes straight to EGL (llvmpipe on CI machines).
if sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
    os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")

sys.path.insert(0, str(Path(__file__).parent))

from fixture_atlas import make_atlas  # noqa: E402

from viewer.atlas import Atlas, default_atlas_dir, load_atlas  # noqa: E402


XVFB_MISSING = (
    "the GUI tests need Xvfb (a virtual X server) and no display is set: on Debian/Ubuntu run "
    "'sudo apt-get install xvfb xauth x11-apps libxcb-cursor0 libxkbcommon-x11-0 libegl1 libgl1-mesa-dri' "
    "(the full line is in README.md, section Set-up), or run on a desktop with a display"
)


def pytest_configure(config: pytest.Config) -> None:
    """Without Xvfb and without a display, Qt would abort the run (exit 134, no summary): say why instead."""
    if config.getoption("--no-xvfb", default=False) or os.environ.get("DISPLAY"):
        return
    if shutil.which("Xvfb") is None:
        raise pytest.UsageError(XVFB_MISSING)


@pytest.fixture(autouse=True)
def _user_folders(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own empty data, config and cache folders: no test reads or writes the real
    user's installed atlases, default-atlas setting or cached atlas arrays."""
    home = tmp_path_factory.mktemp("user")
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))
    return home


@pytest.fixture(scope="session")
def fixture_atlas_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder of the synthetic test atlas (read-only: copy it before breaking it)."""
    return make_atlas(tmp_path_factory.mktemp("fixture_atlas"))


@pytest.fixture(scope="session")
def fixture_atlas(fixture_atlas_dir: Path) -> Atlas:
    return load_atlas(fixture_atlas_dir)


@pytest.fixture(scope="session")
def real_atlas() -> Atlas:
    """The atlas shipped in meshes/ (loaded once per test session)."""
    return load_atlas(default_atlas_dir())


#: The BodyParts3D subset beside the repository (never inside it: the data may not be committed).
BODYPARTS3D_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "anatomy" / "bodyparts3d"


def bodyparts3d_files(folder: Path = BODYPARTS3D_DIR / "meshes") -> dict[int, list[Path]]:
    """FMA concept id -> mesh files of the shared subset (files are named ``FMA<id>.<ext>``)."""
    files: dict[int, list[Path]] = {}
    for path in sorted(folder.iterdir()):
        match = re.match(r"FMA(\d+)\.(obj|glb)$", path.name)
        if match:
            files.setdefault(int(match.group(1)), []).append(path)
    return files


@pytest.fixture(scope="session")
def bodyparts3d_atlas_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Atlas folder imported from the shared BodyParts3D subset, once per test session.

    ``DORSUM_TEST_BP3D_ATLAS=/path`` reuses a folder built earlier (for development; CI never
    sets it, so there the import itself runs and is tested).
    """
    prebuilt = os.environ.get("DORSUM_TEST_BP3D_ATLAS")
    if prebuilt:
        return Path(prebuilt)
    from viewer.atlas_import.build import build_atlas_from_files

    out = tmp_path_factory.mktemp("bodyparts3d") / "atlas"
    build_atlas_from_files(bodyparts3d_files(), out)
    return out


@pytest.fixture(scope="session")
def bodyparts3d_atlas(bodyparts3d_atlas_dir: Path) -> Atlas:
    return load_atlas(bodyparts3d_atlas_dir)


@pytest.fixture(autouse=True)
def _vtk_errors_fail_tests():
    """A VTK error message during a test fails it instead of scrolling by."""
    import vtk

    class _Collector(vtk.vtkOutputWindow):
        def __init__(self) -> None:
            super().__init__()
            self.errors: list[str] = []

        def DisplayErrorText(self, text: str) -> None:  # noqa: N802 (VTK API)
            self.errors.append(text)

    collector = _Collector()
    previous = vtk.vtkOutputWindow.GetInstance()
    vtk.vtkOutputWindow.SetInstance(collector)
    yield
    vtk.vtkOutputWindow.SetInstance(previous)
    assert not collector.errors, "VTK reported errors:\n" + "\n".join(collector.errors)
