"""Settings of long-running commands (``worker``, ``serve``): one table, three sources.

Each setting is declared once, as a ``Setting`` (name, kind, default, help, bounds).
A command that takes settings is declared with ``settings_command``: it gets one flag
per setting (``--max-concurrent``), plus ``--config PATH``, and receives the resolved
``Settings``. A value comes from the first of:

1. the command-line flag (``--max-concurrent 50``);
2. the environment variable ``TICKWORK_<NAME>`` (``TICKWORK_MAX_CONCURRENT=50``);
3. the settings file: ``--config PATH``, else ``$TICKWORK_CONFIG``, else
   ``./tickwork.toml`` when the current directory has one (``max_concurrent = 50``);
4. the setting's default.

A bad value is refused with one line naming the setting and where it came from
(``error: max_concurrent = 'many' (from TICKWORK_MAX_CONCURRENT): not an integer``).
The file is shared by every command: a key that no command declares is an error (a
typo), a key another command declares is ignored. The file may also name the database
(``db = "postgresql://…"``), used when neither ``--db`` nor ``TICKWORK_DB`` is given.
"""

from __future__ import annotations

import functools
import inspect
import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import typer

from tickwork.cli.logging_setup import LOG_FORMATS, LOG_LEVELS
from tickwork.engine.config import MAX_NODE_COUNT, MAX_RETENTION_DAYS
from tickwork.errors import ValidationError
from tickwork.limits import MAX_ATTEMPTS, MAX_BACKOFF, MAX_SECONDS
from tickwork.models import RetryPolicy

ENV_PREFIX: Final = "TICKWORK_"
CONFIG_ENV: Final = "TICKWORK_CONFIG"
CONFIG_FILE: Final = "tickwork.toml"
#: Keys of the settings file read outside any command's table.
FILE_ONLY_KEYS: Final = ("db",)
#: The keys of ``serve``'s own settings. They are declared with ``serve``, a module no
#: other command imports, yet the file is shared: every command accepts them (and
#: ignores them) without loading the server.
SERVE_ONLY_KEYS: Final = (
    "host",
    "port",
    "rate_limit",
    "max_body",
    "cors_origins",
    "jwt_issuer",
    "jwt_audience",
    "access_log",
    "api_nice",
    "trusted_proxies",
)

Kind = Literal["int", "float", "seconds", "bool", "str", "choice"]
Source = Literal["flag", "env", "file", "default"]

_DURATION: Final = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off"})


class SettingError(ValidationError):
    """A setting's value is invalid; the message names the setting and its source."""


@dataclass(frozen=True)
class Setting:
    """One setting: how it is named in each source, what it accepts, what it means."""

    name: str
    kind: Kind
    default: Any
    help: str
    minimum: float | None = None
    maximum: float | None = None
    #: The minimum itself is refused (a strictly positive value is needed).
    exclusive_minimum: bool = False
    choices: tuple[str, ...] = ()
    #: Letters case-folded before checking ``choices`` (log levels, formats).
    fold_case: bool = True
    #: Shown in help instead of the kind (``SECONDS``, ``N``, ``HOST``...).
    metavar: str | None = None
    #: A further check of the converted value: raises ``ValueError`` saying what is wrong.
    check: Callable[[Any], None] | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()

    def parse(self, raw: Any, origin: str) -> Any:
        """The value of ``raw`` (a string from a flag or the environment, or a TOML value),
        checked; ``SettingError`` naming the setting and ``origin`` when it is bad."""
        try:
            value = self._convert(raw)
            self._check(value)
        except ValueError as exc:
            raise SettingError(
                f"{self.name} = {raw!r} (from {origin}): {exc}", field=self.name
            ) from None
        return value

    def _convert(self, raw: Any) -> Any:
        kind = self.kind
        if kind == "bool":
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
            raise ValueError("not a boolean (use true or false)")
        if kind in ("str", "choice"):
            if not isinstance(raw, str):
                raise ValueError("not a string")
            text = raw.strip()
            return text.lower() if kind == "choice" and self.fold_case else text
        if isinstance(raw, bool):
            raise ValueError(f"not {'an integer' if kind == 'int' else 'a number'}")
        if kind == "int":
            if isinstance(raw, int):
                return raw
            if isinstance(raw, str) and re.fullmatch(r"\s*[+-]?\d+\s*", raw):
                return int(raw)
            raise ValueError("not an integer")
        if kind == "seconds" and isinstance(raw, str):
            match = _DURATION.match(raw.lower())
            if match is None:
                raise ValueError("not a duration (seconds, or a number with ms, s, m, h or d)")
            return float(match[1]) * _UNIT_SECONDS[match[2] or "s"]
        if isinstance(raw, int | float):
            number = float(raw)
        elif isinstance(raw, str):
            try:
                number = float(raw)
            except ValueError:
                raise ValueError("not a number") from None
        else:
            raise ValueError("not a number")
        if not math.isfinite(number):
            raise ValueError("not a finite number")
        return number

    def _check(self, value: Any) -> None:
        if self.choices and value not in self.choices:
            raise ValueError(f"not one of {', '.join(self.choices)}")
        if self.kind in ("int", "float", "seconds"):
            low, high = self.minimum, self.maximum
            if low is not None and (value < low or (self.exclusive_minimum and value == low)):
                raise ValueError(f"must be {'>' if self.exclusive_minimum else '>='} {low:g}")
            if high is not None and value > high:
                raise ValueError(f"must be <= {high:g}")
        if self.check is not None:
            self.check(value)

    def describe_default(self) -> str:
        if self.default is None:
            return "none"
        if isinstance(self.default, bool):
            return "true" if self.default else "false"
        if isinstance(self.default, float):
            return f"{self.default:g}"
        return str(self.default)


