-- Where a complaint is, when its channel gave a location (app, WeChat, web map pin), so
-- hotspot warnings can find many complaints near one point, across street boundaries.
ALTER TABLE cases ADD COLUMN IF NOT EXISTS latitude double precision;
ALTER TABLE cases ADD COLUMN IF NOT EXISTS longitude double precision;
CREATE INDEX IF NOT EXISTS cases_located_idx ON cases (filed_at)
    WHERE latitude IS NOT NULL;

-- A warning near a point carries that point (the centre of the complaints in its window).
ALTER TABLE hotspot_warnings ADD COLUMN IF NOT EXISTS latitude double precision;
ALTER TABLE hotspot_warnings ADD COLUMN IF NOT EXISTS longitude double precision;
