"""The event catalog, the series an event study reads, and stored study runs.

Three jobs, all SQL with every value bound as a parameter:

- ``events``: the analyst-editable catalog of named events (``list_events``, ``add_event``,
  ``remove_event``, ``seed_events``); rows come back as plain dicts that
  ``analysis.Event(**row)`` accepts once ``is_confounder`` is popped.
- series selection for a study: which symbols exist (``series_catalog``), close matches for a
  mistyped one, the members of a category, one source per symbol (never two vendors in one
  series), and the long price panel of the chosen series (``load_series``).
- ``study_runs`` / ``study_results``: one run per study leg with its spec and data fingerprint,
  and its results in long form, written together in one transaction (``save_studies``);
  ``load_study`` and ``compare_rows`` let a rerun check that it reproduces the stored numbers.

The warehouse never imports the analysis engine: result frames come in as pandas objects.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from warehouse.db import scalar, transaction
from warehouse.errors import InputError, WarehouseError
from warehouse.runs import utcnow

EVENT_KINDS_RE = re.compile(r"[a-z][a-z0-9_-]{0,31}")
MAX_NAME_LEN = 100
AI_CATEGORY = "artificial-intelligence"
AI_ASSET_CLASS = "ai_token"
RESULT_COLUMNS = (
    "study_id",
    "kind",
    "grp",
    "event",
    "asset",
    "label",
    "test",
    "value",
    "std",
    "tstat",
    "pvalue",
    "n",
    "details",
)
RESULT_KEY = ("kind", "grp", "event", "asset", "label", "test")
NUMERIC_RESULT_COLUMNS = ("value", "std", "tstat", "pvalue")


class UnknownEventError(InputError):
    """An event name is neither in the catalog nor a date or timestamp."""


class UnknownSymbolError(InputError):
    """A symbol, source or category is not in the warehouse."""


class StudyNotFoundError(InputError):
    """No stored study run has the given id."""


class StudyMismatchError(WarehouseError):
    """A rerun did not reproduce the numbers stored for the run."""


# ---------------------------------------------------------------------------------- event catalog
def parse_when(text: str, *, what: str = "--when") -> tuple[dt.date, pd.Timestamp | None]:
    """A date (``2024-02-15``) or a timezone-aware timestamp (``2024-02-21T16:20-05:00``).

    Returns the announced (local) date and the instant (None for a bare date). A time of day
    without a zone is refused: which session it falls in would be a guess.
    """
    raw = (text or "").strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
        try:
            return dt.date.fromisoformat(raw), None
        except ValueError:
            raise InputError(f"{what} {raw!r} is not a valid date") from None
    try:
        ts = pd.Timestamp(raw)
    except (ValueError, TypeError):
        raise InputError(
            f"{what} {raw!r} is neither a date (2024-02-15) nor a timestamp with a zone "
            "(2024-02-21T16:20-05:00)"
        ) from None
    if pd.isna(ts):
        raise InputError(f"{what} is empty: give a date such as 2024-02-15")
    if ts.tzinfo is None:
        # Suggest what parses: the canonical ISO form of what was understood, never the raw
        # text with a zone glued on ("2024/02/15Z" would be refused again).
        if ts == ts.normalize() and ":" not in raw:
            raise InputError(
                f"{what} {raw!r} is not written as a date YYYY-MM-DD: use {ts:%Y-%m-%d}"
            )
        local = f"{ts:%Y-%m-%dT%H:%M}" + (f":{ts:%S}" if ts.second else "")
        raise InputError(
            f"{what} {raw!r} has a time of day but no time zone: add one, e.g. "
            f"{local}Z (UTC) or {local}-05:00 (New York, winter)"
        )
    return ts.date(), ts


def validate_event_name(name: str) -> str:
    """A catalog name: 1-100 printable characters, not a date (that would shadow --event DATE)."""
    if name is None or not name.strip():
        raise InputError("--name is empty: give the event a short name such as 'sora'")
    if name != name.strip():
        raise InputError(f"--name {name!r} has leading or trailing spaces")
    if len(name) > MAX_NAME_LEN:
        raise InputError(f"--name is {len(name)} characters long; at most {MAX_NAME_LEN}")
    if any(not ch.isprintable() for ch in name):
        raise InputError(f"--name {name!r} holds control characters")
    if _looks_like_time(name):
        raise InputError(
            f"--name {name!r} reads as a date or time, which `--event` would take as a date; "
            "choose a word such as 'sora'"
        )
    return name


def _looks_like_time(text: str) -> bool:
    return bool(re.match(r"\d{4}-\d{2}-\d{2}", text.strip()))


def validate_kind(kind: str) -> str:
    value = (kind or "").strip().lower()
    if not EVENT_KINDS_RE.fullmatch(value):
        raise InputError(
            f"--kind {kind!r} must be a short lower-case word (letters, digits, _ or -), "
            "e.g. ai, earnings, macro"
        )
    return value


_EVENT_SELECT = (
    "SELECT name, strftime(event_date, '%Y-%m-%d') AS event_date, "
    "CASE WHEN event_ts IS NULL THEN NULL "
    "ELSE strftime(timezone('UTC', event_ts), '%Y-%m-%dT%H:%M:%S+00:00') END AS event_ts, "
    "coalesce(description, '') AS description, kind, is_confounder, origin, updated_at "
    "FROM events"
)


def list_events(con: duckdb.DuckDBPyConnection, *, kind: str | None = None) -> pd.DataFrame:
    """The catalog, oldest first; ``event_ts`` is shown in UTC."""
    sql, params = _EVENT_SELECT, []
    if kind:
        sql += " WHERE kind = ?"
        params.append(kind)
    return con.execute(sql + " ORDER BY event_date, name", params).df()


def _row_to_event(row: Mapping[str, Any]) -> dict[str, Any]:
    when = row["event_ts"] if isinstance(row["event_ts"], str) else row["event_date"]
    return {
        "name": row["name"],
        "when": when,
        "description": row["description"] or "",
        "kind": row["kind"],
        "is_confounder": bool(row["is_confounder"]),
    }


def event_time_sources(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Where each timed catalog event's time comes from (migration 006; absent: unknown)."""
    has = scalar(
        con,
        "SELECT count(*) FROM information_schema.columns "
        "WHERE table_name = 'events' AND column_name = 'time_source'",
    )
    if not has:
        return {}
    rows = con.execute(
        "SELECT name, time_source FROM events WHERE time_source IS NOT NULL"
    ).fetchall()
    return {str(n): str(src) for n, src in rows}


