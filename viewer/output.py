"""Writing files safely: never clobber without permission, never leave a half-written file.

Every file is written under a short hidden temporary name in the target's folder
(``.dorsum-<pid>-<random>.part``, short so that any legal target name works) and moved into place
only when it is complete. Without ``--overwrite`` the move is a hard link, which fails if the target
appeared meanwhile, so "create if absent" is atomic; with it, ``os.replace``. SIGTERM and SIGHUP
remove the process' temporary files (and stop its encoders) before it ends; temporary files of a
process that no longer runs (kill -9, power loss) are removed at the next write to that folder.
Operating-system errors become one-line :class:`DorsumError` messages naming the file.
"""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from viewer.checks import check_dpi
from viewer.errors import DorsumError, os_error_message

PNG_PARAMETERS_KEY = "dorsum:parameters"
PNG_CREDIT_KEY = "Copyright"
TEMP_PREFIX = ".dorsum-"
TEMP_SUFFIX = ".part"
#: A temporary file of ours older than this (seconds) is stale even if its process id is in use again.
STALE_AGE = 24 * 3600.0
_TEMP_NAME = re.compile(r"^\.dorsum-(\d+)-[A-Za-z0-9_]+\.part$")
_NO_HARD_LINKS = {errno.EPERM, errno.EXDEV, errno.EMLINK, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP}
_CLEANUP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))

class WriteError(DorsumError):
    """Writing a file failed in a way that concerns the file (e.g. its encoder failed), not the input."""


_live_temps: set[Path] = set()
_live_encoders: set[subprocess.Popen] = set()
_previous_handlers: dict[int, Any] = {}


def check_output_path(path: str | Path, *, overwrite: bool, suffixes: tuple[str, ...] = ()) -> Path:
    """Validate an output path before any work is done; return it as a ``Path``.

    Checks the type, that the name is free (a dangling symbolic link counts as taken) unless
    ``overwrite``, that the name fits the file system, and that the folder exists and takes files.
    """
    out = Path(path)
    if suffixes and out.suffix.lower() not in suffixes:
        raise DorsumError(f"{out}: unsupported file type {out.suffix or '(none)'!r} (use {', '.join(suffixes)})")
    parent = out.parent if str(out.parent) else Path(".")
    size, limit = len(os.fsencode(out.name)), _name_max(parent)
    if size > limit:
        raise DorsumError(f"{out.name[:32]}...: the file name is {size} bytes long and this file system allows "
                          f"{limit}; choose a shorter name")
    if out.is_dir():
        raise DorsumError(f"{out}: is a folder; give a file name, e.g. {out / ('figure' + (suffixes or ('.png',))[0])}")
    if os.path.lexists(out) and not overwrite:
        raise DorsumError(_exists_message(out))
    if not parent.is_dir():
        what = "is a file, not a folder" if parent.exists() else "does not exist; create it first"
        raise DorsumError(f"{out}: folder {parent} {what}")
    check_writable_folder(parent, what=out)
    return out


def check_writable_folder(folder: Path, *, what: object = None) -> None:
    """Raise a one-line error unless a file can be created in ``folder`` (tried, not guessed)."""
    try:
        handle, name = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-", suffix=TEMP_SUFFIX, dir=folder)
    except OSError as exc:
        bare = OSError(exc.errno, exc.strerror or str(exc))
        raise DorsumError(os_error_message(bare, f"{what or folder}: cannot create files in {folder}")) from None
    os.close(handle)
    os.unlink(name)


def check_output_folder(folder: str | Path, *, overwrite: bool) -> Path:
    """Validate a folder to be (re)created as a whole (e.g. an atlas), before any work is done."""
    out = Path(folder)
    if os.path.lexists(out) and not out.is_dir():
        raise DorsumError(f"{out}: is a file, not a folder; give a folder name")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise DorsumError(f"{out}: folder is not empty; pass --overwrite to replace what is in it")
    parent = next((p for p in out.absolute().parents if p.exists()), Path("/"))
    if not parent.is_dir():
        raise DorsumError(f"{out}: cannot create the folder ({parent} is a file)")
    check_writable_folder(out if out.is_dir() else parent, what=out)
    if out.is_dir():
        check_writable_folder(out.absolute().parent, what=out)  # the finished folder is swapped in beside it
    return out


