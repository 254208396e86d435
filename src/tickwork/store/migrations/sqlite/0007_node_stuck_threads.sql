-- Threads of a node still running a sync task it gave up on (timed out, cancelled),
-- as of its last heartbeat (tickwork status shows them).
ALTER TABLE nodes ADD COLUMN stuck_threads INTEGER NOT NULL DEFAULT 0;
