"""What one machine's warehouse handles: 15,000 coins x 730 days (about 11 M ``coin_daily`` rows).

Everything runs in this process, on one synthetic market generated with numpy (deterministic for a
seed), in a temporary DuckDB file created through ``warehouse.db.connect`` (migrations and views
as in production). Each project figure stands beside its naive peer, measured in the same run:

- bulk load with ``warehouse.load.upsert`` (register the DataFrame, de-duplicate, one
  ``INSERT OR REPLACE ... SELECT`` in one transaction) against row-by-row ``executemany``
  INSERT OR REPLACE, timed on a sample (``--naive-rows``) inserted into the full table, in one
  transaction (autocommit per row is slower still), and extrapolated to the full size;
- the daily batch (one new day for every coin) upserted into the full table: new, re-run
  (unchanged) and revised rows, against the naive rate;
- the ``daily_returns`` and ``ai_sector_daily`` views (warm, best of ``--repeat``) against
  pandas-only recomputation from DataFrames already in memory (``groupby().pct_change()``,
  ``merge`` + ``groupby``); both sides must agree or the run fails;
- ``aitokens export`` of ``coin_daily`` to Hive-partitioned Parquet.

Memory: peak resident set size per step, from Linux ``/proc/self/status`` VmHWM after resetting
it through ``/proc/self/clear_refs`` (elsewhere: ``resource.getrusage`` ru_maxrss, the process
peak so far). RSS covers DuckDB's native buffers and Arrow/pandas memory; tracemalloc would see
only Python-allocated objects, so it is not used.

Run from the repository root (full size takes about 4 minutes on 2 cores):
    uv run --all-extras python benchmarks/warehouse.py
    uv run --all-extras python benchmarks/warehouse.py --coins 500 --days 90 --naive-rows 2000
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":
    # Run as a script, this file's folder comes first on sys.path and its name would shadow
    # the `warehouse` package: put the repository root there instead.
    _here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _here]
    sys.path.insert(0, str(_here.parent))

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from dataclasses import asdict, dataclass, field  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402

import duckdb  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import warehouse.load as load_mod  # noqa: E402
from warehouse.db import connect, transaction  # noqa: E402
from warehouse.export import export_warehouse  # noqa: E402
from warehouse.load import upsert  # noqa: E402

CATEGORY = "artificial-intelligence"
COIN_KEY = ("coin_id", "date", "source")
START = "2023-01-01"

# Step names (the report and the ratios refer to them).
BULK_STEP = "bulk load: upsert(), one transaction"
DAILY_STEP = "daily upsert(): new day, inserted"
NAIVE_STEP = "naive executemany INSERT OR REPLACE (sample)"
SQL_RETURNS_STEP = "SQL daily_returns -> DataFrame (full panel)"
PD_RETURNS_STEP = "pandas returns: sort + groupby pct_change"
SQL_MEAN_STEP = "SQL daily_returns: mean return per day"
PD_MEAN_STEP = "pandas mean return per day (from prices)"
SQL_SECTOR_STEP = "SQL ai_sector_daily -> DataFrame"
PD_SECTOR_STEP = "pandas sector: merge + groupby"


@dataclass(frozen=True)
class Config:
    """Sizes of one run; the defaults are the full benchmark."""

    coins: int = 15_000
    days: int = 730
    members: int = 500  # coins in the AI category at each monthly membership snapshot
    naive_rows: int = 10_000
    repeat: int = 2
    seed: int = 0
    export: bool = True

    def __post_init__(self) -> None:
        if self.coins < 2 or self.days < 3:
            raise ValueError("a run needs at least 2 coins and 3 days")
        if not 1 <= self.members <= self.coins:
            raise ValueError(f"--members must be between 1 and --coins ({self.coins})")
        if self.naive_rows < 1 or self.repeat < 1:
            raise ValueError("--naive-rows and --repeat must be at least 1")

    @property
    def rows(self) -> int:
        return self.coins * self.days


@dataclass(frozen=True)
class Market:
    """The synthetic market: what the CoinGecko ingestion would have loaded."""

    coins: pd.DataFrame
    daily: pd.DataFrame  # coin_daily rows, coin-major as a per-coin backfill yields them
    members: pd.DataFrame  # category_members
    snapshots: pd.DataFrame  # category_snapshots
    next_day: pd.DataFrame  # the daily batch: the day after the last, every coin


@dataclass
class Step:
    """One measured step: wall time, rows, and memory."""

    name: str
    seconds: float
    rows: int | None = None
    cpu_seconds: float | None = None  # user + system time of every thread of this process
    peak_rss_mb: float | None = None
    added_rss_mb: float | None = None
    note: str = ""

    @property
    def rows_per_s(self) -> float | None:
        return self.rows / self.seconds if self.rows and self.seconds > 0 else None


@dataclass
class Ratio:
    """A naive peer against the project's way: ``peer_s / project_s`` (> 1: project faster).

    The CPU ratio compares the work done (user + system seconds); unlike wall time it hardly
    moves when other processes compete for the cores."""

    name: str
    peer: str
    peer_s: float
    project: str
    project_s: float
    peer_cpu_s: float | None = None
    project_cpu_s: float | None = None

    @property
    def ratio(self) -> float:
        return self.peer_s / self.project_s if self.project_s > 0 else float("inf")

    @property
    def cpu_ratio(self) -> float | None:
        if not self.peer_cpu_s or not self.project_cpu_s:
            return None
        return self.peer_cpu_s / self.project_cpu_s


@dataclass
class Result:
    config: Config
    environment: dict[str, str]
    steps: list[Step] = field(default_factory=list)
    ratios: list[Ratio] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=dict)

    def step(self, name: str) -> Step:
        return next(s for s in self.steps if s.name == name)

    def to_json(self) -> dict:
        return {
            "config": asdict(self.config),
            "environment": self.environment,
            "steps": [{**asdict(s), "rows_per_s": s.rows_per_s} for s in self.steps],
            "ratios": [
                {**asdict(r), "ratio": r.ratio, "cpu_ratio": r.cpu_ratio} for r in self.ratios
            ],
            "sizes": self.sizes,
        }


# --------------------------------------------------------------------------------------------
# Synthetic data (vectorised)


def synthetic_market(config: Config) -> Market:
    """Random-walk prices for ``coins`` coins over ``days`` days, membership snapshots on the
    first of each month (``members`` coins drawn from a pool of AI tokens, so membership churns),
    and the category totals CoinGecko would report (members' sum / 0.95)."""
    rng = np.random.default_rng(config.seed)
    n, d = config.coins, config.days
    ids = np.array([f"coin-{i:05d}" for i in range(n)], dtype=object)
    pool = min(n, max(config.members, int(config.members * 1.2)))
    start = np.datetime64(START, "D")
    dates = start + np.arange(d + 1)  # one extra day: the daily batch

    vol = rng.lognormal(np.log(0.04), 0.3, size=n)[:, None]
    log_price = np.log(rng.lognormal(0.0, 2.0, size=n))[:, None] + np.cumsum(
        rng.normal(0.0, 1.0, size=(n, d + 1)) * vol, axis=1
    )
    price = np.exp(log_price)
    mcap = price * rng.lognormal(18.0, 2.0, size=n)[:, None]
    volume = mcap * rng.lognormal(-3.0, 1.0, size=(n, d + 1))

    def frame(day_slice: slice) -> pd.DataFrame:
        k = len(range(*day_slice.indices(d + 1)))
        day = dates[day_slice]
        return pd.DataFrame(
            {
                "coin_id": np.repeat(ids, k),
                "date": np.tile(day, n).astype("datetime64[s]"),
                "price": price[:, day_slice].ravel(),
                "market_cap": mcap[:, day_slice].ravel(),
                "volume": volume[:, day_slice].ravel(),
                "source": "coingecko",
                "source_ts": (np.tile(day, n) + np.timedelta64(1, "D")).astype("datetime64[s]"),
            }
        )

    coins = pd.DataFrame(
        {
            "coin_id": ids,
            "symbol": [f"c{i:05d}" for i in range(n)],
            "name": [f"Coin {i}" for i in range(n)],
            "asset_class": np.where(np.arange(n) < pool, "ai_token", "crypto"),
        }
    )
    snap_days = np.flatnonzero(pd.DatetimeIndex(dates[:d]).day == 1)
    member_rows, snapshot_rows = [], []
    for day_index in snap_days:
        chosen = np.sort(rng.choice(pool, size=config.members, replace=False))
        caps = mcap[chosen, day_index]
        snap_date = pd.Timestamp(dates[day_index])
        member_rows.append(
            pd.DataFrame(
                {
                    "category_id": CATEGORY,
                    "coin_id": ids[chosen],
                    "snapshot_date": snap_date,
                    "rank": (-caps).argsort().argsort() + 1,
                    "market_cap": caps,
                }
            )
        )
        snapshot_rows.append(
            (CATEGORY, snap_date, snap_date + pd.Timedelta(minutes=40), float(caps.sum()) / 0.95)
        )
    members = pd.concat(member_rows, ignore_index=True)
    snapshots = pd.DataFrame(
        snapshot_rows, columns=["category_id", "snapshot_date", "snapshot_ts", "market_cap"]
    )
    snapshots["n_coins"] = config.members
    return Market(coins, frame(slice(0, d)), members, snapshots, frame(slice(d, d + 1)))


def naive_sample(config: Config, rows: int) -> list[tuple]:
    """``rows`` new coin_daily rows (days after the daily batch) as Python tuples."""
    rng = np.random.default_rng(config.seed + 1)
    coin = np.arange(rows) % config.coins
    day = pd.Timestamp(START) + pd.to_timedelta(
        config.days + 1 + np.arange(rows) // config.coins, "D"
    )
    price = rng.lognormal(0.0, 2.0, rows)
    stamp = datetime.now(UTC).replace(tzinfo=None)
    return [
        (f"coin-{c:05d}", t.date(), p, p * 1e9, p * 1e7, "coingecko", t + timedelta(days=1), stamp)
        for c, t, p in zip(coin.tolist(), day.to_pydatetime(), price.tolist(), strict=True)
    ]


# --------------------------------------------------------------------------------------------
# Measuring


class Memory:
    """Peak RSS of a step: Linux VmHWM reset before the step, else getrusage's process peak."""

    def __init__(self) -> None:
        self.resettable = self._reset()

    @staticmethod
    def _status_mb(field_name: str) -> float | None:
        with contextlib.suppress(OSError):
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith(field_name + ":"):
                    return int(line.split()[1]) / 1024
        return None

    @staticmethod
    def _reset() -> bool:
        try:
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            return False
        return True

    def start(self) -> float:
        if self.resettable:
            self._reset()
        return self._status_mb("VmRSS") or self.process_peak_mb()

    def peak(self) -> float:
        value = self._status_mb("VmHWM") if self.resettable else None
        return value if value is not None else self.process_peak_mb()

    @staticmethod
    def process_peak_mb() -> float:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 1024 / (1024 if sys.platform == "darwin" else 1)  # bytes on macOS


class Recorder:
    def __init__(self, result: Result, *, echo: bool) -> None:
        self.result, self.echo, self.memory = result, echo, Memory()

    @contextlib.contextmanager
    def measure(self, name: str, rows: int | None = None, note: str = "") -> Iterator[Step]:
        """Time the block once and record it as a step (the block may fill in rows/note)."""
        step = Step(name, 0.0, rows, note=note)
        before = self.memory.start()
        began, cpu = time.perf_counter(), time.process_time()
        yield step
        step.seconds = time.perf_counter() - began
        step.cpu_seconds = time.process_time() - cpu
        step.peak_rss_mb = self.memory.peak()
        step.added_rss_mb = max(step.peak_rss_mb - before, 0.0)
        self.result.steps.append(step)
        if self.echo:
            print(f"  {name}: {step.seconds:.2f} s", file=sys.stderr, flush=True)

    def best_of(self, name: str, fn: Callable[[], object], rows: int | None = None, note: str = ""):
        """Run ``fn`` ``repeat`` times and keep the fastest (warm cache); returns its result."""
        times, cpus, value = [], [], None
        before = self.memory.start()
        for _ in range(self.result.config.repeat):
            began, cpu = time.perf_counter(), time.process_time()
            value = fn()
            times.append(time.perf_counter() - began)
            cpus.append(time.process_time() - cpu)
        peak = self.memory.peak()
        if self.result.config.repeat > 1:
            note = f"best of {self.result.config.repeat}" + (f"; {note}" if note else "")
        fastest = int(np.argmin(times))
        step = Step(name, times[fastest], rows, cpus[fastest], peak, max(peak - before, 0.0), note)
        self.result.steps.append(step)
        if self.echo:
            print(f"  {name}: {step.seconds:.2f} s", file=sys.stderr, flush=True)
        return value


@contextlib.contextmanager
def timed_deduplicate(sink: list[float]) -> Iterator[None]:
    """Record the time ``upsert`` spends in ``warehouse.load.deduplicate`` (pandas)."""
    real = load_mod.deduplicate

    def wrapper(*args, **kwargs):
        began = time.perf_counter()
        try:
            return real(*args, **kwargs)
        finally:
            sink.append(time.perf_counter() - began)

    load_mod.deduplicate = wrapper
    try:
        yield
    finally:
        load_mod.deduplicate = real


# --------------------------------------------------------------------------------------------
# The two ways of computing returns and the sector


RETURNS_SQL = "SELECT asset_id, date, prev_date, simple_return, log_return FROM daily_returns"
DAILY_MEAN_SQL = (
    "SELECT date, avg(simple_return) AS mean_return, count(*) AS n "
    "FROM daily_returns GROUP BY date ORDER BY date"
)
SECTOR_SQL = (
    "SELECT date, n_members, n_with_market_cap, market_cap_usd, volume_usd "
    "FROM ai_sector_daily ORDER BY date"
)


def pandas_returns(daily: pd.DataFrame) -> pd.DataFrame:
    """``daily_returns`` recomputed in pandas: sort, then per-coin pct_change and log diff."""
    frame = daily[["coin_id", "date", "price"]].sort_values(["coin_id", "date"], kind="stable")
    by_coin = frame.groupby("coin_id", sort=False)
    out = frame.assign(
        prev_date=by_coin["date"].shift(),
        simple_return=by_coin["price"].pct_change(),
        log_return=np.log(frame["price"]).groupby(frame["coin_id"], sort=False).diff(),
    )
    return out.dropna(subset=["simple_return"])


def pandas_daily_mean(daily: pd.DataFrame) -> pd.DataFrame:
    returns = pandas_returns(daily)
    return (
        returns.groupby("date")["simple_return"]
        .agg(mean_return="mean", n="size")
        .reset_index()
        .sort_values("date")
    )


def pandas_sector(daily: pd.DataFrame, members: pd.DataFrame) -> pd.DataFrame:
    """``ai_sector_daily`` in pandas: membership in force per day (latest snapshot on or before
    it, else the earliest), joined to the day's market caps and summed."""
    snaps = np.sort(members["snapshot_date"].unique())
    days = np.union1d(daily["date"].unique(), snaps)
    at = np.searchsorted(snaps, days, side="right") - 1
    in_force = pd.DataFrame({"date": days, "snapshot_date": snaps[np.maximum(at, 0)]})
    joined = in_force.merge(members[["snapshot_date", "coin_id"]], on="snapshot_date").merge(
        daily[["coin_id", "date", "market_cap", "volume"]], on=["coin_id", "date"], how="left"
    )
    return (
        joined.groupby("date")
        .agg(
            n_members=("coin_id", "size"),
            n_with_market_cap=("market_cap", "count"),
            market_cap_usd=("market_cap", "sum"),
            volume_usd=("volume", "sum"),
        )
        .reset_index()
    )


def _check_agree(label: str, sql: pd.DataFrame, pandas_: pd.DataFrame, columns: list[str]) -> None:
    """The peer is only a peer if it computes the same thing: fail loudly otherwise."""
    left = sql.assign(date=pd.to_datetime(sql["date"])).set_index("date").sort_index()
    right = pandas_.assign(date=pd.to_datetime(pandas_["date"])).set_index("date").sort_index()
    if not left.index.equals(right.index):
        raise RuntimeError(f"{label}: SQL and pandas disagree on the dates")
    for column in columns:
        a = left[column].to_numpy(dtype=float)
        b = right[column].to_numpy(dtype=float)
        if not np.allclose(a, b, rtol=1e-9, atol=0.0, equal_nan=True):
            worst = np.nanmax(np.abs(a - b))
            raise RuntimeError(f"{label}: SQL and pandas disagree on {column} (max diff {worst})")


# --------------------------------------------------------------------------------------------
# The run


def environment(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    settings = dict(
        con.execute(
            "SELECT name, value FROM duckdb_settings() WHERE name IN ('threads', 'memory_limit')"
        ).fetchall()
    )
    ram_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cores": str(os.cpu_count()),
        "ram": f"{ram_gib:.1f} GiB",
        "platform": f"{platform.system()} {platform.release()} {platform.machine()}",
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "duckdb_threads": settings.get("threads", "?"),
        "duckdb_memory_limit": settings.get("memory_limit", "?"),
        "pandas": pd.__version__,
        "numpy": np.__version__,
        "load_before": _loadavg(),
    }


def _loadavg() -> str:
    """1-minute load average: other work on the machine slows every figure alike."""
    with contextlib.suppress(OSError, AttributeError):
        return f"{os.getloadavg()[0]:.2f}"
    return "?"


def run_benchmark(config: Config, workdir: Path, *, echo: bool = False) -> Result:
    """Run every step in ``workdir`` (a DuckDB file and an export folder are left there)."""
    db = workdir / "bench.duckdb"
    for stale in (db, db.with_name(db.name + ".wal")):
        stale.unlink(missing_ok=True)
    con = connect(db, lock_timeout=0)
    result = Result(config, environment(con))
    rec = Recorder(result, echo=echo)
    try:
        with rec.measure("generate synthetic market (numpy)", config.rows):
            market = synthetic_market(config)

        # 1. Bulk load through the project's own path.
        dedup_times: list[float] = []
        with rec.measure(BULK_STEP, config.rows) as step:
            with timed_deduplicate(dedup_times), transaction(con):
                upsert(con, "coins", market.coins, ["coin_id"])
                upsert(
                    con,
                    "category_members",
                    market.members,
                    ["category_id", "coin_id", "snapshot_date"],
                )
                upsert(
                    con, "category_snapshots", market.snapshots, ["category_id", "snapshot_date"]
                )
                loaded = upsert(con, "coin_daily", market.daily, COIN_KEY)
            con.execute("CHECKPOINT").fetchall()
            step.note = "incl. commit and checkpoint"
        if loaded.inserted != config.rows:
            raise RuntimeError(f"bulk load inserted {loaded.inserted} rows, not {config.rows}")
        result.steps.append(
            Step("  of which pandas deduplicate()", dedup_times[-1], config.rows, note="in upsert")
        )
        result.sizes["duckdb_file_bytes"] = db.stat().st_size
        result.sizes["coin_daily_rows"] = config.rows

        # 2. Analyst views against pandas-only recomputation (same data on both sides).
        sql_returns = rec.best_of(
            SQL_RETURNS_STEP,
            lambda: con.execute(RETURNS_SQL).df(),
            rows=config.rows - config.coins,
        )
        pd_returns = rec.best_of(
            PD_RETURNS_STEP,
            lambda: pandas_returns(market.daily),
            rows=config.rows - config.coins,
            note="data already in memory",
        )
        if len(sql_returns) != len(pd_returns):
            raise RuntimeError(f"daily_returns: {len(sql_returns)} rows in SQL, {len(pd_returns)}")
        for column in ("simple_return", "log_return"):
            a, b = sql_returns[column].sum(), pd_returns[column].sum()
            if not np.isclose(a, b, rtol=1e-9):
                raise RuntimeError(f"daily_returns: sum of {column} is {a} in SQL, {b} in pandas")
        del sql_returns, pd_returns

        sql_mean = rec.best_of(SQL_MEAN_STEP, lambda: con.execute(DAILY_MEAN_SQL).df())
        pd_mean = rec.best_of(
            PD_MEAN_STEP,
            lambda: pandas_daily_mean(market.daily),
            note="data already in memory",
        )
        _check_agree("mean return per day", sql_mean, pd_mean, ["mean_return", "n"])

        middle = f"coin-{config.coins // 2:05d}"
        rec.best_of(
            "SQL daily_returns: one coin",
            lambda: con.execute(
                "SELECT * FROM daily_returns WHERE asset_id = ? ORDER BY date", [middle]
            ).df(),
            rows=config.days - 1,
        )
        sql_sector = rec.best_of(SQL_SECTOR_STEP, lambda: con.execute(SECTOR_SQL).df())
        pd_sector = rec.best_of(
            PD_SECTOR_STEP,
            lambda: pandas_sector(market.daily, market.members),
            note="data already in memory",
        )
        _check_agree(
            "ai_sector_daily",
            sql_sector,
            pd_sector,
            ["n_members", "n_with_market_cap", "market_cap_usd", "volume_usd"],
        )

        # 3. The daily batch into the full table: new day, the same again, then revised.
        batch = market.next_day
        outcomes = {}
        for label, frame, expect in (
            (DAILY_STEP, batch, "inserted"),
            ("daily upsert(): same batch, unchanged", batch, "unchanged"),
            (
                "daily upsert(): revised prices, updated",
                batch.assign(price=batch.price * 1.001),
                "updated",
            ),
        ):
            with rec.measure(label, len(frame)), transaction(con):
                outcome = upsert(con, "coin_daily", frame, COIN_KEY)
            if getattr(outcome, expect) != len(frame):
                raise RuntimeError(f"{label}: {outcome}")
            outcomes[expect] = outcome

        # 4. The naive way: row by row into the full table, extrapolated from a sample.
        sample = naive_sample(config, config.naive_rows)
        with (
            rec.measure(
                NAIVE_STEP,
                len(sample),
                note="into the full table, one transaction",
            ),
            transaction(con),
        ):
            con.executemany(
                "INSERT OR REPLACE INTO coin_daily "
                "(coin_id, date, price, market_cap, volume, source, source_ts, ingested_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                sample,
            )
    finally:
        con.close()

    # 5. Export coin_daily as the CLI does (read-only open of the file).
    if config.export:
        out = workdir / "export"
        with rec.measure("aitokens export coin_daily -> Parquet") as step:
            report = export_warehouse(db, out, tables=["coin_daily"], overwrite=True)
            step.rows = report.rows
            step.note = f"{report.files} files, {report.bytes / 1e6:,.0f} MB"
        result.sizes["parquet_coin_daily_bytes"] = report.bytes

    result.environment["load_after"] = _loadavg()
    naive = result.step(NAIVE_STEP)
    scale = {"bulk load": config.rows / naive.rows, "daily batch": config.coins / naive.rows}
    result.ratios = [
        Ratio(
            name,
            "naive executemany (extrapolated)",
            naive.seconds * scale[name],
            "upsert()",
            result.step(project).seconds,
            (naive.cpu_seconds or 0.0) * scale[name],
            result.step(project).cpu_seconds,
        )
        for name, project in (("bulk load", BULK_STEP), ("daily batch", DAILY_STEP))
    ]
    for name, peer, project, project_label in (
        ("daily_returns, full panel", PD_RETURNS_STEP, SQL_RETURNS_STEP, "SQL view -> DataFrame"),
        ("mean return per day", PD_MEAN_STEP, SQL_MEAN_STEP, "SQL view"),
        ("ai_sector_daily", PD_SECTOR_STEP, SQL_SECTOR_STEP, "SQL view"),
    ):
        a, b = result.step(peer), result.step(project)
        result.ratios.append(
            Ratio(
                name,
                "pandas (in memory)",
                a.seconds,
                project_label,
                b.seconds,
                a.cpu_seconds,
                b.cpu_seconds,
            )
        )
    return result


# --------------------------------------------------------------------------------------------
# Report


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 120:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.3g} s" if seconds < 10 else f"{seconds:.1f} s"


