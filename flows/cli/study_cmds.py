"""`aitokens study`, `aitokens events ...` and `aitokens studies ...`: the commands only parse,
call :mod:`flows.services.study` and the warehouse's event catalog, and print."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from flows.cli.options import db_option, study_options
from flows.services.study import (
    RERUN_TOLERANCE,
    StudyRequest,
    ensure_reader_schema,
    execute_study,
    rerun_study,
)
from warehouse.errors import InputError
from warehouse.studyspec import study_option_names


@click.command("study")
@study_options
@click.option("--json", "json_file", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--no-save", is_flag=True, help="Do not store the run in study_runs.")
@click.option(
    "--rerun",
    "rerun",
    default=None,
    metavar="STUDY_ID",
    help="Recompute a stored run (a study or group id) and check its numbers match.",
)
@db_option
@click.pass_context
def study_command(
    ctx: click.Context,
    json_file: Path | None,
    no_save: bool,
    rerun: str | None,
    db: Path | None,
    **options: Any,
) -> None:
    """Event study of abnormal returns around one or more events, saved for reruns.

    Tokens are studied against --benchmark on UTC days, equities against --equity-benchmark
    on NYSE sessions, each as its own leg. Catalog events marked as confounders (NVIDIA
    results) are flagged when they fall inside an event window. The run's spec, data
    fingerprint and results go to study_runs / study_results in one transaction.

    Example: aitokens study --event sora --assets FET,AGIX,RNDR --window -5:10 --json sora.json

    Hourly (hour 0 = the hour holding the event time; windows in hours): aitokens study
    --interval 1h --event sora --event-time 2024-02-15T18:00Z --estimation -720:-25
    --window -24:72 --car 0:5 --car 0:23 --assets AGIX,FET,WLD --benchmark BTC --no-equities

    Second stage: aitokens study --event sora --by-group; aitokens study --event sora
    --category artificial-intelligence --regress beta,pre_return,log_volume --regress-window 0:5
    --wls; abnormal volume: aitokens study --event sora --measure volume

    Reproduce a stored run: aitokens study --rerun st-20240601T120000-ab12cd
    """
    from warehouse.db import open_reader, resolve_db_path
    from warehouse.files import atomic_write_text, check_output_path, fixable_os_errors

    if json_file is not None:  # before anything runs: --json must not name the warehouse
        check_output_path(json_file, resolve_db_path(db))
    if rerun:
        _refuse_beside_rerun(ctx, json_file)
        ensure_reader_schema(db)
        with open_reader(db) as con:  # the snapshot: a rerun only reads
            reports = rerun_study(con, rerun)
        failed = []
        for _run, rep in reports:
            data = (
                "same input data (SHA-256 matches)"
                if rep.data_matches
                else f"INPUT DATA CHANGED (SHA-256 {rep.stored_sha[:12]} -> {rep.fresh_sha[:12]})"
            )
            verdict = "reproduced" if not rep.mismatches else "NOT reproduced"
            click.echo(
                f"Rerun of {rep.study_id}: {data}; {rep.values_compared:,} stored numbers "
                f"compared, largest difference {rep.max_abs_diff:.1e} (tolerance "
                f"{RERUN_TOLERANCE:.0e}): {verdict}."
            )
            for m in rep.mismatches:
                click.echo(f"  {m}")
            if rep.mismatches:
                failed.append(rep.study_id)
        if failed:
            from warehouse.studies import StudyMismatchError

            raise StudyMismatchError(
                f"rerun of {', '.join(failed)} did not reproduce the stored numbers"
            )
        return

    req = StudyRequest.from_cli(options)
    outcome = execute_study(db, req, save=not no_save)
    for line in outcome.lines:
        click.echo(line)
    for text in outcome.leg_texts.values():
        click.echo("")
        click.echo(text)
    click.echo("")
    if no_save or not outcome.saved:
        why = "--no-save" if no_save else "abnormal volume runs are not stored"
        click.echo(f"Not saved ({why}).")
    else:
        ids = ", ".join(outcome.study_ids.values())
        click.echo(
            f"Saved as {outcome.group_id} ({ids}) in {resolve_db_path(db)}; reproduce with: "
            f"aitokens study --rerun {outcome.group_id}"
        )
    if json_file is not None:
        with fixable_os_errors():
            atomic_write_text(
                json_file, json.dumps(outcome.to_payload(), indent=1), db=resolve_db_path(db)
            )
        click.echo(f"Wrote {json_file}.")


def _refuse_beside_rerun(ctx: click.Context, json_file: Path | None) -> None:
    """``--rerun`` reuses the stored spec, so any study option given beside it would be
    ignored: refuse it by name (exit 2) rather than rerun something else than was asked."""
    from click.core import ParameterSource

    given = [
        flag
        for name, flag in study_option_names().items()
        if ctx.get_parameter_source(name) not in (ParameterSource.DEFAULT, None)
    ]
    if json_file is not None:
        given.append("--json")
    if given:
        raise InputError(
            f"--rerun reuses the stored spec, so it would ignore {', '.join(given)}: "
            "give --rerun alone"
        )


# ---------------------------------------------------------------------------------- events
@click.group("events")
def events_group() -> None:
    """The event catalog: named events for `aitokens study --event NAME`, and confounders.

    Also editable with SQL (duckdb FILE: INSERT INTO events ...); see docs/warehouse.md.

    Example: aitokens events add --name gemini --when 2023-12-06 --kind ai
    --description "Google Gemini launch"
    """


@events_group.command("list")
@click.option("--kind", default=None, help="Only events of this kind (ai, earnings, ...).")
@click.option("--format", "fmt", type=click.Choice(("table", "csv", "json")), default="table")
@db_option
def events_list(kind: str | None, fmt: str, db: Path | None) -> None:
    """List the catalog, oldest first (event_ts in UTC).

    Example: aitokens events list --kind earnings
    """
    from flows.cli.render import render_frame
    from warehouse.db import open_reader
    from warehouse.studies import list_events

    ensure_reader_schema(db)
    with open_reader(db) as con:
        frame = list_events(con, kind=kind)
    render_frame(frame, fmt, title=f"{len(frame)} events" if fmt == "table" else None)


def _publish(db: Path | None) -> None:
    """The catalog changed: republish the snapshot `report` and analysts read."""
    from warehouse.db import publish_snapshot_of

    publish_snapshot_of(db)


def _event_name(positional: str | None, option: str | None) -> str:
    """NAME given either way (``events add gemini ...`` or ``--name gemini``), once."""
    from warehouse.errors import InputError

    if positional and option and positional != option:
        raise InputError(f"two names given ({positional!r} and --name {option!r}): give one")
    name = positional or option
    if not name:
        raise InputError("no event name: give it as NAME or --name NAME")
    return name


@events_group.command("add")
@click.argument("name_arg", metavar="[NAME]", required=False)
@click.option("--name", default=None, help="Short unique name (sora); or give it as NAME.")
@click.option("--when", "when", required=True, help="Date (2024-02-15) or zoned timestamp.")
@click.option("--description", default="", help="One line for reports.")
@click.option("--kind", default="other", show_default=True, help="ai, earnings, macro, ...")
@click.option(
    "--confounder/--not-confounder",
    "confounder",
    default=None,
    help="Flag it inside other studies' windows (default: yes for kind earnings).",
)
@click.option("--replace", is_flag=True, help="Overwrite an existing event of that name.")
@db_option
def events_add(
    name_arg: str | None,
    name: str | None,
    when: str,
    description: str,
    kind: str,
    confounder: bool | None,
    replace: bool,
    db: Path | None,
) -> None:
    """Add an event to the catalog (values are stored verbatim, bound as SQL parameters).

    NAME is given as an argument or with --name, as `events remove` takes it.

    Example: aitokens events add nvda_q1fy25 --when 2024-05-22T16:20-04:00 --kind earnings
    """
    from warehouse.db import open_warehouse
    from warehouse.studies import add_event

    name = _event_name(name_arg, name)
    with open_warehouse(db) as con:
        ev = add_event(
            con,
            name=name,
            when=when,
            description=description,
            kind=kind,
            is_confounder=confounder,
            replace=replace,
        )
    _publish(db)
    role = "confounder" if ev["is_confounder"] else "not a confounder"
    click.echo(f"Added event {ev['name']!r} at {ev['when']} (kind {ev['kind']}, {role}).")


@events_group.command("remove")
@click.argument("name_arg", metavar="[NAME]", required=False)
@click.option("--name", default=None, help="The event's name; or give it as NAME.")
@db_option
def events_remove(name_arg: str | None, name: str | None, db: Path | None) -> None:
    """Remove the event called exactly NAME (an argument or --name) from the catalog.

    Example: aitokens events remove gemini
    """
    from warehouse.db import open_warehouse
    from warehouse.studies import remove_event

    name = _event_name(name_arg, name)
    with open_warehouse(db) as con:
        ev = remove_event(con, name)
    _publish(db)
    click.echo(f"Removed event {ev['name']!r} ({ev['when']}).")


@events_group.command("seed")
@db_option
def events_seed(db: Path | None) -> None:
    """Re-add default events missing from the catalog; existing rows are never changed.

    Example: aitokens events seed
    """
    from analysis import DEFAULT_EVENTS
    from warehouse.db import open_warehouse
    from warehouse.studies import seed_events

    with open_warehouse(db) as con:
        added = seed_events(con, [e.to_dict() for e in DEFAULT_EVENTS])
    _publish(db)
    click.echo(f"Added {len(added)} default event(s){': ' + ', '.join(added) if added else ''}.")


# ---------------------------------------------------------------------------------- studies
@click.group("studies")
def studies_group() -> None:
    """Stored study runs (study_runs / study_results).

    Example: aitokens studies list
    """


@studies_group.command("list")
@click.option("--format", "fmt", type=click.Choice(("table", "csv", "json")), default="table")
@db_option
def studies_list(fmt: str, db: Path | None) -> None:
    """List stored runs, newest first.

    Example: aitokens studies list --format csv
    """
    from flows.cli.render import render_frame
    from warehouse.db import open_reader
    from warehouse.studies import list_studies

    ensure_reader_schema(db)
    with open_reader(db) as con:
        frame = list_studies(con)
    render_frame(frame, fmt)


@studies_group.command("show")
@click.argument("study_id")
@db_option
def studies_show(study_id: str, db: Path | None) -> None:
    """Print a stored run's summary, command and data fingerprint (a study or group id).

    Example: aitokens studies show st-20240601T120000-ab12cd-tokens
    """
    from warehouse.db import open_reader
    from warehouse.studies import load_study

    ensure_reader_schema(db)
    with open_reader(db) as con:
        runs = load_study(con, study_id)
    for run in runs:
        click.echo(
            f"Study {run.study_id} (group {run.group_id}, leg {run.leg}), created "
            f"{run.created_at:%Y-%m-%d %H:%M:%S} UTC, aitokens {run.package_version}"
        )
        click.echo(f"Command: {run.command}")
        series = ", ".join(f"{s.symbol}@{s.source}" for s in run.series)
        click.echo(f"Data: {series}; {list(run.date_range)}; SHA-256 {run.data_sha256}")
        click.echo(run.summary)


def register(cli: click.Group) -> None:
    """Add ``aitokens study``, ``aitokens events`` and ``aitokens studies`` to the CLI."""
    cli.add_command(study_command)
    cli.add_command(events_group)
    cli.add_command(studies_group)
