-- 004: hourly closes beside the daily tables (DESIGN.md section 3), for hourly event studies of
-- 24/7 assets. One table for every source: an imported CSV (`aitokens import`, a `ts` column)
-- and, later, CoinGecko's hourly points. Analysts read the views `hourly_prices` and
-- `hourly_returns` (views.sql); docs/warehouse.md states the timing rules.

CREATE TABLE price_hourly (
    asset_id     VARCHAR NOT NULL,             -- CoinGecko id for source 'coingecko', else the
                                               -- upper-case ticker (as daily_prices.asset_id)
    ts           TIMESTAMP NOT NULL,           -- UTC close time of the hour, on the hour: the row
                                               -- covers [ts - 1h, ts)
    source       VARCHAR NOT NULL,             -- 'coingecko', or the CSV's venue column, else 'csv'
    asset_class  VARCHAR,                      -- 'ai_token', 'crypto_benchmark', ...; NULL: the
                                               -- class comes from `coins` (CoinGecko rows)
    close        DOUBLE NOT NULL,              -- USD: the last price at or before ts
    volume_usd   DOUBLE,                       -- USD traded during the hour [ts - 1h, ts)
    market_cap   DOUBLE,                       -- USD at ts, where the source has it
    vendor_ts    TIMESTAMP,                    -- the vendor's own stamp (UTC) before snapping to
                                               -- ts; NULL when the source's stamp is ts itself
    ingested_at  TIMESTAMP NOT NULL,
    PRIMARY KEY (asset_id, ts, source),
    CHECK (ts = date_trunc('hour', ts))        -- on the hour: no minutes, seconds or fractions
);
