-- 001: core tables of DESIGN.md section 3.
-- Dates are UTC calendar days (crypto) or exchange-local session dates (equities).
-- Every price table is keyed on (series, date, source): two vendors never overwrite each other.

CREATE TABLE coins (
    coin_id      VARCHAR PRIMARY KEY,          -- CoinGecko id, e.g. 'fetch-ai'
    symbol       VARCHAR NOT NULL,             -- ticker as CoinGecko spells it, e.g. 'fet'
    name         VARCHAR,
    asset_class  VARCHAR,                      -- 'ai_token', 'crypto_benchmark', 'crypto'
    updated_at   TIMESTAMP
);

CREATE TABLE category_snapshots (
    category_id        VARCHAR NOT NULL,       -- e.g. 'artificial-intelligence'
    snapshot_date      DATE NOT NULL,          -- UTC day the snapshot was taken
    snapshot_ts        TIMESTAMP NOT NULL,     -- UTC instant of the API call
    name               VARCHAR,
    market_cap         DOUBLE,                 -- USD, as CoinGecko reports it
    market_cap_change_24h DOUBLE,              -- percent
    volume_24h         DOUBLE,                 -- USD
    n_coins            INTEGER,
    PRIMARY KEY (category_id, snapshot_date)
);

CREATE TABLE category_members (
    category_id    VARCHAR NOT NULL,
    coin_id        VARCHAR NOT NULL,
    snapshot_date  DATE NOT NULL,
    rank           INTEGER,                    -- market-cap rank inside the category that day
    market_cap     DOUBLE,                     -- USD at snapshot time
    PRIMARY KEY (category_id, coin_id, snapshot_date)
);

CREATE TABLE coin_daily (
    coin_id      VARCHAR NOT NULL,
    date         DATE NOT NULL,                -- UTC day whose close this is (CoinGecko stamp minus one day)
    price        DOUBLE,                       -- USD
    market_cap   DOUBLE,                       -- USD
    volume       DOUBLE,                       -- USD, 24h
    source       VARCHAR NOT NULL DEFAULT 'coingecko',
    source_ts    TIMESTAMP,                    -- the vendor's own timestamp, kept for audit
    ingested_at  TIMESTAMP NOT NULL,
    PRIMARY KEY (coin_id, date, source)
);

CREATE TABLE equity_daily (
    ticker       VARCHAR NOT NULL,             -- e.g. 'NVDA'
    date         DATE NOT NULL,                -- exchange-local session date
    open         DOUBLE,
    high         DOUBLE,
    low          DOUBLE,
    close        DOUBLE,                       -- USD, split-adjusted as the vendor reports it
    adj_close    DOUBLE,                       -- USD, split- and dividend-adjusted
    volume       DOUBLE,                       -- shares
    source       VARCHAR NOT NULL DEFAULT 'yahoo',
    ingested_at  TIMESTAMP NOT NULL,
    PRIMARY KEY (ticker, date, source)
);

CREATE TABLE imported_daily (
    symbol       VARCHAR NOT NULL,             -- upper-case ticker from the CSV
    date         DATE NOT NULL,
    source       VARCHAR NOT NULL,             -- the CSV's venue column, else 'csv'
    asset_class  VARCHAR NOT NULL,             -- 'ai_token', 'crypto_benchmark', 'equity', ...
    close        DOUBLE NOT NULL,              -- USD
    volume_usd   DOUBLE,
    market_cap   DOUBLE,
    ingested_at  TIMESTAMP NOT NULL,
    PRIMARY KEY (symbol, date, source)
);

CREATE SEQUENCE raw_responses_seq;
CREATE TABLE raw_responses (
    response_id  BIGINT PRIMARY KEY DEFAULT nextval('raw_responses_seq'),
    run_id       VARCHAR,
    endpoint     VARCHAR NOT NULL,
    params       JSON,                         -- request parameters, secrets removed
    fetched_at   TIMESTAMP NOT NULL,
    status       INTEGER,
    body         VARCHAR
);

CREATE TABLE ingest_runs (
    run_id         VARCHAR PRIMARY KEY,
    flow           VARCHAR NOT NULL,           -- 'csv_import', 'daily_ingest', 'backfill', ...
    started_at     TIMESTAMP NOT NULL,
    finished_at    TIMESTAMP,
    status         VARCHAR NOT NULL,           -- 'running', 'completed', 'failed'
    rows_inserted  BIGINT DEFAULT 0,
    rows_updated   BIGINT DEFAULT 0,
    rows_unchanged BIGINT DEFAULT 0,
    calls          BIGINT DEFAULT 0,
    errors         JSON,                       -- list of {item, reason}
    details        JSON
);

CREATE TABLE study_runs (
    study_id     VARCHAR PRIMARY KEY,
    created_at   TIMESTAMP NOT NULL,
    spec         JSON NOT NULL,                -- full specification: reproduces the run
    package_version VARCHAR,
    summary      VARCHAR
);

CREATE TABLE study_results (
    study_id     VARCHAR NOT NULL,
    kind         VARCHAR NOT NULL,             -- 'ar', 'car', 'test', 'excluded', ...
    event        VARCHAR,
    asset        VARCHAR,
    label        VARCHAR,                      -- day or window label, test name
    value        DOUBLE,
    details      JSON
);

-- Exchange sessions, filled from exchange_calendars when migrations run, so SQL views can
-- tell a missing equity session (a gap) from a weekend or a holiday.
CREATE TABLE trading_sessions (
    calendar     VARCHAR NOT NULL,             -- 'XNYS'
    date         DATE NOT NULL,
    PRIMARY KEY (calendar, date)
);

-- Metadata for equity tickers (benchmarks vs single names); tickers not listed count as 'equity'.
CREATE TABLE equities (
    ticker       VARCHAR PRIMARY KEY,
    name         VARCHAR,
    asset_class  VARCHAR NOT NULL              -- 'equity' or 'equity_benchmark'
);
INSERT INTO equities VALUES
    ('SPY', 'SPDR S&P 500 ETF Trust', 'equity_benchmark'),
    ('QQQ', 'Invesco QQQ Trust', 'equity_benchmark');
