"""How records are copied, built and turned into JSON, fast: copies and builds are
on the paths of every fire and every claim."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import MISSING
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from tickwork.models.runs import Run
    from tickwork.models.schedules import Schedule


_R = TypeVar("_R", "Schedule", "Run")
_T = TypeVar("_T")


def fast_replace(record: _R, changes: dict[str, Any]) -> _R:
    """``dataclasses.replace`` without its per-call introspection (it is on hot paths:
    every fire and every claim), for records whose fields have no ``__post_init__``."""
    cls = type(record)
    unknown = changes.keys() - cls.__dataclass_fields__.keys()
    if unknown:
        raise TypeError(f"{cls.__name__} has no field(s) {', '.join(sorted(unknown))}")
    new = object.__new__(cls)
    setter = object.__setattr__
    for name in cls.__dataclass_fields__:
        setter(new, name, changes[name] if name in changes else getattr(record, name))
    return new


def json_dict(value: dict[str, Any]) -> dict[str, Any]:
    return {k: jsonable(v) for k, v in value.items()}


def jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def record_maker(cls: type[_T], names: Sequence[str]) -> Callable[[Sequence[Any]], _T]:
    """A fast constructor for a frozen, slotted record: values in ``names`` order, the
    other fields at their defaults. It builds every record the fire loop and claims
    return, so it is generated as straight-line code: one slot store per field, several
    times faster than the dataclass ``__init__`` (which goes through
    ``object.__setattr__`` per field) or a loop over the fields. The records have no
    ``__post_init__`` to skip."""
    fields = cls.__dataclass_fields__  # type: ignore[attr-defined]
    if hasattr(cls, "__post_init__") or set(names) - set(fields):
        raise TypeError(f"cannot build {cls.__name__} records fast")
    env: dict[str, Any] = {"new": object.__new__, "cls": cls}
    unpack = ", ".join(f"v{i}" for i in range(len(names)))
    lines = ["def make(values):", f"    ({unpack},) = values", "    record = new(cls)"]
    for i, name in enumerate(names):
        env[f"set_{name}"] = cls.__dict__[name].__set__
        lines.append(f"    set_{name}(record, v{i})")
    for name, f in fields.items():
        if name in names:
            continue
        env[f"set_{name}"] = cls.__dict__[name].__set__
        if f.default_factory is not MISSING:
            env[f"factory_{name}"] = f.default_factory
            lines.append(f"    set_{name}(record, factory_{name}())")
        elif f.default is not MISSING:
            env[f"default_{name}"] = f.default
            lines.append(f"    set_{name}(record, default_{name})")
        else:
            raise TypeError(f"{cls.__name__}.{name} has no default")
    lines.append("    return record")
    exec("\n".join(lines), env)  # the code is built above from field names only
    make: Callable[[Sequence[Any]], _T] = env["make"]
    return make
