-- The log lines of attempts still running, written by their node about once a second
-- so that a run's page shows them before the attempt ends. An attempt's lines here are
-- superseded by its final lines in run_logs (readers skip them then, and the node
-- deletes them); a lost attempt's lines stay, the only ones it has.
CREATE TABLE run_live_logs (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id  text NOT NULL,
    attempt integer NOT NULL,
    at      timestamptz NOT NULL,
    level   text NOT NULL,
    logger  text NOT NULL,
    message text NOT NULL
);
CREATE INDEX run_live_logs_run ON run_live_logs (run_id, attempt, id);
