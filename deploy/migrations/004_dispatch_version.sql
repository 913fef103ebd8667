-- Dispatch rows carry the case step that wrote them, so a replayed or reordered older
-- step cannot move a deadline back (the projector may see events shuffled or repeated).
ALTER TABLE dispatches ADD COLUMN IF NOT EXISTS version integer NOT NULL DEFAULT 0;
