-- Proactive governance (issue 5): the projector's inbox, notices, rankings, hotspots and
-- monthly-topic candidates. All read models; everything but the inbox can be recomputed.

-- The projector's inbox: one row per lifecycle event it applied, so a redelivered event
-- is recognised before any ledger write (case_events' own key is the second guard).
CREATE TABLE IF NOT EXISTS projector_inbox (
    event_id          text PRIMARY KEY,
    topic             text        NOT NULL,
    kafka_partition   integer     NOT NULL,
    kafka_offset      bigint      NOT NULL,
    applied_at        timestamptz NOT NULL DEFAULT now()
);

-- Notices (预警 / 超期 / 督办) are NOTICE lifecycle events: a view, so whichever writer
-- filled case_events (record_step or the projector) the notices agree.
CREATE OR REPLACE VIEW notices AS
SELECT event_id, complaint_id, at, unit_id, dispatch_id, reason AS message,
       attributes ->> 'notice_type' AS notice_type, attributes ->> 'level' AS level
  FROM case_events
 WHERE event_type = 'NOTICE';
CREATE INDEX IF NOT EXISTS case_events_type_at_idx ON case_events (event_type, at);
CREATE INDEX IF NOT EXISTS cases_category_idx ON cases (category, filed_at);
CREATE INDEX IF NOT EXISTS evaluations_at_idx ON evaluations (evaluated_at);

-- Monthly evaluation (考评排名): one row per unit, month and group; recomputing a month
-- replaces its rows.
CREATE TABLE IF NOT EXISTS monthly_rankings (
    month             text        NOT NULL,
    unit_group        text        NOT NULL,
    unit_id           text        NOT NULL,
    rank              integer     NOT NULL,
    unit_name         text        NOT NULL,
    cases             integer     NOT NULL,
    response_rate     double precision NOT NULL,
    resolution_rate   double precision NOT NULL,
    satisfaction_rate double precision NOT NULL,
    score             double precision NOT NULL,
    praise            integer     NOT NULL DEFAULT 0,
    computed_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (month, unit_group, unit_id)
);

-- Hotspot warnings (未诉先办) and the governance case each one became.
CREATE TABLE IF NOT EXISTS hotspot_warnings (
    warning_id        text PRIMARY KEY,
    district          text,
    street            text        NOT NULL,
    category          text        NOT NULL,
    window_start      timestamptz NOT NULL,
    window_end        timestamptz NOT NULL,
    count             integer     NOT NULL,
    baseline          double precision NOT NULL,
    score             double precision NOT NULL,
    detected_at       timestamptz NOT NULL,
    complaint_id      text,
    status            text        NOT NULL DEFAULT 'OPEN'
);
CREATE INDEX IF NOT EXISTS hotspot_warnings_place_idx
    ON hotspot_warnings (street, category, detected_at);

-- Monthly-topic candidates (每月一题), stored per month.
CREATE TABLE IF NOT EXISTS topic_candidates (
    month             text        NOT NULL,
    category          text        NOT NULL,
    rank              integer     NOT NULL,
    volume            integer     NOT NULL,
    previous_volume   double precision NOT NULL,
    growth            double precision NOT NULL,
    units             integer     NOT NULL,
    streets           integer     NOT NULL,
    score             double precision NOT NULL,
    PRIMARY KEY (month, category)
);
