-- runs_active names its statuses as two IN lists of at most two values joined by OR, not
-- as one IN list of three. SQLite (3.40) tests a list of three or more values against a
-- temporary b-tree, and did so for each run a claim or an end changed: about 8 % of the
-- store's work for a claim and an end; a list of two it tests by comparisons. The queries
-- that read this index state the same condition (a partial index serves a query only when
-- the query states its condition). Not "status = 'pending' OR status = 'running' OR ...":
-- a query for running runs (status = 'running') would then take this index instead of
-- runs_running_schedule, and read every pending run of the schedule.
DROP INDEX runs_active;
CREATE INDEX runs_active ON runs (schedule_id, scheduled_for)
    WHERE status IN ('pending', 'running') OR status = 'retrying';
