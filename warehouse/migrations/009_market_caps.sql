-- 009: market caps beside the prices, from any vendor, with a stated preference order.
--
-- `market_caps_daily` holds caps that arrive without a close: a cap file (`aitokens import` of
-- `date,symbol,market_cap[,volume_usd,source]`) and the Coin Metrics source
-- (flows/sources/coinmetrics/). CoinGecko's caps stay in coin_daily and a price CSV's optional
-- market_cap column in imported_daily; the view `market_caps` (views.sql) unions all of them.
-- Keyed on (symbol, date, source): two vendors never overwrite each other.
CREATE TABLE IF NOT EXISTS market_caps_daily (
    symbol       VARCHAR NOT NULL,             -- upper-case ticker, as daily_prices spells it
    date         DATE NOT NULL,                -- UTC day whose end-of-day cap this is
    source       VARCHAR NOT NULL,             -- 'coinmetrics' (API), the file's source column, else 'csv'
    market_cap   DOUBLE,                       -- USD (Coin Metrics: CapMrktEstUSD)
    volume_usd   DOUBLE,                       -- USD, the day's reported spot volume
    price_usd    DOUBLE,                       -- the vendor's reference rate, when it sends one
    ingested_at  TIMESTAMP NOT NULL,           -- UTC
    PRIMARY KEY (symbol, date, source)
);

-- Which source's cap a reader takes when several hold one for a symbol and day: the lowest
-- `preference` first; a source not listed here comes after every listed one (by name). The
-- licence is named by every report that shows a cap of that source. Analysts may edit it.
CREATE TABLE IF NOT EXISTS market_cap_sources (
    source      VARCHAR PRIMARY KEY,
    preference  INTEGER NOT NULL,
    vendor      VARCHAR NOT NULL,
    licence     VARCHAR NOT NULL,
    note        VARCHAR NOT NULL DEFAULT ''
);
INSERT OR IGNORE INTO market_cap_sources VALUES
    ('coingecko', 1, 'CoinGecko', 'CoinGecko API terms of use (attribution required)',
     'the category''s own vendor: members and caps from the same snapshot'),
    ('coinmetrics', 2, 'Coin Metrics', 'CC BY-NC 4.0 (Coin Metrics community data; non-commercial use, attribution to Coin Metrics)',
     'CapMrktEstUSD from the community API'),
    ('coinmetrics_community', 3, 'Coin Metrics', 'CC BY-NC 4.0 (Coin Metrics community data; non-commercial use, attribution to Coin Metrics)',
     'CapMrktEstUSD from the community data files (../shared/data/ai_events/market_caps.csv)');
