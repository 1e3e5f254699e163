"""The quarantine: store what the checks catch on a load, list it, release it.

Why in the loader's transaction: a load and its verdict commit together, so a point is never
in the warehouse unchecked. A re-load re-runs the checks on the whole touched series and
replaces their open verdicts: a corrected file clears what it fixes; an analyst's acceptance
(``accepted_at``) survives re-loads of the same value.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import duckdb
import pandas as pd

from warehouse.errors import InputError
from warehouse.quality_checks import DEFAULT_SETTINGS, QualitySettings, detect

QUARANTINE_TABLE = "quality_quarantine"


@dataclass(frozen=True)
class SuspectPoint:
    """One quarantined point, as ``aitokens check`` shows it."""

    symbol: str
    source: str
    interval: str
    time: datetime
    value: float | None
    check: str
    reason: str

    def when(self) -> str:
        return (
            self.time.date().isoformat()
            if self.interval == "1d"
            else (self.time.strftime("%Y-%m-%dT%H:%M:%SZ"))
        )

    def as_json(self) -> dict[str, Any]:
        """The exact fields of ``aitokens check --json``: ``date`` (daily) or ``ts`` (hourly)."""
        value = self.value if self.value is None or self.value == self.value else None
        return {
            "symbol": self.symbol,
            "source": self.source,
            ("date" if self.interval == "1d" else "ts"): self.when(),
            "value": value,
            "check": self.check,
            "reason": self.reason,
        }

    def one_line(self) -> str:
        value = "NaN" if self.value is None else f"{self.value:g}"
        return (
            f"{self.symbol} {self.source} {self.when()} close {value}: {self.check} ({self.reason})"
        )


def check_series(
    con: duckdb.DuckDBPyConnection,
    series: Iterable[tuple[str, str]],
    *,
    run_id: str | None,
    interval: str = "1d",
    settings: QualitySettings = DEFAULT_SETTINGS,
) -> list[SuspectPoint]:
    """Run the checks on the whole of each ``(asset_id, source)`` series as the analysis views
    show it (``daily_prices`` or ``hourly_prices``), inside the caller's transaction, and
    replace their open verdicts; returns the points newly quarantined (not already open, not
    accepted). One function for every loader: a CSV, a vendor's answer, caps."""
    pairs = sorted(set(series))
    if not pairs:
        return []
    view, tcol = ("hourly_prices", "ts") if interval == "1h" else ("daily_prices", "date")
    frame = con.execute(
        f"SELECT symbol, asset_id, source, {tcol}, close FROM {view} "
        "JOIN (SELECT unnest(?::VARCHAR[]) AS asset_id, unnest(?::VARCHAR[]) AS source) "
        "USING (asset_id, source)",
        [[a for a, _ in pairs], [s for _, s in pairs]],
    ).df()
    # Keyed by asset_id: two coins may share a ticker within one source.
    symbol_of = dict(zip(frame["asset_id"], frame["symbol"], strict=True))
    found = detect(frame.drop(columns="symbol").rename(columns={"asset_id": "symbol"}), settings)
    before = {
        (r[0], r[1], pd.Timestamp(r[2])): r[3]
        for r in con.execute(
            f"SELECT asset_id, source, time, accepted_at FROM {QUARANTINE_TABLE} "
            "JOIN (SELECT unnest(?::VARCHAR[]) AS asset_id, unnest(?::VARCHAR[]) AS source) "
            "USING (asset_id, source) WHERE interval = ?",
            [[a for a, _ in pairs], [s for _, s in pairs], interval],
        ).fetchall()
    }
    con.execute(
        f"DELETE FROM {QUARANTINE_TABLE} AS q USING "
        "(SELECT unnest(?::VARCHAR[]) AS asset_id, unnest(?::VARCHAR[]) AS source) AS k "
        "WHERE q.asset_id = k.asset_id AND q.source = k.source AND q.interval = ? "
        "AND q.accepted_at IS NULL",
        [[a for a, _ in pairs], [s for _, s in pairs], interval],
    )
    if found.empty:
        return []
    rows, new = [], []
    for rec in found.itertuples(index=False):
        t = pd.Timestamp(rec.time).to_pydatetime()
        asset, symbol = rec.symbol, symbol_of[rec.symbol]
        key = (asset, rec.source, pd.Timestamp(t))
        if key in before and before[key] is not None:
            continue  # accepted by an analyst: stays released
        value = None if pd.isna(rec.value) else float(rec.value)
        rows.append([symbol, asset, rec.source, interval, t, value, rec.check, rec.reason, run_id])
        if key not in before:
            new.append(SuspectPoint(symbol, rec.source, interval, t, value, rec.check, rec.reason))
    if rows:
        con.executemany(
            f"INSERT INTO {QUARANTINE_TABLE} (symbol, asset_id, source, interval, time, value, "
            "check_name, reason, run_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    return new


def _points(rows: Sequence[tuple[Any, ...]]) -> list[SuspectPoint]:
    return [
        SuspectPoint(r[0], r[1], r[2], pd.Timestamp(r[3]).to_pydatetime(), r[4], r[5], r[6])
        for r in rows
    ]


def quarantined(con: duckdb.DuckDBPyConnection) -> list[SuspectPoint]:
    """Every point still held back, by symbol, source and time."""
    rows = con.execute(
        "SELECT symbol, source, interval, time, value, check_name, reason FROM quarantined_points "
        "ORDER BY symbol, source, interval, time"
    ).fetchall()
    return _points(rows)


def quarantined_in_span(
    con: duckdb.DuckDBPyConnection,
    series: Iterable[tuple[str, str]],
    first: date,
    last: date,
) -> dict[tuple[str, str], list[SuspectPoint]]:
    """The open daily quarantined points of the given ``(asset_id, source)`` series between
    ``first`` and ``last`` (inclusive), keyed by series: what a study's windows must avoid."""
    pairs = list(series)
    if not pairs:
        return {}
    rows = con.execute(
        "SELECT q.asset_id, q.symbol, q.source, q.interval, q.time, q.value, q.check_name, "
        "q.reason FROM quarantined_points AS q "
        "JOIN (SELECT unnest(?::VARCHAR[]) AS asset_id, unnest(?::VARCHAR[]) AS source) AS k "
        "USING (asset_id, source) WHERE q.interval = '1d' AND CAST(q.time AS DATE) BETWEEN ? AND ? "
        "ORDER BY q.time",
        [[a for a, _ in pairs], [s for _, s in pairs], first, last],
    ).fetchall()
    out: dict[tuple[str, str], list[SuspectPoint]] = {}
    for r in rows:
        out.setdefault((r[0], r[2]), []).extend(_points([r[1:]]))
    return out


def accept(
    con: duckdb.DuckDBPyConnection, symbol: str, when: str, *, source: str | None = None
) -> int:
    """Release the open point(s) of ``symbol`` at ``when`` (a date or an ISO hour), of one
    ``source`` or any; returns how many. None matching is an input error."""
    try:
        t = pd.Timestamp(when)
    except ValueError as exc:
        raise InputError(f"{when!r} is not a date (YYYY-MM-DD) or an ISO time") from exc
    if t.tzinfo is not None:
        t = t.tz_convert("UTC").tz_localize(None)
    params: list[Any] = [symbol.upper(), t.to_pydatetime()]
    where = "upper(symbol) = ? AND time = ? AND accepted_at IS NULL"
    if source:
        where += " AND source = ?"
        params.append(source)
    n = con.execute(f"SELECT count(*) FROM {QUARANTINE_TABLE} WHERE {where}", params).fetchone()
    count = int(n[0]) if n else 0
    if not count:
        raise InputError(
            f"no quarantined point of {symbol.upper()} at {when}"
            + (f" from {source}" if source else "")
            + ": see aitokens check"
        )
    con.execute(
        f"UPDATE {QUARANTINE_TABLE} SET accepted_at = timezone('UTC', now()) WHERE {where}", params
    )
    return count


RECONCILE_TOLERANCE_BP = 200.0  # two vendors' closes of one UTC day: perp vs spot sit < 30 bp


def reconcile(
    con: duckdb.DuckDBPyConnection, tolerance_bp: float = RECONCILE_TOLERANCE_BP
) -> pd.DataFrame:
    """Daily disagreement between every two sources holding one symbol on the same days:
    days in common, median and max |log ratio| in basis points, and the share of days above
    ``tolerance_bp``. Quarantined points are left out (they are already known)."""
    return con.execute(
        """
        WITH p AS (
            SELECT d.symbol, d.source, d.date, d.close FROM daily_prices AS d
            ANTI JOIN quarantined_points AS q
              ON q.asset_id = d.asset_id AND q.source = d.source AND q.interval = '1d'
             AND CAST(q.time AS DATE) = d.date
            WHERE d.close > 0
        ), pairs AS (
            SELECT a.symbol, a.source AS source_a, b.source AS source_b, a.date,
                   1e4 * abs(ln(a.close / b.close)) AS bp
            FROM p AS a JOIN p AS b
              ON a.symbol = b.symbol AND a.date = b.date AND a.source < b.source
        )
        SELECT symbol, source_a, source_b, count(*) AS days,
               round(median(bp), 1) AS median_bp, round(max(bp), 1) AS max_bp,
               round(avg(CASE WHEN bp > ? THEN 1.0 ELSE 0.0 END), 4) AS share_above
        FROM pairs GROUP BY ALL ORDER BY symbol, source_a, source_b
        """,
        [tolerance_bp],
    ).df()