def catalog_events(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Every catalog event as ``{name, when, description, kind, is_confounder}``."""
    return [_row_to_event(r) for r in list_events(con).to_dict("records")]


def find_event(con: duckdb.DuckDBPyConnection, name: str) -> dict[str, Any]:
    """The catalog event called ``name`` (exact, else case-insensitive when unambiguous)."""
    events = catalog_events(con)
    exact = [e for e in events if e["name"] == name]
    if exact:
        return exact[0]
    folded = [e for e in events if e["name"].lower() == name.lower()]
    if len(folded) == 1:
        return folded[0]
    names = [e["name"] for e in events]
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise UnknownEventError(
        f"no event {name!r} in the catalog{hint} (give a date such as 2024-02-15, "
        "or add it: aitokens events add --name ... --when ...)"
    )


def add_event(
    con: duckdb.DuckDBPyConnection,
    *,
    name: str,
    when: str,
    description: str = "",
    kind: str = "other",
    is_confounder: bool | None = None,
    replace: bool = False,
) -> dict[str, Any]:
    """Validate and insert (or, with ``replace``, overwrite) one catalog event.

    ``is_confounder`` defaults to true for ``kind='earnings'``.
    """
    name = validate_event_name(name)
    day, ts = parse_when(when)
    kind = validate_kind(kind)
    confounder = (kind == "earnings") if is_confounder is None else bool(is_confounder)
    with transaction(con):
        exists = scalar(con, "SELECT count(*) FROM events WHERE name = ?", [name])
        if exists and not replace:
            raise InputError(
                f"event {name!r} already exists: pass --replace to overwrite it, or remove it "
                "first (aitokens events remove)"
            )
        con.execute(
            "INSERT OR REPLACE INTO events "
            "(name, event_date, event_ts, description, kind, is_confounder, origin, updated_at) "
            "VALUES (?, ?, ?::TIMESTAMPTZ, ?, ?, ?, 'analyst', ?)",
            [
                name,
                day,
                None if ts is None else ts.isoformat(),
                description or "",
                kind,
                confounder,
                utcnow(),
            ],
        )
    return find_event(con, name)


def remove_event(con: duckdb.DuckDBPyConnection, name: str) -> dict[str, Any]:
    """Delete the catalog event called exactly ``name``; return what was removed."""
    events = {e["name"]: e for e in catalog_events(con)}
    if name not in events:
        close = difflib.get_close_matches(name, list(events), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UnknownEventError(f"no event {name!r} in the catalog{hint}")
    with transaction(con):
        con.execute("DELETE FROM events WHERE name = ?", [name])
    return events[name]


def seed_events(con: duckdb.DuckDBPyConnection, events: Iterable[Mapping[str, str]]) -> list[str]:
    """Insert the given default events whose names are missing; never touch existing rows.

    Earnings events are confounders. Returns the names inserted.
    """
    have = {e["name"] for e in catalog_events(con)}
    added = []
    with transaction(con):
        for ev in events:
            if ev["name"] in have:
                continue
            day, ts = parse_when(ev["when"], what=f"default event {ev['name']}")
            con.execute(
                "INSERT INTO events (name, event_date, event_ts, description, kind, "
                "is_confounder, origin, updated_at) VALUES (?, ?, ?::TIMESTAMPTZ, ?, ?, ?, "
                "'seed', ?)",
                [
                    ev["name"],
                    day,
                    None if ts is None else ts.isoformat(),
                    ev.get("description", ""),
                    ev.get("kind") or "other",
                    ev.get("kind") == "earnings",
                    utcnow(),
                ],
            )
            added.append(ev["name"])
    return added


# ---------------------------------------------------------------------------------- series
def series_catalog(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Every series: symbol, asset_id, asset_class, calendar, source, first/last date, n_obs."""
    return con.execute(
        "SELECT symbol, asset_id, asset_class, calendar, source, min(date) AS first_date, "
        "max(date) AS last_date, count(*) AS n_obs FROM daily_prices "
        "GROUP BY ALL ORDER BY symbol, source, asset_id"
    ).df()


HOURLY_CALENDAR = "crypto_1h"
"""The engine's hourly calendar code (``analysis.calendars.HOURLY``; the warehouse never imports
the engine)."""


def hourly_series_catalog(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Every hourly series: symbol, asset_id, asset_class, calendar (``crypto_1h`` for 24/7
    classes), source, first_ts, last_ts (UTC hour closes, naive), n_obs."""
    return con.execute(
        "SELECT symbol, asset_id, asset_class, "
        "CASE WHEN calendar = 'crypto' THEN ? ELSE calendar END AS calendar, source, "
        "min(ts) AS first_ts, max(ts) AS last_ts, count(*) AS n_obs FROM hourly_prices "
        "GROUP BY ALL ORDER BY symbol, source, asset_id",
        [HOURLY_CALENDAR],
    ).df()


def load_hourly_series(
    con: duckdb.DuckDBPyConnection,
    series: Iterable[tuple[str, str]],
    *,
    ts_range: tuple[str, str] | None = None,
) -> pd.DataFrame:
    """Long hourly closes of exactly the given ``(asset_id, source)`` series, optionally within
    ``ts_range`` (inclusive UTC hour closes), in the shape of :func:`load_series`: ``date`` is
    the hour's UTC close time (naive), ``calendar`` is ``crypto_1h``."""
    pairs = list(series)
    params: list[Any] = [HOURLY_CALENDAR, [a for a, _ in pairs], [s for _, s in pairs]]
    where = ""
    if ts_range is not None:
        lo, hi = (pd.Timestamp(v) for v in ts_range)
        lo = lo.tz_convert("UTC").tz_localize(None) if lo.tzinfo is not None else lo
        hi = hi.tz_convert("UTC").tz_localize(None) if hi.tzinfo is not None else hi
        where = "WHERE p.ts BETWEEN ? AND ?"
        params += [lo.to_pydatetime(), hi.to_pydatetime()]
    frame = con.execute(
        "SELECT p.ts AS date, p.symbol, p.asset_id, p.asset_class, "
        "CASE WHEN p.calendar = 'crypto' THEN ? ELSE p.calendar END AS calendar, p.source, "
        "p.close, p.market_cap FROM hourly_prices AS p "
        "JOIN (SELECT unnest(?::VARCHAR[]) AS asset_id, unnest(?::VARCHAR[]) AS source) AS k "
        f"USING (asset_id, source) {where} ORDER BY p.symbol, p.ts",
        params,
    ).df()
    frame["date"] = pd.to_datetime(frame["date"])
    return frame


def resolve_symbols(catalog: pd.DataFrame, symbols: Sequence[str], *, what: str) -> list[str]:
    """Upper-case ``symbols`` and check each is held; unknown ones are named with close matches."""
    known = sorted(set(catalog["symbol"]))
    out: list[str] = []
    missing: list[str] = []
    for raw in symbols:
        sym = raw.strip().upper()
        if not sym:
            continue
        (out if sym in known else missing).append(sym)
    if missing:
        parts = []
        for sym in missing:
            close = difflib.get_close_matches(sym, known, n=3, cutoff=0.5)
            parts.append(f"{sym} (close matches: {', '.join(close)})" if close else sym)
        raise UnknownSymbolError(
            f"{what}: not in the warehouse: {'; '.join(parts)}. Symbols held: "
            f"{', '.join(known) or 'none (run aitokens import or aitokens ingest first)'}"
        )
    return list(dict.fromkeys(out))


def category_symbols(
    con: duckdb.DuckDBPyConnection, category: str, *, as_of: dt.date | None = None
) -> tuple[list[str], str]:
    """Symbols of a category, with a sentence saying where they came from.

    ``artificial-intelligence`` also takes every imported ``ai_token`` symbol. CoinGecko members
    come from the latest membership snapshot on or before ``as_of`` (else the earliest one:
    today's members stand in for the past, a survivorship bias the note states).
    """
    notes, symbols = [], []
    if category == AI_CATEGORY:
        rows = con.execute(
            "SELECT DISTINCT symbol FROM daily_prices WHERE asset_class = ? ORDER BY 1",
            [AI_ASSET_CLASS],
        ).fetchall()
        if rows:
            symbols += [r[0] for r in rows]
            notes.append(f"{len(rows)} symbols with asset_class '{AI_ASSET_CLASS}'")
    snaps = [
        r[0]
        for r in con.execute(
            "SELECT DISTINCT snapshot_date FROM category_members WHERE category_id = ? ORDER BY 1",
            [category],
        ).fetchall()
    ]
    if snaps:
        before = [s for s in snaps if as_of is None or s <= as_of]
        snap = before[-1] if before else snaps[0]
        members = con.execute(
            "SELECT DISTINCT upper(c.symbol) FROM category_members m "
            "JOIN coins c USING (coin_id) "
            "WHERE m.category_id = ? AND m.snapshot_date = ? "
            "AND upper(c.symbol) IN (SELECT symbol FROM daily_prices) ORDER BY 1",
            [category, snap],
        ).fetchall()
        symbols += [r[0] for r in members]
        bias = "" if before else " (after the event: survivorship bias)"
        notes.append(f"{len(members)} CoinGecko members with prices, snapshot {snap}{bias}")
    if not symbols:
        known = [
            r[0]
            for r in con.execute(
                "SELECT DISTINCT category_id FROM category_members ORDER BY 1"
            ).fetchall()
        ]
        raise UnknownSymbolError(
            f"category {category!r} has no members with prices in the warehouse (categories "
            f"held: {', '.join(known) or 'none'}; imported AI tokens count for {AI_CATEGORY})"
        )
    return list(dict.fromkeys(symbols)), "; ".join(notes)


@dataclass(frozen=True)
class SeriesChoice:
    """The one series (asset_id, source) a study reads for a symbol, and why."""

    symbol: str
    asset_id: str
    source: str
    asset_class: str
    calendar: str
    first_date: dt.date
    last_date: dt.date
    n_obs: int
    reason: str
    alternatives: tuple[str, ...] = field(default=())
    in_span: int = 0  # observations inside the span the choice counted (all held without one)

    def to_dict(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "asset_id": self.asset_id,
            "source": self.source,
            "asset_class": self.asset_class,
            "calendar": self.calendar,
            "first_date": self.first_date.isoformat(),
            "last_date": self.last_date.isoformat(),
            "n_obs": self.n_obs,
            "reason": self.reason,
        }


def parse_source_prefs(values: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """``--source NAME`` (preferred everywhere) and ``--source SYMBOL=NAME`` (one symbol)."""
    general, per_symbol = [], {}
    for raw in values:
        text = raw.strip()
        if "=" in text:
            sym, _, src = text.partition("=")
            if not sym.strip() or not src.strip():
                raise InputError(f"--source {raw!r}: write SOURCE or SYMBOL=SOURCE")
            per_symbol[sym.strip().upper()] = src.strip()
        elif text:
            general.append(text)
    return general, per_symbol


def pick_series(
    cands: pd.DataFrame,
    symbol: str,
    general: Sequence[str],
    per_symbol: Mapping[str, str],
    *,
    prefix: str,
    what: str,
    most: str,
    label: str,
) -> tuple[pd.Series, str]:
    """The one series of ``symbol`` among ``cands`` (columns asset_id, source, in_span), and
    why: a ``SYMBOL=SOURCE`` preference, else the only one, else a general ``SOURCE``
    preference, else the most observations in the span (ties: source name, then asset id).
    Daily and hourly panels both choose with it; ``prefix``, ``what``, ``most`` and ``label``
    (``{source}``/``{n}``) word the reason and the errors for each."""
    ordered = cands.sort_values(
        ["in_span", "source", "asset_id"], ascending=[False, True, True], kind="stable"
    )
    if symbol in per_symbol:
        want = per_symbol[symbol]
        pick = ordered[ordered["source"] == want]
        if pick.empty:
            raise UnknownSymbolError(
                f"{prefix}{symbol}={want}: {symbol} has no {what} from {want} (its sources: "
                f"{', '.join(sorted(cands['source']))})"
            )
        return pick.iloc[0], f"{prefix}{symbol}={want}"
    if len(ordered) == 1:
        return ordered.iloc[0], "only source"
    held = set(ordered["source"])
    preferred = next((src for src in general if src in held), None)
    if preferred is not None:
        return ordered[ordered["source"] == preferred].iloc[0], f"{prefix}{preferred}"
    labels = [
        label.format(source=src, n=n)
        for src, n in zip(cands["source"], cands["in_span"], strict=True)
    ]
    return ordered.iloc[0], f"{most} " + ", ".join(labels)


def choose_series(
    con: duckdb.DuckDBPyConnection,
    symbols: Sequence[str],
    *,
    spans: Mapping[str, tuple[Any, Any]] | None = None,
    sources: Sequence[str] = (),
    clock: str = "1d",
) -> dict[str, SeriesChoice]:
    """One series per symbol, the one rule every study, report and query uses: a ``--source``
    preference, else the most observations in the study's span on the series' calendar
    (``spans[calendar]``: dates for the daily clock, UTC hour closes for ``clock="1h"``, whose
    calendar is ``crypto_1h``), ties broken by source name then asset id. ``spans=None`` counts
    every observation held (a report over the whole history)."""
    hourly = clock == "1h"
    table, at = ("hourly_prices", "ts") if hourly else ("daily_prices", "date")
    general, per_symbol = parse_source_prefs(sources)
    cat = hourly_series_catalog(con) if hourly else series_catalog(con)
    if hourly:
        cat = cat.rename(columns={"first_ts": "first_date", "last_ts": "last_date"})
    cat = cat[cat["symbol"].isin(list(symbols))]
    counts: dict[tuple[str, str], int] = {}
    if spans is None:
        counts = {
            (a, s): int(n)
            for a, s, n in zip(cat["asset_id"], cat["source"], cat["n_obs"], strict=True)
        }
    for cal, (lo, hi) in (spans or {}).items():
        cal_sql = "crypto" if cal == HOURLY_CALENDAR else cal
        rows = con.execute(
            f"SELECT asset_id, source, count(*) FROM {table} "
            f"WHERE calendar = ? AND {at} BETWEEN ? AND ? "
            "AND symbol IN (SELECT unnest(?::VARCHAR[])) GROUP BY ALL",
            [cal_sql, lo, hi, list(symbols)],
        ).fetchall()
        counts.update({(a, s): int(n) for a, s, n in rows})
    known_sources = set(cat["source"])
    for src in general:
        if src not in known_sources:
            raise UnknownSymbolError(
                f"--source {src}: no series of the study's symbols comes from it (sources: "
                f"{', '.join(sorted(known_sources))})"
            )
    out: dict[str, SeriesChoice] = {}
    for sym in symbols:
        cands = cat[cat["symbol"] == sym].copy()
        cands["in_span"] = [
            counts.get((a, s), 0) for a, s in zip(cands["asset_id"], cands["source"], strict=True)
        ]
        labels = [f"{s} ({n} obs.)" for s, n in zip(cands["source"], cands["in_span"], strict=True)]
        r, reason = pick_series(
            cands,
            sym,
            general,
            per_symbol,
            prefix="--source ",
            what="hourly series" if hourly else "series",
            most=f"most {'hourly closes' if hourly else 'observations'} in the study span of",
            label="{source} ({n} obs.)",
        )
        out[sym] = SeriesChoice(
            symbol=sym,
            asset_id=str(r["asset_id"]),
            source=str(r["source"]),
            asset_class=str(r["asset_class"]),
            calendar=str(r["calendar"]),
            first_date=pd.Timestamp(r["first_date"]).date(),
            last_date=pd.Timestamp(r["last_date"]).date(),
            n_obs=int(r["n_obs"]),
            reason=reason,
            alternatives=tuple(s for s in labels if not s.startswith(f"{r['source']} ")),
            in_span=int(r["in_span"]),
        )
    return out


def load_series(
    con: duckdb.DuckDBPyConnection,
    series: Iterable[tuple[str, str]],
    *,
    date_range: tuple[str, str] | None = None,
) -> pd.DataFrame:
    """Long closes (date, symbol, asset_id, asset_class, calendar, source, close, volume_usd,
    market_cap) of exactly the given ``(asset_id, source)`` series, optionally within
    ``date_range``.

    ``market_cap`` is the series' own cap when its vendor sends one (CoinGecko), else the
    symbol's cap that day from the most preferred source holding one (view
    ``preferred_market_caps``: a cap file, Coin Metrics; order in ``market_cap_sources``), whose
    source ``market_cap_source`` names (None for the series' own cap).

    Token lineage (``asset_lineage``): where an old asset's series stops after its identity
    change, it continues as ``ratio`` times its successor's closes, flagged in the ``lineage``
    column (:func:`warehouse.lineage.continue_series`)."""
    from warehouse.lineage import continue_series

    pairs = list(series)
    params: list[Any] = [[a for a, _ in pairs], [s for _, s in pairs]]
    where = ""
    if date_range is not None:
        where = "WHERE p.date BETWEEN ? AND ?"
        params += list(date_range)
    panel = con.execute(
        "SELECT p.date, p.symbol, p.asset_id, p.asset_class, p.calendar, p.source, p.close, "
        "p.volume_usd, coalesce(p.market_cap, c.market_cap) AS market_cap, "
        "CASE WHEN p.market_cap IS NULL THEN c.source END AS market_cap_source "
        "FROM daily_prices AS p "
        "JOIN (SELECT unnest(?::VARCHAR[]) AS asset_id, unnest(?::VARCHAR[]) AS source) AS k "
        "USING (asset_id, source) "
        "LEFT JOIN preferred_market_caps AS c ON c.symbol = p.symbol AND c.date = p.date "
        f"{where} ORDER BY p.symbol, p.date",
        params,
    ).df()
    return continue_series(con, panel, date_range=date_range)


# ---------------------------------------------------------------------------------- study runs
def new_group_id() -> str:
    return f"st-{utcnow():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if np.isfinite(f) else None


def _dump(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, default=str)


def result_rows(study_id: str, result: Any) -> pd.DataFrame:
    """The long rows of ``study_results`` for one ``EventStudyResult``.

    Kinds: ``ar`` and ``car`` (per event/asset: value, std, tstat, pvalue, n = estimation obs.),
    ``param`` (alpha, beta, ...), ``test`` (per group, window and test: stat in value and tstat,
    pvalue, n pairs), ``portfolio`` (asset = the group, grp = weighting), ``excluded``
    (details.reason), ``flag`` (label = flag, details.detail) and ``mapping`` (label = calendar).
    """
    rows: list[dict[str, Any]] = []

    def add(kind: str, **kw: Any) -> None:
        row = dict.fromkeys(RESULT_COLUMNS)
        row.update(study_id=study_id, kind=kind, **kw)
        rows.append(row)

    nobs = result.params["nobs"]
    dates = result.event_dates
    hourly = result.spec.get("interval") == "1h"

    def stamp(value: Any) -> str | None:
        """A session as stored: its date, or the hour's UTC close time on the hourly clock."""
        if pd.isna(value):
            return None
        ts = pd.Timestamp(value)
        return ts.strftime("%Y-%m-%dT%H:%M:%SZ") if hourly else ts.date().isoformat()

    frame = result.to_frame()
    for r in frame.itertuples(index=False):
        details: dict[str, Any] = {"start": int(r.start), "end": int(r.end), "df": int(r.df)}
        if r.kind == "day":
            d = dates[(r.event, r.asset)].get(int(r.start))
            details["date"] = stamp(d)
        add(
            "ar" if r.kind == "day" else "car",
            event=r.event,
            asset=r.asset,
            label=r.window,
            value=_num(r.value),
            std=_num(r.std),
            tstat=_num(r.tstat),
            pvalue=_num(r.pvalue),
            n=int(nobs.loc[(r.event, r.asset)]),
            details=_dump(details),
        )
    params = result.params
    for (event, asset), p in params.iterrows():
        info = {
            "asset_class": p["asset_class"],
            "calendar": p["calendar"],
            "benchmark": p["benchmark"],
            "day0": stamp(p["day0"]),
            "est_start": stamp(p["est_start"]),
            "est_end": stamp(p["est_end"]),
            "df": int(p["df"]),
        }
        for label in ("alpha", "beta", "se_alpha", "se_beta", "sigma"):
            add(
                "param",
                event=event,
                asset=asset,
                label=label,
                value=_num(p[label]),
                n=int(p["nobs"]),
                details=_dump(info),
            )
    for t in result.tests.itertuples(index=False):
        add(
            "test",
            grp=t.group,
            label=t.window,
            test=t.test,
            value=_num(t.stat),
            tstat=_num(t.stat),
            pvalue=_num(t.pvalue),
            n=int(t.n),
            details=_dump(
                {
                    "window_kind": t.kind,
                    "start": int(t.start),
                    "end": int(t.end),
                    "dist": t.dist,
                    "null": t.null,
                    "reason": t.reason or None,
                }
            ),
        )
    for pf in result.portfolios.itertuples(index=False):
        add(
            "portfolio",
            grp=pf.weighting,
            event=pf.event,
            asset=pf.group,
            label=pf.window,
            value=_num(pf.car),
            std=_num(pf.std),
            tstat=_num(pf.tstat),
            pvalue=_num(pf.pvalue),
            n=int(pf.members),
            details=_dump({"reason": pf.reason or None}),
        )
    for ex in result.excluded.itertuples(index=False):
        add("excluded", event=ex.event, asset=ex.asset, details=_dump({"reason": ex.reason}))
    for fl in result.flags.itertuples(index=False):
        add(
            "flag",
            event=fl.event,
            asset=fl.asset,
            label=fl.flag,
            details=_dump({"detail": fl.detail}),
        )
    for m in result.event_mappings.to_dict("records"):
        add("mapping", event=m["event"], label=m["calendar"], details=_dump(m))
    out = pd.DataFrame(rows, columns=list(RESULT_COLUMNS))
    out["n"] = out["n"].astype("Int64")
    for c in NUMERIC_RESULT_COLUMNS:
        out[c] = out[c].astype(float)
    return out


@dataclass
class StudyRecord:
    """One leg of one `aitokens study` run, ready to be saved."""

    study_id: str
    group_id: str
    leg: str
    spec: dict[str, Any]
    fingerprint: dict[str, Any]
    summary: str
    command: str
    package_version: str
    rows: pd.DataFrame
    created_at: dt.datetime = field(default_factory=utcnow)


def save_studies(con: duckdb.DuckDBPyConnection, records: Sequence[StudyRecord]) -> None:
    """Write every leg's ``study_runs`` row and results in ONE transaction."""
    with transaction(con):
        for rec in records:
            taken = scalar(
                con, "SELECT count(*) FROM study_runs WHERE study_id = ?", [rec.study_id]
            )
            if taken:
                raise InputError(f"study id {rec.study_id} is already stored")
            con.execute(
                "INSERT INTO study_runs (study_id, created_at, spec, package_version, summary, "
                "group_id, leg, data_sha256, fingerprint, command) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    rec.study_id,
                    rec.created_at,
                    _dump(rec.spec),
                    rec.package_version,
                    rec.summary,
                    rec.group_id,
                    rec.leg,
                    rec.fingerprint.get("data_sha256"),
                    _dump(rec.fingerprint),
                    rec.command,
                ],
            )
            stage = rec.rows[list(RESULT_COLUMNS)]
            con.register("_study_results_stage", stage)
            try:
                cols = ", ".join(RESULT_COLUMNS)
                con.execute(
                    f"INSERT INTO study_results ({cols}) SELECT {cols} FROM _study_results_stage"
                ).fetchall()
            finally:
                con.unregister("_study_results_stage")


def list_studies(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Stored runs, newest first."""
    return con.execute(
        "SELECT r.study_id, r.group_id, r.leg, "
        "coalesce(json_extract_string(r.spec, '$.interval'), '1d') AS interval, r.created_at, "
        "array_to_string(json_extract_string(r.spec, '$.events[*].name'), ', ') AS events, "
        "json_array_length(json_extract(r.spec, '$.resolved.assets')) AS n_assets, "
        "r.package_version, left(r.data_sha256, 12) AS data_sha256 "
        "FROM study_runs AS r ORDER BY r.created_at DESC, r.study_id"
    ).df()


@dataclass(frozen=True)
class StoredSeries:
    """One series a stored leg read, with its role (``asset`` or ``benchmark``)."""

    symbol: str
    asset_id: str
    source: str
    role: str
    asset_class: str
    calendar: str
    first_date: dt.date
    last_date: dt.date
    n_obs: int
    reason: str

    def choice(self) -> SeriesChoice:
        """The series choice it records (what a replay of the leg reads again)."""
        return SeriesChoice(
            self.symbol,
            self.asset_id,
            self.source,
            self.asset_class,
            self.calendar,
            self.first_date,
            self.last_date,
            self.n_obs,
            self.reason,
        )


@dataclass(frozen=True)
class StoredStudy:
    """One stored leg of a study: the engine's spec document, the series and dates it read,
    its printed summary and command, and its result rows."""

    study_id: str
    group_id: str
    leg: str
    created_at: dt.datetime
    spec: Mapping[str, Any]  # the engine's own JSON document (EventStudy.spec), kept whole
    series: tuple[StoredSeries, ...]
    date_range: tuple[str, str]
    rows_read: int
    data_sha256: str
    summary: str
    package_version: str
    command: str
    rows: pd.DataFrame

    @property
    def interval(self) -> str:
        return str(self.spec.get("interval", "1d"))

    @property
    def assets(self) -> list[str]:
        return [s.symbol for s in self.series if s.role == "asset"]

    @property
    def benchmark(self) -> str:
        return next(s.symbol for s in self.series if s.role == "benchmark")


def _stored_series(item: Mapping[str, Any]) -> StoredSeries:
    return StoredSeries(
        symbol=str(item["symbol"]),
        asset_id=str(item["asset_id"]),
        source=str(item["source"]),
        role=str(item.get("role", "asset")),
        asset_class=str(item.get("asset_class", "")),
        calendar=str(item.get("calendar", "")),
        first_date=dt.date.fromisoformat(str(item["first_date"])[:10]),
        last_date=dt.date.fromisoformat(str(item["last_date"])[:10]),
        n_obs=int(item.get("n_obs", 0)),
        reason=str(item.get("reason", "")),
    )


def load_study(con: duckdb.DuckDBPyConnection, study_or_group: str) -> list[StoredStudy]:
    """Stored legs of a study id, or of every leg of a group id, with their result rows."""
    runs = con.execute(
        "SELECT study_id, group_id, leg, created_at, spec, fingerprint, summary, "
        "package_version, command FROM study_runs WHERE study_id = ? OR group_id = ? "
        "ORDER BY study_id",
        [study_or_group, study_or_group],
    ).df()
    if runs.empty:
        ids = [
            r[0]
            for r in con.execute(
                "SELECT study_id FROM study_runs ORDER BY created_at DESC LIMIT 200"
            ).fetchall()
        ]
        close = difflib.get_close_matches(study_or_group, ids, n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise StudyNotFoundError(
            f"no stored study {study_or_group!r}{hint} (list them: aitokens studies list)"
        )
    out = []
    for run in runs.to_dict("records"):
        rows = con.execute(
            f"SELECT {', '.join(RESULT_COLUMNS)} FROM study_results WHERE study_id = ?",
            [run["study_id"]],
        ).df()
        fp = json.loads(run["fingerprint"]) if run["fingerprint"] else {}
        spec = json.loads(run["spec"])
        span = fp.get("date_range") or ["", ""]
        out.append(
            StoredStudy(
                study_id=str(run["study_id"]),
                group_id=str(run["group_id"]),
                leg=str(run["leg"]),
                created_at=pd.Timestamp(run["created_at"]).to_pydatetime(),
                spec=spec,
                series=tuple(_stored_series(s) for s in fp.get("series", [])),
                date_range=(str(span[0]), str(span[1])),
                rows_read=int(fp.get("rows", 0)),
                data_sha256=str(fp.get("data_sha256") or spec["resolved"]["data_sha256"]),
                summary=str(run["summary"]),
                package_version=str(run["package_version"]),
                command=str(run["command"]),
                rows=rows,
            )
        )
    return out


@dataclass(frozen=True)
class Comparison:
    """How a rerun's rows compare with the stored ones."""

    values_compared: int
    max_abs_diff: float
    mismatches: tuple[str, ...]

    @property
    def matches(self) -> bool:
        return not self.mismatches


def compare_rows(stored: pd.DataFrame, fresh: pd.DataFrame, *, tol: float = 1e-12) -> Comparison:
    """Match rows on their key; numbers must agree within ``tol`` (absolute, or relative for
    large values), NULL with NULL; counts and details exactly."""
    key = list(RESULT_KEY)

    def keyed(df: pd.DataFrame) -> pd.DataFrame:
        d = df.copy()
        for k in key:
            d[k] = d[k].astype(object).where(d[k].notna(), "")
        d["details"] = d["details"].map(
            lambda s: _dump(json.loads(s)) if isinstance(s, str) else ""
        )
        return d.set_index(key).sort_index()

    a, b = keyed(stored), keyed(fresh)
    problems: list[str] = []
    only_a = a.index.difference(b.index)
    only_b = b.index.difference(a.index)
    problems += [f"stored row {k} missing from the rerun" for k in only_a[:5]]
    problems += [f"rerun row {k} was not stored" for k in only_b[:5]]
    common = a.index.intersection(b.index)
    if a.index.has_duplicates or b.index.has_duplicates:
        problems.append("duplicate result keys")
        return Comparison(0, float("nan"), tuple(problems))
    a, b = a.loc[common], b.loc[common]
    max_diff, compared = 0.0, 0
    for col in NUMERIC_RESULT_COLUMNS:
        x = pd.to_numeric(a[col], errors="coerce").to_numpy(float)
        y = pd.to_numeric(b[col], errors="coerce").to_numpy(float)
        both = ~np.isnan(x) & ~np.isnan(y)
        compared += int(both.sum())
        nan_mismatch = np.isnan(x) != np.isnan(y)
        diff = np.abs(x - y)
        bound = tol * np.maximum(1.0, np.abs(x))
        bad = both & (diff > bound) | nan_mismatch
        if both.any():
            max_diff = max(max_diff, float(diff[both].max()))
        for i in np.flatnonzero(bad)[:5]:
            problems.append(f"{col} of {common[i]}: stored {x[i]!r}, rerun {y[i]!r}")
    n_a = a["n"].astype("Int64").astype(object).where(a["n"].notna(), None)
    n_b = b["n"].astype("Int64").astype(object).where(b["n"].notna(), None)
    for i in np.flatnonzero(n_a.to_numpy() != n_b.to_numpy())[:5]:
        problems.append(f"n of {common[i]}: stored {n_a.iloc[i]}, rerun {n_b.iloc[i]}")
    for i in np.flatnonzero(a["details"].to_numpy() != b["details"].to_numpy())[:5]:
        problems.append(f"details of {common[i]} differ")
    return Comparison(compared, max_diff, tuple(problems))
