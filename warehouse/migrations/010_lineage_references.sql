-- 010: token lineage (identity changes) and cited sector figures.
--
-- `asset_lineage`: one row per identity change. From `effective_at` (UTC) on, one unit of
-- `old_symbol` is `ratio` units of `new_symbol`: a holding of the old asset continues as the new
-- one (studies join the two series there, flagged), and a sector sum counts the old asset's cap
-- only on days the new asset has none (never both). `old_coingecko_id` -> `new_coingecko_id`
-- maps a renamed CoinGecko id for ingestion. Edit with plain SQL.
CREATE TABLE IF NOT EXISTS asset_lineage (
    old_symbol        VARCHAR NOT NULL,        -- upper-case, as daily_prices spells it
    new_symbol        VARCHAR NOT NULL,
    ratio             DOUBLE NOT NULL,         -- new units per old unit
    effective_at      TIMESTAMP NOT NULL,      -- UTC
    kind              VARCHAR NOT NULL,        -- 'migration' (1:1 rename) or 'merger'
    old_coingecko_id  VARCHAR,
    new_coingecko_id  VARCHAR,
    source            VARCHAR NOT NULL,        -- citation: who announced the change
    PRIMARY KEY (old_symbol, new_symbol)
);
INSERT OR IGNORE INTO asset_lineage VALUES
    ('RNDR', 'RENDER', 1.0, TIMESTAMP '2023-11-01 00:00:00', 'migration', 'render-token', 'render',
     'Render Network: RNDR (Ethereum) upgrades 1:1 to RENDER (Solana) from November 2023; CoinGecko''s id changed with it (as stated in issue 25 and ../shared/data/ai_events/README.md)'),
    ('AGIX', 'FET', 0.433350, TIMESTAMP '2024-07-01 03:00:00', 'merger', 'singularitynet', 'fetch-ai',
     'Binance''s announcement of the ASI alliance merger: AGIX converted into FET on 2024-07-01 03:00 UTC at 1 AGIX = 0.433350 FET (as stated in issue 25 and ../shared/data/ai_events/README.md)'),
    ('OCEAN', 'FET', 0.433226, TIMESTAMP '2024-07-01 03:00:00', 'merger', 'ocean-protocol', 'fetch-ai',
     'Binance''s announcement of the ASI alliance merger: OCEAN converted into FET on 2024-07-01 03:00 UTC at 1 OCEAN = 0.433226 FET (as stated in issue 25)');

-- `sector_references`: a sector figure someone published (a market cap of a category on a
-- day), with its citation. The sector report compares the tracked members' summed cap on that
-- day with it. Edit with `aitokens sector reference add|list|remove`.
CREATE TABLE IF NOT EXISTS sector_references (
    category_id     VARCHAR NOT NULL,          -- e.g. 'artificial-intelligence'
    date            DATE NOT NULL,             -- the UTC day the figure describes
    market_cap_usd  DOUBLE NOT NULL,           -- USD
    source          VARCHAR NOT NULL,          -- citation: text or URL
    origin          VARCHAR NOT NULL DEFAULT 'analyst',  -- 'seed' or 'analyst'
    recorded_at     TIMESTAMP NOT NULL DEFAULT (timezone('UTC', now())),
    PRIMARY KEY (category_id, date, source)
);
INSERT OR IGNORE INTO sector_references
    (category_id, date, market_cap_usd, source, origin, recorded_at) VALUES
    ('artificial-intelligence', DATE '2024-02-15', 25e9,
     'the project brief: "notebook reports on the ~$25B AI-token sector" (CoinGecko''s AI category, around the Sora demo of 2024-02-15; an approximate figure)',
     'seed', TIMESTAMP '2024-02-15 00:00:00');
