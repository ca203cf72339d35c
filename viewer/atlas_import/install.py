"""Installing an imported atlas into the user's data folder, safely (``dorsum atlas import``).

Everything a user can get wrong is checked before the long work: the name, an existing atlas of
that name (kept unless ``overwrite``), the sources (readable, recognisable, holding every required
structure) and the free disk space. The atlas is then built in a temporary folder beside its
target and moved into place only when complete and loadable; on any error, Ctrl-C or SIGTERM the
temporary folder (and any folder this run created) is removed, and an existing atlas is untouched.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from viewer.atlas import load_atlas
from viewer.atlas_import.sources import SourceScan, scan_sources
from viewer.atlases import imported_atlas_path
from viewer.errors import DorsumError

Progress = Callable[[str, float], None]
#: Room kept free beyond the estimate (MB): the manifest, temporary files of the mesh writers.
MARGIN_BYTES = 64 * 1024 * 1024
#: Temporary folders beside the atlases: ``.import-<pid>-<random>`` (hidden, never listed as atlases).
STAGING_PREFIX = ".import-"


@dataclass(frozen=True)
class ImportResult:
    """What was installed: the atlas name and folder, the builder's summary and notes of the scan."""

    name: str
    path: Path
    summary: Any  # viewer.atlas_import.build.ImportSummary
    notes: tuple[str, ...]


def _builder() -> Any:
    try:
        from viewer.atlas_import import build
    except ImportError as exc:
        raise DorsumError(f"the BodyParts3D importer is not available in this installation ({exc})") from None
    return build


def _wanted_ids(build: Any) -> set[int] | None:
    """The concept ids the builder's catalogue knows (element files of the official download are
    given to the most specific of these); None if the builder does not say."""
    known = getattr(build, "known_fma_ids", None)
    if callable(known):
        return set(known())
    try:
        from viewer.atlas_import.catalogue import load_catalogue

        return set(load_catalogue().known_fma)
    except (ImportError, AttributeError):
        return None


def required_bytes(scan: SourceScan) -> int:
    """Disk space the import needs: extracted zip members, the atlas (at most the size of its
    text sources; binary PLY is smaller than OBJ) and a margin."""
    return scan.extract_bytes + scan.input_bytes + MARGIN_BYTES


def import_atlas(sources: Sequence[Path], name: str, *, overwrite: bool = False,
                 progress: Progress = lambda stage, fraction: None) -> ImportResult:
    """Import BodyParts3D meshes from ``sources`` as the atlas ``name`` in the user's data folder.

    Parameters
    ----------
    sources : folders, zip files (searched recursively)
    name : atlas name (a safe folder name; not ``builtin``)
    overwrite : replace an installed atlas of that name
    progress : called with a stage name and the fraction (0 to 1) of it done

    Raises
    ------
    DorsumError
        One line for anything a user can fix; nothing is left behind.
    """
    target = imported_atlas_path(name)
    _check_target(target, overwrite)
    build = _builder()
    scan = scan_sources(sources, _wanted_ids(build))
    missing = build.missing_required(scan.fma_ids)
    if missing:
        raise DorsumError(f"the sources lack {len(missing)} required structure(s): {'; '.join(missing)}")
    scan.check_meshes()
    # Progress starts only now: every mistake a user can make has been reported as one line.
    with _created_folders(target.parent) as parent, _terminate_as_interrupt():
        _remove_stale_staging(parent)
        needed = required_bytes(scan)
        _check_disk_space(parent, needed)
        with _disk_errors(parent, needed):
            staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=parent))
        try:
            with _disk_errors(parent, needed):
                if scan.extract_bytes:
                    progress("extracting", 0.0)
                files = scan.materialise(staging / "sources")
                if scan.extract_bytes:
                    progress("extracting", 1.0)
                built = staging / "atlas"
                summary = build.build_atlas_from_files(files, built, progress=progress)
                progress("checking the atlas", 0.0)
                load_atlas(built)
                progress("checking the atlas", 1.0)
                _check_target(target, overwrite)  # another import may have finished meanwhile
                _install(built, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return ImportResult(name, target, summary, tuple(scan.notes))


def _remove_stale_staging(folder: Path) -> None:
    """Remove the temporary folders of imports that were killed (kill -9, power loss): those whose
    process (its id is in the folder's name) no longer runs."""
    for path in folder.glob(f"{STAGING_PREFIX}*"):
        pid = path.name.removeprefix(STAGING_PREFIX).split("-", 1)[0]
        if pid.isdigit() and not _process_alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _check_target(target: Path, overwrite: bool) -> None:
    if (target.exists() or target.is_symlink()) and not overwrite:
        raise DorsumError(f"an atlas named {target.name!r} exists ({target}); pass --overwrite to replace it, "
                          "or choose another --name")


def _check_disk_space(folder: Path, needed: int) -> None:
    try:
        free = shutil.disk_usage(folder).free
    except OSError as exc:
        raise DorsumError(f"{folder}: cannot check the free disk space ({exc.strerror or exc})") from None
    if free < needed:
        raise DorsumError(f"not enough room on the disk at {folder}: the import needs about "
                          f"{_mb(needed)} MB, {_mb(free)} MB are free")


def _mb(count: int) -> int:
    return -(-count // (1024 * 1024))


def _install(built: Path, target: Path) -> None:
    """Move the finished atlas into place; an old one is removed only after the new one is there."""
    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists() or target.is_symlink():
        target.rename(old)
    try:
        built.rename(target)
    except OSError:
        if old.exists() or old.is_symlink():
            old.rename(target)  # put the previous atlas back
        raise
    if old.is_dir() and not old.is_symlink():
        shutil.rmtree(old, ignore_errors=True)
    else:
        old.unlink(missing_ok=True)


@contextmanager
def _created_folders(folder: Path) -> Iterator[Path]:
    """Create ``folder`` (and parents) for the duration; remove what was created if it stays empty
    after an error, so that a failed first import leaves no trace."""
    created = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DorsumError(f"{folder}: cannot create the atlas folder ({exc.strerror or exc})") from None
    try:
        yield folder
    except BaseException:
        for path in created:  # deepest first
            try:
                path.rmdir()
            except OSError:
                break
        raise


@contextmanager
def _disk_errors(folder: Path, needed: int) -> Iterator[None]:
    """OS errors while writing as one line (a full disk above all)."""
    try:
        yield
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DorsumError(f"no room left on the disk at {folder} while importing (it needs about "
                              f"{_mb(needed)} MB); free some space and run the import again") from None
        where = f"{exc.filename}: " if exc.filename else ""
        raise DorsumError(f"{where}{exc.strerror or exc} while importing; nothing was installed") from None


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (and SIGHUP) during the import unwind like Ctrl-C, so that the clean-up runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    names = [s for s in ("SIGTERM", "SIGHUP") if hasattr(signal, s)]
    previous = {name: signal.signal(getattr(signal, name), interrupt) for name in names}
    try:
        yield
    finally:
        for name, handler in previous.items():
            signal.signal(getattr(signal, name), handler)
