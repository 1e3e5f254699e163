"""The `aitokens` command line (click commands only: parse, call a service, render).

``app`` holds the group and ``main``; each ``*_cmds`` module one family of commands;
``exit_codes`` the one mapping from errors to exit codes; ``render`` tables/CSV/JSON output.
"""

from flows.cli.app import cli, main, run

__all__ = ["cli", "main", "run"]
