"""Price sources: they know endpoints and payload shapes and return tidy pandas frames.

One package per vendor (and interval), each with ``SOURCE``, a subclass of
:class:`flows.sources.base.Source`; :mod:`flows.sources.registry` finds them:

- :mod:`flows.sources.coingecko` — the AI category snapshot, its members (every page), daily
  price / market cap / volume per coin in chunks of at most 365 days, ``/global``;
- :mod:`flows.sources.coingecko_hourly` — the same coins by the hour, snapped to hour closes;
- :mod:`flows.sources.yahoo` — Yahoo chart JSON daily bars with ``adj_close`` beside ``close``;
- :mod:`flows.sources.binance` — Binance spot daily klines (the example third vendor; off by
  default).

Shared parts: :mod:`~flows.sources.base` (the interface), :mod:`~flows.sources.planning`
(coverage -> ranges), :mod:`~flows.sources.http` (rate limiter, bounded retries, secret
scrubbing, pagination) and :mod:`~flows.sources.http_client` (the client base: session, error
mapping), :mod:`~flows.sources.worker` (one series' fetch in any process),
:mod:`~flows.sources.csv_import` (validation of user price CSVs).

Nothing here opens the warehouse; typed errors live in :mod:`flows.errors`.
"""
