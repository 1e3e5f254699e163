"""HTTP sources: they know endpoints and payload shapes and return tidy pandas frames.

- :mod:`flows.sources.coingecko` — AI category snapshot, its members (every page), daily
  price / market cap / volume per coin in chunks of at most 365 days, ``/global``.
- :mod:`flows.sources.equities` — Yahoo chart JSON daily bars with ``adj_close`` beside ``close``.
- :mod:`flows.sources.http` — the process-wide rate limiter, bounded retries, secret scrubbing,
  pagination; :mod:`flows.sources.constants` — hosts, page sizes, plan limits, env names.
- :mod:`flows.sources.csv_import` — validation of user price CSVs.

Nothing here opens the warehouse; typed errors live in :mod:`flows.errors`.
"""
