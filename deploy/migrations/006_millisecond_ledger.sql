-- The ledger keeps the precision of the event contract (Avro timestamp-millis), so the
-- rows the worker's record_step writes directly equal the rows the projector rebuilds
-- from hotline.lifecycle (identical tables after a replay from offset 0). Without this,
-- the direct write kept microseconds that the topic never carried.
-- Truncation, like fastavro's timestamp-millis encoder (not PostgreSQL's rounding of
-- timestamptz(3)).

CREATE OR REPLACE FUNCTION ledger_ms_cases() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.filed_at  := date_trunc('milliseconds', NEW.filed_at);
    NEW.due_at    := date_trunc('milliseconds', NEW.due_at);
    NEW.closed_at := date_trunc('milliseconds', NEW.closed_at);
    RETURN NEW;
END $$;

CREATE OR REPLACE FUNCTION ledger_ms_case_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.at := date_trunc('milliseconds', NEW.at);
    RETURN NEW;
END $$;

CREATE OR REPLACE FUNCTION ledger_ms_dispatches() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.issued_at    := date_trunc('milliseconds', NEW.issued_at);
    NEW.sign_by      := date_trunc('milliseconds', NEW.sign_by);
    NEW.due_at       := date_trunc('milliseconds', NEW.due_at);
    NEW.signed_at    := date_trunc('milliseconds', NEW.signed_at);
    NEW.completed_at := date_trunc('milliseconds', NEW.completed_at);
    NEW.revoked_at   := date_trunc('milliseconds', NEW.revoked_at);
    RETURN NEW;
END $$;

CREATE OR REPLACE FUNCTION ledger_ms_evaluations() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.evaluated_at := date_trunc('milliseconds', NEW.evaluated_at);
    RETURN NEW;
END $$;

DROP TRIGGER IF EXISTS ledger_ms ON cases;
CREATE TRIGGER ledger_ms BEFORE INSERT OR UPDATE ON cases
    FOR EACH ROW EXECUTE FUNCTION ledger_ms_cases();
DROP TRIGGER IF EXISTS ledger_ms ON case_events;
CREATE TRIGGER ledger_ms BEFORE INSERT OR UPDATE ON case_events
    FOR EACH ROW EXECUTE FUNCTION ledger_ms_case_events();
DROP TRIGGER IF EXISTS ledger_ms ON dispatches;
CREATE TRIGGER ledger_ms BEFORE INSERT OR UPDATE ON dispatches
    FOR EACH ROW EXECUTE FUNCTION ledger_ms_dispatches();
DROP TRIGGER IF EXISTS ledger_ms ON evaluations;
CREATE TRIGGER ledger_ms BEFORE INSERT OR UPDATE ON evaluations
    FOR EACH ROW EXECUTE FUNCTION ledger_ms_evaluations();
