"""Cross-sectional regression of one window's CARs on characteristics known before the event.

The second stage of an event study (MacKinlay 1997, section 8, "Cross-sectional models"):

.. math::

    CAR_i(\\tau_1, \\tau_2) = \\gamma_0 + \\sum_k \\gamma_k x_{ik} + \\eta_i

by OLS, or by WLS with weights :math:`1 / \\widehat{Var}(CAR_i)` (the forecast-error-corrected
CAR variance of the first stage, so noisier assets count less), always with a constant and with
heteroskedasticity-robust HC3 standard errors (MacKinnon & White 1985; Long & Ervin 2000 show
HC3 is the one to use in small samples) computed by statsmodels, p-values from Student t with
N - k degrees of freedom.

Characteristics, each measured in the asset's own sessions before the event window opens
(:data:`CHARACTERISTICS`; ``group:<name>`` adds a 0/1 dummy for a group):

- ``log_cap`` = ln(market cap at day -6);
- ``beta`` = the market-model beta of the estimation window (first stage);
- ``pre_return`` = close(day -6) / close(day -31) - 1;
- ``log_volume`` = ln(mean ``volume_usd`` over days -30 .. -6, the days present).

References
----------
MacKinlay, A. C. (1997). Event studies in economics and finance. JEL 35(1), 13-39.
MacKinnon, J. G. & White, H. (1985). Some heteroskedasticity-consistent covariance matrix
estimators with improved finite sample properties. J. Econometrics 29(3), 305-325.
Long, J. S. & Ervin, L. H. (2000). Using heteroscedasticity consistent standard errors in the
linear regression model. The American Statistician 54(3), 217-224.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from statsmodels.iolib.summary import Summary
from statsmodels.regression.linear_model import OLS, WLS
from statsmodels.tools.tools import add_constant

from analysis.calendars import sessions
from analysis.errors import EventStudyInputError

CHARACTERISTICS = ("log_cap", "beta", "pre_return", "log_volume")
"""Named characteristics; ``group:<name>`` dummies come on top."""
GROUP_PREFIX = "group:"
CAP_DAY = -6
PRE_RETURN_DAYS = (-31, -6)
VOLUME_DAYS = (-30, -6)


class RegressionInputError(EventStudyInputError):
    """The regression cannot be estimated as asked (too few assets, collinear regressors)."""


def parse_regressors(spec: str | Sequence[str]) -> tuple[str, ...]:
    """``"beta,pre_return,group:compute"`` -> a tuple of regressor names, checked."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    out = [s.strip() for s in items if s and s.strip()]
    if not out:
        raise RegressionInputError(
            f"--regress names no characteristic; choose from {', '.join(CHARACTERISTICS)} or "
            "group:<name>."
        )
    bad = [
        s
        for s in out
        if s not in CHARACTERISTICS and not (s.startswith(GROUP_PREFIX) and len(s) > 6)
    ]
    if bad:
        raise RegressionInputError(
            f"--regress {', '.join(bad)} is not a characteristic; choose from "
            f"{', '.join(CHARACTERISTICS)} or group:<name> (e.g. group:compute)."
        )
    dup = sorted({s for s in out if out.count(s) > 1})
    if dup:
        raise RegressionInputError(f"--regress names {', '.join(dup)} twice.")
    return tuple(out)


def _offset_dates(calendar: str, day0: pd.Timestamp, offsets: Sequence[int]) -> list[pd.Timestamp]:
    """The sessions ``k`` sessions from ``day0`` on ``calendar`` for each ``k`` (negative)."""
    lo = min(offsets)
    pad = pd.Timedelta(hours=abs(lo) + 2) if calendar.endswith("_1h") else None
    start = day0 - (pad if pad is not None else pd.Timedelta(days=abs(lo) * 2 + 15))
    s = sessions(calendar, start, day0)
    pos = len(s) - 1
    return [s[pos + k] for k in offsets]


