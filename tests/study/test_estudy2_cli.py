"""`aitokens study --convention estudy2` reproduces every figure estudy2 publishes.

The reference returns (../shared/reference/estudy2) are turned into closes, imported through
`aitokens import`, studied through the CLI, and every statistic of expected.json is read back
from the ``--json`` output and compared to its printed precision (half a unit of the last digit).
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flows.cli import main
from tests.analysis.test_estudy2 import STATISTICS, _tolerance

FIRMS = ["AMZN", "ZM", "UBER", "NFLX", "SHOP", "FB", "UPWK"]


def _closes(returns: pd.DataFrame) -> pd.DataFrame:
    """Closes whose simple returns are the reference returns: each series starts at 100 on the
    session before its first return (rates.csv has NaN before a listing)."""
    rows = []
    # the session before the first return (2019-04-01, a Monday) carries the first close
    dates = returns.index.insert(0, returns.index[0] - pd.offsets.BDay(1))
    for sym in returns.columns:
        r = returns[sym]
        first = int(np.flatnonzero(r.notna().to_numpy())[0])
        growth = (1.0 + r.iloc[first:]).cumprod().to_numpy()
        closes = np.concatenate([[100.0], 100.0 * growth])
        cls = "equity_benchmark" if sym == "^GSPC" else "equity"
        for d, c in zip(dates[first:], closes, strict=True):
            rows.append((d.date().isoformat(), sym, cls, "estudy2", repr(float(c))))
    return pd.DataFrame(rows, columns=["date", "symbol", "asset_class", "venue", "close"])


@pytest.fixture(scope="module")
def expected(estudy2_dir: Path) -> dict:
    """expected.json with numbers as Decimal (the printed precision is the tolerance)."""
    return json.loads((estudy2_dir / "expected.json").read_text(), parse_float=Decimal)


@pytest.fixture(scope="module")
def estudy2_json(estudy2_dir: Path, tmp_path_factory) -> dict:
    rates = pd.read_csv(estudy2_dir / "rates.csv", index_col=0, parse_dates=True)
    index = pd.read_csv(estudy2_dir / "rates_indx.csv", index_col=0, parse_dates=True)
    returns = rates.join(index)
    tmp = tmp_path_factory.mktemp("estudy2")
    csv, db, out = tmp / "closes.csv", tmp / "e2.duckdb", tmp / "e2.json"
    _closes(returns).to_csv(csv, index=False)
    assert main(["import", str(csv), "--db", str(db)]) == 0
    code = main(
        [
            "study",
            "--db",
            str(db),
            "--event",
            "2020-03-16",
            "--equities",
            ",".join(FIRMS),
            "--equity-benchmark",
            "^GSPC",
            "--estimation",
            "-240:-1",
            "--window",
            "0:4",
            "--car",
            "0:4",
            "--convention",
            "estudy2",
            "--no-save",
            "--json",
            str(out),
        ]
    )
    assert code == 0
    return json.loads(Path(out).read_text())["legs"]["equities"]


def _daily(leg: dict, test: str, field: str = "stat") -> list:
    rows = [
        r for r in leg["tests"] if r["group"] == "all" and r["kind"] == "day" and r["test"] == test
    ]
    return [r[field] for r in sorted(rows, key=lambda r: r["start"])]


def test_cli_runs_the_estudy2_convention(estudy2_json):
    assert estudy2_json["spec"]["convention"] == "estudy2"
    assert sorted(estudy2_json["spec"]["resolved"]["assets"]) == sorted(FIRMS)
    assert {r["est_end"] for r in estudy2_json["params"]} == {"2020-03-13"}
    assert {r["day0"] for r in estudy2_json["params"]} == {"2020-03-16"}


@pytest.mark.parametrize("key", ["mean_ar", *sorted(STATISTICS)])
def test_cli_reproduces_every_estudy2_statistic(estudy2_json, expected, key):
    figures = expected[key]
    if key == "mean_ar":  # the mean AR of each day, at full precision beside each test
        got = _daily(estudy2_json, "t_cs", "mean")
    else:
        got = _daily(estudy2_json, STATISTICS[key])
    np.testing.assert_allclose(
        np.array(got, float), np.array(figures, float), rtol=0, atol=_tolerance(figures)
    )
