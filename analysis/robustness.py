"""Robustness grid: the headline of a one-event study across the choices a referee would try.

Each specification is the baseline study with one combination of

* benchmark: BTC, ETH, or a crypto index built from the data (:func:`crypto_index`:
  market-cap-weighted when every member has caps, else equal-weight non-AI crypto);
* normal-return model: market model, market-adjusted, constant mean (the constant-mean model has
  no benchmark, so it enters once per estimation window and return kind);
* estimation window: days -60, -120 or -250 to -11 (``min_estimation_obs`` half of it);
* returns: simple or log.

For each, the CAAR of one CAR window, its KP-BMP t and p-value and (optionally) its placebo
p-value (:mod:`analysis.placebo`). A specification *agrees* with the baseline when its CAAR has
the baseline's sign and its headline test rejects at 5%: the KP-BMP p-value with at least
:data:`analysis.placebo.SMALL_N` assets, the placebo p-value below that (the headline's rule).
The grid is drawn as a specification curve (Simonsohn, Simmons & Nelson 2020) by
:func:`analysis.plots.plot_specification_curve`.

References
----------
Simonsohn, U., Simmons, J. P. and Nelson, L. D. (2020). Specification curve analysis.
*Nature Human Behaviour* 4, 1208-1214.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analysis import sector
from analysis.eventstudy import EventStudy
from analysis.placebo import SMALL_N, placebo

INDEX_SYMBOL = "CRYPTO_INDEX"
BENCHMARKS: tuple[str, ...] = ("BTC", "ETH", INDEX_SYMBOL)
MODELS: tuple[str, ...] = ("market", "market_adjusted", "constant_mean")
ESTIMATION_STARTS: tuple[int, ...] = (60, 120, 250)
RETURN_KINDS: tuple[str, ...] = ("simple", "log")
ESTIMATION_END = -11
NON_AI_CRYPTO = frozenset({"crypto", "crypto_benchmark"})


def crypto_index(prices: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Long closes (``date, symbol, asset_class, close``) of a crypto market index named
    :data:`INDEX_SYMBOL`, and how it was built.

    Members: every symbol whose ``asset_class`` is ``crypto`` or ``crypto_benchmark`` (no AI
    token, so the benchmark does not contain the event's own response). Market-cap-weighted
    (weights = caps of the day before, :func:`analysis.sector.cap_weighted_returns`) when
    every member has a market cap on most days; otherwise equal-weighted, rebalanced daily.
    """
    members = sorted(prices.loc[prices["asset_class"].isin(NON_AI_CRYPTO), "symbol"].unique())
    if not members:
        raise ValueError("No non-AI crypto (asset_class crypto or crypto_benchmark) to index.")
    closes = sector.wide(prices, symbols=members)
    caps = None
    if "market_cap" in prices.columns:
        caps = sector.wide(prices, "market_cap", symbols=members)
    cap_ok = (
        caps is not None
        and set(caps.columns) == set(members)
        and bool((caps.notna().mean() > 0.9).all())
    )
    if cap_ok:
        assert caps is not None
        ret = sector.cap_weighted_returns(closes, caps)
        ret.iloc[0] = 0.0
        level = 100.0 * (1.0 + ret.fillna(0.0)).cumprod()
        how = f"market-cap-weighted index of {', '.join(members)}"
    else:
        level = sector.equal_weight_index(closes)["level"]
        how = f"equal-weight index of {', '.join(members)} (no market caps for every member)"
    frame = pd.DataFrame(
        {
            "date": level.index,
            "symbol": INDEX_SYMBOL,
            "asset_class": "crypto_benchmark",
            "close": level.to_numpy(),
        }
    )
    return frame, how


