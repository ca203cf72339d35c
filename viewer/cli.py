"""The ``dorsum`` command: a thin layer of argument parsing over the library."""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from viewer import __version__
from viewer.commands import COMMAND_MODULES
from viewer.display import prefer_headless_vtk
from viewer.errors import DorsumError, os_error_message


class _Parser(argparse.ArgumentParser):
    """Argument errors as one line on stderr with exit code 2, pointing to --help."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``dorsum`` parser; with ``command`` (a known one), only that subcommand is registered, so a
    run imports only its own command module."""
    parser = _Parser(prog="dorsum", description="The muscles of the back in 3D, layer by layer, "
                     "and what multifidus atrophy looks like.")
    parser.add_argument("--version", action="version", version=f"dorsum {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in (command,) if command in COMMAND_MODULES else COMMAND_MODULES:
        importlib.import_module(f"viewer.commands.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (2 for user errors)."""
    words = list(sys.argv[1:] if argv is None else argv)
    if not words or (words[0].startswith("-") and words[0] not in ("-h", "--help", "--version")):
        words = ["view", *words]  # plain `dorsum [view options]` opens the viewer
    args = build_parser(words[0]).parse_args(words)
    prefer_headless_vtk()
    try:
        return int(args.run(args) or 0)
    except DorsumError as exc:
        print(f"dorsum {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"dorsum {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `dorsum measure | head`): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:
        # A file or folder the user named cannot be read or written (full disk, permissions, ...).
        print(f"dorsum {args.command}: error: {os_error_message(exc)}", file=sys.stderr)
        return 2


def run() -> NoReturn:
    """The ``dorsum`` executable: :func:`main`, then exit with its code."""
    code = main()
    # Python's last garbage collection at exit walks every VTK and numpy object left: about 60 ms of
    # a one-second `dorsum shot`. Nothing needs it: files are written and closed, windows are gone.
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    run()