def _busy_note(env: dict[str, str]) -> str:
    # The benchmark itself loads up to every core, so only a load before it, or above the core
    # count after it, shows other work competing for the machine.
    try:
        busy = float(env["load_before"]) > 0.5 or float(env.get("load_after", 0)) > float(
            env["cores"]
        )
    except ValueError:
        return ""
    return " (other processes were running: figures are slower than on an idle machine)" * busy


def format_report(result: Result) -> str:
    c, env = result.config, result.environment
    lines = [
        f"aitokens warehouse benchmark: {c.coins:,} coins x {c.days:,} days = {c.rows:,} "
        f"coin_daily rows; {c.members:,} AI-category members per monthly snapshot; seed {c.seed}",
        f"machine: {env['cores']} cores, {env['ram']} RAM, {env['platform']}; Python "
        f"{env['python']}, duckdb {env['duckdb']} (threads={env['duckdb_threads']}, "
        f"memory_limit={env['duckdb_memory_limit']}), pandas {env['pandas']}, numpy {env['numpy']}",
        f"load average (1 min) before/after: {env['load_before']}/{env.get('load_after', '?')} "
        f"on {env['cores']} cores{_busy_note(env)}",
        "seconds: wall clock; cpu s: user + system time of all threads (DuckDB's too). memory: "
        "peak RSS during each step (Linux VmHWM, reset before the step; +MB = above the RSS at "
        "its start)",
        "",
        f"{'step':<46} {'rows':>12} {'seconds':>9} {'cpu s':>7} {'rows/s':>12} {'peak MB':>8} "
        f"{'+MB':>7}  note",
    ]
    for s in result.steps:
        rows = f"{s.rows:,}" if s.rows is not None else ""
        rate = f"{s.rows_per_s:,.0f}" if s.rows_per_s is not None else ""
        peak = f"{s.peak_rss_mb:,.0f}" if s.peak_rss_mb is not None else ""
        added = f"{s.added_rss_mb:,.0f}" if s.added_rss_mb is not None else ""
        cpu = f"{s.cpu_seconds:.2f}" if s.cpu_seconds is not None else ""
        lines.append(
            f"{s.name:<46} {rows:>12} {s.seconds:>9.3f} {cpu:>7} {rate:>12} {peak:>8} "
            f"{added:>7}  {s.note}"
        )
    lines += ["", "sizes: " + ", ".join(f"{k} {v:,}" for k, v in result.sizes.items()), ""]
    lines.append(
        "ratios (peer time / project time; above 1 means the project's way is faster; "
        "cpu: the same with CPU seconds):"
    )
    for r in result.ratios:
        cpu = f" (cpu {r.cpu_ratio:,.1f}x)" if r.cpu_ratio is not None else ""
        lines.append(
            f"  {r.name:<26} {r.peer} {_duration(r.peer_s)} / {r.project} "
            f"{_duration(r.project_s)} = {r.ratio:,.1f}x{cpu}"
        )
    measured = [s for s in result.steps if s.peak_rss_mb is not None]
    top = max(measured, key=lambda s: s.peak_rss_mb)
    lines.append(f"highest peak RSS: {top.peak_rss_mb:,.0f} MB, during '{top.name}'")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    defaults = Config()
    parser.add_argument("--coins", type=int, default=defaults.coins)
    parser.add_argument("--days", type=int, default=defaults.days)
    parser.add_argument(
        "--members",
        type=int,
        default=None,
        help=f"AI-category members per snapshot (default {defaults.members}, at most --coins)",
    )
    parser.add_argument(
        "--naive-rows",
        type=int,
        default=defaults.naive_rows,
        help="rows inserted one by one to time the naive way",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=defaults.repeat,
        help="runs of each query; the fastest is kept",
    )
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--no-export", action="store_true", help="skip the Parquet export step")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="keep the DuckDB file and export here (default: a temporary folder)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the figures as JSON")
    args = parser.parse_args(argv)
    try:
        config = Config(
            coins=args.coins,
            days=args.days,
            members=args.members if args.members is not None else min(defaults.members, args.coins),
            naive_rows=args.naive_rows,
            repeat=args.repeat,
            seed=args.seed,
            export=not args.no_export,
        )
    except ValueError as exc:
        parser.error(str(exc))
    with contextlib.ExitStack() as stack:
        if args.workdir is None:
            workdir = Path(
                stack.enter_context(tempfile.TemporaryDirectory(prefix="aitokens-bench-"))
            )
        else:
            workdir = args.workdir
            workdir.mkdir(parents=True, exist_ok=True)
        print(f"running in {workdir} ...", file=sys.stderr, flush=True)
        result = run_benchmark(config, workdir, echo=True)
    print(format_report(result))
    if args.json:
        args.json.write_text(json.dumps(result.to_json(), indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
