-- The Open311 rate limit (workers/open311/rate_limit.py), shared by every replica: a
-- sliding-window counter. Each key (a client address or an API client) has a count per
-- fixed window; a hit is judged against the previous window's count weighted by how much
-- of it the sliding window still overlaps, plus the current window's count.
--
-- UNLOGGED: counts are hot, short-lived and worthless after a crash (the table is emptied
-- then, which lifts every limit for at most a window); skipping the WAL keeps the write
-- that every request makes cheap, and standbys have nothing to replay. fillfactor leaves
-- room in each page so that counting (hits is in no index) is a HOT update.
CREATE UNLOGGED TABLE IF NOT EXISTS open311_rate_hits (
    key           text    NOT NULL,
    window_start  bigint  NOT NULL,  -- epoch seconds, a multiple of the window length
    hits          integer NOT NULL,
    PRIMARY KEY (key, window_start)
) WITH (fillfactor = 70);
-- Pruning finds the expired windows through this index instead of scanning the table.
CREATE INDEX IF NOT EXISTS open311_rate_hits_window_idx ON open311_rate_hits (window_start);

-- One hit on p_key, in one statement (one round trip): NULL when allowed (and counted),
-- else the seconds until the next hit would be allowed if none arrive meanwhile (a refused
-- hit is not counted, so a client that waits that long gets in). p_now defaults to this
-- server's clock, the one clock every replica shares; tests pass their own.
CREATE OR REPLACE FUNCTION open311_rate_hit(p_key text, p_limit integer, p_window_s integer,
                                            p_now double precision DEFAULT NULL)
RETURNS double precision
LANGUAGE plpgsql AS $$
DECLARE
    t     double precision := coalesce(p_now, extract(epoch FROM clock_timestamp()));
    this  bigint := floor(t / p_window_s)::bigint * p_window_s;
    gone  double precision := (t - this) / p_window_s;  -- share of this window past, [0, 1)
    cur   integer;
    prev  integer;
BEGIN
    -- Counting first takes the row lock, which serialises this key's hits from every
    -- replica until the function's transaction ends: no two hits see the same count.
    INSERT INTO open311_rate_hits AS h (key, window_start, hits) VALUES (p_key, this, 1)
    ON CONFLICT (key, window_start) DO UPDATE SET hits = h.hits + 1
    RETURNING h.hits INTO cur;
    SELECT h.hits INTO prev FROM open311_rate_hits h
     WHERE h.key = p_key AND h.window_start = this - p_window_s;
    prev := coalesce(prev, 0);
    -- A key's first hit in a window sweeps out the windows nobody reads any more; one
    -- sweeper at a time (the others skip, they do not queue behind it).
    IF cur = 1 AND pg_try_advisory_xact_lock(311, 1) THEN
        DELETE FROM open311_rate_hits WHERE window_start < this - p_window_s;
    END IF;
    IF prev * (1 - gone) + cur <= p_limit THEN
        RETURN NULL;
    END IF;
    cur := cur - 1;  -- refused: not counted
    UPDATE open311_rate_hits SET hits = cur WHERE key = p_key AND window_start = this;
    IF cur < p_limit THEN
        -- Room in this window once the previous window's weight has fallen enough.
        RETURN (1 - (p_limit - cur - 1)::double precision / prev - gone) * p_window_s;
    END IF;
    -- This window is full: in the next one, once this window's weight has fallen enough.
    RETURN ((1 - gone) + 1 - (p_limit - 1)::double precision / cur) * p_window_s;
END
$$;
