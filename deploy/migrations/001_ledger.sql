-- The case ledger: read model for queries, rankings and governance.
-- Written by the record_step activity (idempotent upserts guarded by version).

CREATE TABLE IF NOT EXISTS cases (
    complaint_id      text PRIMARY KEY,
    version           integer     NOT NULL,
    status            text        NOT NULL,
    outcome           text,
    channel           text        NOT NULL,
    kind              text,
    category          text,
    tier              text,
    district          text,
    street            text,
    lead_unit_id      text,
    filed_at          timestamptz NOT NULL,
    due_at            timestamptz,
    closed_at         timestamptz,
    overdue           boolean     NOT NULL DEFAULT false,
    escalation_level  text        NOT NULL DEFAULT 'UNIT',
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS cases_status_idx ON cases (status);
CREATE INDEX IF NOT EXISTS cases_lead_unit_idx ON cases (lead_unit_id, filed_at);
CREATE INDEX IF NOT EXISTS cases_street_idx ON cases (district, street, filed_at);

CREATE TABLE IF NOT EXISTS case_events (
    event_id          text PRIMARY KEY,
    complaint_id      text        NOT NULL,
    seq               integer     NOT NULL,
    at                timestamptz NOT NULL,
    event_type        text        NOT NULL,
    status            text        NOT NULL,
    unit_id           text,
    dispatch_id       text,
    reason            text,
    attributes        jsonb       NOT NULL DEFAULT '{}'::jsonb,
    UNIQUE (complaint_id, seq)
);

CREATE TABLE IF NOT EXISTS dispatches (
    dispatch_id       text PRIMARY KEY,
    complaint_id      text        NOT NULL,
    unit_id           text        NOT NULL,
    role              text        NOT NULL,
    issued_at         timestamptz NOT NULL,
    sign_by           timestamptz NOT NULL,
    due_at            timestamptz NOT NULL,
    signed_at         timestamptz,
    completed_at      timestamptz,
    revoked_at        timestamptz,
    result            text
);
CREATE INDEX IF NOT EXISTS dispatches_case_idx ON dispatches (complaint_id);
CREATE INDEX IF NOT EXISTS dispatches_unit_idx ON dispatches (unit_id, issued_at);

CREATE TABLE IF NOT EXISTS evaluations (
    complaint_id      text PRIMARY KEY,
    lead_unit_id      text,
    counted           boolean     NOT NULL,
    responded         boolean     NOT NULL,
    resolved          boolean     NOT NULL,
    satisfied         boolean     NOT NULL,
    satisfaction      text,
    overdue           boolean     NOT NULL,
    returns           integer     NOT NULL,
    escalations       integer     NOT NULL,
    reopens           integer     NOT NULL,
    score             double precision NOT NULL,
    evaluated_at      timestamptz NOT NULL
);
