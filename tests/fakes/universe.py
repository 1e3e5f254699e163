"""Deterministic data behind the fakes: coins with daily series, equities with sessions.

Every series is a seeded random walk (seed = CRC32 of the id), so the same id always gives the
same numbers whatever range is asked for. Where the shared folder holds real data
(``$AITOKENS_SHARED`` or ``../shared``), it replaces the walk on those days:

- ``sora2024/coingecko_btc_eth.csv``: CoinGecko's own BTC/ETH price, market cap and volume,
  stamped at 00:00 UTC of the row's date;
- ``sora2024/prices.csv``: UTC-day closes of AI tokens (FET, AGIX, RNDR, GRT, INJ, WLD, NMR,
  ARKM), served at the stamp of the *next* day, as CoinGecko does (close of D-1 at D 00:00);
- ``raw/yahoo_{nvda,amd,spy,qqq}_daily_adjusted.csv``: adjusted OHLCV for the Yahoo fake.
"""

from __future__ import annotations

import functools
import os
import threading
import zlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

REPO_ROOT = Path(__file__).resolve().parents[2]

# (coin id, symbol, name, symbol in sora2024/prices.csv or None)
REAL_AI_COINS: tuple[tuple[str, str, str, str | None], ...] = (
    ("fetch-ai", "fet", "Artificial Superintelligence Alliance", "FET"),
    ("render-token", "rndr", "Render", "RNDR"),
    ("singularitynet", "agix", "SingularityNET", "AGIX"),
    ("bittensor", "tao", "Bittensor", None),
    ("the-graph", "grt", "The Graph", "GRT"),
    ("injective-protocol", "inj", "Injective", "INJ"),
    ("worldcoin-wld", "wld", "Worldcoin", "WLD"),
    ("arkham", "arkm", "Arkham", "ARKM"),
    ("numeraire", "nmr", "Numeraire", "NMR"),
    ("ocean-protocol", "ocean", "Ocean Protocol", None),
    ("akash-network", "akt", "Akash Network", None),
)
BENCHMARK_COINS: tuple[tuple[str, str, str, str | None], ...] = (
    ("bitcoin", "btc", "Bitcoin", "BTC"),
    ("ethereum", "eth", "Ethereum", "ETH"),
)
FIRST_DAY = date(2017, 1, 1)


def shared_root() -> Path:
    return Path(os.environ.get("AITOKENS_SHARED", REPO_ROOT.parent / "shared")).resolve()


def today_utc() -> date:
    return datetime.now(UTC).date()


def seed_of(name: str) -> int:
    return zlib.crc32(name.encode())


@functools.lru_cache(maxsize=1)
def sora_closes() -> dict[str, dict[date, tuple[float, float]]]:
    """symbol -> {UTC close date: (close, volume_usd or NaN)} from sora2024/prices.csv."""
    path = shared_root() / "data" / "sora2024" / "prices.csv"
    if not path.is_file():
        return {}
    frame = pd.read_csv(path)
    out: dict[str, dict[date, tuple[float, float]]] = {}
    for row in frame.itertuples(index=False):
        d = date.fromisoformat(str(row.date))
        out.setdefault(row.symbol, {})[d] = (float(row.close), float(row.volume_usd))
    return out


@functools.lru_cache(maxsize=1)
def coingecko_btc_eth() -> dict[str, dict[date, tuple[float, float, float]]]:
    """symbol -> {stamp date: (price, market_cap, total_volume)} from coingecko_btc_eth.csv."""
    path = shared_root() / "data" / "sora2024" / "coingecko_btc_eth.csv"
    if not path.is_file():
        return {}
    frame = pd.read_csv(path)
    out: dict[str, dict[date, tuple[float, float, float]]] = {}
    for row in frame.itertuples(index=False):
        out.setdefault(row.symbol, {})[date.fromisoformat(str(row.date))] = (
            float(row.price_at_0000_utc),
            float(row.market_cap),
            float(row.total_volume),
        )
    return out


