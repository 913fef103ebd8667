-- The dispatch desk (派单复核): a REVIEW_REQUESTED event carries the units the machine would
-- choose, best first (unit_id, unit_name, tier, category, score, reason), for
-- `hotline desk list` and any desk system reading the ledger.
ALTER TABLE case_events ADD COLUMN IF NOT EXISTS candidates jsonb;
CREATE INDEX IF NOT EXISTS cases_awaiting_review_idx ON cases (filed_at)
    WHERE status = 'AWAITING_REVIEW';
