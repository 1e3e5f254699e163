"""Fixtures of the analysis tests: the estudy2 reference and the real Sora panel."""

from __future__ import annotations

import json
import warnings
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from analysis import EventStudy, get_event


@pytest.fixture(scope="session")
def estudy2_expected(estudy2_dir: Path) -> dict:
    """expected.json with numbers kept as Decimal, so the printed precision is known."""
    return json.loads((estudy2_dir / "expected.json").read_text(), parse_float=Decimal)


@pytest.fixture(scope="session")
def estudy2_returns(estudy2_dir: Path) -> tuple[pd.DataFrame, dict[str, str]]:
    rates = pd.read_csv(estudy2_dir / "rates.csv", index_col=0, parse_dates=True)
    index = pd.read_csv(estudy2_dir / "rates_indx.csv", index_col=0, parse_dates=True)
    meta = {c: "equity" for c in rates.columns} | {"^GSPC": "equity_benchmark"}
    return rates.join(index), meta


def estudy2_study(convention: str) -> EventStudy:
    """The vignette design: estimation 2019-04-01..2020-03-13 (240 NYSE sessions before day 0),
    event window 2020-03-16..2020-03-20, S&P 500 as the market."""
    return EventStudy(
        ["2020-03-16"],
        estimation_window=(-240, -1),
        event_window=(0, 4),
        car_windows=[(0, 4)],
        benchmarks={"equity": "^GSPC"},
        convention=convention,
    )


@pytest.fixture(scope="session")
def sora_prices(sora_prices_csv: Path) -> pd.DataFrame:
    return pd.read_csv(sora_prices_csv, parse_dates=["date"])


@pytest.fixture(scope="session")
def sora_result(sora_prices: pd.DataFrame):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the default Sora study must run without any warning
        return EventStudy([get_event("sora")], confounders=[get_event("nvda_q4fy24")]).fit(
            sora_prices
        )
