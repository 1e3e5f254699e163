"""``python -m flows.cli``: the same as the `aitokens` console script."""

from flows.cli.app import run

run()