#: Every setting of every command, by name: the keys the settings file may hold.
_DECLARED: dict[str, Setting] = {}


def declare(*settings: Setting) -> tuple[Setting, ...]:
    """Declare settings (once per name; the same object may be declared again)."""
    for s in settings:
        known = _DECLARED.get(s.name)
        if known is not None and known != s:
            raise RuntimeError(f"setting {s.name!r} is declared twice, differently")
        _DECLARED[s.name] = s
    return settings


def declared_names() -> list[str]:
    """Every key the settings file may hold, whichever commands this process loaded."""
    return sorted({*_DECLARED, *FILE_ONLY_KEYS, *SERVE_ONLY_KEYS})


@dataclass(frozen=True)
class Settings:
    """Resolved settings of one command: each value and the source it came from."""

    values: Mapping[str, Any]
    sources: Mapping[str, Source]
    #: The settings file read, if any.
    file: Path | None = None
    #: Values of the file's keys that no setting of this command holds (``db``...).
    file_extra: Mapping[str, Any] | None = None

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def source(self, name: str) -> Source:
        return self.sources[name]

    def origin(self, name: str) -> str:
        """Where ``name``'s value came from, for people."""
        s = _DECLARED[name]
        return {
            "flag": s.flag,
            "env": s.env,
            "file": f"{self.file} (key {name})",
            "default": "default",
        }[self.sources[name]]

    def summary(self) -> str:
        """``name=value (source)`` for each setting: what a node prints when it starts."""
        return ", ".join(
            f"{name}={_show(value)} ({self.sources[name]})" for name, value in self.values.items()
        )

    def database(self, given: str | None, default: str) -> str:
        """The database URL: ``given`` (``--db`` / ``TICKWORK_DB``), else the file's
        ``db``, else ``default``."""
        if given:
            return given
        extra = self.file_extra or {}
        db = extra.get("db")
        if db is None:
            return default
        if not isinstance(db, str) or not db.strip():
            raise SettingError(f"db = {db!r} (from {self.file} (key db)): not a database URL")
        return db.strip()


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def config_path(flag: str | None, environ: Mapping[str, str], cwd: Path) -> Path | None:
    """The settings file to read: ``--config``, else ``$TICKWORK_CONFIG``, else
    ``./tickwork.toml`` if present, else none."""
    if flag:
        return Path(flag)
    if environ.get(CONFIG_ENV):
        return Path(environ[CONFIG_ENV])
    local = cwd / CONFIG_FILE
    return local if local.is_file() else None


