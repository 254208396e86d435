"""How much tickwork accepts and stores, and what it does at each limit.

Input a user gives (schedule data, names, expressions) is refused past a limit with a
``ValidationError`` naming the field; output a task produces (its error, traceback,
log lines) is cut to a limit with a marker saying so. Text and JSON from tasks are
stored the same way on every database: a NUL character, which PostgreSQL cannot store
in text or ``jsonb``, is replaced by U+FFFD (``NUL_REPLACEMENT``) on SQLite too.
``docs/limits.md`` lists each limit.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Final

# Characters of a user's input quoted in an error message, and the quoting: with the
# errors, which use them too (re-exported here, with the other limits).
from tickwork.errors import MAX_ECHO_CHARS as MAX_ECHO_CHARS
from tickwork.errors import ValidationError
from tickwork.errors import echo as echo

#: Schedule ``data`` and ``metadata``, and a manual run's data: bytes of JSON text (UTF-8).
MAX_DATA_BYTES: Final = 256 * 1024
#: Nesting of JSON values a user gives (objects and arrays inside each other).
MAX_JSON_DEPTH: Final = 64
#: A task's result: bytes of JSON text; a larger result fails the attempt.
MAX_RESULT_BYTES: Final = 1024 * 1024
#: Characters of a run's or attempt's error kept; the rest is cut, with a marker.
MAX_ERROR_CHARS: Final = 4000
#: Characters of a traceback kept (its end, where the failing frame is).
MAX_TRACEBACK_CHARS: Final = 32_000
#: Characters of a schedule expression, name, queue name, owner and each tag.
MAX_SHORT_TEXT: Final = 1000
#: Characters of a schedule's description.
MAX_DESCRIPTION: Final = 10_000
#: Tags of one schedule.
MAX_TAGS: Final = 100
#: What a NUL character in a task's text or JSON is stored as.
NUL_REPLACEMENT: Final = "\ufffd"
#: Seconds of a duration a user gives (jitter, timeout, misfire grace, catch-up spread,
#: retry delays): about 31 years, so an instant plus it stays within what ``datetime``
#: holds and every database stores it alike.
MAX_SECONDS: Final = 10**9
#: A schedule's ``max_instances``.
MAX_INSTANCES: Final = 10_000
#: A schedule's ``max_executions``: what the databases' 32-bit integer column holds.
MAX_EXECUTIONS: Final = 2**31 - 1
#: A schedule's ``priority``, either side of 0.
MAX_PRIORITY: Final = 10**6
#: A retry policy's ``max_attempts`` and ``backoff``.
MAX_ATTEMPTS: Final = 1000
MAX_BACKOFF: Final = 100
#: Integers inside JSON a user gives: a signed 64-bit integer, what JSON readers other
#: than Python's (PostgreSQL's operators, SQLite's JSON functions, most languages) keep
#: exactly.
JSON_INT_MIN: Final = -(2**63)
JSON_INT_MAX: Final = 2**63 - 1


def cut_end(text: str | None, limit: int) -> str | None:
    """``text`` cut to ``limit`` characters, its head kept, with a marker saying how long
    it was; NUL replaced."""
    if text is None:
        return None
    if len(text) > limit:
        text = f"{text[:limit]}… [cut: {len(text)} characters in all]"
    return clean_text(text)


def cut_start(text: str | None, limit: int) -> str | None:
    """``text`` cut to ``limit`` characters, its tail kept (a traceback's last frames),
    with a marker; NUL replaced."""
    if text is None:
        return None
    if len(text) > limit:
        text = f"[cut: {len(text)} characters in all] …{text[-limit:]}"
    return clean_text(text)


#: Control characters but the newline and the tab (C0, DEL, C1).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def visible(text: str) -> str:
    """``text`` with its control characters written as escapes (``\\x1b``): a task's
    error, its output or a schedule's name is shown, never obeyed by the terminal (a
    colour, a cleared screen, a new window title, a line overwritten by ``\\r``)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def clean_text(text: str) -> str:
    """``text`` with NUL characters and lone surrogates (which no database can store as
    UTF-8) replaced by ``NUL_REPLACEMENT``."""
    if "\x00" in text:
        text = text.replace("\x00", NUL_REPLACEMENT)
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "".join(NUL_REPLACEMENT if "\ud800" <= c <= "\udfff" else c for c in text)
    return text