@dataclass(frozen=True)
class Spec:
    """One specification of the grid."""

    benchmark: str  # "none" for the constant-mean model
    model: str
    estimation_start: int  # the estimation window is [-start, -11]
    return_kind: str

    @property
    def estimation_window(self) -> tuple[int, int]:
        return (-self.estimation_start, ESTIMATION_END)

    @property
    def label(self) -> str:
        return (
            f"{self.model}, {self.benchmark}, est -{self.estimation_start}:{ESTIMATION_END}, "
            f"{self.return_kind}"
        )


def specifications(
    benchmarks: Sequence[str] = BENCHMARKS,
    models: Sequence[str] = MODELS,
    starts: Sequence[int] = ESTIMATION_STARTS,
    kinds: Sequence[str] = RETURN_KINDS,
) -> list[Spec]:
    """Every combination; the constant-mean model once per window and kind (no benchmark)."""
    out = []
    for m in models:
        for b in ["none"] if m == "constant_mean" else benchmarks:
            for s in starts:
                for k in kinds:
                    out.append(Spec(b, m, s, k))
    return out


@dataclass(frozen=True)
class RobustnessGrid:
    """The headline of every specification (:meth:`frame`) and the baseline's."""

    window: str
    table: pd.DataFrame
    baseline: Spec
    index_how: str

    def frame(self) -> pd.DataFrame:
        """One row per specification: ``benchmark, model, estimation, returns, n, caar, kp_t,
        kp_p, placebo_p, n_placebo, headline_p, agrees, baseline``."""
        return self.table.copy()

    @property
    def n_agree(self) -> int:
        return int(self.table["agrees"].sum())

    def sentence(self) -> str:
        """How many specifications agree, saying what "agree" means."""
        t = self.table
        base = t[t["baseline"]].iloc[0]
        sign = "positive" if base["caar"] > 0 else "negative"
        return (
            f"{self.n_agree} of {len(t)} specifications agree with the baseline "
            f"({self.baseline.label}) on CAR{self.window}: a {sign} CAAR like the baseline's "
            f"({100 * base['caar']:+.1f}%) that is significant at 5% by the headline test "
            f"(KP-BMP with at least {SMALL_N} assets, the placebo p-value below); "
            f"{int((np.sign(t['caar']) == np.sign(base['caar'])).sum())} have the same sign."
        )


def _one(study: EventStudy, data: pd.DataFrame, window: str, catalog: Sequence[Any], pl: bool):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = study.fit(data)
        plr = placebo(study, data, catalog=catalog) if pl else None
    t = res.tests
    kp = t[(t["group"] == "all") & (t["kind"] == "car") & (t["test"] == "kp_bmp")].set_index(
        "window"
    )
    car = res.car[window]
    rec = {}
    if plr is not None and not plr.reason:
        rec = next(r for r in plr.records() if r["window"] == window)
    return {
        "n": int(car.notna().sum()),
        "caar": float(car.mean()),
        "kp_t": float(kp.loc[window, "stat"]),
        "kp_p": float(kp.loc[window, "pvalue"]),
        "placebo_p": float("nan") if rec.get("p_value") is None else rec["p_value"],
        "n_placebo": int(rec.get("n_placebo", 0)),
    }


