-- runs_final and runs_duration name their statuses by comparisons joined by OR, not as IN
-- lists of seven and three values: SQLite (3.40) tests a list of three or more against a
-- temporary b-tree, and did so for each run a claim or an end changed, for each index
-- (about 17 % of the store's work for a claim and an end, after 0014); comparisons and
-- lists of two it tests directly. The queries that read these indexes (tickwork stats,
-- the run counts, the scanned durations) state the same conditions: a partial index
-- serves a query only when the query states its condition.
-- runs_final is one comparison per status: the counts' condition becomes one IN of the
-- seven statuses in the plan, one walk of the index as before. runs_duration is a list
-- of two and a comparison, as runs_active: were it three comparisons, the scanned
-- durations (since an instant) would state three comparisons that each serve runs_final,
-- and SQLite would read every executed run through runs_final instead of the runs since
-- the instant through runs_scheduled_for.
DROP INDEX runs_final;
CREATE INDEX runs_final ON runs (status, task)
    WHERE status = 'succeeded' OR status = 'failed' OR status = 'timed_out' OR status = 'lost'
        OR status = 'cancelled' OR status = 'skipped' OR status = 'missed';
DROP INDEX runs_duration;
CREATE INDEX runs_duration ON runs (task, (finished_at - started_at))
    WHERE status IN ('succeeded', 'failed') OR status = 'timed_out';
