-- The span id of the caller's span that triggered a run (the parent-id of its W3C
-- traceparent): its attempts' spans are made under it. Runs stored before have none
-- and keep a parent derived from the run id.
ALTER TABLE runs ADD COLUMN parent_span_id text;
