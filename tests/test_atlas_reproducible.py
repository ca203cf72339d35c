"""`dorsum atlas build` gives the shipped meshes/ byte for byte (issue #12 item 11).

A full rebuild takes minutes; the representative part rebuilt here is every bone (subdivision,
smoothing, the cervical split whose piece order once varied with the CPU) and the rotatores
(seeded surface sampling, voxel envelopes, distance fields, marching cubes, manifold3d
decimation, mirroring): the steps where the files differed between an AVX-512 and an AVX2 CPU.
"""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

from viewer.atlas import default_atlas_dir
from viewer.atlas_build import build

REBUILD = """
import sys
from pathlib import Path
from viewer.atlas_build import build, source
from viewer.atlas_build.landmark_muscles import build_rotatores

out = Path(sys.argv[1])
bones = source.load_bones()
for sid in sorted(bones):
    build.write_ply(bones[sid], out / "bones" / f"{sid}.ply")
rotatores = build.symmetric(build_rotatores(bones))
for sid in sorted(rotatores):
    build.write_ply(build.closed_for_any_reader(rotatores[sid]), out / "muscles" / f"{sid}.ply")
"""


def test_rebuilt_bones_and_rotatores_are_byte_identical(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", REBUILD, str(tmp_path)], env=build.pinned_environment(),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    shipped = default_atlas_dir()
    rebuilt = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.ply"))
    assert len(rebuilt) == 2 + sum(1 for _ in (shipped / "bones").glob("*.ply"))
    differ = [str(rel) for rel in rebuilt if (tmp_path / rel).read_bytes() != (shipped / rel).read_bytes()]
    assert not differ, f"rebuilt files differ from meshes/: {differ}"


def test_build_process_pins_the_numerical_code_paths() -> None:
    env = build.pinned_environment()
    assert env[build.PINNED_MARKER] == "1"
    assert env["OPENBLAS_NUM_THREADS"] == "1" and env["PYTHONHASHSEED"] == "0"
    if platform.machine().lower() in ("x86_64", "amd64"):
        assert env["NPY_ENABLE_CPU_FEATURES"] == "X86_V2" and env["OPENBLAS_CORETYPE"] == "Nehalem"


def test_provenance_records_the_build_environment() -> None:
    text = (default_atlas_dir() / "PROVENANCE.toml").read_text()
    for key, value in build.PINNED_ENVIRONMENT.items():
        assert f'{key} = "{value}"' in text
