"""Settings of ``worker``: each from a flag, ``TICKWORK_<NAME>`` or the settings file, in
that order of precedence, every bad value refused naming the setting and its source."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import ROOT, Cli, Worker, cli_env
from tickwork.cli.serve import SERVE_SETTINGS
from tickwork.cli.settings import (
    NODE_SETTINGS,
    SERVE_ONLY_KEYS,
    Setting,
    SettingError,
    config_path,
    node_options,
    resolve,
)
from tickwork.engine.scheduler import Scheduler
from tickwork.models import RetryPolicy


def three_values(s: Setting) -> list[tuple[Any, Any]]:
    """Three distinct (raw, parsed) values of the setting, none its default."""
    if s.kind == "choice":
        # A choice of two (log_format) repeats its other value, spelt three ways.
        values = ([c for c in s.choices if c != s.default] * 3)[:3]
        raws = (values[0].upper(), values[1].title(), values[2])
        return list(zip(raws, values, strict=True))
    if s.kind == "int":
        return [("3", 3), ("4", 4), (5, 5)]
    if s.kind == "seconds":
        return [("7", 7.0), ("2m", 120.0), (9, 9.0)]
    if s.kind == "bool":
        return [("off", False), ("on", True), (False, False)]
    if s.name == "trusted_proxies":  # checked: addresses or networks
        return [(" 10.0.0.1", "10.0.0.1"), ("10.0.0.0/8", "10.0.0.0/8"), ("::1", "::1")]
    if s.name == "cors_origins":  # checked: origins as a browser sends them
        return [(" https://a.example", "https://a.example"), ("http://b.example:8080",
                "http://b.example:8080"), ("*", "*")]  # fmt: skip
    if s.kind == "str":
        return [(" a.example", "a.example"), ("b.example", "b.example"), ("c", "c")]
    return [("7", 7.0), ("8.5", 8.5), (9, 9.0)]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tickwork.toml"
    path.write_text(text)
    return path


def toml_value(raw: Any) -> str:
    return f'"{raw}"' if isinstance(raw, str) else str(raw).lower()


#: Every setting of ``worker`` and of ``serve`` (which has the worker's and its own).
ALL_SETTINGS = SERVE_SETTINGS


def test_serve_has_every_setting_of_worker() -> None:
    assert set(NODE_SETTINGS) <= set(SERVE_SETTINGS)


@pytest.mark.parametrize("setting", ALL_SETTINGS, ids=lambda s: s.name)
def test_each_setting_from_each_source_in_order(setting: Setting, tmp_path: Path) -> None:
    (flag_raw, flag_v), (env_raw, env_v), (file_raw, file_v) = three_values(setting)
    file = write(tmp_path, f"{setting.name} = {toml_value(file_raw)}\n")
    env = {setting.env: str(env_raw)}
    flags = {setting.name: str(flag_raw)}

    default = resolve(ALL_SETTINGS, {}, {}, None)
    assert default[setting.name] == setting.default and default.source(setting.name) == "default"

    only_file = resolve(ALL_SETTINGS, {}, {}, file)
    assert only_file[setting.name] == file_v and only_file.source(setting.name) == "file"

    env_over_file = resolve(ALL_SETTINGS, {}, env, file)
    assert env_over_file[setting.name] == env_v and env_over_file.source(setting.name) == "env"

    flag_over_all = resolve(ALL_SETTINGS, flags, env, file)
    assert flag_over_all[setting.name] == flag_v and flag_over_all.source(setting.name) == "flag"

    # The others stay at their defaults.
    for other in ALL_SETTINGS:
        if other is not setting:
            assert flag_over_all[other.name] == other.default


@pytest.mark.parametrize(
    "setting", [s for s in ALL_SETTINGS if s.kind != "str"], ids=lambda s: s.name
)
def test_a_bad_value_names_the_setting_and_its_source(setting: Setting, tmp_path: Path) -> None:
    bad = "-5" if setting.kind in ("int", "float", "seconds") else "loud"
    with pytest.raises(SettingError) as from_flag:
        resolve(ALL_SETTINGS, {setting.name: bad}, {}, None)
    assert str(from_flag.value).startswith(f"{setting.name} = '{bad}' (from {setting.flag})")
    with pytest.raises(SettingError) as from_env:
        resolve(ALL_SETTINGS, {}, {setting.env: bad}, None)
    assert f"(from {setting.env})" in str(from_env.value)
    file = write(tmp_path, f'{setting.name} = "{bad}"\n')
    with pytest.raises(SettingError) as from_file:
        resolve(ALL_SETTINGS, {}, {}, file)
    assert f"(from {file} (key {setting.name}))" in str(from_file.value)
    with pytest.raises(SettingError, match="not"):
        resolve(ALL_SETTINGS, {setting.name: "many"}, {}, None)


def test_the_file_refuses_unknown_keys_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(SettingError, match=r"max-concurrent \(did you mean max_concurrent\?\)"):
        resolve(NODE_SETTINGS, {}, {}, write(tmp_path, "max-concurrent = 3\n"))
    with pytest.raises(SettingError, match="not valid TOML"):
        resolve(NODE_SETTINGS, {}, {}, write(tmp_path, "max_concurrent = = 3\n"))
    with pytest.raises(SettingError, match="does not exist"):
        resolve(NODE_SETTINGS, {}, {}, tmp_path / "missing.toml")
    with pytest.raises(SettingError, match=r"max_concurrent = 2.5 .*not an integer"):
        resolve(NODE_SETTINGS, {}, {}, write(tmp_path, "max_concurrent = 2.5\n"))
    with pytest.raises(SettingError, match=r"host = 5 .*not a string"):
        resolve(SERVE_SETTINGS, {}, {}, write(tmp_path, "host = 5\n"))


def test_which_file_is_read(tmp_path: Path) -> None:
    assert config_path(None, {}, tmp_path) is None
    local = write(tmp_path, "")
    assert config_path(None, {}, tmp_path) == local
    assert config_path(None, {"TICKWORK_CONFIG": "/etc/tw.toml"}, tmp_path) == Path("/etc/tw.toml")
    assert config_path("x.toml", {"TICKWORK_CONFIG": "/etc/tw.toml"}, tmp_path) == Path("x.toml")


def test_the_file_names_the_database_after_flag_and_env(tmp_path: Path) -> None:
    settings = resolve(NODE_SETTINGS, {}, {}, write(tmp_path, 'db = "sqlite:///f.db"\n'))
    assert settings.database(None, "sqlite:///tickwork.db") == "sqlite:///f.db"
    assert settings.database("sqlite:///given.db", "sqlite:///tickwork.db") == "sqlite:///given.db"
    assert resolve(NODE_SETTINGS, {}, {}, None).database(None, "sqlite:///d.db") == "sqlite:///d.db"


async def test_resolved_settings_reach_the_node(tmp_path: Path) -> None:
    settings = resolve(
        NODE_SETTINGS,
        {"max_concurrent": "4"},
        {"TICKWORK_LEASE_TTL": "6", "TICKWORK_CLEANUP_INTERVAL": "1m"},
        write(tmp_path, "retention_days = 2\nshutdown_grace = 3\n"),
    )
    scheduler = Scheduler(f"sqlite:///{tmp_path / 't.db'}", **node_options(settings))
    config = scheduler._config
    assert (config.max_concurrent, config.lease_ttl, config.cleanup_interval) == (4, 6.0, 60.0)
    assert (config.retention_days, config.shutdown_grace) == (2.0, 3.0)
    assert config.default_timeout == 300 and config.default_retry == RetryPolicy()
    tuned = resolve(
        NODE_SETTINGS,
        {"default_timeout": "1m", "default_retries": "0"},
        {"TICKWORK_DEFAULT_RETRY_DELAY": "2", "TICKWORK_DEFAULT_RETRY_JITTER": "false"},
        write(tmp_path, "default_retry_backoff = 3\ndefault_retry_max_delay = 10\n"),
    )
    config = Scheduler(f"sqlite:///{tmp_path / 't.db'}", **node_options(tuned))._config
    assert config.default_timeout == 60
    assert config.default_retry == RetryPolicy(
        max_attempts=1, delay=2, backoff=3, max_delay=10, jitter=False
    )


def run_worker(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Start ``tickwork worker`` in ``tmp_path``, read its first lines, stop it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tickwork.cli", *args],
        cwd=tmp_path,
        env=cli_env() | {"PYTHONPATH": str(ROOT / "src")} | (env or {}),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline(), proc.stdout.readline()]
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    return "".join(lines)


def test_a_worker_takes_each_source_in_order(tmp_path: Path) -> None:
    # ./tickwork.toml is read without --config; it also names the database.
    write(
        tmp_path,
        'db = "sqlite:///from-file.db"\nmax_concurrent = 7\nlease_ttl = 9\nlog_level = "error"\n',
    )
    banner = run_worker(
        tmp_path, "worker", "--lease-ttl", "11", env={"TICKWORK_MAX_CONCURRENT": "8"}
    )
    assert "db sqlite:///from-file.db" in banner and "settings from" in banner
    assert "max_concurrent=8 (env)" in banner
    assert "lease_ttl=11 (flag)" in banner
    assert "log_level=error (file)" in banner
    assert "shutdown_grace=30 (default)" in banner
    assert (tmp_path / "from-file.db").exists()


def test_a_worker_refuses_a_bad_setting_in_one_line(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tickwork.cli", "worker"],
        cwd=tmp_path,
        env=cli_env() | {"PYTHONPATH": str(ROOT / "src"), "TICKWORK_LEASE_TTL": "soon"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        "error: lease_ttl = 'soon' (from TICKWORK_LEASE_TTL): not a duration "
        "(seconds, or a number with ms, s, m, h or d)"
    )
    assert not (tmp_path / "tickwork.db").exists()


@pytest.mark.parametrize(
    ("command", "settings"), [("worker", NODE_SETTINGS), ("serve", SERVE_SETTINGS)]
)
def test_help_lists_every_setting(command: str, settings: tuple[Setting, ...]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tickwork.cli", command, "--help"],
        cwd=ROOT,
        env=cli_env() | {"COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    for s in settings:
        assert s.flag in proc.stdout and s.env in proc.stdout, s.name
    assert "--config" in proc.stdout


def test_a_workers_default_timeout_applies_to_schedules_that_set_none(
    cli: Cli, tmp_path: Path
) -> None:
    worker = Worker(cli.db_url, tmp_path / "w.log", "--default-timeout", "0.3")
    try:
        worker.wait_ready()
        cli("create", "--task", "cli:sleep", "--schedule", "manual", "--id", "s", "--retries", "0")
        shown = cli("show", "--id", "s").stdout
        assert "(the executing node's default)" in shown
        run = cli.json("run", "--id", "s", "--wait", expect=1)
        assert run["status"] == "timed_out" and run["node_defaults"] == ["timeout"]
        cli("update", "--id", "s", "--timeout", "10", "--data", '{"seconds": 0.5}')
        assert cli.json("run", "--id", "s", "--wait")["status"] == "succeeded"
        back = cli.json("update", "--id", "s", "--node-timeout")
        assert back["node_defaults"] == ["timeout"] and back["timeout"] == 300
        assert "not both" in cli.error(
            "update", "--id", "s", "--node-timeout", "--timeout", "1", code=2
        )
    finally:
        assert worker.terminate() == 0


def test_every_setting_of_every_command_is_in_the_configuration_page() -> None:
    from tickwork.cli.main import _register_commands
    from tickwork.cli.settings import _DECLARED

    _register_commands()  # each command declares its settings when imported
    page = (ROOT / "docs" / "configuration.md").read_text()
    missing = [
        s.name
        for s in _DECLARED.values()
        if f"`{s.name}`" not in page or s.flag not in page or s.env not in page
    ]
    assert not missing, f"document these settings in docs/configuration.md: {missing}"


def test_every_command_finds_the_database_the_settings_file_names(tmp_path: Path) -> None:
    write(tmp_path, 'db = "sqlite:///from-file.db"\n')

    def tickwork(*args: str, env: dict[str, str] | None = None) -> str:
        proc = subprocess.run(
            [sys.executable, "-m", "tickwork.cli", *args],
            cwd=tmp_path,
            env=cli_env() | (env or {}),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    tickwork("db", "upgrade")
    assert (tmp_path / "from-file.db").exists()
    assert "database: sqlite:///from-file.db" in tickwork("status")
    # The environment (and --db) beat the file, as for any setting.
    other = f"sqlite:///{tmp_path / 'from-env.db'}"
    tickwork("db", "upgrade", env={"TICKWORK_DB": other})
    assert f"database: {other}" in tickwork("status", env={"TICKWORK_DB": other})


def test_the_keys_of_serve_are_known_without_loading_it() -> None:
    own = {s.name for s in SERVE_SETTINGS} - {s.name for s in NODE_SETTINGS}
    assert own == set(SERVE_ONLY_KEYS)


def test_a_file_with_serve_settings_serves_every_command(tmp_path: Path) -> None:
    """The file is shared: before, a key of serve's (``port``) stopped worker, list and
    every command but serve with "unknown key(s) port"."""
    write(tmp_path, 'db = "sqlite:///from-file.db"\nport = 9000\nhost = "0.0.0.0"\n')

    def tickwork(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tickwork.cli", *args],
            cwd=tmp_path,
            env=cli_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=30,
        )

    upgraded = tickwork("db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    listed = tickwork("list")
    assert listed.returncode == 0 and "no schedules" in listed.stdout, listed.stderr
    banner = run_worker(tmp_path, "worker")
    assert "db sqlite:///from-file.db" in banner and "port=" not in banner
    # A key no command knows is still refused, by every command.
    write(tmp_path, "prot = 9000\n")
    refused = tickwork("list")
    assert refused.returncode == 1
    assert "unknown key(s) prot; known: " in refused.stderr and "port" in refused.stderr


@pytest.mark.parametrize(
    "setting",
    [s for s in NODE_SETTINGS if s.kind in ("int", "float", "seconds")],
    ids=lambda s: s.name,
)
def test_a_node_takes_every_value_its_setting_takes(setting: Setting) -> None:
    # Before: several settings had no maximum of their own, and a value past what a node
    # takes (--default-retries 5000) passed, then stopped the node with an error naming
    # neither the setting nor where it came from (retry.max_attempts ... not 5001).
    assert setting.maximum is not None
    top = int(setting.maximum) if setting.kind == "int" else setting.maximum
    settings = resolve(NODE_SETTINGS, {setting.name: str(top)}, {}, None)
    Scheduler(**node_options(settings))  # refuses what a node cannot take
    above = top + 1 if setting.kind == "int" else top * 1.5
    with pytest.raises(SettingError) as caught:
        resolve(NODE_SETTINGS, {}, {setting.env: str(above)}, None)
    assert str(caught.value).startswith(f"{setting.name} = '{above}' (from {setting.env})")
