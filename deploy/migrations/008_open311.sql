-- Open311 GeoReport v2 (workers/open311/service.py): the requests filed through the API.
-- What the citizen's app said and where, for GET requests; never the contact details
-- (name, phone, email), which ride only in the ComplaintFiled record to the case.
-- published_at is set once Kafka acknowledged the filing: a row without it was never
-- filed and is not shown (its POST answered with an error; a retry with the same
-- Idempotency-Key files it).

CREATE TABLE IF NOT EXISTS open311_requests (
    complaint_id      text PRIMARY KEY,
    token             text        NOT NULL UNIQUE,
    client            text        NOT NULL,
    service_code      text        NOT NULL,
    description       text        NOT NULL,
    address           text,
    latitude          double precision,
    longitude         double precision,
    media_url         text,
    requested_at      timestamptz NOT NULL,
    published_at      timestamptz
);
CREATE INDEX IF NOT EXISTS open311_requests_at_idx
    ON open311_requests (requested_at, complaint_id);

-- GET requests lists cases newest first (a 90-day window by default); with this index a
-- page is read off the index backwards instead of sorting the window.
CREATE INDEX IF NOT EXISTS cases_filed_at_idx ON cases (filed_at, complaint_id);