def characteristics(
    params: pd.DataFrame,
    prices: pd.DataFrame,
    groups: Mapping[str, Sequence[str]] | None = None,
) -> pd.DataFrame:
    """Every characteristic of each ``(event, asset)`` pair of a fitted study.

    Parameters
    ----------
    params
        ``result.params`` of the first stage (``day0``, ``calendar``, ``beta`` per pair).
    prices
        Long ``date, symbol, close`` with optional ``market_cap`` and ``volume_usd``.
    groups
        ``{group: [symbols]}``: one ``group:<name>`` 0/1 column per group.

    Returns
    -------
    pandas.DataFrame
        Index ``(event, asset)``; columns ``log_cap, beta, pre_return, log_volume`` and the group
        dummies; NaN where the input is missing (no market cap, no close on day -31, ...).
    """
    px = prices.copy()
    px["date"] = pd.to_datetime(px["date"])
    for col in ("market_cap", "volume_usd"):
        if col not in px.columns:
            px[col] = np.nan
    by_sym = {s: f.set_index("date") for s, f in px.groupby("symbol")}
    rows = []
    lo_v, hi_v = VOLUME_DAYS
    offsets = [PRE_RETURN_DAYS[0], *range(lo_v, hi_v + 1)]
    for (event, asset), p in params.iterrows():
        frame = by_sym.get(asset)
        day0 = pd.Timestamp(p["day0"])
        dates = _offset_dates(str(p["calendar"]), day0, offsets)
        d31, window = dates[0], dates[1:]
        d6 = window[-1]
        rec: dict[str, Any] = {"event": event, "asset": asset, "beta": float(p["beta"])}
        if frame is None:
            rec.update(log_cap=np.nan, pre_return=np.nan, log_volume=np.nan)
        else:
            close = frame["close"]
            c6, c31 = close.get(d6, np.nan), close.get(d31, np.nan)
            rec["pre_return"] = float(c6 / c31 - 1) if c31 == c31 and c31 > 0 else np.nan
            cap = frame["market_cap"].get(d6, np.nan)
            rec["log_cap"] = math.log(cap) if cap == cap and cap > 0 else np.nan
            vol = frame["volume_usd"].reindex(pd.DatetimeIndex(window)).dropna()
            mean_vol = float(vol.mean()) if len(vol) else np.nan
            rec["log_volume"] = (
                math.log(mean_vol) if mean_vol == mean_vol and mean_vol > 0 else np.nan
            )
        for g, members in (groups or {}).items():
            rec[f"{GROUP_PREFIX}{g}"] = 1.0 if asset in set(members) else 0.0
        rows.append(rec)
    out = pd.DataFrame(rows).set_index(["event", "asset"])
    cols = [*CHARACTERISTICS, *[f"{GROUP_PREFIX}{g}" for g in (groups or {})]]
    return out[cols]


@dataclass(frozen=True)
class RegressionResult:
    """A fitted cross-sectional regression: labelled coefficients with HC3 errors."""

    window: str
    method: str  # 'OLS' or 'WLS'
    regressors: tuple[str, ...]
    data: pd.DataFrame  # the rows used: car, (weight), regressors
    dropped: pd.DataFrame  # event, asset, reason
    _fit: Any  # statsmodels RegressionResultsWrapper

    @property
    def params(self) -> pd.Series:
        """Coefficients, ``const`` first."""
        return self._fit.params.copy()

    @property
    def bse(self) -> pd.Series:
        """HC3 standard errors."""
        return self._fit.bse.copy()

    @property
    def tvalues(self) -> pd.Series:
        return self._fit.tvalues.copy()

    @property
    def pvalues(self) -> pd.Series:
        """Two-sided p-values from Student t with N - k degrees of freedom (``use_t``: the
        normal approximation statsmodels uses by default for robust errors is too kind at the
        handful of assets a sub-sector holds)."""
        return self._fit.pvalues.copy()

    @property
    def nobs(self) -> int:
        return int(self._fit.nobs)

    @property
    def rsquared(self) -> float:
        return float(self._fit.rsquared)

    @property
    def table(self) -> pd.DataFrame:
        """``coef, se_hc3, t, pvalue`` per term."""
        return pd.DataFrame(
            {"coef": self.params, "se_hc3": self.bse, "t": self.tvalues, "pvalue": self.pvalues}
        )

    def summary(self) -> Summary:
        """statsmodels' regression summary (``Covariance Type: HC3``) with the dropped rows."""
        smry = self._fit.summary(
            yname=f"CAR{self.window}", title=f"Cross-sectional {self.method} of CAR{self.window}"
        )
        for r in self.dropped.itertuples(index=False):
            smry.add_extra_txt([f"Left out {r.asset} / {r.event}: {r.reason}."])
        return smry

    def __str__(self) -> str:
        return self.summary().as_text()

    def to_dict(self) -> dict[str, Any]:
        def num(v: float) -> float | None:
            return float(v) if math.isfinite(v) else None

        terms = {
            name: {
                "coef": num(r.coef),
                "se_hc3": num(r.se_hc3),
                "t": num(r.t),
                "pvalue": num(r.pvalue),
            }
            for name, r in self.table.iterrows()
        }
        return {
            "window": self.window,
            "method": self.method,
            "cov_type": "HC3",
            "regressors": list(self.regressors),
            "nobs": self.nobs,
            "rsquared": num(self.rsquared),
            "coefficients": terms,
            "assets": [f"{e}/{a}" for e, a in self.data.index],
            "data": json.loads(
                self.data.reset_index().to_json(orient="records", double_precision=15)
            ),
            "dropped": json.loads(self.dropped.to_json(orient="records", double_precision=15)),
        }


