"""Exception types of the project.

Every error a user can cause is a :class:`DorsumError`; the CLI prints its message as one line
and exits with code 2. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class DorsumError(Exception):
    """A problem with the user's input, files or environment, with a message that says how to fix it."""


class AtlasError(DorsumError):
    """An atlas folder or manifest is invalid; carries every problem found, not just the first."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


class NoDisplayError(DorsumError):
    """An interactive window was asked for on a machine without a display."""
