-- Dead letters re-driven by `hotline dlq redrive` (workers/cli/dlq.py).
-- One row per DLQ position: the row is inserted in the same transaction that waits for the
-- broker to acknowledge the re-published message, so a dead letter is re-driven at most
-- once, and two operators re-driving it at the same moment are serialised by the key.
-- dead_letter_id (the DeadLetter record's event_id, "dlq:<topic>:<partition>:<offset>" of
-- the original message) is unique too: when a message was dead-lettered twice (a failed
-- commit redelivered it), re-driving either copy refuses the other.

CREATE TABLE IF NOT EXISTS dlq_redrives (
    dlq_topic         text        NOT NULL,
    dlq_partition     integer     NOT NULL,
    dlq_offset        bigint      NOT NULL,
    dead_letter_id    text        NOT NULL UNIQUE,
    reason            text        NOT NULL,
    -- Where the message went: its original topic, and the position the broker gave it.
    target_topic      text        NOT NULL,
    target_partition  integer,
    target_offset     bigint,
    event_type        text,
    event_id          text,
    complaint_id      text,
    -- true when the bytes came from --value-file (a fixed message), not the original.
    replaced          boolean     NOT NULL DEFAULT false,
    value_sha256      text        NOT NULL,
    redriven_by       text        NOT NULL,
    redriven_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dlq_topic, dlq_partition, dlq_offset)
);
CREATE INDEX IF NOT EXISTS dlq_redrives_at_idx ON dlq_redrives (redriven_at);
