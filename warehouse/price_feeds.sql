-- Price feeds: one view per table of daily closes, each in the columns of `daily_prices`
-- (symbol, asset_id, asset_class, calendar, source, date, close, volume_usd, market_cap).
-- `daily_prices` is generated as the UNION ALL of every view in this file, in this order
-- (warehouse/price_feeds.py), so a vendor's table reaches studies by one view here: nothing
-- else lists the tables. Re-applied with views.sql; documented in docs/warehouse.md.

-- CoinGecko closes (coin_daily), with the symbol and class of `coins`.
CREATE OR REPLACE VIEW coin_daily_prices AS
SELECT upper(k.symbol)                      AS symbol,
       c.coin_id                            AS asset_id,
       coalesce(k.asset_class, 'crypto')    AS asset_class,
       'crypto'                             AS calendar,
       c.source,
       c.date,
       c.price                              AS close,
       c.volume                             AS volume_usd,
       c.market_cap
FROM coin_daily AS c
LEFT JOIN coins AS k USING (coin_id)
WHERE c.price IS NOT NULL;

-- Yahoo sessions (equity_daily): the adjusted close where known; volume in shares x close.
CREATE OR REPLACE VIEW equity_daily_prices AS
SELECT e.ticker                             AS symbol,
       e.ticker                             AS asset_id,
       coalesce(q.asset_class, 'equity')    AS asset_class,
       'XNYS'                               AS calendar,
       e.source,
       e.date,
       coalesce(e.adj_close, e.close)       AS close,
       e.volume * e.close                   AS volume_usd,
       CAST(NULL AS DOUBLE)                 AS market_cap
FROM equity_daily AS e
LEFT JOIN equities AS q USING (ticker)
WHERE coalesce(e.adj_close, e.close) IS NOT NULL;

-- Imported CSV rows (imported_daily): each carries its own symbol, class and venue.
CREATE OR REPLACE VIEW imported_daily_prices AS
SELECT i.symbol,
       i.symbol                             AS asset_id,
       i.asset_class,
       CASE WHEN i.asset_class LIKE 'equity%' THEN 'XNYS' ELSE 'crypto' END AS calendar,
       i.source,
       i.date,
       i.close,
       i.volume_usd,
       i.market_cap
FROM imported_daily AS i;

-- Binance spot klines (exchange_daily, migration 005): the symbol is the pair's base asset
-- (FETUSDT -> FET) and asset_id the pair. Only pairs quoted in a USD stablecoin are prices in
-- USD; a pair quoted in another asset (ETHBTC) stays in exchange_daily only.
CREATE OR REPLACE VIEW exchange_daily_prices AS
SELECT regexp_extract(e.symbol, '^([A-Z0-9]+?)(USDT|USDC|FDUSD|TUSD|BUSD|USDP)$', 1) AS symbol,
       e.symbol                             AS asset_id,
       'crypto'                             AS asset_class,
       'crypto'                             AS calendar,
       e.source,
       e.date,
       e.close,
       e.volume_quote                       AS volume_usd,
       CAST(NULL AS DOUBLE)                 AS market_cap
FROM exchange_daily AS e
WHERE e.close IS NOT NULL
  AND regexp_matches(e.symbol, '^[A-Z0-9]+?(USDT|USDC|FDUSD|TUSD|BUSD|USDP)$');
