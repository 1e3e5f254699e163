-- 006: event times with their zone where known, for hourly event studies (hour 0 = the hour
-- holding the announcement; DESIGN.md section 5).
--
-- Sora: OpenAI announced Sora on 2024-02-15 at about 18:00 UTC (10:00 in San Francisco).
-- Sources: OpenAI's announcement post "Sora: Creating video from text" (openai.com/sora, and
-- openai.com/research/video-generation-models-as-world-simulators) and its @OpenAI post on X of
-- 2024-02-15 ("Introducing Sora, our text-to-video model"), stamped about 18:00 UTC; the time
-- used here is the one recorded with the shared data (../shared/data/sora2024/README.md: "OpenAI
-- announced Sora on 2024-02-15 at about 18:00 UTC"). Only the hour matters for hour 0
-- ([18:00, 19:00) UTC); the minute is not claimed.
--
-- Seeds never overwrite an analyst's edit (003): the time is written only to the seeded row, and
-- only while it still holds no time and its seeded date. An analyst who removed, replaced or
-- timed the event keeps their row.
UPDATE events
SET event_ts = TIMESTAMPTZ '2024-02-15 18:00:00+00:00',
    updated_at = timezone('UTC', now())
WHERE name = 'sora'
  AND origin = 'seed'
  AND event_ts IS NULL
  AND event_date = DATE '2024-02-15';

-- Where an event's time comes from, shown beside it by `aitokens study` and `aitokens events
-- list` (NULL: entered by an analyst, or a date only). `aitokens events add --replace` clears it.
ALTER TABLE events ADD COLUMN IF NOT EXISTS time_source VARCHAR;  -- safe to replay
UPDATE events
SET time_source = 'OpenAI announcement post (openai.com/sora) and @OpenAI X post of 2024-02-15, '
                  || 'about 18:00 UTC'
WHERE name = 'sora'
  AND origin = 'seed'
  AND event_ts = TIMESTAMPTZ '2024-02-15 18:00:00+00:00';
