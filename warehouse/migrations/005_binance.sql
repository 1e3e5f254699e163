-- 005: Binance spot daily klines (flows/sources/binance/), the example third source: off by
-- default, fetched with IngestOptions(sources=("binance",)) / [binance] in aitokens.toml.

-- One row per exchange pair and UTC day: the daily kline opening D 00:00 UTC and closing
-- D 23:59:59.999 UTC is the close of day D (CoinGecko's point stamped D 00:00 is the close of
-- D-1; here no shift). Prices and volume_quote are in the pair's quote asset (USDT ~ USD).
CREATE TABLE exchange_daily (
    symbol        VARCHAR NOT NULL,             -- the exchange's pair, e.g. 'BTCUSDT'
    date          DATE NOT NULL,                -- UTC day whose close this is
    open          DOUBLE,
    high          DOUBLE,
    low           DOUBLE,
    close         DOUBLE NOT NULL,
    volume_base   DOUBLE,                       -- base asset traded (e.g. BTC)
    volume_quote  DOUBLE,                       -- quote asset traded (USDT): the USD volume
    trades        BIGINT,                       -- number of trades
    source        VARCHAR NOT NULL,             -- 'binance'
    ingested_at   TIMESTAMP NOT NULL,
    PRIMARY KEY (symbol, date, source)
);

-- The closes in the columns of daily_prices (views.sql), so an analyst can UNION ALL them:
--   SELECT * FROM daily_prices UNION ALL SELECT * FROM exchange_daily_prices
-- Kept apart from daily_prices on purpose: a pair is not a CoinGecko coin id, and series of
-- different vendors are never mixed.
CREATE VIEW exchange_daily_prices AS
SELECT e.symbol                     AS symbol,
       e.symbol                     AS asset_id,
       'crypto'                     AS asset_class,
       'crypto'                     AS calendar,
       e.source,
       e.date,
       e.close,
       e.volume_quote               AS volume_usd,
       CAST(NULL AS DOUBLE)         AS market_cap
FROM exchange_daily AS e
WHERE e.close IS NOT NULL;
