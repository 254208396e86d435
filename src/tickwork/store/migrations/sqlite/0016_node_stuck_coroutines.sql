-- Coroutines of a node still running an async task it gave up on (the task ignored its
-- cancellation for stop_grace), as of its last heartbeat (tickwork status shows them).
ALTER TABLE nodes ADD COLUMN stuck_coroutines INTEGER NOT NULL DEFAULT 0;
