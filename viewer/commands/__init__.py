"""CLI subcommands: each module has ``register(subparsers)`` and a thin ``run(args) -> int``."""

# Order of appearance in ``dorsum --help``.
COMMAND_MODULES = ("view", "shot", "measure", "lesson", "export", "animate", "info", "preset", "quiz", "atlas")
