"""Arrays derived from an atlas's mesh files, kept between runs in the user's cache folder.

Loading an atlas checks that every muscle is closed, drawing it needs vertex normals, and turning
it in the viewer needs a level of detail (:mod:`viewer.lod`). These depend only on the bytes of a
mesh file, so each is stored under the SHA-256 digest of the file it came from: an edited mesh
file has a new digest, misses the cache and is computed afresh, and an entry can never be stale.
One ``.npz`` per atlas folder lives in ``platformdirs.user_cache_dir("dorsum") / "atlases"``
(never inside the atlas folder, which may be read-only or part of the installed package).
Numpy only; no VTK.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

#: Bump when the meaning of a stored array changes (so older caches are ignored).
CACHE_FORMAT = 1


def file_digest(data: bytes) -> str:
    """SHA-256 hex digest of a mesh file's bytes (about 5 ms for 10 MB)."""
    return hashlib.sha256(data).hexdigest()


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Unit vertex normals, (n, 3) float32, from area-weighted face normals.

    Each vertex sums the (unnormalised) normals of its faces in face order; ``np.bincount`` does
    this without scipy.sparse, whose import alone costs a cold start about 0.14 s.
    """
    a, b, c = (vertices[faces[:, i]] for i in range(3))
    face_normals = np.cross(b - a, c - a)
    corners = faces.reshape(-1)
    normals = np.column_stack([np.bincount(corners, weights=np.repeat(face_normals[:, k], 3),
                                           minlength=len(vertices)) for k in range(3)])
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    return (normals / np.where(length > 0, length, 1.0)).astype(np.float32)


def cache_file(atlas_root: Path) -> Path:
    """Where the derived arrays of the atlas in ``atlas_root`` are kept."""
    import platformdirs  # deferred, as in viewer.atlases

    key = hashlib.sha256(str(Path(atlas_root).resolve()).encode("utf-8")).hexdigest()[:20]
    return Path(platformdirs.user_cache_dir("dorsum", appauthor=False)) / "atlases" / f"{key}.npz"


class MeshCache:
    """Derived arrays of mesh files, keyed by ``(file digest, kind)``; thread-safe.

    Parameters
    ----------
    path : the ``.npz`` file, or None for a cache held in memory only.
    """

    def __init__(self, path: Path | None = None):
        self.path = path
        self._entries: dict[str, np.ndarray] = {}
        self._stored: _StoredArrays | None = None  # what the file holds, each array read on first use
        self._used: set[str] = set()  # digests asked for: entries of other digests are dropped on save
        self._dirty = False
        self._lock = threading.RLock()

    def derived(self, digest: str, kind: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
        """The ``kind`` array of the mesh file with ``digest``: from the cache, else ``compute()``.

        An empty ``digest`` (a mesh made in memory, not read from a file) is never cached.
        """
        if not digest:
            return compute()
        key = f"{digest}.{kind}"
        with self._lock:
            self._used.add(digest)
            value = self._entries.get(key)
            if value is None:
                value = self._stored_entries().get(key)
        if value is None:
            value = np.asarray(compute())
            with self._lock:
                self._entries[key] = value
                self._dirty = True
        return value

    def save(self) -> None:
        """Write the cache file when something new was computed (atomically; errors are ignored:
        a cache that cannot be written is only slower)."""
        with self._lock:
            if not self._dirty or self.path is None:
                return
            entries = {**self._stored_entries().read_all(), **self._entries}
            keep = {key: value for key, value in entries.items() if key.split(".", 1)[0] in self._used}
            self._dirty = False
        keep["format"] = np.array(CACHE_FORMAT)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(suffix=".npz", dir=self.path.parent)
        except OSError:
            return
        try:
            with os.fdopen(handle, "wb") as stream:
                np.savez(stream, **keep)
            os.replace(temporary, self.path)  # readers see the old file or the new one, never half
        except OSError:
            Path(temporary).unlink(missing_ok=True)

    def _stored_entries(self) -> _StoredArrays:
        if self._stored is None:
            self._stored = _StoredArrays(self.path)
        return self._stored


_UNREADABLE = (OSError, ValueError, zipfile.BadZipFile, EOFError)


class _StoredArrays:
    """The arrays of a cache file, each read when first asked for (a picture needs the normals, not
    the levels of detail of the live view); empty if the file is missing or unusable."""

    def __init__(self, path: Path | None):
        self._arrays: dict[str, np.ndarray] = {}
        self._path = path
        self._file: Any = None
        self._pid = os.getpid()
        if path is None or not path.is_file():
            return
        try:
            stored = np.load(path, allow_pickle=False)
        except _UNREADABLE:
            return
        try:
            if "format" in stored.files and int(stored["format"]) == CACHE_FORMAT:
                self._file = stored
                return
        except _UNREADABLE:
            pass
        stored.close()

    def get(self, key: str) -> np.ndarray | None:
        if self._file is not None and os.getpid() != self._pid:
            # A forked worker (``lesson --jobs``) shares the parent's file offset: reading through the
            # same handle at once would mix their reads. Each process opens the file for itself.
            self._pid = os.getpid()
            try:
                self._file = np.load(self._path, allow_pickle=False)
            except _UNREADABLE:
                self._file = None
        if key not in self._arrays and self._file is not None and key in self._file.files:
            try:
                self._arrays[key] = self._file[key]
            except _UNREADABLE:
                return None
        return self._arrays.get(key)

    def read_all(self) -> dict[str, np.ndarray]:
        """Every array (the file is closed afterwards: it is about to be replaced)."""
        if self._file is not None:
            for key in self._file.files:
                if key != "format":
                    self.get(key)
            self._file.close()
            self._file = None
        return dict(self._arrays)