def fit_cross_section(
    car: pd.Series,
    regressors: pd.DataFrame,
    *,
    window: str,
    car_var: pd.Series | None = None,
    wls: bool = False,
) -> RegressionResult:
    """Regress ``car`` on the columns of ``regressors`` (plus a constant).

    Rows with a missing CAR, regressor or (for WLS) variance are left out and named in
    ``result.dropped``. Raises :class:`RegressionInputError` when fewer assets remain than the
    regression needs (parameters + 1, so that HC3's leverage correction is defined), when a
    regressor is constant or collinear with others, or when one asset alone pins a coefficient
    (leverage 1, where HC3 divides by zero).
    """
    names = list(regressors.columns)
    frame = regressors.copy()
    frame.insert(0, "car", car.reindex(frame.index))
    if wls:
        if car_var is None:
            raise RegressionInputError("WLS needs the CAR variances (weights 1/Var(CAR)).")
        frame.insert(1, "weight", 1.0 / car_var.reindex(frame.index))
    reasons = []
    for idx, row in frame.iterrows():
        miss = [c for c in frame.columns if not np.isfinite(row[c])]
        if miss:
            what = ", ".join("CAR" if c == "car" else c for c in miss)
            reasons.append({"event": idx[0], "asset": idx[1], "reason": f"no {what}"})
    dropped = pd.DataFrame(reasons, columns=["event", "asset", "reason"])
    used = frame[np.isfinite(frame.to_numpy(dtype=float)).all(axis=1)]
    k = len(names) + 1
    need = k + 1
    if len(used) < need:
        left = (
            f" ({len(dropped)} left out: {'; '.join(dropped['asset'] + ': ' + dropped['reason'])})"
        )
        raise RegressionInputError(
            f"The regression of CAR{window} on {', '.join(names)} has {k} parameters with the "
            f"constant and needs at least {need} assets; {len(used)} have every value"
            f"{left if len(dropped) else ''}. Ask for fewer regressors or study more assets."
        )
    x = add_constant(used[names].astype(float), has_constant="add")
    for c in names:
        if np.ptp(x[c].to_numpy()) == 0:
            raise RegressionInputError(
                f"Regressor {c} takes one value ({x[c].iloc[0]:g}) for every asset in the "
                f"regression of CAR{window}: it cannot be told from the constant. Drop it."
            )
    if np.linalg.matrix_rank(x.to_numpy()) < k:
        raise RegressionInputError(
            f"The regressors {', '.join(names)} are collinear (with the constant) across the "
            f"{len(used)} assets of CAR{window}, e.g. group dummies that cover every asset: "
            "drop one."
        )
    y = used["car"].astype(float)
    model = WLS(y, x, weights=used["weight"]) if wls else OLS(y, x)
    xw = x.to_numpy() * np.sqrt(used["weight"].to_numpy() if wls else 1.0)[..., None]
    hat = np.einsum("ij,jk,ik->i", xw, np.linalg.pinv(xw.T @ xw), xw)  # leverages (HC3's h_ii)
    if np.max(hat) > 1 - 1e-8:
        who = used.index[int(np.argmax(hat))]
        raise RegressionInputError(
            f"{who[1]} ({who[0]}) alone determines a coefficient of the regression of "
            f"CAR{window} (leverage 1), where HC3 errors are undefined: drop a regressor or "
            "study more assets."
        )
    fit = model.fit(cov_type="HC3", use_t=True)
    return RegressionResult(
        window=window,
        method="WLS" if wls else "OLS",
        regressors=tuple(names),
        data=used,
        dropped=dropped,
        _fit=fit,
    )


def regress_result(
    result: Any,
    prices: pd.DataFrame,
    regressors: Sequence[str],
    window: str,
    *,
    groups: Mapping[str, Sequence[str]] | None = None,
    wls: bool = False,
) -> RegressionResult:
    """The second stage of a fitted :class:`~analysis.EventStudyResult`: CAR ``window`` (a label
    such as ``"[0,5]"``) on ``regressors`` built by :func:`characteristics`."""
    names = parse_regressors(regressors)
    if window not in result.car.columns:
        raise RegressionInputError(
            f"CAR window {window} is not among the study's CAR windows "
            f"({', '.join(result.car.columns)}): add it with --car."
        )
    wanted = {n[len(GROUP_PREFIX) :] for n in names if n.startswith(GROUP_PREFIX)}
    unknown = sorted(wanted - set(groups or {}))
    if unknown:
        raise RegressionInputError(
            f"--regress names group {', '.join(unknown)}, which is not in the groups table "
            f"(groups: {', '.join(sorted(groups or {})) or 'none'})."
        )
    chars = characteristics(result.params, prices, {g: (groups or {})[g] for g in sorted(wanted)})
    return fit_cross_section(
        result.car[window],
        chars[list(names)],
        window=window,
        car_var=result.car_std[window] ** 2,
        wls=wls,
    )


__all__ = [
    "CHARACTERISTICS",
    "RegressionInputError",
    "RegressionResult",
    "characteristics",
    "fit_cross_section",
    "parse_regressors",
    "regress_result",
]
