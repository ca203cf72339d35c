"""``dorsum atlas build|check|import|list|use|remove``: the atlases a user has.

``build`` regenerates the built-in atlas from myo-sim, ``check`` measures an atlas, ``import`` turns a
BodyParts3D download into an atlas in the user's data folder (:mod:`viewer.atlas_import`), ``list``
shows the installed atlases, ``use`` chooses the default and ``remove`` deletes an imported one
(:mod:`viewer.atlases`).
"""

from __future__ import annotations

import argparse
import importlib
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from viewer.atlas import load_atlas
from viewer.atlases import (BUILTIN, list_atlases, remove_atlas, resolve_atlas, resolve_atlas_name,
                            set_default_atlas)
from viewer.errors import DorsumError
from viewer.output import check_output_folder

DEFAULT_IMPORT_NAME = "bodyparts3d"


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
    check.add_argument("--atlas", default=None, metavar="NAME|DIR",
                       help="an installed atlas by name or a folder holding atlas.toml (default: the default atlas)")
    check.set_defaults(run=run_check)
    imp = actions.add_parser(
        "import", help="turn a BodyParts3D download (folders or .zip files) into an atlas in your data folder",
        description="Import BodyParts3D (DBCLS, CC BY-SA 2.1 JP): each SOURCE is a folder or a .zip, searched "
                    "recursively; mesh files are recognised by FMA id (OBJ header or file name) or, for the "
                    "official download's FJ files, through its element tables. The atlas is built in a temporary "
                    "folder and moved into place only when complete.")
    imp.add_argument("sources", nargs="+", metavar="SOURCE", help="folder or .zip of a BodyParts3D download")
    imp.add_argument("--name", default=DEFAULT_IMPORT_NAME, metavar="NAME",
                     help=f"name of the new atlas (default: {DEFAULT_IMPORT_NAME}); use it as --atlas NAME")
    imp.add_argument("--overwrite", action="store_true", help="replace an installed atlas of that name")
    imp.set_defaults(run=run_import)
    listing = actions.add_parser("list", help="the installed atlases (built-in and imported) and which is the default")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.set_defaults(run=run_list)
    use = actions.add_parser("use", help="make an installed atlas the default of every command "
                                         "('builtin': the shipped one)")
    use.add_argument("name", metavar="NAME", help="an atlas name from 'dorsum atlas list'")
    use.set_defaults(run=run_use)
    remove = actions.add_parser("remove", help="delete an imported atlas from your data folder (import it again to "
                                               "get it back)")
    remove.add_argument("name", metavar="NAME", help="an imported atlas name from 'dorsum atlas list'")
    remove.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    remove.set_defaults(run=run_remove)


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
    if old.is_dir() and not old.is_symlink():
        shutil.rmtree(old, ignore_errors=True)
    else:
        old.unlink(missing_ok=True)


def run_check(args: argparse.Namespace) -> int:
    from viewer.atlas_build.check import check_atlas

    folder = resolve_atlas(args.atlas)
    load_atlas(folder)  # manifest and mesh errors first, as one clear report
    findings = check_atlas(folder)
    for finding in findings:
        print(f"FAIL {finding}")
    print(f"atlas check: {'passed' if not findings else f'{len(findings)} problem(s)'} ({folder})")
    return 0 if not findings else 1


def run_list(args: argparse.Namespace) -> int:
    entries = list_atlases()
    if args.json:
        default = next((e.name for e in entries if e.default), None)
        print(json.dumps({"default": default, "atlases": [e.as_dict() for e in entries]}, indent=2))
        return 0
    for entry in entries:
        marker = "*" if entry.default else " "
        count = "damaged manifest" if entry.structures is None else f"{entry.structures} structures"
        title = f"{entry.title} {entry.version}".strip()
        print(f"{marker} {entry.name:<16} {count:<16} {title}  ({entry.path})")
    if not any(e.default for e in entries):
        print("(the default atlas set with 'dorsum atlas use' is not installed any more)")
    print("* = default; choose with 'dorsum atlas use NAME', or give --atlas NAME to any command")
    return 0


def run_use(args: argparse.Namespace) -> int:
    load_atlas(resolve_atlas_name(args.name))  # a damaged atlas is refused now, not by the next command
    folder = set_default_atlas(args.name)
    name = BUILTIN if args.name.lower() == BUILTIN else args.name
    print(f"default atlas: {name} ({folder})")
    return 0


def run_remove(args: argparse.Namespace) -> int:
    folder = resolve_atlas_name(args.name)  # unknown names fail before any question is asked
    if not args.yes:
        if not sys.stdin.isatty():
            raise DorsumError(f"removing atlas {args.name!r} deletes {folder}; add --yes to confirm")
        answer = input(f"delete atlas {args.name!r} ({folder})? [y/N] ").strip().lower()
        if answer not in ("y", "yes"):
            print("nothing removed")
            return 0
    folder, was_default = remove_atlas(args.name)
    print(f"removed atlas {args.name!r} ({folder})")
    if was_default:
        print("the default atlas is the built-in one again")
    return 0


def run_import(args: argparse.Namespace) -> int:
    from viewer.atlas_import.install import import_atlas

    start = time.perf_counter()
    with _StageProgress("dorsum atlas import") as progress:
        result = import_atlas([Path(s) for s in args.sources], args.name, overwrite=args.overwrite,
                              progress=progress.update)
    summary = result.summary
    print(f"imported atlas {result.name!r} into {result.path} ({time.perf_counter() - start:.0f} s)")
    print(f"  {summary.structures} structures, {summary.triangles} triangles")
    if summary.missing_optional:
        print(f"  the sources lack {len(summary.missing_optional)} optional structure(s): "
              + "; ".join(summary.missing_optional))
    else:
        print("  the sources lack nothing the importer looks for")
    for note in (*result.notes, *summary.notes):
        print(f"  note: {note}")
    print(f"show it with --atlas {result.name}, or make it the default: dorsum atlas use {result.name}")
    return 0


class _StageProgress:
    """Progress on stderr: a bar with the stage name on a terminal, one line per stage otherwise."""

    def __init__(self, prefix: str):
        import sys

        self.prefix = prefix
        self.stream = sys.stderr
        self.live = self.stream.isatty()
        self.stage: str | None = None
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> _StageProgress:
        if self.live:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

            self._progress = Progress(TextColumn("{task.description:<28}"), BarColumn(), TaskProgressColumn(),
                                      TimeElapsedColumn(), console=Console(file=self.stream), transient=True)
            self._progress.__enter__()
            self._task = self._progress.add_task("starting", total=1.0)
        return self

    def update(self, stage: str, fraction: float) -> None:
        """Report ``fraction`` (0 to 1) of ``stage`` done."""
        fraction = min(max(float(fraction), 0.0), 1.0)
        if self._progress is not None:
            self._progress.update(self._task, description=stage, completed=fraction)
            if stage != self.stage:
                self._progress.console.print(f"{self.prefix}: {stage}", highlight=False)
        elif stage != self.stage:
            print(f"{self.prefix}: {stage}", file=self.stream, flush=True)
        self.stage = stage

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)
