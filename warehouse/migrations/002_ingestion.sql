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
