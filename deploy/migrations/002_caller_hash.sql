-- Repeat callers (重复件): a keyed hash of the caller's number, never the number itself.
ALTER TABLE cases ADD COLUMN IF NOT EXISTS caller_hash text;
CREATE INDEX IF NOT EXISTS cases_caller_idx ON cases (caller_hash, category)
    WHERE caller_hash IS NOT NULL;
