-- 003: the event catalog, and what `aitokens study` needs to store a run so it can be reproduced.

-- Named events an analyst can study (`aitokens study --event sora`) or that are flagged as
-- confounders when they fall inside an event window. Editable with `aitokens events add|remove`
-- or plain SQL. Seeded once, below, from analysis.events.DEFAULT_EVENTS: migrations never run
-- twice, so an analyst's edit or removal is never overwritten by a later seed
-- (`aitokens events seed` re-adds missing defaults on request, without touching existing rows).
CREATE TABLE events (
    name          VARCHAR PRIMARY KEY,              -- 'sora', 'nvda_q4fy24'; stored verbatim
    event_date    DATE NOT NULL,                    -- the day as announced (local date)
    event_ts      TIMESTAMPTZ,                      -- exact instant when known (wins over event_date)
    description   VARCHAR,
    kind          VARCHAR NOT NULL DEFAULT 'other', -- 'ai', 'earnings', 'macro', ...
    is_confounder BOOLEAN NOT NULL DEFAULT false,   -- flag it when it falls inside a study window
    origin        VARCHAR NOT NULL DEFAULT 'analyst', -- 'seed' (DEFAULT_EVENTS) or 'analyst'
    updated_at    TIMESTAMP NOT NULL DEFAULT (timezone('UTC', now()))  -- UTC
);

INSERT INTO events (name, event_date, event_ts, description, kind, is_confounder, origin) VALUES
    ('chatgpt',      DATE '2022-11-30', NULL, 'OpenAI ChatGPT launch', 'ai', false, 'seed'),
    ('gpt4',         DATE '2023-03-14', NULL, 'OpenAI GPT-4 release', 'ai', false, 'seed'),
    ('sora',         DATE '2024-02-15', NULL, 'OpenAI Sora announcement', 'ai', false, 'seed'),
    ('gpt4o',        DATE '2024-05-13', NULL, 'OpenAI GPT-4o announcement', 'ai', false, 'seed'),
    ('sora_release', DATE '2024-12-09', NULL, 'OpenAI Sora public release', 'ai', false, 'seed'),
    ('nvda_q4fy22', DATE '2022-02-16', TIMESTAMPTZ '2022-02-16 16:20:00-05:00',
     'NVIDIA Q4 FY2022 results (after the US close)', 'earnings', true, 'seed'),
    ('nvda_q1fy23', DATE '2022-05-25', TIMESTAMPTZ '2022-05-25 16:20:00-04:00',
     'NVIDIA Q1 FY2023 results (after the US close)', 'earnings', true, 'seed'),
    ('nvda_q2fy23', DATE '2022-08-24', TIMESTAMPTZ '2022-08-24 16:20:00-04:00',
     'NVIDIA Q2 FY2023 results (after the US close)', 'earnings', true, 'seed'),
    ('nvda_q3fy23', DATE '2022-11-16', TIMESTAMPTZ '2022-11-16 16:20:00-05:00',
     'NVIDIA Q3 FY2023 results (after the US close)', 'earnings', true, 'seed'),
    ('nvda_q4fy23', DATE '2023-02-22', TIMESTAMPTZ '2023-02-22 16:20:00-05:00',
     'NVIDIA Q4 FY2023 results (after the US close)', 'earnings', true, 'seed'),
    ('nvda_q1fy24', DATE '2023-05-24', TIMESTAMPTZ '2023-05-24 16:20:00-04:00',
     'NVIDIA Q1 FY2024 results (after the US close)', 'earnings', true, 'seed'),
    ('nvda_q2fy24', DATE '2023-08-23', TIMESTAMPTZ '2023-08-23 16:20:00-04:00',
     'NVIDIA Q2 FY2024 results (after the US close)', 'earnings', true, 'seed'),
    ('nvda_q3fy24', DATE '2023-11-21', TIMESTAMPTZ '2023-11-21 16:20:00-05:00',
     'NVIDIA Q3 FY2024 results (after the US close)', 'earnings', true, 'seed'),
    ('nvda_q4fy24', DATE '2024-02-21', TIMESTAMPTZ '2024-02-21 16:20:00-05:00',
     'NVIDIA Q4 FY2024 results (after the US close)', 'earnings', true, 'seed'),
    ('nvda_q1fy25', DATE '2024-05-22', TIMESTAMPTZ '2024-05-22 16:20:00-04:00',
     'NVIDIA Q1 FY2025 results (after the US close)', 'earnings', true, 'seed'),
    ('nvda_q2fy25', DATE '2024-08-28', TIMESTAMPTZ '2024-08-28 16:20:00-04:00',
     'NVIDIA Q2 FY2025 results (after the US close)', 'earnings', true, 'seed'),
    ('nvda_q3fy25', DATE '2024-11-20', TIMESTAMPTZ '2024-11-20 16:20:00-05:00',
     'NVIDIA Q3 FY2025 results (after the US close)', 'earnings', true, 'seed');

-- One row per study leg (AI tokens vs BTC, equities vs SPY): the run's group, the data it read
-- (series, sources, date range, SHA-256 of the input closes) and the command line, beside the
-- full spec of 001, so `aitokens study --rerun STUDY_ID` can rebuild and check it.
ALTER TABLE study_runs ADD COLUMN group_id VARCHAR;       -- one `aitokens study` invocation
ALTER TABLE study_runs ADD COLUMN leg VARCHAR;            -- 'tokens' or 'equities'
ALTER TABLE study_runs ADD COLUMN data_sha256 VARCHAR;    -- SHA-256 of the input closes
ALTER TABLE study_runs ADD COLUMN fingerprint JSON;       -- series, sources, date range, n_obs
ALTER TABLE study_runs ADD COLUMN command VARCHAR;        -- the arguments as given

-- Long results: typed columns beside 001's value/details, so SQL can filter on p-values.
ALTER TABLE study_results ADD COLUMN grp VARCHAR;         -- test group ('all', 'class=equity'), weighting
ALTER TABLE study_results ADD COLUMN test VARCHAR;        -- test name for kind 'test' ('kp_bmp', ...)
ALTER TABLE study_results ADD COLUMN std DOUBLE;
ALTER TABLE study_results ADD COLUMN tstat DOUBLE;        -- t / z / test statistic
ALTER TABLE study_results ADD COLUMN pvalue DOUBLE;       -- two-sided
ALTER TABLE study_results ADD COLUMN n INTEGER;           -- pairs in a test; estimation obs. of a pair
