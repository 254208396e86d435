-- What a dashboard user chose to see (the time display, ...), kept for the principal
-- rather than the browser, so their choice follows them to any browser they sign in on.
CREATE TABLE user_settings (
    user_name  text NOT NULL,
    name       text NOT NULL,
    value      text NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (user_name, name)
);
