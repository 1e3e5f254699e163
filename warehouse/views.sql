-- Analyst views. Re-applied (CREATE OR REPLACE) whenever this file changes; documented in
-- docs/warehouse.md. A "series" is one (asset_id, source): vendors are never mixed in a series.
-- `daily_prices` itself is generated before this file runs: the union of every view of
-- price_feeds.sql (warehouse/price_feeds.py).

-- Session number of each day on its calendar: crypto counts calendar days, equities count
-- exchange sessions, so "consecutive" means the same thing on both.
CREATE OR REPLACE VIEW daily_prices_numbered AS
SELECT p.*,
       CASE WHEN p.calendar = 'crypto' THEN date_diff('day', DATE '1970-01-01', p.date)
            ELSE s.session_no END AS session_no
FROM daily_prices AS p
LEFT JOIN (
    SELECT calendar, date, row_number() OVER (PARTITION BY calendar ORDER BY date) AS session_no
    FROM trading_sessions
) AS s ON s.calendar = p.calendar AND s.date = p.date;

-- Returns between consecutive observations of a series. sessions_spanned = 1 is a true
-- one-session return; > 1 means sessions are missing in between (a gap).
CREATE OR REPLACE VIEW daily_returns AS
WITH lagged AS (
    SELECT *,
           lag(date)  OVER w             AS prev_date,
           lag(close) OVER w             AS prev_close,
           session_no - lag(session_no) OVER w AS sessions_spanned
    FROM daily_prices_numbered
    WINDOW w AS (PARTITION BY asset_id, source ORDER BY date)
)
SELECT symbol, asset_id, asset_class, calendar, source, date, prev_date, close, prev_close,
       close / prev_close - 1 AS simple_return,
       ln(close / prev_close)  AS log_return,
       sessions_spanned
FROM lagged
WHERE prev_close IS NOT NULL;

-- Last date and gaps per series. missing_sessions counts sessions absent between the first
-- and last observation; stale_sessions counts complete sessions after the last one (crypto:
-- days up to yesterday UTC; equities: exchange sessions up to yesterday).
CREATE OR REPLACE VIEW freshness AS
WITH steps AS (
    SELECT *, session_no - lag(session_no) OVER (PARTITION BY asset_id, source ORDER BY date) AS step
    FROM daily_prices_numbered
), today AS (
    SELECT CAST(timezone('UTC', get_current_timestamp()) AS DATE) AS d
)
SELECT symbol, asset_id, asset_class, calendar, source,
       min(date)                                   AS first_date,
       max(date)                                   AS last_date,
       count(*)                                    AS n_obs,
       count(*) FILTER (WHERE step > 1)            AS gaps,
       CAST(coalesce(sum(step - 1) FILTER (WHERE step > 1), 0) AS BIGINT) AS missing_sessions,
       CASE WHEN any_value(calendar) = 'crypto'
            THEN greatest(date_diff('day', max(date), (SELECT d FROM today) - 1), 0)
            ELSE (SELECT count(*) FROM trading_sessions t
                  WHERE t.calendar = any_value(steps.calendar)
                    AND t.date > max(steps.date) AND t.date < (SELECT d FROM today))
       END                                         AS stale_sessions
FROM steps
GROUP BY symbol, asset_id, asset_class, calendar, source;

