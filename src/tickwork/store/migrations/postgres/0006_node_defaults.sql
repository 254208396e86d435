-- Which of retry and timeout a schedule leaves to the node that executes its runs
-- (comma-separated field names; '' = it sets both). Runs copy it when created.
-- Existing schedules and runs set both: they keep the values they were stored with.
ALTER TABLE schedules ADD COLUMN node_defaults TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN node_defaults TEXT NOT NULL DEFAULT '';
