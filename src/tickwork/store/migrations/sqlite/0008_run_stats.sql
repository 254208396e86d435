-- tickwork stats and the run counts over every run kept read these, not the runs.
-- Both take a run only when it ends (final statuses), so the engine's writes of
-- pending and running runs never touch them.
-- Runs per final status and task: the counts are index-only.
CREATE INDEX runs_final ON runs (status, task)
    WHERE status IN ('succeeded', 'failed', 'timed_out', 'lost', 'cancelled', 'skipped', 'missed');
-- Durations per task in order: p50/p95 are one ORDER BY ... LIMIT 2 OFFSET k each.
CREATE INDEX runs_duration ON runs (task, (finished_at - started_at))
    WHERE status IN ('succeeded', 'failed', 'timed_out');