-- Sector market cap per day per category: members in force that day (the latest snapshot on
-- or before it, else the earliest snapshot, flagged) summed from coin_daily closes. On a
-- snapshot day, coverage compares two figures taken at the same instant: the members' market
-- caps from /coins/markets summed, against the category total CoinGecko reports.
CREATE OR REPLACE VIEW sector_daily AS
WITH snaps AS (
    SELECT DISTINCT category_id, snapshot_date FROM category_members
), days AS (
    SELECT DISTINCT date FROM coin_daily
    UNION
    SELECT DISTINCT snapshot_date FROM category_members
), day_snap AS (
    SELECT d.date, s.category_id,
           max(s.snapshot_date) FILTER (WHERE s.snapshot_date <= d.date) AS in_force,
           min(s.snapshot_date)                                           AS earliest
    FROM days AS d CROSS JOIN snaps AS s
    GROUP BY d.date, s.category_id
), membership AS (
    SELECT date, category_id, coalesce(in_force, earliest) AS snapshot_date,
           in_force IS NULL AS backfilled_membership
    FROM day_snap
), summed AS (
    SELECT m.category_id, m.date, m.snapshot_date, m.backfilled_membership,
           count(cm.coin_id)   AS n_members,
           count(c.market_cap) AS n_with_market_cap,
           sum(c.market_cap)   AS market_cap_usd,
           sum(c.volume)       AS volume_usd
    FROM membership AS m
    JOIN category_members AS cm
      ON cm.category_id = m.category_id AND cm.snapshot_date = m.snapshot_date
    LEFT JOIN coin_daily AS c
      ON c.coin_id = cm.coin_id AND c.date = m.date AND c.source = 'coingecko'
    GROUP BY ALL
), snapshot_sums AS (
    SELECT category_id, snapshot_date, sum(market_cap) AS members_market_cap_usd
    FROM category_members GROUP BY ALL
)
SELECT s.category_id,
       s.date,
       s.snapshot_date                          AS membership_snapshot,
       s.backfilled_membership,
       s.n_members,
       s.n_with_market_cap,
       s.market_cap_usd,
       s.volume_usd,
       cs.market_cap                            AS reported_market_cap_usd,
       ss.members_market_cap_usd                AS snapshot_members_market_cap_usd,
       ss.members_market_cap_usd / cs.market_cap AS coverage
FROM summed AS s
LEFT JOIN category_snapshots AS cs
  ON cs.category_id = s.category_id AND cs.snapshot_date = s.date
LEFT JOIN snapshot_sums AS ss
  ON ss.category_id = s.category_id AND ss.snapshot_date = s.date;

CREATE OR REPLACE VIEW ai_sector_daily AS
SELECT * EXCLUDE (category_id) FROM sector_daily WHERE category_id = 'artificial-intelligence';

-- One row per series and hour close (UTC), mirroring daily_prices. CoinGecko rows take their
-- symbol and class from `coins`; imported rows carry their own.
CREATE OR REPLACE VIEW hourly_prices AS
SELECT upper(coalesce(k.symbol, h.asset_id))            AS symbol,
       h.asset_id,
       coalesce(h.asset_class, k.asset_class, 'crypto') AS asset_class,
       CASE WHEN coalesce(h.asset_class, k.asset_class, 'crypto') LIKE 'equity%'
            THEN 'XNYS' ELSE 'crypto' END               AS calendar,
       h.source,
       h.ts,
       h.close,
       h.volume_usd,
       h.market_cap
FROM price_hourly AS h
LEFT JOIN coins AS k ON k.coin_id = h.asset_id AND h.source = 'coingecko';

-- Simple and log returns between consecutive hour closes of a series, labelled by the later
-- close time `ts`: the return over [ts - 1h, ts). hours_spanned = 1 is a one-hour return; after
-- a gap (hours_spanned > 1) both returns are NULL, never a multi-hour move labelled as one hour.
CREATE OR REPLACE VIEW hourly_returns AS
WITH lagged AS (
    SELECT *,
           lag(ts)    OVER w AS prev_ts,
           lag(close) OVER w AS prev_close
    FROM hourly_prices
    WINDOW w AS (PARTITION BY asset_id, source ORDER BY ts)
)
SELECT symbol, asset_id, asset_class, calendar, source, ts, prev_ts, close, prev_close,
       date_diff('hour', prev_ts, ts)                                           AS hours_spanned,
       CASE WHEN date_diff('hour', prev_ts, ts) = 1 THEN close / prev_close - 1 END AS simple_return,
       CASE WHEN date_diff('hour', prev_ts, ts) = 1 THEN ln(close / prev_close) END AS log_return
FROM lagged
WHERE prev_ts IS NOT NULL;

