-- The workbench (workers/workbench): accounts of unit staff, dispatchers and supervisors,
-- and the login throttle. Not a projection of hotline.lifecycle: kept, never rebuilt.
CREATE TABLE IF NOT EXISTS workbench_accounts (
    username          text PRIMARY KEY,
    role              text        NOT NULL CHECK (role IN ('unit', 'dispatcher', 'supervisor')),
    -- unit staff act for exactly one unit; dispatchers and supervisors for none
    unit_id           text,
    display_name      text        NOT NULL,
    password_hash     text        NOT NULL,  -- Argon2id, PHC string
    disabled          boolean     NOT NULL DEFAULT false,
    created_at        timestamptz NOT NULL DEFAULT now(),
    CHECK ((role = 'unit') = (unit_id IS NOT NULL))
);

-- Failed logins per account name and client address (an unknown name is throttled too).
CREATE TABLE IF NOT EXISTS workbench_login_failures (
    username          text        NOT NULL,
    client            text        NOT NULL,
    failures          integer     NOT NULL DEFAULT 0,
    locked_until      timestamptz,
    last_failure_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (username, client)
);

-- A unit's inbox: its open dispatches, what is due first.
CREATE INDEX IF NOT EXISTS dispatches_unit_open_idx ON dispatches (unit_id, due_at)
    WHERE revoked_at IS NULL AND completed_at IS NULL;