def write_atomically(path: str | Path, write: Callable[[Path], None], *, overwrite: bool) -> Path:
    """Call ``write(temp_path)`` for a temporary file beside ``path``, then move it into place.

    A failure (or crash, or SIGTERM) while writing leaves any existing file untouched and no partial
    file. Without ``overwrite`` an existing target is never replaced, even one that appears while
    ``write`` runs.

    Raises
    ------
    DorsumError
        One line naming the file, for an existing target or any operating-system error.
    """
    out = check_output_path(path, overwrite=overwrite)
    remove_stale_temps(out.parent)
    installed = _install_signal_cleanup()
    try:
        temp = _new_temp(out)
        try:
            try:
                write(temp)
            except OSError as exc:
                raise DorsumError(_write_failed(out, exc)) from None
            except WriteError as exc:
                raise DorsumError(f"{out}: {exc} ({_kept(out)})") from None
            _move_into_place(temp, out, overwrite=overwrite)
        finally:
            _discard(temp)
    finally:
        if installed:
            _restore_signals()
    return out


def _exists_message(out: Path) -> str:
    kind = "a link to a missing file" if out.is_symlink() and not out.exists() else "file"
    return f"{out}: {kind} exists; pass --overwrite to replace it or choose another name"


def _write_failed(out: Path, exc: OSError) -> str:
    bare = OSError(exc.errno, exc.strerror or str(exc))  # its file name would be the temporary one
    return f"{os_error_message(bare, out)} ({_kept(out)})"


def _kept(out: Path) -> str:
    return "the existing file is unchanged" if os.path.lexists(out) else "nothing was written"


def _name_max(folder: Path) -> int:
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return 255


def _new_temp(out: Path) -> Path:
    folder = out.parent if str(out.parent) else Path(".")
    try:
        handle, name = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-", suffix=TEMP_SUFFIX, dir=folder)
    except OSError as exc:
        raise DorsumError(_write_failed(out, exc)) from None
    temp = Path(name)
    _live_temps.add(temp)
    os.close(handle)
    os.chmod(temp, 0o666 & ~_umask())  # mkstemp makes files private; a saved figure should not be
    return temp


def _discard(temp: Path) -> None:
    try:
        temp.unlink(missing_ok=True)
    except OSError:
        pass
    _live_temps.discard(temp)


def _move_into_place(temp: Path, out: Path, *, overwrite: bool) -> None:
    try:
        if overwrite:
            os.replace(temp, out)
            return
        try:
            os.link(temp, out)  # fails if the name is taken: never replaces a file that appeared meanwhile
        except OSError as exc:
            if exc.errno not in _NO_HARD_LINKS:
                raise
            _reserve_and_replace(temp, out)  # a file system without hard links (FAT, some shares)
    except FileExistsError:
        raise DorsumError(_exists_message(out)) from None
    except OSError as exc:
        raise DorsumError(_write_failed(out, exc)) from None


def _reserve_and_replace(temp: Path, out: Path) -> None:
    """Claim ``out`` with an exclusive create, then replace the claim with the finished file."""
    handle = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    os.close(handle)
    try:
        os.replace(temp, out)
    except BaseException:
        out.unlink(missing_ok=True)
        raise


def remove_stale_temps(folder: str | Path) -> list[Path]:
    """Remove temporary files of ours in ``folder`` whose process has ended (or that are very old).

    Only names of the form ``.dorsum-<pid>-<random>.part`` are touched; returns what was removed.
    """
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        match = _TEMP_NAME.match(entry.name)
        if match is None or Path(entry.path) in _live_temps:
            continue
        try:
            stat = entry.stat(follow_symlinks=False)
            if not entry.is_file(follow_symlinks=False):
                continue
            if _process_running(int(match.group(1))) and now - stat.st_mtime < STALE_AGE:
                continue
            os.unlink(entry.path)
            removed.append(Path(entry.path))
        except OSError:
            continue
    return removed


def _process_running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # exists but belongs to someone else (or cannot be asked): leave its files alone
    return True


# -- signals --------------------------------------------------------------------------------------
def _install_signal_cleanup() -> bool:
    """While a file is written, SIGTERM and SIGHUP first remove our temporary files and encoders.

    Installed only for the duration of a write, from the main thread, and not over a signal that
    is ignored (e.g. under nohup); returns whether handlers were installed (restore them after).
    """
    if _previous_handlers or threading.current_thread() is not threading.main_thread():
        return False
    for signum in _CLEANUP_SIGNALS:
        previous = signal.getsignal(signum)
        if previous is signal.SIG_IGN or previous is None:
            continue
        _previous_handlers[signum] = previous
        signal.signal(signum, _on_signal)
    return bool(_previous_handlers)


def _restore_signals() -> None:
    for signum, previous in _previous_handlers.items():
        signal.signal(signum, previous)
    _previous_handlers.clear()


