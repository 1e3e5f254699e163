-- 008: data-quality quarantine (issue 22). Every load runs the checks of
-- warehouse/quality_checks.py on the series it touched; a suspect point is stored here with its
-- check, reason and the run that found it, never silently dropped. A point is released by an
-- analyst (`aitokens check accept`: accepted_at set) or by a re-load that fixes it (the row is
-- deleted when the checks no longer catch the point).
CREATE TABLE IF NOT EXISTS quality_quarantine (  -- IF NOT EXISTS: safe to replay
    symbol      VARCHAR NOT NULL,            -- upper-case, as daily_prices spells it
    asset_id    VARCHAR NOT NULL,            -- the series' asset_id (symbol for a CSV)
    source      VARCHAR NOT NULL,            -- the series' source ('csv', 'coingecko', ...)
    interval    VARCHAR NOT NULL,            -- '1d' (date) or '1h' (ts)
    time        TIMESTAMP NOT NULL,          -- the day (midnight) or the hour close, UTC
    value       DOUBLE,                      -- the suspect value (NULL/NaN when non-finite)
    check_name  VARCHAR NOT NULL,            -- non_positive, non_finite, spike, level_shift, stale
    reason      VARCHAR NOT NULL,            -- one line, for the analyst
    run_id      VARCHAR,                     -- ingestion_runs.run_id of the load that found it
    detected_at TIMESTAMP NOT NULL DEFAULT (timezone('UTC', now())),
    accepted_at TIMESTAMP,                   -- set by `aitokens check accept`: released
    PRIMARY KEY (asset_id, source, interval, time)
);

-- The points still held back: what `aitokens check` lists and studies exclude.
CREATE OR REPLACE VIEW quarantined_points AS
SELECT symbol, asset_id, source, interval, time, value, check_name, reason, run_id, detected_at
FROM quality_quarantine
WHERE accepted_at IS NULL;
