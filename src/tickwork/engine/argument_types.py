"""What each task parameter accepts, read from its annotation when the task's spec is made.

Schedule data is JSON, so only the annotations JSON can meet are checked: ``int``,
``float``, ``str``, ``bool``, ``list``/``tuple``/``Sequence`` (an array), ``dict``/
``Mapping`` (an object), ``None``, unions of them (``int | None``, ``Optional[int]``)
and ``Literal`` of strings, integers and booleans. Anything else (``Any``, a class, a
``TypedDict``, an annotation that cannot be resolved) leaves its parameter unchecked,
and so does a union with one such member. The elements of arrays and objects are not
checked.
"""

from __future__ import annotations

import collections.abc
import inspect
import types
import typing
from collections.abc import Callable, Iterable
from typing import Any

from tickwork.models import ArgType

_PLAIN: dict[Any, str] = {
    int: "integer",
    float: "number",
    str: "string",
    bool: "boolean",
    list: "array",
    tuple: "array",
    collections.abc.Sequence: "array",
    collections.abc.MutableSequence: "array",
    dict: "object",
    collections.abc.Mapping: "object",
    collections.abc.MutableMapping: "object",
    type(None): "null",
    None: "null",
}


def argument_types(
    fn: Callable[..., Any], params: Iterable[inspect.Parameter]
) -> dict[str, ArgType]:
    """The types each of ``params`` (of ``fn``) accepts, for those whose annotation says.

    A parameter whose default is ``None`` also accepts null (``top: int = None``)."""
    resolved = _resolved_annotations(fn)
    found: dict[str, ArgType] = {}
    for p in params:
        annotation = resolved.get(p.name, p.annotation)
        if annotation is p.empty or isinstance(annotation, str):
            continue
        accepted = _accepted(annotation)
        if accepted is None:
            continue
        kinds, values = accepted
        if p.default is None and "null" not in kinds:
            kinds = (*kinds, "null")
        found[p.name] = ArgType(types=kinds, values=values)
    return found


def _resolved_annotations(fn: Callable[..., Any]) -> dict[str, Any]:
    """``fn``'s annotations with strings (``from __future__ import annotations``)
    evaluated; one that cannot be is left a string, the others still resolved."""
    try:
        signature = inspect.signature(fn, eval_str=True)
    except Exception:  # one name not defined: resolve the others one by one
        pass
    else:
        return {name: p.annotation for name, p in signature.parameters.items()}
    target = inspect.unwrap(fn) if callable(fn) else fn
    namespace = getattr(target, "__globals__", None)
    if namespace is None:
        return {}
    resolved: dict[str, Any] = {}
    for name, p in inspect.signature(fn).parameters.items():
        if isinstance(p.annotation, str):
            try:
                resolved[name] = typing.get_type_hints(
                    _Annotated(name, p.annotation), globalns=namespace
                )[name]
            except Exception:
                continue
    return resolved


class _Annotated:
    """An object with one annotation, for ``typing.get_type_hints`` to resolve alone."""

    def __init__(self, name: str, annotation: str) -> None:
        self.__annotations__ = {name: annotation}


def _accepted(annotation: Any) -> tuple[tuple[str, ...], tuple[Any, ...]] | None:
    """(JSON types, allowed values) of an annotation, or None when it is not checked."""
    try:
        plain = _PLAIN.get(annotation)
    except TypeError:  # an unhashable annotation (``x: [int]``) is nothing JSON meets
        return None
    if plain is not None:
        return (plain,), ()
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _accepted(typing.get_args(annotation)[0])
    if origin is typing.Literal:
        values = typing.get_args(annotation)
        if all(v is None or type(v) in (str, int, bool) for v in values):
            null: tuple[str, ...] = ("null",) if None in values else ()
            return null, tuple(v for v in values if v is not None)
        return None
    if origin is typing.Union or origin is types.UnionType:
        kinds: list[str] = []
        allowed: list[Any] = []
        for member in typing.get_args(annotation):
            accepted = _accepted(member)
            if accepted is None:
                return None
            kinds.extend(k for k in accepted[0] if k not in kinds)
            allowed.extend(v for v in accepted[1] if not _has(allowed, v))
        return tuple(kinds), tuple(allowed)
    if origin is not None and origin in _PLAIN and _PLAIN[origin] in ("array", "object"):
        return (_PLAIN[origin],), ()  # list[int], dict[str, Any]: elements unchecked
    return None


def _has(values: list[Any], value: Any) -> bool:
    return any(type(v) is type(value) and v == value for v in values)
