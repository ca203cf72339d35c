"""Undo and redo of visibility, opacity and atrophy changes, as snapshots of the scene state.

Every user edit goes through :meth:`UndoRecorder.edit`: the change is made on the model, then the state
before and after is pushed onto a ``QUndoStack``. Snapshots are :class:`viewer.session.Session` objects
without camera and highlight, so undo restores exactly what the session file would.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Callable

from PySide6.QtGui import QUndoCommand, QUndoStack

from viewer.model import SceneModel
from viewer.session import Session, apply_session, capture_session


def scene_snapshot(model: SceneModel) -> Session:
    """What undo restores: visibility, opacity and atrophy (no camera, no highlight)."""
    return dataclasses.replace(capture_session(model), highlight=None)


class _StateChange(QUndoCommand):
    def __init__(self, recorder: UndoRecorder, before: Session, after: Session, text: str, merge: str | None):
        super().__init__(text)
        self._recorder = recorder
        self.before = before
        self.after = after
        self._merge_id = -1 if merge is None else zlib.crc32(merge.encode()) & 0x7FFFFFFF
        self._first_redo = True

    def id(self) -> int:  # noqa: A003 (Qt API)
        return self._merge_id

    def mergeWith(self, other: QUndoCommand) -> bool:  # noqa: N802 (Qt API)
        if not isinstance(other, _StateChange) or other.id() != self.id() or self.id() == -1:
            return False
        self.after = other.after
        return True

    def redo(self) -> None:
        if self._first_redo:  # the change was made live before the command was pushed
            self._first_redo = False
            return
        self._recorder.restore(self.after)

    def undo(self) -> None:
        self._recorder.restore(self.before)


class UndoRecorder:
    """Records model edits on an undo stack; merges consecutive edits with the same ``merge`` key."""

    def __init__(self, model: SceneModel, stack: QUndoStack):
        self.model = model
        self.stack = stack
        self._last = scene_snapshot(model)

    def edit(self, text: str, change: Callable[[], None], merge: str | None = None) -> None:
        """Make ``change`` on the model and record it as one undoable step called ``text``."""
        change()
        self.record(text, merge)

    def record(self, text: str, merge: str | None = None) -> None:
        """Record whatever changed since the last recorded state (nothing if nothing changed)."""
        after = scene_snapshot(self.model)
        if after == self._last:
            return
        before, self._last = self._last, after
        self.stack.push(_StateChange(self, before, after, text, merge))

    def restore(self, state: Session) -> None:
        """Put the model back into ``state`` (keeping the current highlight)."""
        apply_session(dataclasses.replace(state, highlight=self.model.highlight), self.model)
        self._last = scene_snapshot(self.model)

    def reset(self) -> None:
        """Forget the history (after opening another state file)."""
        self.stack.clear()
        self._last = scene_snapshot(self.model)
