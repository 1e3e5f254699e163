"""Reports: the notebooks in ``notebooks/`` executed headless into self-contained HTML.

``build_reports`` checks that the warehouse holds what the notebooks need (else a clear
``ReportDataError`` naming the command that fills it), injects parameters papermill-style (a new
cell tagged ``injected-parameters`` right after the cell tagged ``parameters``), executes each
notebook with nbclient on a fresh kernel, and writes ``<out>/<name>.html`` (figures embedded as
data URIs, no external script), the executed ``<out>/<name>.ipynb`` and the PNG figures under
``<out>/figures/<name>/``.

The event notebook renders the study service's outcome (:mod:`flows.services.report_study`:
``aitokens study --event EVENT``, or a stored study with ``study``), section by section
(:mod:`flows.services.event_sections`), so its numbers are the CLI's; the sector notebook reads
through ``load_sector_inputs``. Every read is read-only, fully fetched and closed at once so the
daily ingestion never waits for a report.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from warehouse import report_inputs as reads
from warehouse.db import open_reader, resolve_db_path
from warehouse.errors import AitokensError, InputError, WarehouseError
from warehouse.files import (
    atomic_write_text,
    check_output_path,
    clean_stale_partials,
    fixable_os_errors,
    safe_file_stem,
    staging_name,
)

log = logging.getLogger("aitokens.report")

REPO_ROOT = Path(__file__).resolve().parents[2]
# Installed from a wheel the notebooks sit inside the package (pyproject's force-include);
# in a checkout they are the repository's own folder.
_PACKAGED_NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOK_DIR = _PACKAGED_NOTEBOOKS if _PACKAGED_NOTEBOOKS.is_dir() else REPO_ROOT / "notebooks"
TEMPLATE_DIR = NOTEBOOK_DIR / "templates"
TEMPLATE_NAME = "aitokens_report"
EVENT_NOTEBOOK = "sora_event_study"
SECTOR_NOTEBOOK = "ai_sector"
DEFAULT_EVENT = "sora"
DEFAULT_OUT = Path("reports")
KERNEL_TIMEOUT_S = 600
# Days of data the default study needs before day 0 (estimation window -120..-11, calendar days
# for crypto; a margin for equities, whose 120 sessions span about 175 calendar days).
LOOKBACK_DAYS = 180


class ReportDataError(InputError):
    """The warehouse lacks the data a report needs; the message names the command to run."""


class ReportExecutionError(WarehouseError):
    """A notebook raised while executing; the partial output is written beside the report."""


@dataclass
class ReportSummary:
    """What ``build_reports`` wrote."""

    db: Path
    out: Path
    html: list[Path] = field(default_factory=list)
    notebooks: list[Path] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)
    seconds: float = 0.0

    def lines(self) -> list[str]:
        out = [f"Reports from {self.db} in {self.out} ({self.seconds:.1f}s):"]
        for path in self.html:
            figs = [f for f in self.figures if f.parent.name == path.stem]
            out.append(f"  {path}  ({len(figs)} figures in {path.parent / 'figures' / path.stem})")
        return out


@dataclass
class SectorInputs:
    """What the sector notebook reads."""

    db: Path
    sector: pd.DataFrame  # ai_sector_daily
    snapshots: pd.DataFrame  # category_snapshots of artificial-intelligence
    members: pd.DataFrame  # latest snapshot: coin_id, symbol, name, rank, market_cap
    caps: pd.DataFrame  # long date, symbol, market_cap of category members (coingecko)
    prices: pd.DataFrame  # one series per symbol (warehouse.studies.choose_series, all history)
    # Caps from every source (issue 25; warehouse.caps): the tracked members' caps
    # (ai_member_caps: date, symbol, network, source, market_cap, counted), their daily sum,
    # the cited sector figures, the sources behind the caps with their licences, the lineage.
    member_caps: pd.DataFrame = field(default_factory=pd.DataFrame)
    tracked: pd.DataFrame = field(default_factory=pd.DataFrame)
    references: pd.DataFrame = field(default_factory=pd.DataFrame)
    cap_sources: pd.DataFrame = field(default_factory=pd.DataFrame)
    lineage: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def has_market_caps(self) -> bool:
        s = self.sector
        return bool(len(s)) and bool(s["market_cap_usd"].notna().any())

    @property
    def has_tracked_caps(self) -> bool:
        """Whether any tracked member has a cap from any source (CoinGecko, a cap file, Coin
        Metrics): the market-cap, coverage, top-member and concentration sections need it."""
        t = self.tracked
        return bool(len(t)) and bool(t["market_cap_usd"].notna().any())


def warehouse_path(db: str | os.PathLike[str] | None = None) -> Path:
    """The warehouse the notebooks read: ``db``, else resolved exactly as the CLI does
    (``AITOKENS_DB``, then ``aitokens.toml``'s ``[warehouse] path`` and project root, ...), so a
    notebook opened in Jupyter from ``notebooks/`` reads the same file as `aitokens report`."""
    if db is None:
        from flows.config import Settings

        return resolve_db_path(None, Settings.resolve().warehouse).absolute()
    return resolve_db_path(db).absolute()


def load_sector_inputs(db: str | os.PathLike[str] | None = None) -> SectorInputs:
    """Read the sector notebook's inputs read-only and close the file at once."""
    path = warehouse_path(db)
    with open_reader(path) as con:
        sector = reads.sector_daily(con)
        snapshots = reads.category_figures(con)
        members = reads.latest_members(con)
        caps = reads.member_market_caps(con)
        prices = reads.one_series_per_symbol(con)
        extra = _cap_inputs(con)
    for frame in (sector, caps, prices):
        if "date" in frame.columns:
            frame["date"] = pd.to_datetime(frame["date"])
    return SectorInputs(path, sector, snapshots, members, caps, prices, **extra)


def _cap_inputs(con) -> dict[str, pd.DataFrame]:
    """The sector inputs of :mod:`warehouse.caps` (empty frames for a file older than migration
    010, which a reader cannot migrate)."""
    import duckdb

    from warehouse import caps as cap_reads

    try:
        return {
            "member_caps": cap_reads.ai_member_caps(con),
            "tracked": cap_reads.ai_tracked_daily(con),
            "references": cap_reads.sector_references(con),
            "cap_sources": cap_reads.cap_licences(con),
            "lineage": cap_reads.lineage(con),
        }
    except duckdb.CatalogException:
        return {}


def report_events(db: str | os.PathLike[str] | None, event: str = DEFAULT_EVENT):
    """The event to report (a catalog name, or a date or zoned timestamp) and every other
    event of the warehouse's catalog, for the timeline and as confounders (those marked so,
    e.g. NVIDIA results, are flagged when they fall inside a window). The catalog is what
    analysts edit with `aitokens events`; a warehouse without one uses the built-in list."""
    from analysis import DEFAULT_EVENTS, Event
    from flows.services.study import resolve_event
    from warehouse.studies import catalog_events

    path = warehouse_path(db)
    with open_reader(path) as con:
        if not reads.has_event_catalog(con):
            from analysis import get_event

            ev = get_event(event)
            return ev, [e for e in DEFAULT_EVENTS if e.name != ev.name]
        ev = resolve_event(con, event)
        others = [
            Event(**{k: v for k, v in row.items() if k != "is_confounder"})
            for row in catalog_events(con)
            if row["name"] != ev.name
        ]
    return ev, others


def event_day0(db: str | os.PathLike[str] | None, event: str) -> dt.date:
    """Day 0 of ``event`` on the crypto calendar (UTC day)."""
    ev, _ = report_events(db, event)
    return ev.map("crypto").session.date()


def equity_notes(
    held: Sequence[str],
    studied: Sequence[str],
    excluded: pd.DataFrame | None = None,
    failure: str | None = None,
    confounders: Mapping[str, tuple[int, str]] | None = None,
) -> list[str]:
    """What the report's equity section says, true for this warehouse and this event.

    ``held``: single equities in the warehouse; ``studied``: those the equity leg kept;
    ``excluded``: the leg's ``excluded`` frame (``asset``, ``reason``); ``failure``: why the leg
    could not be estimated at all; ``confounders``: ``{asset: (day, description)}`` of
    confounding events inside the equities' event window (:func:`analysis.plots.confounder_days`).
    Returns Markdown paragraphs (rendered with HTML escaped, see :func:`_html_exporter`).
    """
    notes: list[str] = []
    if not held:
        return [
            "No single equity (asset_class equity) is held: run `aitokens ingest` (Yahoo: NVDA, "
            "AMD, SPY, QQQ) to compare with NVIDIA and AMD."
        ]
    reasons: dict[str, str] = {}
    if excluded is not None and len(excluded):
        for row in excluded.itertuples(index=False):
            if row.asset in held:
                reasons.setdefault(str(row.asset), str(row.reason))
    left_out = [s for s in held if s not in studied]
    if left_out:
        why = "; ".join(
            f"{s}: {reasons.get(s) or failure or 'not estimated'}" for s in sorted(left_out)
        )
        verb = "is" if len(left_out) == 1 else "are"
        notes.append(
            f"{', '.join(sorted(left_out))} {verb} held but excluded from the equity leg ({why})."
        )
    for day, what in sorted({hit for a, hit in (confounders or {}).items() if a in studied}):
        notes.append(
            f"{what} falls on day {day:+d} of the equities' event window (NYSE sessions): "
            "equity CARs over windows that reach it mix both events."
        )
    return notes


# --------------------------------------------------------------------------- preflight
def check_report_data(db: str | os.PathLike[str] | None, event: str = DEFAULT_EVENT) -> None:
    """Raise :class:`ReportDataError` (exit 2) when the warehouse cannot feed the reports.

    No price at all, no AI token, no BTC (the tokens' benchmark), or no data around the event:
    each message names the command that fills the gap.
    """
    path = warehouse_path(db)
    if not path.exists():
        raise ReportDataError(
            f"no warehouse at {path}: run `aitokens import FILE.csv` or `aitokens ingest` first"
        )
    day0 = event_day0(path, event)
    with open_reader(path) as con:
        spans = reads.symbol_spans(con)
    if not spans:
        raise ReportDataError(
            f"the warehouse {path} holds no price data: run `aitokens import FILE.csv` or "
            "`aitokens ingest` first"
        )
    tokens = [r for r in spans if r.asset_class == "ai_token"]
    if not tokens:
        raise ReportDataError(
            f"the warehouse {path} holds no AI-token prices (asset_class ai_token): run "
            "`aitokens ingest` (CoinGecko's artificial-intelligence category) or "
            "`aitokens import FILE.csv` with asset_class ai_token first"
        )
    if not any(r.symbol == "BTC" for r in spans):
        raise ReportDataError(
            f"the warehouse {path} holds no BTC closes (the AI tokens' benchmark): run "
            "`aitokens ingest` or import a CSV with BTC first"
        )
    need_from = day0 - dt.timedelta(days=LOOKBACK_DAYS)
    need_to = day0 + dt.timedelta(days=10)
    covered = [r for r in tokens if r.first <= day0 - dt.timedelta(days=60) and r.last >= day0]
    if not covered:
        raise ReportDataError(
            f"the warehouse {path} holds no AI-token prices around {event} ({day0}; the study "
            f"needs closes from about {need_from} to {need_to}): {_fill_advice(need_from)}"
        )


def _fill_advice(need_from: dt.date) -> str:
    """The command that can fetch closes from ``need_from`` on the configured CoinGecko plan:
    ``backfill --since`` when the plan reaches that far back, else a CSV import (keyless and
    demo plans serve only the past 365 days; advising a backfill there would fail)."""
    from flows.sources.coingecko.config import CoinGeckoConfig
    from flows.sources.coingecko.history import earliest_close_date

    since = need_from.replace(day=1).isoformat()
    try:
        config = CoinGeckoConfig.from_env()
    except AitokensError:  # a bad key or plan: `aitokens ingest` says so on its own
        config = None
    floor = None if config is None else earliest_close_date(config)
    if config is None or floor is None or floor <= need_from.replace(day=1):
        return f"run `aitokens backfill --since {since}` or import a CSV covering them first"
    return (
        f"import a CSV covering them with `aitokens import FILE.csv` (CoinGecko's "
        f"{config.plan} plan serves closes from {floor} only, so a backfill cannot reach "
        f"{need_from}; with a pro key, COINGECKO_PLAN=pro, run `aitokens backfill --since "
        f"{since}`)"
    )


# --------------------------------------------------------------------------- notebook execution
def notebook_path(name: str) -> Path:
    return NOTEBOOK_DIR / f"{name}.ipynb"


def inject_parameters(nb, parameters: Mapping[str, Any]):
    """Insert a cell tagged ``injected-parameters`` after the cell tagged ``parameters``
    (papermill's convention: the defaults stay visible, the injected values win)."""
    import nbformat

    lines = ["# Parameters injected by `aitokens report`"]
    for key, value in parameters.items():
        lines.append(f"{key} = {value!r}")
    new = nbformat.v4.new_code_cell("\n".join(lines))
    new.metadata["tags"] = ["injected-parameters"]
    cells = list(nb.cells)
    for cell in cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if "injected-parameters" in tags:
            cells.remove(cell)
            break
    at = next(
        (
            i + 1
            for i, c in enumerate(cells)
            if "parameters" in c.get("metadata", {}).get("tags", [])
        ),
        0,
    )
    cells.insert(at, new)
    nb.cells = cells
    return nb


def _html_exporter():
    """The report's nbconvert exporter: our offline template, no code, figures embedded, and
    Markdown rendered with raw HTML escaped (see :func:`_safe_markdown_exporter`)."""
    exporter = _safe_markdown_exporter()(
        template_name=TEMPLATE_NAME,
        extra_template_basedirs=[str(TEMPLATE_DIR)],
    )
    exporter.exclude_input = True
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    exporter.embed_images = True
    return exporter


@functools.cache
def _safe_markdown_exporter():
    """``HTMLExporter`` whose Markdown filter escapes raw HTML and refuses ``javascript:``
    links: the one place where report text becomes HTML.

    The notebooks display Markdown built from outside strings (an event description from the
    catalog, coin names from CoinGecko, a caveat with an upstream error text); nbconvert's own
    filter passes raw HTML through (``escape=False``), so ``<img onerror=...>`` in a
    description would run in the reader's browser. Our Markdown cells hold no raw HTML, so
    escaping costs nothing. Table outputs are escaped where they are built
    (``DataFrame.to_html`` escapes; ``analysis.plots.use_report_style`` makes ``Styler`` escape;
    ``analysis.plots.Callout`` escapes).
    """
    from jinja2 import pass_context
    from nbconvert import HTMLExporter
    from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath

    class SafeMarkdownHTMLExporter(HTMLExporter):
        @pass_context
        def markdown2html(self, context, source):
            cell = context.get("cell", {})
            renderer = IPythonRenderer(
                escape=True,
                allow_harmful_protocols=False,
                attachments=cell.get("attachments", {}),
                embed_images=self.embed_images,
                path=context.get("resources", {}).get("metadata", {}).get("path", ""),
                anchor_link_text=self.anchor_link_text,
                exclude_anchor_links=self.exclude_anchor_links,
                **self.lexer_options,
            )
            return MarkdownWithMath(renderer=renderer).render(source)

    return SafeMarkdownHTMLExporter


def _client(nb, timeout: int):
    from nbclient import NotebookClient

    return NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK_DIR)}},
        # ipykernel warns on stderr about plain TCP on localhost; keep the log for errors
        extra_arguments=["--IPKernelApp.log_level=ERROR"],
    )