@dataclass
class CoinSeries:
    """Daily values at each 00:00 UTC stamp from ``first`` to ``last`` (inclusive)."""

    coin_id: str
    symbol: str
    name: str
    first: date  # first stamp date (listing)
    prices: np.ndarray
    market_caps: np.ndarray
    volumes: np.ndarray
    real_days: int = 0  # how many stamps carry real data

    @property
    def last(self) -> date:
        return self.first + timedelta(days=len(self.prices) - 1)

    def index(self, stamp: date) -> int:
        return (stamp - self.first).days


def _walk(seed: int, n: int, *, start_price: float, vol: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    steps = rng.normal(0.0, vol, size=n)
    steps[0] = 0.0
    return start_price * np.exp(np.cumsum(steps))


def make_coin(
    coin_id: str, symbol: str, name: str, real_symbol: str | None, last: date
) -> CoinSeries:
    seed = seed_of(coin_id)
    rng = np.random.default_rng(seed + 1)
    if coin_id in ("bitcoin", "ethereum"):
        first = date(2015, 1, 1)
    elif real_symbol is not None or coin_id in {c[0] for c in REAL_AI_COINS}:
        first = date(2019, 1, 1)
    else:  # generated coins list on different days: unbalanced histories are normal
        first = FIRST_DAY + timedelta(days=int(rng.integers(0, 2200)))
    n = max(1, (last - first).days + 1)
    start_price = {"bitcoin": 300.0, "ethereum": 1.0}.get(coin_id, float(10 ** rng.uniform(-2, 1)))
    prices = _walk(
        seed, n, start_price=start_price, vol=0.03 if coin_id in ("bitcoin", "ethereum") else 0.045
    )
    supply = {"bitcoin": 19.5e6, "ethereum": 120e6}.get(coin_id, float(10 ** rng.uniform(7, 9.5)))
    turnover = float(rng.uniform(0.01, 0.2))
    caps = prices * supply
    vols = caps * turnover * np.exp(np.random.default_rng(seed + 2).normal(0, 0.3, size=n))
    real: dict[int, tuple[float, float, float]] = {}
    if real_symbol in ("BTC", "ETH"):
        for stamp, (p, mc, v) in coingecko_btc_eth().get(real_symbol, {}).items():
            real[(stamp - first).days] = (p, mc, v)
    elif real_symbol is not None:
        for close_day, (p, v) in sora_closes().get(real_symbol, {}).items():
            i = (close_day + timedelta(days=1) - first).days  # close of D-1 stamped at D
            real[i] = (p, p * supply, v if not np.isnan(v) else float(vols[i]) if 0 <= i < n else v)
    real = {i: v for i, v in real.items() if 0 <= i < n}
    if real:
        # scale the walk so it joins the real stretch continuously on both sides
        lo_i, hi_i = min(real), max(real)
        for arr, k in ((prices, 0), (caps, 1)):
            arr[:lo_i] *= real[lo_i][k] / arr[lo_i]
            arr[hi_i + 1 :] *= real[hi_i][k] / arr[hi_i]
        for i, (p, mc, v) in real.items():
            prices[i], caps[i], vols[i] = p, mc, v
    return CoinSeries(coin_id, symbol, name, first, prices, caps, vols, len(real))


class Universe:
    """The fake CoinGecko's coins: ``n_ai`` members of ``artificial-intelligence`` plus BTC, ETH.

    Members are the real AI ids first (fetch-ai, render-token, singularitynet, ...), then
    generated ``ai-token-NNN`` ids; ``delisted`` ids are members in ``/coins/markets`` whose
    history answers 404. Series run to ``last`` (default: today, UTC) and are built lazily.
    """

    def __init__(
        self,
        n_ai: int = 20,
        *,
        delisted: tuple[str, ...] = (),
        last: date | None = None,
        n_other: int = 0,
    ) -> None:
        self.last = last or datetime.now(UTC).date()
        specs = list(REAL_AI_COINS[:n_ai])
        for i in range(len(specs), n_ai):
            specs.append((f"ai-token-{i:03d}", f"ait{i:03d}", f"AI Token {i:03d}", None))
        self.delisted = tuple(delisted)
        for coin_id in self.delisted:
            specs.append((coin_id, coin_id[:4], coin_id.replace("-", " ").title(), None))
        self.ai_specs = specs
        # Coins outside every category the fake lists: only whole-universe mode sees them.
        self.other_specs = [
            (f"coin-{i:05d}", f"c{i:05d}", f"Coin {i:05d}", None) for i in range(n_other)
        ]
        self.specs = {s[0]: s for s in [*specs, *BENCHMARK_COINS, *self.other_specs]}
        self._cache: dict[str, CoinSeries] = {}
        self._lock = threading.Lock()

    @property
    def ai_ids(self) -> list[str]:
        return [s[0] for s in self.ai_specs]

    def has(self, coin_id: str) -> bool:
        return coin_id in self.specs

    def series(self, coin_id: str) -> CoinSeries:
        with self._lock:
            cached = self._cache.get(coin_id)
        if cached is not None:
            return cached
        spec = self.specs[coin_id]
        made = make_coin(*spec, last=self.last)
        with self._lock:
            return self._cache.setdefault(coin_id, made)

    def value_on(self, coin_id: str, stamp: date) -> tuple[float, float, float] | None:
        s = self.series(coin_id)
        i = s.index(stamp)
        if i < 0 or i >= len(s.prices):
            return None
        return float(s.prices[i]), float(s.market_caps[i]), float(s.volumes[i])


# ------------------------------------------------------------------------------ equities
@dataclass
class EquitySeries:
    """Daily sessions: adjusted OHLCV (as in the shared CSVs) and the vendor's split-only close."""

    ticker: str
    dates: list[date]
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    adjclose: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    dividends: dict[date, float]
    real: bool


DIVIDEND_YIELD = {"SPY": 0.013, "QQQ": 0.006, "NVDA": 0.0003, "AMD": 0.0}


def make_equity(ticker: str, last: date) -> EquitySeries:
    """Real adjusted OHLCV when ``raw/yahoo_<ticker>_daily_adjusted.csv`` exists, else a walk.

    Yahoo's ``close`` is split-adjusted but not dividend-adjusted; ``adjclose`` is both. The
    fake rebuilds a ``close`` from the adjusted one with quarterly dividends at the ticker's
    usual yield, so ``close >= adjclose`` as in the real feed.
    """
    path = shared_root() / "data" / "raw" / f"yahoo_{ticker.lower()}_daily_adjusted.csv"
    if path.is_file():
        frame = pd.read_csv(path)
        dates = [date.fromisoformat(d) for d in frame["date"]]
        o, h, lo = (frame[c].to_numpy(float) for c in ("open", "high", "low"))
        adj = frame["close"].to_numpy(float)
        vol = frame["volume"].to_numpy(float)
        real = True
    else:
        seed = seed_of(ticker)
        days = pd.bdate_range("2020-01-02", last).date
        dates = list(days)
        adj = _walk(
            seed,
            len(dates),
            start_price=float(10 ** np.random.default_rng(seed).uniform(1, 2.5)),
            vol=0.02,
        )
        o = adj * 0.998
        h = adj * 1.01
        lo = adj * 0.99
        vol = np.full(len(dates), 1e6)
        real = False
    yld = DIVIDEND_YIELD.get(ticker, 0.01)
    factor = np.ones(len(dates))
    dividends: dict[date, float] = {}
    if yld > 0:
        # ex-dividend on the first session of each quarter; factor compounds backwards
        ex_days = {
            i
            for i in range(1, len(dates))
            if (dates[i].month - 1) // 3 != (dates[i - 1].month - 1) // 3
        }
        running = 1.0
        for i in reversed(range(len(dates))):
            factor[i] = running
            if i in ex_days:
                running *= 1 + yld / 4
        for i in sorted(ex_days):
            dividends[dates[i]] = round(float(adj[i] * factor[i]) * yld / 4, 4)
    close = adj * factor
    return EquitySeries(
        ticker, dates, o * factor, h * factor, lo * factor, adj, close, vol, dividends, real
    )
