"""The one CSV import sequence: validate the whole file, then upsert it in one transaction.

Used by `aitokens import` and the pipeline's import step alike. A price file
(``date,symbol,close,...``) goes to ``imported_daily`` (or ``price_hourly``); a cap file
(``date,symbol,market_cap[,volume_usd,source]``, no close) to ``market_caps_daily``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from flows.sources.cap_import import ParsedCaps, is_cap_file, read_cap_csv
from flows.sources.csv_import import ParsedCsv, read_price_csv
from warehouse.caps import import_caps
from warehouse.db import open_warehouse, publish_snapshot_of, resolve_db_path
from warehouse.imports import ImportReport, import_prices


@dataclass(frozen=True)
class CsvImport:
    """What an import did: the parsed file's facts and the warehouse's counts."""

    path: Path
    db_file: Path
    parsed: ParsedCsv | ParsedCaps
    report: ImportReport

    @property
    def kind(self) -> str:
        """``"caps"`` for a cap file, else ``"prices"``."""
        return "caps" if isinstance(self.parsed, ParsedCaps) else "prices"

    def one_line(self) -> str:
        r = self.report.result
        return (
            f"{self.path.name}: {self.report.rows_read:,} rows, {r.inserted:,} inserted, "
            f"{r.updated:,} updated, {r.unchanged:,} unchanged"
        )


def import_csv(
    db: str | Path | None,
    csv_file: str | Path,
    *,
    default_asset_class: str | None = None,
    publish: bool = True,
) -> CsvImport:
    """Validate ``csv_file`` (a price or a cap file, told apart by its header; a bad file
    raises with its bad lines, nothing written) and upsert
    it (re-importing the same file changes nothing); then publish the analysts' snapshot
    (``publish=False``: the caller publishes at the end of a longer run)."""
    path = Path(csv_file)
    parsed: ParsedCsv | ParsedCaps
    if is_cap_file(path):
        parsed, load = read_cap_csv(path), import_caps
    elif default_asset_class is None:
        parsed, load = read_price_csv(path), import_prices
    else:
        parsed, load = read_price_csv(path, default_asset_class=default_asset_class), import_prices
    with open_warehouse(db) as con:
        report = load(
            con,
            parsed.frame,
            path=path,
            rows_read=parsed.rows_read,
            exact_duplicates=parsed.exact_duplicates,
        )
    if publish:
        publish_snapshot_of(db)
    return CsvImport(path, resolve_db_path(db), parsed, report)
