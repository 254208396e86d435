-- The caller's W3C trace flags (1: sampled) from the traceparent that triggered a run,
-- so that a parent-based sampler honours the caller's choice for the run's attempts.
-- Runs stored before have none and are traced as sampled, as they were.
ALTER TABLE runs ADD COLUMN trace_flags INTEGER;
