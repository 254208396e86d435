-- Nothing changes on PostgreSQL: this number keeps the dialects' migrations in step with
-- SQLite's 0014, which rewrites runs_active's condition (PostgreSQL checks an IN list
-- without the cost SQLite has, and its runs_active stays as it is).
SELECT 1;