def read_file(path: Path) -> dict[str, Any]:
    """The settings file's keys; ``SettingError`` naming the file when unreadable."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SettingError(f"settings file {path} does not exist", field="config") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingError(f"cannot read settings file {path}: {exc}", field="config") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingError(
            f"settings file {path} is not valid TOML: {exc}", field="config"
        ) from None
    known = declared_names()
    unknown = sorted(k for k in data if k not in known)
    if unknown:
        hints = [
            f"{k} (did you mean {k.replace('-', '_')}?)" if k.replace("-", "_") in known else k
            for k in unknown
        ]
        raise SettingError(
            f"settings file {path}: unknown key(s) {', '.join(hints)}; known: {', '.join(known)}",
            field="config",
        )
    return data


def resolve(
    table: Sequence[Setting],
    flags: Mapping[str, Any],
    environ: Mapping[str, str],
    file: Path | None,
) -> Settings:
    """Each setting of ``table`` from ``flags`` (None = not given), the environment,
    the file, or its default, in that order; every value checked."""
    data = read_file(file) if file is not None else {}
    values: dict[str, Any] = {}
    sources: dict[str, Source] = {}
    for s in table:
        flag_value = flags.get(s.name)
        if flag_value is not None:
            values[s.name], sources[s.name] = s.parse(flag_value, s.flag), "flag"
        elif environ.get(s.env, "").strip():
            values[s.name], sources[s.name] = s.parse(environ[s.env], s.env), "env"
        elif s.name in data:
            values[s.name] = s.parse(data[s.name], f"{file} (key {s.name})")
            sources[s.name] = "file"
        else:
            values[s.name], sources[s.name] = s.default, "default"
    names = {s.name for s in table}
    extra = {k: v for k, v in data.items() if k not in names}
    return Settings(values, sources, file, extra)


# -- commands that take settings -------------------------------------------------------------

_KIND_METAVAR: Final = {
    "int": "N",
    "float": "NUMBER",
    "seconds": "SECONDS",
    "str": "TEXT",
    "choice": "",
}


def _option(s: Setting) -> Any:
    help_text = f"{s.help} (env {s.env}; default {s.describe_default()})"
    if s.kind == "bool":
        return typer.Option(None, f"{s.flag}/--no-{s.flag[2:]}", help=help_text, show_default=False)
    metavar = s.metavar or _KIND_METAVAR[s.kind] or "|".join(s.choices)
    return typer.Option(None, s.flag, help=help_text, metavar=metavar, show_default=False)


ConfigOption: Final = typer.Option(
    None,
    "--config",
    metavar="PATH",
    help=f"Settings file (TOML) (env {CONFIG_ENV}; default ./{CONFIG_FILE} when present).",
    show_default=False,
)


def settings_command(
    table: Sequence[Setting],
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Give a command one option per setting of ``table`` and ``--config``.

    The decorated function takes a keyword-only ``settings: Settings`` parameter instead
    of those options; the other parameters are Typer's as usual. Register the result
    with ``app.command(...)``. Bad values end the command with ``error: ...``.
    """
    declare(*table)

    def decorate(func: Callable[..., None]) -> Callable[..., None]:
        signature = inspect.signature(func, eval_str=True)
        own = [p for p in signature.parameters.values() if p.name != "settings"]
        clash = {p.name for p in own} & ({s.name for s in table} | {"config"})
        if clash:
            raise RuntimeError(f"parameters {sorted(clash)} clash with settings")
        added = [
            inspect.Parameter(
                s.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=_option(s),
                annotation=(bool | None) if s.kind == "bool" else (str | None),
            )
            for s in table
        ]
        config = inspect.Parameter(
            "config", inspect.Parameter.KEYWORD_ONLY, default=ConfigOption, annotation=str | None
        )

        @functools.wraps(func)
        def command(*args: Any, **kwargs: Any) -> None:
            flags = {s.name: kwargs.pop(s.name, None) for s in table}
            path = kwargs.pop("config", None)
            try:
                settings = resolve(
                    table, flags, os.environ, config_path(path, os.environ, Path.cwd())
                )
            except SettingError as exc:
                from tickwork.cli.output import Output

                Output().fail(str(exc))
            func(*args, settings=settings, **kwargs)

        params = [*own, *added, config]
        command.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params}
        del command.__wrapped__  # Typer must see the new signature, not the function's
        return command

    return decorate


