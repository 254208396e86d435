-- The table of applied migrations (see store/migrate.py).

-- name: create_schema_migrations
-- Applied migrations: the version and when (microseconds since the epoch on SQLite).
CREATE TABLE IF NOT EXISTS schema_migrations (
  version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)

-- name: create_schema_migrations@postgres
CREATE TABLE IF NOT EXISTS schema_migrations (
  version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())

-- name: schema_version
-- The newest migration applied (NULL: none). No parameters.
SELECT MAX(version) FROM schema_migrations

-- name: record_migration
-- Parameters: version, applied at.
INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)
