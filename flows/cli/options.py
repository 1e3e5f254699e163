"""Click options shared by several commands."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click


def _checked_db(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """Refuse a FIFO, device, folder, foreign or truncated file as ``--db`` before any work
    starts (e.g. a temporary Prefect server); the warehouse checks again when it opens."""
    from warehouse.files import check_warehouse_file

    if value is not None:
        check_warehouse_file(value.expanduser())
    return value


db_option = click.option(
    "--db",
    "db",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    callback=_checked_db,
    help="Warehouse file (default: $AITOKENS_DB or ./data/aitokens.duckdb).",
)


def study_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Every option of :class:`warehouse.studyspec.StudySpec` as a click option, from the
    field's declaration (flag, help, choices, default, parser): the one place they are made."""
    from warehouse.studyspec import study_fields

    for f, opt in reversed(study_fields()):
        command = _click_option(f, opt)(command)
    return command


def some_study_options(*names: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The named study options only (field names, e.g. ``"return_kind"`` for ``aitokens
    pipeline``), made exactly as :func:`study_options` makes them."""
    from warehouse.studyspec import study_fields

    chosen = [(f, opt) for f, opt in study_fields() if f.name in names]
    missing = set(names) - {f.name for f, _ in chosen}
    if missing:
        raise ValueError(f"not study options: {', '.join(sorted(missing))}")

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        for f, opt in reversed(chosen):
            command = _click_option(f, opt)(command)
        return command

    return decorate


def _click_option(f: Any, opt: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """One spec field's click option (its flag, help, choices, default and metavar)."""
    kwargs: dict[str, Any] = {"help": opt.help or None, "show_default": opt.show_default}
    if opt.is_flag:
        kwargs["is_flag"] = True
    elif opt.multiple:
        kwargs["multiple"] = True
    else:
        kwargs["default"] = f.default
    if opt.choices is not None:
        kwargs["type"] = click.Choice(opt.choices)
    elif opt.type is not None:
        kwargs["type"] = opt.type
    if opt.metavar is not None:
        kwargs["metavar"] = opt.metavar
    return click.option(opt.flag, opt.param or f.name, **kwargs)