def _kernel_env() -> dict[str, str]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore::DeprecationWarning"}
    env.pop("MPLBACKEND", None)  # the notebook selects the inline backend itself
    return env


async def _execute_async(
    name: str,
    parameters: Mapping[str, Any],
    out: Path,
    stem: str,
    timeout: int,
    db: Path | None = None,
) -> tuple[Path, Path]:
    """Execute one notebook and write its HTML and executed notebook atomically.

    The figures go to ``parameters["figures_dir"]`` (a staging folder when called from
    :func:`build_reports`); the previous ``<stem>.html`` stays until the new one is complete, and
    a failed run writes ``<stem>.failed.html`` beside it instead of replacing it.
    """
    import nbformat
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(notebook_path(name), as_version=4)
    inject_parameters(nb, parameters)
    failure: CellExecutionError | None = None
    try:
        await _client(nb, timeout).async_execute(env=_kernel_env())
    except CellExecutionError as exc:
        failure = exc
    body, _ = _html_exporter().from_notebook_node(nb, resources={"metadata": {"name": stem}})
    html_path = out / (f"{stem}.failed.html" if failure is not None else f"{stem}.html")
    ipynb_path = out / (f"{stem}.failed.ipynb" if failure is not None else f"{stem}.ipynb")
    with fixable_os_errors():
        atomic_write_text(ipynb_path, nbformat.writes(nb), db=db)
        atomic_write_text(html_path, body, db=db)
    if failure is not None:
        ename = getattr(failure, "ename", type(failure).__name__)
        evalue = getattr(failure, "evalue", str(failure).splitlines()[0])
        raise ReportExecutionError(
            f"notebook {name} failed: {ename}: {evalue} (partial output in {html_path}; "
            f"the previous report, if any, is left in place)"
        )
    for stale in (out / f"{stem}.failed.html", out / f"{stem}.failed.ipynb"):
        stale.unlink(missing_ok=True)
    return html_path, ipynb_path