-- Every market cap held, from every table that holds one: CoinGecko's (coin_daily), a price
-- CSV's optional market_cap column (imported_daily), cap files and Coin Metrics
-- (market_caps_daily). One row per symbol, day and source, with the source's `preference`
-- from market_cap_sources (unlisted sources: 1000, after every listed one) and its licence.
CREATE OR REPLACE VIEW market_caps AS
WITH caps AS (
    SELECT upper(coalesce(k.symbol, c.coin_id)) AS symbol, c.date, c.source, c.market_cap,
           c.volume AS volume_usd
    FROM coin_daily AS c
    LEFT JOIN coins AS k USING (coin_id)
    WHERE c.market_cap IS NOT NULL
    UNION ALL
    SELECT i.symbol, i.date, i.source, i.market_cap, i.volume_usd
    FROM imported_daily AS i
    WHERE i.market_cap IS NOT NULL
    UNION ALL
    SELECT m.symbol, m.date, m.source, m.market_cap, m.volume_usd
    FROM market_caps_daily AS m
    WHERE m.market_cap IS NOT NULL
)
SELECT caps.symbol, caps.date, caps.source, caps.market_cap, caps.volume_usd,
       coalesce(s.preference, 1000)                        AS preference,
       coalesce(s.licence, 'as stated by the file''s supplier') AS licence
FROM caps
LEFT JOIN market_cap_sources AS s USING (source);

-- The one cap a reader takes per symbol and day: the most preferred source holding one that day
-- (lowest preference, then source name; two CoinGecko coins sharing a symbol: the larger cap).
CREATE OR REPLACE VIEW preferred_market_caps AS
SELECT symbol, date, source, market_cap, volume_usd, preference, licence
FROM market_caps
QUALIFY row_number() OVER (
    PARTITION BY symbol, date ORDER BY preference, source, market_cap DESC) = 1;

-- The AI sector's members by cap, lineage-aware. Tracked members: every symbol priced as an
-- ai_token, every coin ever in CoinGecko's artificial-intelligence category, and their lineage
-- successors (asset_lineage). Each member's cap counts towards its `network`: itself, or from a
-- lineage change's effective day on (the day whose close follows it) its successor. A network
-- whose own symbol holds a cap that day counts that cap only; the old asset's cap is then
-- `counted = false` (RNDR beside RENDER, AGIX beside FET after the merger): never twice.
CREATE OR REPLACE VIEW ai_member_caps AS
WITH direct AS (
    SELECT DISTINCT symbol FROM daily_prices WHERE asset_class = 'ai_token'
    UNION
    SELECT DISTINCT upper(coalesce(k.symbol, m.coin_id))
    FROM category_members AS m
    LEFT JOIN coins AS k USING (coin_id)
    WHERE m.category_id = 'artificial-intelligence'
), tracked AS (
    SELECT symbol FROM direct
    UNION
    SELECT l.new_symbol FROM asset_lineage AS l JOIN direct AS d ON d.symbol = l.old_symbol
), mapped AS (
    SELECT p.symbol, p.date, p.source, p.market_cap, p.licence,
           coalesce(l.new_symbol, p.symbol) AS network,
           l.ratio                          AS lineage_ratio
    FROM preferred_market_caps AS p
    JOIN tracked AS t USING (symbol)
    LEFT JOIN asset_lineage AS l
      ON l.old_symbol = p.symbol AND p.date >= CAST(l.effective_at AS DATE)
)
SELECT symbol, network, date, source, market_cap, licence, lineage_ratio,
       NOT (symbol <> network AND bool_or(symbol = network) OVER (PARTITION BY network, date))
           AS counted
FROM mapped;

-- The AI sector's summed cap per day from ai_member_caps (counted caps only), with the
-- members and sources behind it.
CREATE OR REPLACE VIEW ai_tracked_daily AS
SELECT date,
       count(*)                                    AS n_members,
       sum(market_cap)                             AS market_cap_usd,
       string_agg(DISTINCT source, ',' ORDER BY source) AS sources
FROM ai_member_caps
WHERE counted
GROUP BY date;
