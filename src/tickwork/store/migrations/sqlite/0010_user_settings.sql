-- What a dashboard user chose to see (the time display, ...), kept for the principal
-- rather than the browser, so their choice follows them to any browser they sign in on.
CREATE TABLE user_settings (
    user_name  TEXT NOT NULL,
    name       TEXT NOT NULL,
    value      TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (user_name, name)
) WITHOUT ROWID;