def needs_cleaning(json_text: str) -> bool:
    """Whether JSON text (encoded with ``ensure_ascii=False``) may hold a NUL or a lone
    surrogate in one of its strings (see ``clean_json``)."""
    if "\\u0000" in json_text:
        return True
    if json_text.isascii():
        return False
    try:
        json_text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def clean_json(value: Any) -> Any:
    """A JSON value with ``clean_text`` applied to every string, keys included."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, Mapping):
        return {clean_text(str(k)): clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(v) for v in value]
    return value


def json_depth_over(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether ``value`` nests objects and arrays deeper than ``limit`` (iterative: a
    value nested thousands deep must not exhaust the stack while being checked)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, Mapping):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def json_shape_error(value: Any, limit: int = MAX_JSON_DEPTH) -> str | None:
    """What keeps a user's value from being stored as the same JSON on every database,
    or None: nesting deeper than ``limit``, an object key that is not a string (JSON
    text would turn ``1`` into ``"1"`` behind the caller's back), an integer outside the
    signed 64-bit range. Iterative, like ``json_depth_over``."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, Mapping):
            for key in item:
                if not isinstance(key, str):
                    return f"has a key that is not a string: {echo(key)}"
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        elif isinstance(item, int) and not JSON_INT_MIN <= item <= JSON_INT_MAX:
            return (
                f"holds the integer {echo(item)}, outside the signed 64-bit range "
                "that JSON readers keep exactly (send it as a string)"
            )
        else:
            continue
        if depth > limit:
            return f"is nested deeper than {limit} levels"
        stack.extend((child, depth + 1) for child in children)
    return None


def check_json_value(value: Any, field: str, max_bytes: int = MAX_DATA_BYTES) -> str:
    """The JSON text of a user's value, or a ``ValidationError`` naming ``field`` when it
    is not JSON, nests deeper than ``MAX_JSON_DEPTH``, is larger than ``max_bytes`` or
    holds a NUL character, a key that is not a string or an integer beyond 64 bits."""
    problem = json_shape_error(value)
    if problem is not None:
        raise ValidationError(f"{field} {problem}", field=field)
    try:
        text = json.dumps(value, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{field} is not JSON-serializable: {exc}", field=field) from None
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise ValidationError(
            f"{field} is {size} bytes of JSON; at most {max_bytes} are accepted", field=field
        )
    if "\\u0000" in text and _has_nul(value):
        raise ValidationError(f"{field} contains a NUL character (\\u0000)", field=field)
    check_surrogates(text, field)
    return text


def _has_nul(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, Mapping):
            stack.extend(str(k) for k in item)
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


def check_text(value: str, field: str, limit: int = MAX_SHORT_TEXT) -> str:
    """``value`` when it is at most ``limit`` characters of valid text, else a
    ``ValidationError`` naming ``field``."""
    if len(value) > limit:
        raise ValidationError(
            f"{field} is {len(value)} characters long; at most {limit} are accepted",
            field=field,
        )
    if "\x00" in value:
        raise ValidationError(f"{field} contains a NUL character", field=field)
    check_surrogates(value, field)
    return value


def check_surrogates(text: str, field: str) -> None:
    """Refuse text that cannot be encoded as UTF-8 (lone surrogates: what Python makes of
    bytes that were not UTF-8 in a command line)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = _raw_bytes(text[exc.start : exc.end])
        raise ValidationError(
            f"{field} is not valid UTF-8 text (bytes {bad!r} at character {exc.start})",
            field=field,
        ) from None


def not_utf8(exc: UnicodeEncodeError) -> ValidationError:
    """The error for text a database cannot take because it is not valid UTF-8 (lone
    surrogates: bytes that were not UTF-8, read from a command line or a file name)."""
    raw = _raw_bytes(exc.object[exc.start : exc.end])
    return ValidationError(
        f"text {echo(exc.object)} is not valid UTF-8 (bytes {raw!r} at character {exc.start})"
    )


def _raw_bytes(text: Any) -> bytes:
    """The bytes a run of lone surrogates stands for (as Python decoded them)."""
    if not isinstance(text, str):
        return bytes(text)
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")
