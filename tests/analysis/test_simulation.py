"""Brown-Warner style simulation: size and power of BMP and the Kolari-Pynnonen adjusted BMP.

Seven assets share one event date; their market-model residuals have pairwise correlation 0.5.
Everything runs through the engine's own estimators (``fit_model``, ``ModelFit.ar_variance``) and
test statistics, vectorised over replications x assets.
"""

from __future__ import annotations

import numpy as np
import pytest

from analysis import statistics as st
from analysis.models import fit_model

N_ASSETS = 7
RHO = 0.5
L1 = 110  # default estimation window [-120, -11]
REPS = 4000
SEED = 20240215


def simulate(abnormal_sigmas: float, seed: int) -> dict[str, np.ndarray]:
    """Day-0 rejections at 5% (two-sided) of BMP and KP-BMP for each replication."""
    rng = np.random.default_rng(seed)
    days = L1 + 1  # estimation days, then day 0
    sigma = rng.uniform(0.01, 0.03, (REPS, N_ASSETS))
    beta = rng.uniform(0.5, 1.5, (REPS, N_ASSETS))
    market = rng.normal(0.0, 0.01, (REPS, 1, days))
    common = rng.normal(size=(REPS, 1, days))
    own = rng.normal(size=(REPS, N_ASSETS, days))
    eps = (np.sqrt(RHO) * common + np.sqrt(1 - RHO) * own) * sigma[..., None]
    y = 0.0002 + beta[..., None] * market + eps
    y[..., -1] += abnormal_sigmas * sigma  # injected abnormal return on day 0
    x = np.broadcast_to(market, y.shape)
    flat = lambda a: a.reshape(REPS * N_ASSETS, days)  # noqa: E731
    fit = fit_model("market", flat(y)[:, :L1], flat(x)[:, :L1])
    ar = flat(y)[:, L1:] - fit.predict(flat(x)[:, L1:])
    sar = (ar / np.sqrt(fit.ar_variance(flat(x)[:, L1:])))[:, 0].reshape(REPS, N_ASSETS)
    t_bmp, n = st.bmp_t(sar)
    rbar = st.mean_offdiag_corr(fit.resid.reshape(REPS, N_ASSETS, L1))
    t_kp = st.kp_adjust(t_bmp, n, rbar)
    return {
        "bmp": st.pvalue_t(t_bmp, n - 1) < 0.05,
        "kp_bmp": st.pvalue_t(t_kp, n - 1) < 0.05,
        "rbar": rbar,
    }


@pytest.fixture(scope="module")
def null_run():
    return simulate(0.0, SEED)


@pytest.fixture(scope="module")
def alt_run():
    return simulate(3.0, SEED + 1)


def test_residual_correlation_is_recovered(null_run):
    assert abs(null_run["rbar"].mean() - RHO) < 0.02


def test_kp_bmp_has_the_nominal_size(null_run):
    rate = null_run["kp_bmp"].mean()
    assert 0.03 <= rate <= 0.07, f"KP-adjusted BMP rejects a true null {rate:.3%} of the time"


def test_unadjusted_bmp_over_rejects(null_run):
    rate = null_run["bmp"].mean()
    assert rate > 0.15, f"BMP should over-reject under cross-correlation, got {rate:.3%}"
    assert rate > 2 * null_run["kp_bmp"].mean()


def test_kp_bmp_detects_a_three_sigma_abnormal_return(alt_run):
    power = alt_run["kp_bmp"].mean()
    assert power >= 0.80, f"KP-adjusted BMP detects a 3-sigma AR only {power:.1%} of the time"


def test_simulation_is_repeatable():
    a, b = simulate(0.0, 7), simulate(0.0, 7)
    np.testing.assert_array_equal(a["kp_bmp"], b["kp_bmp"])
