"""Command modules of the `aitokens` CLI.

Each module here defines click commands and a ``register(cli: click.Group) -> None`` that adds
them; ``flows.cli`` discovers the modules, so a new command never edits ``cli.py``. Keep heavy
imports (Prefect, pandas, analysis) inside the command functions: ``aitokens --help`` stays fast.
"""
