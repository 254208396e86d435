-- Nothing changes on PostgreSQL: this number keeps the dialects' migrations in step with
-- SQLite's 0015, which rewrites the conditions of runs_final and runs_duration
-- (PostgreSQL checks an IN list without the cost SQLite has, and its indexes and the
-- queries that read them stay as they are).
SELECT 1;
