-- Schedules per status (tickwork status and stats) are counted from indexes, not by
-- reading every schedule: all of them from the primary key's index, the paused and
-- finished ones from this one. It holds no active schedule, so a fire (which writes
-- an active schedule's row) never changes it.
CREATE INDEX schedules_inactive ON schedules (status) WHERE status <> 'active';
