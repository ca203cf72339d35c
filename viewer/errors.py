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


_OS_ERROR_ADVICE = {
    "ENOSPC": "free some space or write to another disk",
    "EDQUOT": "free some space or write to another disk",
    "EROFS": "choose a folder on a disk you can write to",
    "EACCES": "choose a folder you can write to, or check the file's permissions",
    "EPERM": "choose a folder you can write to, or check the file's permissions",
    "ENAMETOOLONG": "choose a shorter file name",
    "ENOTDIR": "a part of the path is a file, not a folder; check the path",
    "EISDIR": "give a file name, not a folder",
    "ENOENT": "check the path",
    "EEXIST": "choose another name",
    "EIO": "the disk or network share may be failing; try another place",
    "EFBIG": "write to another disk or make the file smaller",
    "EMFILE": "close other programs and try again",
}


def os_error_message(exc: OSError, path: object = None) -> str:
    """One line for an operating-system error: the file it concerns, what happened and what to do.

    ``path`` names the file when the error itself does not (e.g. an error raised inside a writer).
    """
    import errno

    where = exc.filename if exc.filename is not None else path
    reason = (exc.strerror or str(exc) or type(exc).__name__).rstrip(".")
    advice = _OS_ERROR_ADVICE.get(errno.errorcode.get(exc.errno or 0, ""), "check the path and try again")
    text = f"{reason[:1].lower()}{reason[1:]}; {advice}"
    return f"{where}: {text}" if where is not None else text
