"""The sector's market caps from a cap file (issue 25): the sector functions on small frames
checked by hand, the cap-weighted Sora portfolio against a hand computation from the shared
files, and the README's main job (prices + the Coin Metrics cap file) producing a sector report
whose market-cap, coverage, top-member and concentration sections hold real numbers.

The main-job run executes the sector notebook once per session (slow: run this module alone).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from analysis import sector
from tests.reports.conftest import SECTOR_FIGURES_FULL, Run, run_cli


def day(s: str) -> pd.Timestamp:
    return pd.Timestamp(s)


# ------------------------------------------------------------------------------ functions
def member_caps() -> pd.DataFrame:
    """Two days of members: RNDR beside RENDER on the second (RNDR not counted)."""
    rows = [
        ("2024-02-14", "FET", "FET", 100.0, True),
        ("2024-02-14", "RNDR", "RENDER", 50.0, True),
        ("2024-02-15", "FET", "FET", 120.0, True),
        ("2024-02-15", "RNDR", "RENDER", 55.0, False),
        ("2024-02-15", "RENDER", "RENDER", 60.0, True),
        ("2024-02-15", "GRT", "GRT", 20.0, True),
    ]
    frame = pd.DataFrame(rows, columns=["date", "symbol", "network", "market_cap", "counted"])
    frame["date"] = pd.to_datetime(frame["date"])
    return frame


def test_network_caps_count_each_network_once():
    caps = sector.network_caps(member_caps())
    assert list(caps.columns) == ["FET", "GRT", "RENDER"]
    assert_allclose(caps.loc[day("2024-02-14")].to_numpy(), [100.0, np.nan, 50.0])
    assert_allclose(caps.loc[day("2024-02-15")].to_numpy(), [120.0, 20.0, 60.0])


def test_latest_members_name_a_network_counted_through_its_old_symbol():
    mc = member_caps()
    caps = sector.network_caps(mc)
    first = sector.latest_members(caps, day("2024-02-14"), member_caps=mc)
    assert first.to_records(index=False).tolist() == [("FET", 100.0), ("RENDER (as RNDR)", 50.0)]
    last = sector.latest_members(caps, member_caps=mc)  # the last day: RENDER's own cap
    assert last["symbol"].tolist() == ["FET", "RENDER", "GRT"]
    top = sector.top_members(last, n=2)
    assert_allclose(top["share"], [0.6, 0.3])


def test_reference_coverage_shares_and_missing_members():
    refs = pd.DataFrame(
        {"date": [day("2024-02-14"), day("2024-02-15")], "market_cap_usd": [300.0, 400.0]}
    ).assign(source=["a", "b"])
    large = pd.DataFrame({"symbol": ["TAO", "FET", "NEAR"], "market_cap": [9.0, 8.0, np.nan]})
    cover = sector.reference_coverage(
        member_caps(), refs, held=["AGIX", "FET", "GRT", "RNDR"], large=large
    )
    assert_allclose(cover["tracked_usd"], [150.0, 200.0])
    assert_allclose(cover["share"], [0.5, 0.5])
    assert cover["n_members"].tolist() == [2, 3]
    # RNDR counts through its network on the first day; NEAR has no cap in the snapshot
    assert cover["missing"].tolist() == ["AGIX, GRT, TAO", "AGIX, TAO"]


def test_cap_change_around_is_like_for_like():
    caps = pd.DataFrame(
        {"A": [100.0, 110.0, 121.0, 90.0], "B": [np.nan, 50.0, 40.0, 45.0]},
        index=pd.date_range("2024-02-13", periods=4, name="date"),
    )
    out = sector.cap_change_around(caps, day("2024-02-15"), ((0, 0), (-1, 1), (5, 6)))
    # [0,0]: close of 02-14 to close of 02-15, A and B both held
    assert_allclose(out.loc[0, ["cap_from_usd", "cap_to_usd", "change_usd"]], [160, 161, 1])
    # [-1,1]: 02-13 to 02-16; B had no cap on 02-13, so only A moves dollars
    assert out.loc[1, "n_members"] == 1
    assert_allclose(out.loc[1, ["change_usd", "change"]], [-10.0, -0.1])
    assert out.loc[2, "n_members"] == 0 and np.isnan(out.loc[2, "change_usd"])
    by = sector.cap_change_by_member(caps, day("2024-02-15"), (0, 1))
    assert by["symbol"].tolist() == ["A", "B"]  # largest move first: A -20, B -5
    assert_allclose(by["change_usd"], [-20.0, -5.0])
    assert_allclose(by["share_of_change"], [0.8, 0.2])


def test_cap_jumps_name_a_rebased_supply_estimate():
    caps = pd.DataFrame(
        {"FET": [2.27e9, 5.45e9, 5.5e9], "GRT": [1.0, 1.2, 0.4]},
        index=pd.date_range("2024-05-03", periods=3, name="date"),
    )
    jumps = sector.cap_jumps(caps, factor=2.0)
    assert jumps["symbol"].tolist() == ["GRT", "FET"]  # ln(1/3) beats ln(5.45/2.27)
    assert jumps.loc[1, "date"] == day("2024-05-04")
    assert_allclose(jumps.loc[1, "change"], 5.45 / 2.27 - 1)


# ------------------------------------------------------------------------------ shared data
@pytest.fixture(scope="module")
def market_caps_csv(shared_dir: Path) -> Path:
    path = shared_dir / "data" / "ai_events" / "market_caps.csv"
    if not path.is_file():
        pytest.skip(f"real cap file {path} is absent (set AITOKENS_SHARED)")
    return path


@pytest.fixture(scope="module")
def caps_run(tmp_path_factory, sora_prices_csv: Path, market_caps_csv: Path) -> Run:
    """The README's main job (both files), in-process without Prefect (the runner is not what
    this module tests): import, study, both reports."""
    root = tmp_path_factory.mktemp("caps")
    db, out = root / "wh.duckdb", root / "reports"
    result = run_cli(
        [
            "pipeline",
            "--import",
            str(sora_prices_csv),
            "--import",
            str(market_caps_csv),
            "--offline",
            "--no-prefect",
            "--db",
            str(db),
            "--out",
            str(out),
        ]
    )
    return Run("caps", db, out, result)


def _text(html: str) -> str:
    html = re.sub(r"<img[^>]*>", " ", html)
    html = re.sub(r"<(style|script)\b.*?</\1>", " ", html, flags=re.S)
    import html as h

    return h.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


def test_main_job_imports_both_files(caps_run):
    r = caps_run.result
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[1] == (
        "  import  ok       prices.csv: 5,463 rows, 5,463 inserted, 0 updated, 0 unchanged"
    )
    assert lines[2] == (
        "  import  ok       market_caps.csv: 9,560 rows, 9,560 inserted, 0 updated, 0 unchanged"
    )


def test_sector_report_on_the_shared_panel_has_no_empty_section(caps_run, market_caps_csv):
    html = caps_run.html("ai_sector")
    text = _text(html)
    for empty in ("Not available", "No category membership", "No member market caps"):
        assert empty not in text, empty
    names = sorted(p.stem for p in (caps_run.out / "figures" / "ai_sector").glob("*.png"))
    assert names == sorted(SECTOR_FIGURES_FULL)
    # total tracked cap, coverage of the brief's ~$25B on the Sora day: the file summed by hand
    caps = pd.read_csv(market_caps_csv, parse_dates=["date"])
    sora = caps[caps["date"] == day("2024-02-15")]
    assert set(sora["symbol"]) == {"ARKM", "FET", "GRT", "INJ", "NMR", "RNDR", "WLD"}
    total = sora["market_cap"].sum()  # RENDER starts 2024-06-17: no double count that day
    assert f"${total:,.0f}" in text
    assert f"{total / 25e9:.1%}" in text
    assert "$25,000,000,000" in text and "AGIX" in text  # the priced token without a cap
    # top members on the event's eve, from the file
    eve = caps[caps["date"] == day("2024-02-14")].sort_values("market_cap", ascending=False)
    assert "Largest tracked members on 2024-02-14" in text
    assert f"1 INJ ${eve['market_cap'].iloc[0]:,.0f}" in text
    share = eve["market_cap"] / eve["market_cap"].sum()
    assert f"HHI {10_000 * (share**2).sum():,.0f} across 7 members" in text
    assert f"top-5 share {share.head(5).sum():.1%}" in text
    # the cap-weighted index against NVIDIA and BTC, the dollar change around Sora
    assert 'alt="AI sector (cap-weighted) against NVIDIA and BTC (first day = 100)"' in html
    feb = caps.pivot(index="date", columns="symbol", values="market_cap")
    change = feb.loc[day("2024-02-20")] - feb.loc[day("2024-02-14")]
    assert "[0,5] 2024-02-14 2024-02-20 7" in text
    assert f"${change.sum():+,.0f}" in text
    assert "CC BY-NC 4.0" in text and "Coin Metrics" in text  # the licence is named


def test_regress_log_cap_runs_on_the_shared_data(caps_run):
    r = run_cli(
        [
            "study",
            "--event",
            "sora",
            "--regress",
            "log_cap,beta",
            "--no-placebo",
            "--no-save",
            "--db",
            str(caps_run.db),
        ]
    )
    assert r.code == 0, r.err
    assert "cross-sectional OLS of CAR[0,5] (N = 7" in r.out
    assert "log_cap" in r.out and "Left out AGIX / sora: no log_cap." in r.out
    assert (  # the study names where its caps come from, and their licence
        "market caps of ARKM, FET, GRT, INJ, NMR, RNDR, WLD from Coin Metrics "
        "(coinmetrics_community), licence CC BY-NC 4.0" in r.out
    )


def test_cap_weighted_sora_cars_equal_a_hand_computation(
    caps_run, sora_prices_csv, market_caps_csv, tmp_path
):
    """Weights: each token's cap on day -6 (the close before the event window) from the cap
    file, AGIX left out (no cap); the portfolio's simple return each day is the weighted mean of
    its members' returns; its market model against BTC over days -120..-11 by least squares;
    CAR = the sum of its abnormal returns."""
    out = tmp_path / "s.json"
    r = run_cli(
        ["study", "--event", "sora", "--no-placebo", "--no-save", "--json", str(out)]
        + ["--db", str(caps_run.db)]
    )
    assert r.code == 0, r.err
    legs = json.loads(out.read_text())["legs"]
    port = pd.DataFrame(legs["tokens"]["portfolios"])
    cap = port[port["weighting"] == "cap"].set_index("window")
    assert (cap["reason"] == "").all() and (cap["members"] == 7).all()
    assert cap["left_out"].iloc[0] == "AGIX (no market_cap before the event window)"

    prices = pd.read_csv(sora_prices_csv, parse_dates=["date"])
    closes = prices.pivot(index="date", columns="symbol", values="close")
    closes = closes.reindex(pd.date_range(closes.index.min(), closes.index.max(), name="date"))
    rets = closes / closes.shift(1) - 1
    caps = pd.read_csv(market_caps_csv, parse_dates=["date"])
    day0 = day("2024-02-15")
    w = caps[caps["date"] == day0 - pd.Timedelta(days=6)].set_index("symbol")["market_cap"]
    members = [s for s in ("ARKM", "FET", "GRT", "INJ", "NMR", "RNDR", "WLD") if s in w.index]
    assert len(members) == 7
    rel = {k: day0 + pd.Timedelta(days=k) for k in range(-120, 11)}
    rp = pd.Series(
        {k: np.average(rets.loc[d, members], weights=w[members]) for k, d in rel.items()}
    )
    rm = pd.Series({k: rets.loc[d, "BTC"] for k, d in rel.items()})
    est = list(range(-120, -10))
    x = np.column_stack([np.ones(len(est)), rm[est].to_numpy()])
    (alpha, beta), *_ = np.linalg.lstsq(x, rp[est].to_numpy(), rcond=None)
    ar = rp - alpha - beta * rm
    for window in ("[0,0]", "[0,5]", "[-5,10]", "[0,10]"):
        lo, hi = (int(v) for v in window.strip("[]").split(","))
        assert_allclose(cap.loc[window, "car"], ar.loc[lo:hi].sum(), rtol=1e-9), window
