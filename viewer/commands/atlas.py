"""``dorsum atlas build|check``: regenerate the atlas from myo-sim, and check a built atlas."""

from __future__ import annotations

import argparse
import importlib
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from viewer.atlas import default_atlas_dir, load_atlas
from viewer.errors import DorsumError
from viewer.output import check_output_folder


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("atlas", help="build or check the anatomical atlas")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True,
                                    parser_class=type(parser))
    build = actions.add_parser("build", help="regenerate the atlas from myo-sim (needs: pip install 'dorsum[atlas]')")
    build.add_argument("--out", type=Path, default=Path("meshes"), metavar="DIR",
                       help="atlas folder to write (default: ./meshes)")
    build.add_argument("--overwrite", action="store_true", help="replace an existing atlas in DIR")
    build.set_defaults(run=run_build)
    check = actions.add_parser("check", help="measure an atlas: closed meshes, bone overlap, layer order, budget")
    check.add_argument("--atlas", type=Path, default=None, metavar="DIR", help="atlas folder (default: shipped)")
    check.set_defaults(run=run_check)


#: Modules of the ``atlas`` extra that the builder imports, some only deep inside a build.
BUILDER_MODULES = ("mujoco", "myo_sim", "manifold3d", "skimage", "trimesh")


def _builder() -> Any:
    """The build function, after checking that every package it will import is installed."""
    try:
        for name in BUILDER_MODULES:
            importlib.import_module(name)
        from viewer.atlas_build.build import build_atlas
    except ImportError as exc:
        raise DorsumError(
            f"building the atlas needs the optional packages ({exc.name or exc} is missing): "
            "pip install 'dorsum[atlas]'"
        ) from None
    return build_atlas


def run_build(args: argparse.Namespace) -> int:
    build_atlas = _builder()  # a missing package is one line before anything else happens
    out: Path = check_output_folder(args.out, overwrite=args.overwrite)  # before the long build
    start = time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    # Build beside the target and swap at the end: a failed build leaves the old atlas intact.
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        build_atlas(staging)
        load_atlas(staging)
        _swap(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(f"built atlas in {out} ({time.perf_counter() - start:.0f} s)")
    return 0


def _swap(new: Path, target: Path) -> None:
    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    new.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def run_check(args: argparse.Namespace) -> int:
    from viewer.atlas_build.check import check_atlas

    folder = args.atlas or default_atlas_dir()
    load_atlas(folder)  # manifest and mesh errors first, as one clear report
    findings = check_atlas(folder)
    for finding in findings:
        print(f"FAIL {finding}")
    print(f"atlas check: {'passed' if not findings else f'{len(findings)} problem(s)'} ({folder})")
    return 0 if not findings else 1
