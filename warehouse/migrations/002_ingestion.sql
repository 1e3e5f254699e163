-- 002: what the CoinGecko/Yahoo ingestion needs beyond the core tables.

-- CoinGecko /global, one row per UTC day of its updated_at (the daily run keeps the latest
-- answer of the day): the whole crypto market's size, for sector shares and coverage.
CREATE TABLE global_daily (
    date                      DATE PRIMARY KEY,   -- UTC day of updated_at
    updated_at                TIMESTAMP NOT NULL, -- CoinGecko's own stamp (UTC)
    total_market_cap_usd      DOUBLE,
    total_volume_usd          DOUBLE,
    market_cap_change_pct_24h DOUBLE,             -- percent
    btc_dominance_pct         DOUBLE,             -- percent of total market cap
    eth_dominance_pct         DOUBLE,
    active_cryptocurrencies   INTEGER,
    ingested_at               TIMESTAMP NOT NULL
);

-- Coins the ingestion could not fetch, with the reason (e.g. a delisted coin's 404): shown in
-- run summaries and `aitokens status`, retried by the next run.
CREATE TABLE skipped_coins (
    coin_id      VARCHAR NOT NULL,
    run_id       VARCHAR NOT NULL,
    reason       VARCHAR NOT NULL,
    skipped_at   TIMESTAMP NOT NULL,
    PRIMARY KEY (coin_id, run_id)
);

ALTER TABLE category_members ADD COLUMN market_cap_rank INTEGER;  -- CoinGecko's global rank
ALTER TABLE category_snapshots ADD COLUMN updated_at TIMESTAMP;     -- CoinGecko's own stamp

-- The date range already requested from a source per series, whatever it returned: a coin
-- listed in 2023-07 asked for history since 2023-01 is not asked again for 2023-01..06.
-- covered_to is the last date actually received, so a day not yet published is asked again.
CREATE TABLE fetch_coverage (
    source        VARCHAR NOT NULL,             -- 'coingecko', 'yahoo'
    series_id     VARCHAR NOT NULL,             -- coin_id or ticker
    covered_from  DATE NOT NULL,
    covered_to    DATE,
    updated_at    TIMESTAMP NOT NULL,
    PRIMARY KEY (source, series_id)
);
