-- What nodes publish about each task (arguments, defaults) as JSON, so clients that
-- cannot import the task still check data and apply the task's defaults.
ALTER TABLE published_tasks ADD COLUMN spec TEXT;
