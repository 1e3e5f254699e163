"""CoinGecko hourly closes: the AI category's coins and BTC/ETH by the hour, into ``price_hourly``.

``/coins/{id}/market_chart/range`` answers hourly points for ranges of 2 to 90 days (5-minute
points below 1 day, daily points above 90). Each point is an observation at the vendor's stamp,
a few seconds to minutes after the hour, not an hour close; :mod:`.snapping` states the rule that
turns it into one. Two uses:

- the daily ingest keeps a rolling hourly history of the last ``rolling_days`` (default 90;
  ``AITOKENS_HOURLY_DAYS``, 0 turns it off), so a new announcement can be studied by the hour
  the next morning;
- ``aitokens backfill --interval 1h --around EVENT`` fetches the hours around a catalog event
  (one call per coin for a window of up to 89 days).

Keyless and demo plans serve only the past 365 days (CoinGecko error 10012): older hours are
refused before any call, with the command that would work.
"""

from flows.sources.coingecko_hourly.snapping import MAX_LAG_SECONDS, snap_to_hour_closes
from flows.sources.coingecko_hourly.source import CoinGeckoHourly, CoinGeckoHourlyConfig

# The registry finds this source here (flows/sources/registry.py).
SOURCE = CoinGeckoHourly

__all__ = [
    "MAX_LAG_SECONDS",
    "SOURCE",
    "CoinGeckoHourly",
    "CoinGeckoHourlyConfig",
    "snap_to_hour_closes",
]
