-- 007: asset groups (sub-sectors of the AI category), analyst-editable like the event catalog.
--
-- A group is a named set of symbols (`compute`, `agents`, ...) used by `aitokens study
-- --by-group` and by the `group:<name>` dummies of `aitokens study --regress`. A coin may sit in
-- several groups. Membership is dated: a row holds from `valid_from` through `valid_to`
-- (inclusive; NULL = still a member), and a study takes the members as of its event's day 0.
-- Edit with `aitokens groups add|remove|seed|refresh` or plain SQL.
--
-- `coingecko_categories` lists CoinGecko category ids whose members `aitokens groups refresh`
-- reads through the CoinGecko source (/coins/markets?category=...); a refresh ends the
-- membership of coins that left the category and adds the new ones from the snapshot date.
-- Rows an analyst entered (origin 'analyst') or seeded (origin 'seed') are never changed by a
-- refresh: only rows of origin 'coingecko' are.
CREATE TABLE IF NOT EXISTS asset_groups (  -- IF NOT EXISTS: safe to replay
    name                 VARCHAR PRIMARY KEY,           -- 'compute'; lower-case, stored verbatim
    description          VARCHAR NOT NULL DEFAULT '',
    coingecko_categories VARCHAR[] NOT NULL DEFAULT [], -- CoinGecko category ids for refresh
    sources              VARCHAR NOT NULL DEFAULT '',   -- where the membership comes from
    origin               VARCHAR NOT NULL DEFAULT 'analyst', -- 'seed' or 'analyst'
    updated_at           TIMESTAMP NOT NULL DEFAULT (timezone('UTC', now()))  -- UTC
);

CREATE TABLE IF NOT EXISTS group_members (
    group_name  VARCHAR NOT NULL,                  -- asset_groups.name
    symbol      VARCHAR NOT NULL,                  -- upper-case, as daily_prices spells it
    coin_id     VARCHAR,                           -- CoinGecko id when known
    valid_from  DATE NOT NULL,                     -- first day of membership
    valid_to    DATE,                              -- last day of membership; NULL = current
    origin      VARCHAR NOT NULL DEFAULT 'analyst', -- 'seed', 'analyst' or 'coingecko'
    updated_at  TIMESTAMP NOT NULL DEFAULT (timezone('UTC', now())),
    PRIMARY KEY (group_name, symbol, valid_from)
);

-- Seeded once from warehouse.groups.DEFAULT_GROUPS (a test keeps the two equal); migrations never
-- run twice, so an analyst's edit stands (`aitokens groups seed` re-adds missing defaults only).
-- Sub-sectors by each project's own description of what its token pays for (the projects'
-- documentation: render.x, akash.network, bittensor.com, golem.network, fetch.ai,
-- singularitynet.io, injective.com, thegraph.com, oceanprotocol.com, arkhamintelligence.com,
-- numer.ai, worldcoin.org) cross-checked against the sub-categories CoinGecko lists its AI
-- coins under (coingecko.com/en/categories: "AI Agents", "DePIN"). Seeded membership runs from
-- 2015-01-01 (before any of these tokens listed): a project's line of business, not a dated
-- index inclusion.
INSERT OR IGNORE INTO asset_groups (name, description, coingecko_categories, sources, origin) VALUES
    ('compute', 'GPU and decentralised compute: rendering, training, inference markets', [],
     'project documentation (render.x, akash.network, bittensor.com, golem.network)', 'seed'),
    ('agents', 'AI agents and platforms: agent frameworks, AI service marketplaces', ['ai-agents'],
     'project documentation (fetch.ai, singularitynet.io, injective.com); CoinGecko "AI Agents"',
     'seed'),
    ('data', 'Data and indexing: query indexing, data markets, on-chain intelligence', [],
     'project documentation (thegraph.com, oceanprotocol.com, arkhamintelligence.com, numer.ai)',
     'seed'),
    ('identity', 'Identity: proof of personhood', [],
     'project documentation (worldcoin.org)', 'seed');

INSERT OR IGNORE INTO group_members (group_name, symbol, coin_id, valid_from, origin) VALUES
    ('compute', 'RNDR', 'render-token', DATE '2015-01-01', 'seed'),
    ('compute', 'AKT', 'akash-network', DATE '2015-01-01', 'seed'),
    ('compute', 'TAO', 'bittensor', DATE '2015-01-01', 'seed'),
    ('compute', 'GLM', 'golem', DATE '2015-01-01', 'seed'),
    ('agents', 'FET', 'fetch-ai', DATE '2015-01-01', 'seed'),
    ('agents', 'AGIX', 'singularitynet', DATE '2015-01-01', 'seed'),
    ('agents', 'INJ', 'injective-protocol', DATE '2015-01-01', 'seed'),
    ('data', 'GRT', 'the-graph', DATE '2015-01-01', 'seed'),
    ('data', 'OCEAN', 'ocean-protocol', DATE '2015-01-01', 'seed'),
    ('data', 'ARKM', 'arkham', DATE '2015-01-01', 'seed'),
    ('data', 'NMR', 'numeraire', DATE '2015-01-01', 'seed'),
    ('identity', 'WLD', 'worldcoin-wld', DATE '2015-01-01', 'seed');