def _on_signal(signum: int, frame: Any) -> None:
    for process in list(_live_encoders):
        try:
            process.kill()
            process.wait(timeout=5)
        except Exception:  # noqa: BLE001 - best effort while the process is being stopped
            pass
    for temp in list(_live_temps):
        _discard(temp)
    previous = _previous_handlers.get(signum)
    if callable(previous) and previous is not _on_signal:
        previous(signum, frame)
        return
    signal.signal(signum, signal.SIG_DFL)  # end the way the signal asked, with its exit status
    os.kill(os.getpid(), signum)


# -- encoders -------------------------------------------------------------------------------------
def run_encoder(command: Sequence[str], chunks: Iterable[Any], *, name: str) -> None:
    """Feed ``chunks`` (bytes-like) to an encoder process' stdin and check that it succeeded.

    Raises
    ------
    WriteError
        When the encoder cannot start, stops early or exits with a failure (disk full, killed): the
        message names the encoder and ends with its last line of error output.
    """
    with tempfile.TemporaryFile() as log:
        try:
            process = subprocess.Popen(list(command), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=log)
        except OSError as exc:
            raise WriteError(f"cannot start the {name} encoder ({os_error_message(exc)})") from None
        _live_encoders.add(process)
        try:
            try:
                for chunk in chunks:
                    process.stdin.write(chunk)  # type: ignore[union-attr]
                process.stdin.close()  # type: ignore[union-attr]
            except BrokenPipeError:
                pass  # the encoder stopped early; its exit status says why
            status = process.wait()
        except BaseException:
            process.kill()
            process.wait()
            raise
        finally:
            _live_encoders.discard(process)
        if status != 0:
            log.seek(0)
            lines = [line.strip() for line in log.read().decode("utf-8", "replace").splitlines() if line.strip()]
            how = f"was killed (signal {-status})" if status < 0 else f"failed (exit status {status})"
            detail = f": {lines[-1][:200]}" if lines else ""
            raise WriteError(f"the {name} encoder {how}{detail}")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def png_bytes_writer(pixels: np.ndarray, parameters: Mapping[str, Any] | None = None,
                     dpi: float | None = None, credits: Sequence[str] = ()) -> Callable[[Path], None]:
    """A writer for :func:`write_atomically` that saves ``pixels`` as PNG with the parameters as text.

    ``credits`` (the attribution lines of the atlas's data sources) go into the standard
    ``Copyright`` text field, one per line, so that the credit travels with the picture.
    """
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    def write(target: Path) -> None:
        info = PngInfo()
        info.add_text("Software", "dorsum")
        if credits:
            info.add_itxt(PNG_CREDIT_KEY, "\n".join(credits))
        if parameters is not None:
            info.add_text(PNG_PARAMETERS_KEY, json.dumps(parameters, sort_keys=True))
        image = Image.fromarray(np.ascontiguousarray(pixels))
        extra = {"dpi": (dpi, dpi)} if dpi is not None else {}
        # zlib level 3 instead of 6: the same pixels (PNG is lossless), about half the time for files
        # about 15% larger.
        image.save(target, format="PNG", pnginfo=info, compress_level=3, **extra)

    return write


def save_png(path: str | Path, pixels: np.ndarray, *, parameters: Mapping[str, Any] | None = None,
             overwrite: bool = False, dpi: float | None = None, credits: Sequence[str] = ()) -> Path:
    """Save an (h, w, 3|4) uint8 image as PNG, atomically, with reproducible parameters and the
    data credits (see :func:`png_bytes_writer`) in its metadata.

    ``dpi`` (None: none recorded) must lie in :data:`viewer.checks.DPI_RANGE`.
    """
    if dpi is not None:
        dpi = check_dpi(dpi)
    return write_atomically(path, png_bytes_writer(pixels, parameters, dpi, credits), overwrite=overwrite)


def read_png_credits(path: str | Path) -> list[str]:
    """The credit lines stored in a PNG written by :func:`save_png` (empty if none)."""
    from PIL import Image

    with Image.open(path) as image:
        text = image.text.get(PNG_CREDIT_KEY, "") if hasattr(image, "text") else ""
    return [line for line in text.split("\n") if line]


def read_png_parameters(path: str | Path) -> dict[str, Any]:
    """The parameters stored in a PNG written by :func:`save_png` (empty if none)."""
    from PIL import Image

    with Image.open(path) as image:
        text = image.text.get(PNG_PARAMETERS_KEY) if hasattr(image, "text") else None
    return json.loads(text) if text else {}
