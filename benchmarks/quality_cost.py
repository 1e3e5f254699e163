"""What the data-quality gate (issue 22) costs beside the load it guards.

The synthetic market of :mod:`benchmarks.warehouse` (15,000 coins x 730 days, about 11 M
``coin_daily`` rows at full size) is bulk-loaded through ``warehouse.load.upsert`` in one
transaction, then every series is checked with ``warehouse.quality.check_series`` (read back
through ``daily_prices``, all detectors, verdicts stored) in one transaction. The gate must
stay under 10 % of the load time (exit 1 otherwise).

Run from the repository root:
    uv run --all-extras python benchmarks/quality_cost.py
    uv run --all-extras python benchmarks/quality_cost.py --coins 500 --days 90
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":
    _here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _here]
    sys.path.insert(0, str(_here.parent))

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from benchmarks.warehouse import COIN_KEY, Config, synthetic_market  # noqa: E402
from warehouse.db import connect, transaction  # noqa: E402
from warehouse.load import upsert  # noqa: E402
from warehouse.quality import check_series  # noqa: E402

LIMIT = 0.10


def measure(config: Config, workdir: Path) -> tuple[float, float, int]:
    """(load seconds, check seconds, points quarantined)."""
    market = synthetic_market(config)
    con = connect(workdir / "bench.duckdb", lock_timeout=0)
    try:
        t0 = time.perf_counter()
        with transaction(con):
            upsert(con, "coins", market.coins, ["coin_id"])
            upsert(con, "coin_daily", market.daily, COIN_KEY)
        con.execute("CHECKPOINT").fetchall()
        load_s = time.perf_counter() - t0
        pairs = [(c, "coingecko") for c in market.coins["coin_id"]]
        t0 = time.perf_counter()
        with transaction(con):
            found = check_series(con, pairs, run_id="bench")
        check_s = time.perf_counter() - t0
    finally:
        con.close()
    return load_s, check_s, len(found)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--coins", type=int, default=Config.coins)
    parser.add_argument("--days", type=int, default=Config.days)
    args = parser.parse_args(argv)
    config = Config(coins=args.coins, days=args.days, members=min(500, args.coins))
    with tempfile.TemporaryDirectory() as tmp:
        load_s, check_s, n = measure(config, Path(tmp))
    share = check_s / load_s
    print(
        f"{config.coins:,} coins x {config.days} days: load {load_s:.2f} s, checks "
        f"{check_s:.2f} s ({share:.1%} of the load; limit {LIMIT:.0%}); {n} point(s) quarantined"
    )
    return 0 if share < LIMIT else 1


if __name__ == "__main__":
    raise SystemExit(main())
