-- Each dashboard user's display settings (see store/sql_user_settings.py).

-- name: user_settings
-- Parameters: the user.
SELECT name, value FROM user_settings WHERE user_name = ?

-- name: set_user_setting
-- Parameters: the user, name, value, updated at.
INSERT INTO user_settings (user_name, name, value, updated_at) VALUES (?, ?, ?, ?)
ON CONFLICT (user_name, name)
DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