def robustness_grid(
    base: EventStudy,
    prices: pd.DataFrame,
    *,
    window: str = "[0,3]",
    specs: Iterable[Spec] | None = None,
    catalog: Sequence[Any] = (),
    with_placebo: bool = True,
) -> RobustnessGrid:
    """The headline of ``base`` (one event, its assets) on CAR ``window`` across ``specs``
    (default :func:`specifications`), each fitted on ``prices`` (long closes with
    ``asset_class``; the crypto index is added to them). Benchmarks missing from the data are
    skipped. The baseline is the specification equal to ``base``'s own."""
    index, how = crypto_index(prices)
    data = pd.concat([prices, index], ignore_index=True)
    held = set(data["symbol"])
    classes = data.groupby("symbol")["asset_class"].first()
    assets = base.assets or sorted(
        s for s, c in classes.items() if c not in {"crypto_benchmark", "equity_benchmark"}
    )
    asset_classes = sorted({classes[a] for a in assets})
    base_bench = base.benchmarks.get(asset_classes[0], "BTC") if asset_classes else "BTC"
    baseline = Spec(
        "none" if base.model == "constant_mean" else base_bench,
        base.model,
        -base.estimation_window[0],
        base.return_kind,
    )
    rows = []
    spec_list = list(specifications() if specs is None else specs)
    if baseline not in spec_list:
        spec_list.insert(0, baseline)
    for sp in spec_list:
        if sp.benchmark != "none" and sp.benchmark not in held:
            continue
        spec = {
            **base.spec,
            "model": sp.model,
            "estimation_window": list(sp.estimation_window),
            "return_kind": sp.return_kind,
            "min_estimation_obs": None,
            "assets": list(assets),
            "portfolios": False,
            "tests": ["kp_bmp"],
        }
        if sp.benchmark != "none":
            spec["benchmarks"] = {**base.benchmarks, **dict.fromkeys(asset_classes, sp.benchmark)}
        study = EventStudy.from_spec(spec)
        rows.append(
            {
                "benchmark": sp.benchmark,
                "model": sp.model,
                "estimation": f"-{sp.estimation_start}:{ESTIMATION_END}",
                "returns": sp.return_kind,
                **_one(study, data, window, catalog, with_placebo),
                "baseline": sp == baseline,
            }
        )
    table = pd.DataFrame(rows)
    base_caar = float(table.loc[table["baseline"], "caar"].iloc[0])
    table["headline_p"] = np.where(table["n"] >= SMALL_N, table["kp_p"], table["placebo_p"])
    table["agrees"] = (np.sign(table["caar"]) == np.sign(base_caar)) & (table["headline_p"] < 0.05)
    return RobustnessGrid(window, table, baseline, how)


def portfolio_kp_sentence(result: Any, window: str = "[0,3]") -> str:
    """Why the equal-weight portfolio's own-model t and the KP-BMP t of ``window`` differ, in
    one sentence with both numbers (``result``: an :class:`~analysis.EventStudyResult` with
    portfolios)."""
    port = result.portfolios
    eq = port[(port["weighting"] == "equal") & (port["window"] == window) & (port["reason"] == "")]
    if eq.empty:
        return ""
    t = result.tests
    t = t[(t["kind"] == "car") & (t["test"] == "kp_bmp") & (t["window"] == window)]
    # the KP-BMP of the portfolio's members: their asset class when the study has several
    cls = str(eq["group"].iloc[0]).split(" vs ")[0]
    kp = t[t["group"] == f"class={cls}"]
    kp = kp if not kp.empty else t[t["group"] == "all"]
    if kp.empty:
        return ""
    tp, tk = float(eq["tstat"].iloc[0]), float(kp["stat"].iloc[0])
    n, members = int(kp["n"].iloc[0]), int(eq["members"].iloc[0])
    return (
        f"The equal-weight portfolio's t for CAR{window} ({tp:.2f}) and the KP-BMP t ({tk:.2f}) "
        "answer different questions: the portfolio t divides the portfolio's CAR by the "
        "residual variance of its own market model over the estimation window (one series of "
        f"{members} assets, so the variance already holds their cross-correlation; t with "
        "L1 - 2 degrees of freedom), while KP-BMP standardizes each asset's CAR by that "
        "asset's own forecast-error variance, divides the mean by the cross-sectional spread "
        "of the standardized CARs on the event date (which widens when the assets react "
        "unequally) and deflates it by sqrt((1 - r)/(1 + (N - 1) r)) for the mean residual "
        f"correlation r, with t(N - 1) = t({n - 1}) critical values."
    )


__all__ = [
    "BENCHMARKS",
    "ESTIMATION_STARTS",
    "INDEX_SYMBOL",
    "MODELS",
    "RETURN_KINDS",
    "RobustnessGrid",
    "Spec",
    "crypto_index",
    "portfolio_kp_sentence",
    "robustness_grid",
    "specifications",
]