# -- the settings of a node (``worker``; ``serve`` runs a node too) --------------------------


NODE_SETTINGS: Final = declare(
    Setting(
        "max_concurrent",
        "int",
        100,
        "Runs executing at once on this node.",
        minimum=1,
        maximum=MAX_NODE_COUNT,
    ),
    Setting(
        "lease_ttl",
        "seconds",
        30.0,
        "Seconds a run's lease lasts without a heartbeat; a node silent that long is "
        "considered dead and its runs are retried elsewhere.",
        minimum=0.5,
        maximum=MAX_SECONDS,
    ),
    Setting(
        "shutdown_grace",
        "seconds",
        30.0,
        "On SIGTERM/SIGINT, seconds running runs get to finish before being cancelled "
        "(they are then retried by the next node).",
        minimum=0,
        maximum=MAX_SECONDS,
    ),
    Setting(
        "retention_days",
        "float",
        30.0,
        "Finished runs (with their attempts and logs) older than this many days are "
        "deleted, and so are older events and audit entries.",
        minimum=0,
        exclusive_minimum=True,
        # What a node accepts (``EngineConfig``): refused here, naming its source.
        maximum=MAX_RETENTION_DAYS,
        metavar="DAYS",
    ),
    Setting(
        "cleanup_interval",
        "seconds",
        3600.0,
        "Seconds between two deletions of runs older than retention_days (done by the leader).",
        minimum=0,
        exclusive_minimum=True,
        maximum=MAX_SECONDS,
    ),
    Setting(
        "default_timeout",
        "seconds",
        300.0,
        "Timeout of an attempt, for schedules that set none (neither themselves nor "
        "through their task's @task(timeout=...)).",
        minimum=0,
        exclusive_minimum=True,
        maximum=MAX_SECONDS,
    ),
    Setting(
        "default_retries",
        "int",
        2,
        "Retries after a failed first attempt, for schedules that set no retry policy "
        "(themselves or through @task(retries=...)).",
        minimum=0,
        maximum=MAX_ATTEMPTS - 1,
    ),
    Setting(
        "default_retry_delay",
        "seconds",
        5.0,
        "Delay before the first retry of those schedules' runs.",
        minimum=0,
        maximum=MAX_SECONDS,
    ),
    Setting(
        "default_retry_backoff",
        "float",
        2.0,
        "Factor the delay grows by at each retry of those schedules' runs.",
        minimum=1,
        maximum=MAX_BACKOFF,
    ),
    Setting(
        "default_retry_max_delay",
        "seconds",
        3600.0,
        "Longest delay between two attempts of those schedules' runs.",
        minimum=0,
        maximum=MAX_SECONDS,
    ),
    Setting(
        "default_retry_jitter",
        "bool",
        True,
        "Full jitter: each delay of those schedules' runs drawn in [0, delay].",
    ),
    Setting(
        "log_level",
        "choice",
        "info",
        "Level of the node's log on stderr; tasks' log records at this level and above, "
        "from any logger, are stored with their run.",
        choices=LOG_LEVELS,
    ),
    Setting(
        "log_format",
        "choice",
        "text",
        "Format of the node's log on stderr: text, or json (one JSON object per line).",
        choices=LOG_FORMATS,
    ),
)


def node_options(settings: Settings) -> dict[str, Any]:
    """``Scheduler`` keyword arguments from resolved node settings."""
    return {
        "max_concurrent": settings["max_concurrent"],
        "lease_ttl": settings["lease_ttl"],
        "shutdown_grace": settings["shutdown_grace"],
        "retention_days": settings["retention_days"],
        "cleanup_interval": settings["cleanup_interval"],
        "default_timeout": settings["default_timeout"],
        "default_retry": RetryPolicy(
            max_attempts=settings["default_retries"] + 1,
            delay=settings["default_retry_delay"],
            backoff=settings["default_retry_backoff"],
            max_delay=settings["default_retry_max_delay"],
            jitter=settings["default_retry_jitter"],
        ),
    }
