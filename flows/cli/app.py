"""The `aitokens` command line: one click group, the command modules, and ``main``.

Commands stay thin: they parse arguments, call a service (:mod:`flows.services`) or the
warehouse, and render. The library raises typed errors under one root
(:class:`warehouse.errors.AitokensError`); ``main`` alone turns them into a one-line
``Error: ...`` and an exit code (:mod:`flows.cli.exit_codes`).
"""

from __future__ import annotations

import logging
import os
import sys
import traceback

import click

from flows.cli import (
    check_cmds,
    export_cmds,
    group_cmds,
    ingest_cmds,
    report_cmds,
    sector_cmds,
    study_cmds,
    warehouse_cmds,
)
from flows.cli.exit_codes import (
    EXIT_BAD_INPUT,
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    exit_code_for,
)
from warehouse.errors import AitokensError
from warehouse.files import user_fixable_message

# Each module defines its commands and ``register(group)``; heavy imports (Prefect, pandas,
# analysis) stay inside the command functions so that `aitokens --help` starts fast.
COMMAND_MODULES = (
    warehouse_cmds,
    ingest_cmds,
    study_cmds,
    group_cmds,
    sector_cmds,
    report_cmds,
    export_cmds,
    check_cmds,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.version_option(package_name="aitokens")
@click.pass_context
def cli(ctx: click.Context, verbose: int) -> None:
    """aitokens: AI-token market data, warehouse and event studies.

    Example: aitokens import prices.csv && aitokens status
    """
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    # Before any command imports Prefect (its settings are read once, at import): no telemetry
    # (no network here), and its INFO chatter only with -v. An explicit setting wins.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    if not verbose:
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    from flows.config import Settings
    from warehouse.settings import bound

    # Environment, then aitokens.toml, then defaults, once: a bad file stops here with exit 2.
    # The command finds them on its context; the warehouse uses them while the command runs.
    ctx.obj = Settings.resolve()
    ctx.with_resource(bound(ctx.obj.warehouse))


for _module in COMMAND_MODULES:
    _module.register(cli)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "no message"


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: run the CLI and map errors to exit codes."""
    try:
        cli.main(args=argv, prog_name="aitokens", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return EXIT_FAILURE
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except AitokensError as exc:
        click.echo(f"Error: {exc}", err=True)
        return exit_code_for(exc)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        return EXIT_INTERRUPTED
    except Exception as exc:  # the last resort: say what broke, keep the traceback opt-in
        fix = user_fixable_message(exc)  # a full disk or a read-only folder is the user's to fix
        if fix is not None:
            click.echo(f"Error: {fix}", err=True)
            return EXIT_BAD_INPUT
        if os.environ.get("AITOKENS_DEBUG"):
            traceback.print_exc()
        click.echo(
            f"Error: unexpected failure ({type(exc).__name__}: {_first_line(exc)}); "
            "rerun with AITOKENS_DEBUG=1 for the traceback",
            err=True,
        )
        return EXIT_FAILURE
    return EXIT_OK


def run() -> None:
    """Console-script shim: exit with ``main``'s code."""
    sys.exit(main())