def execute_notebook(
    name: str,
    parameters: Mapping[str, Any],
    *,
    out: Path,
    output_name: str | None = None,
    timeout: int = KERNEL_TIMEOUT_S,
) -> tuple[Path, Path]:
    """Execute ``notebooks/<name>.ipynb`` with ``parameters`` on a fresh kernel; write the HTML
    and the executed notebook to ``out``. Returns ``(html, ipynb)``."""
    import asyncio

    return asyncio.run(_execute_async(name, parameters, out, output_name or name, timeout))


async def _execute_all(jobs: list[tuple[str, dict[str, Any], Path, str]], timeout: int, db: Path):
    """Run the notebooks side by side; each outcome is ``(html, ipynb)`` or its exception."""
    import asyncio

    results = await asyncio.gather(
        *(_execute_async(name, params, out, stem, timeout, db) for name, params, out, stem in jobs),
        return_exceptions=True,
    )
    return results


def stored_study_event(db: str | os.PathLike[str], study: str) -> str:
    """The (first) event of stored study ``study`` (a study or group id); unknown ids are
    refused with close matches (exit 2)."""
    from flows.services.study import ensure_reader_schema
    from warehouse.studies import load_study

    ensure_reader_schema(Path(db))
    with open_reader(db) as con:
        runs = load_study(con, study)
    return str(runs[0].spec["events"][0]["name"])


