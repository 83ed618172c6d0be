-- Leaner event rows: the event log is written for every event and read back whole (replay,
-- audit), never queried inside `data` or `state`. Kept as json (the text, checked) instead of
-- jsonb (decomposed on every insert, and larger for documents this small), and without
-- `stream_id`, which (ms, seq), the key, already is.
ALTER TABLE events
  ALTER COLUMN data TYPE json USING data::json,
  ALTER COLUMN state TYPE json USING state::json,
  DROP COLUMN stream_id;
