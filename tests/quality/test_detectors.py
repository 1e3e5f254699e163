"""The detectors on the real panels (clean and glitched) and their properties (Hypothesis)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.quality.glitches import inject
from warehouse.quality_checks import DEFAULT_SETTINGS, detect

PANELS = [
    ("sora2024", "prices.csv"),
    ("sora2024", "hourly.csv"),
    ("ai_events", "prices.csv"),
    ("ai_events", "hourly.csv"),
]


def _panel(shared_dir: Path, folder: str, name: str) -> pd.DataFrame:
    path = shared_dir / "data" / folder / name
    if not path.is_file():
        pytest.skip(f"real panel {path} is absent")
    frame = pd.read_csv(path)
    frame["source"] = frame["venue"]
    return frame


@pytest.mark.parametrize(("folder", "name"), PANELS)
def test_real_panels_are_clean(shared_dir, folder, name):
    """No point of the four real panels is caught with the default thresholds."""
    found = detect(_panel(shared_dir, folder, name))
    assert found.empty, found.head().to_string()


PLAN = [
    ("FET", "spike"),
    ("GRT", "pow10"),
    ("INJ", "shift"),
    ("WLD", "zero"),
    ("AGIX", "negative"),
    ("RNDR", "nan"),
    ("NMR", "stale"),
]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(
    ("folder", "name"), [("sora2024", "prices.csv"), ("sora2024", "hourly.csv")]
)
def test_every_injected_glitch_is_caught_with_its_check(shared_dir, folder, name, seed):
    clean = _panel(shared_dir, folder, name)
    plan = [(s, k) for s, k in PLAN if s in set(clean["symbol"])]
    glitched, injected = inject(clean, plan, seed=seed)
    found = detect(glitched)
    got = {(r.symbol, str(r.time), r.check) for r in found.itertuples()}
    want = {(i.symbol, str(i.time), i.check) for i in injected}
    assert want <= got, sorted(want - got)
    # Anything more is the tail of the shifted series (each point still 10^k off its past).
    shifted = {s for s, k in plan if k == "shift"}
    extra = got - want
    assert all(sym in shifted and check == "level_shift" for sym, _, check in extra), extra
    assert len(extra) < DEFAULT_SETTINGS.shift_window


def _series(steps: list[float], start: float = 100.0) -> pd.DataFrame:
    logp = math.log(start) + np.cumsum([0.0, *steps])
    return pd.DataFrame(
        {
            "symbol": "X",
            "source": "s",
            "date": pd.date_range("2024-01-01", periods=len(logp), freq="D"),
            "close": np.exp(logp),
        }
    )


# Moves a real series makes (|log return| <= 0.2, never exactly flat): nothing is caught.
STEPS = st.lists(
    st.floats(0.001, 0.2).flatmap(lambda x: st.sampled_from([x, -x])), min_size=5, max_size=60
)


@settings(max_examples=60, deadline=None)
@given(STEPS)
def test_ordinary_moves_are_never_caught(steps):
    assert detect(_series(steps)).empty


@settings(max_examples=60, deadline=None)
@given(STEPS, st.floats(1e-6, 1e6), st.data())
def test_checks_are_scale_invariant(steps, scale, data):
    """A change of unit of the whole series (x any positive constant) changes no verdict."""
    frame = _series(steps)
    i = data.draw(st.integers(0, len(frame) - 1))
    frame.loc[i, "close"] *= data.draw(st.sampled_from([1.0, 1e-3, 100.0, 50.0]))
    scaled = frame.assign(close=frame["close"] * scale)
    a = detect(frame)[["time", "check"]].reset_index(drop=True)
    b = detect(scaled)[["time", "check"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)


@settings(max_examples=60, deadline=None)
@given(STEPS.filter(lambda s: len(s) >= 6), st.integers(-3, 3).filter(bool), st.data())
def test_a_reverting_power_of_ten_print_is_a_spike(steps, k, data):
    frame = _series(steps)
    i = data.draw(st.integers(1, len(frame) - 2))
    frame.loc[i, "close"] *= 10.0**k
    found = detect(frame)
    assert list(found["time"]) == [frame.loc[i, "date"]]
    assert list(found["check"]) == ["spike"]


@settings(max_examples=60, deadline=None)
@given(STEPS, st.sampled_from([0.0, -1.0, math.nan, math.inf]), st.data())
def test_a_non_positive_or_non_finite_close_is_caught(steps, bad, data):
    frame = _series(steps)
    i = data.draw(st.integers(0, len(frame) - 1))
    frame.loc[i, "close"] = bad
    found = detect(frame)
    want = "non_positive" if math.isfinite(bad) else "non_finite"
    # the bad point is caught, and it alone: it never poisons its neighbours' checks
    assert list(found["time"]) == [frame.loc[i, "date"]]
    assert list(found["check"]) == [want]


@settings(max_examples=60, deadline=None)
@given(STEPS.filter(lambda s: len(s) >= 20), st.integers(2, 15), st.data())
def test_stale_runs_from_the_threshold_on(steps, length, data):
    frame = _series(steps)
    i = data.draw(st.integers(0, len(frame) - length))
    frame.loc[i : i + length - 1, "close"] = frame.loc[i, "close"]
    found = detect(frame)
    if length >= DEFAULT_SETTINGS.stale_periods:
        assert list(found["check"]) == ["stale"] * (length - 1)
        assert list(found["time"]) == list(frame.loc[i + 1 : i + length - 1, "date"])
    else:
        assert found.empty