def report_stem(name: str, event: str) -> str:
    """File-name stem of a report: ``<event>_event_study`` for the event notebook (the event
    name made safe for a file name, :func:`warehouse.files.safe_file_stem`), else ``name``."""
    return f"{safe_file_stem(event)}_event_study" if name == EVENT_NOTEBOOK else name


def _swap_folder(staging: Path, target: Path) -> None:
    """Put the finished ``staging`` folder at ``target``; the old one goes only after that."""
    aside = None
    if target.exists():
        aside = staging_name(target, "old")
        target.rename(aside)
    staging.rename(target)
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)


def build_reports(
    db: str | os.PathLike[str] | None = None,
    *,
    event: str = DEFAULT_EVENT,
    out: str | os.PathLike[str] = DEFAULT_OUT,
    caveats: Sequence[str] = (),
    notebooks: Sequence[str] = (EVENT_NOTEBOOK, SECTOR_NOTEBOOK),
    study: str | None = None,
) -> ReportSummary:
    """Check the warehouse, then execute each notebook into ``out`` (see the module doc).

    Every file is written beside its target and renamed into place, so a killed run or a full
    disk leaves the previous report whole; the figures are drawn into a hidden staging folder
    that replaces ``figures/<stem>`` only when its notebook succeeded. Leftovers of a killed
    run (``.NAME.partial-PID-*``) are removed first. No output may be a warehouse file.
    """
    started = time.monotonic()
    path = resolve_db_path(db).resolve()
    if study is not None:  # the stored study's own event names the report
        event = stored_study_event(path, study)
    check_report_data(path, event)
    from flows.services.quality import quarantine_caveats  # issue 22

    caveats = [*caveats, *quarantine_caveats(path)]
    out_dir = Path(out).resolve()
    with fixable_os_errors():
        out_dir.mkdir(parents=True, exist_ok=True)
    summary = ReportSummary(path, out_dir)
    jobs = []
    staged: dict[str, tuple[Path, Path]] = {}
    for name in notebooks:
        stem = report_stem(name, event)
        fig_dir = out_dir / "figures" / stem
        for target in (out_dir / f"{stem}.html", out_dir / f"{stem}.ipynb"):
            check_output_path(target, path)
            clean_stale_partials(target)
        clean_stale_partials(fig_dir)
        staging = staging_name(fig_dir)
        staged[stem] = (staging, fig_dir)
        params = {
            "db": str(path),
            "event": event,
            "study_id": study,
            "figures_dir": str(staging),
            "caveats": list(caveats),
        }
        jobs.append((name, params, out_dir, stem))
    clean_stale_partials(out_dir / "manifest.json")
    # the notebooks only read the warehouse: run their kernels side by side
    import asyncio

    log.info("executing %s into %s", ", ".join(j[0] for j in jobs), out_dir)
    try:
        outcomes = asyncio.run(_execute_all(jobs, KERNEL_TIMEOUT_S, path))
        with fixable_os_errors():
            for (staging, fig_dir), outcome in zip(staged.values(), outcomes, strict=True):
                if not isinstance(outcome, BaseException):
                    staging.mkdir(parents=True, exist_ok=True)  # a report without figures
                    _swap_folder(staging, fig_dir)
    finally:
        for staging, _ in staged.values():
            shutil.rmtree(staging, ignore_errors=True)
    errors = [r for r in outcomes if isinstance(r, BaseException)]
    if errors:
        raise errors[0]
    results = [r for r in outcomes if not isinstance(r, BaseException)]
    for html, ipynb in results:
        summary.html.append(html)
        summary.notebooks.append(ipynb)
        summary.figures.extend(sorted((out_dir / "figures" / html.stem).glob("*.png")))
    summary.seconds = time.monotonic() - started
    manifest = {
        "db": str(path),
        "event": event,
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "caveats": list(caveats),
        "html": [p.name for p in summary.html],
        "figures": [str(p.relative_to(out_dir)) for p in summary.figures],
    }
    with fixable_os_errors():
        atomic_write_text(out_dir / "manifest.json", json.dumps(manifest, indent=2), db=path)
    return summary


__all__ = [
    "ReportDataError",
    "ReportExecutionError",
    "ReportSummary",
    "SectorInputs",
    "build_reports",
    "check_report_data",
    "equity_notes",
    "execute_notebook",
    "inject_parameters",
    "load_sector_inputs",
    "report_events",
]
