"""What each task parameter accepts, read from its annotation when the task's spec is made.

Schedule data is JSON, so only the annotations JSON can meet are checked: ``int``,
``float``, ``str``, ``bool``, ``list``/``tuple``/``Sequence`` (an array),
``dict``/``Mapping`` and a ``TypedDict`` (an object), ``None``, unions of them
(``int | None``, ``Optional[int]``) and ``Literal`` of strings, integers and booleans;
and the same inside arrays and objects: ``list[int]``, ``tuple[int, str]``,
``dict[str, float]``, ``list[dict[str, int | None]]``. Anything else (``Any``, a class,
``set``, which JSON has no value for, an annotation that cannot be resolved) leaves its
parameter unchecked, and so does a union with one such member; inside an array or an
object, it leaves that part unchecked. An object's keys are strings (JSON's are,
whatever ``dict[K, V]`` says): only its values are checked.

The tree read is bounded: ``MAX_TYPE_DEPTH`` containers deep, ``_MAX_PARTS`` parts per
container, and a ``TypedDict`` met again inside itself is checked as an object only.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import inspect
import types
import typing
from collections.abc import Callable, Iterable
from typing import Any, Final

from tickwork.data_types import ANY, MAX_TYPE_DEPTH, ArgType

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

#: Parts (containers and their elements) of one parameter's type; a container that
#: would have more is checked for its kind only.
_MAX_PARTS: Final = 1000


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
        accepted = _accepted(annotation, _Reading())
        if accepted is None:
            continue
        if p.default is None and "null" not in accepted.types:
            accepted = dataclasses.replace(accepted, types=(*accepted.types, "null"))
        found[p.name] = accepted
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


class _Reading:
    """What reading one annotation has found so far: each part read once per depth
    (``list[T] | tuple[T, ...]`` reads ``T`` once, not once per member), the size of
    each type made, and the ``TypedDict``s it is inside (one met again is checked as
    an object only: the tree stays finite)."""

    def __init__(self) -> None:
        self.inside: list[Any] = []
        self._read: dict[tuple[int, int], tuple[Any, ArgType | None]] = {}
        self._sizes: dict[int, tuple[ArgType, int]] = {}

    def accepted(self, annotation: Any, depth: int) -> ArgType | None:
        key = (id(annotation), depth)
        hit = self._read.get(key)
        if hit is None:  # the annotation is kept with its result: its id stays its own
            hit = self._read[key] = (annotation, _read(annotation, self, depth))
        return hit[1]

    def size(self, t: ArgType | None) -> int:
        """Parts of ``t`` as published (a part shared by two is counted twice)."""
        if t is None:
            return 0
        hit = self._sizes.get(id(t))
        if hit is None:
            inside = [t.items, t.additional_properties, *(t.prefix_items or ())]
            inside.extend(p for _, p in t.properties or ())
            hit = self._sizes[id(t)] = (t, 1 + sum(self.size(p) for p in inside))
        return hit[1]

    def bounded(self, t: ArgType) -> ArgType:
        """``t``, or only its kinds when it has more than ``_MAX_PARTS`` parts."""
        if self.size(t) <= _MAX_PARTS:
            return t
        return ArgType(
            types=t.types, values=t.values, title=t.title, variadic_tuple=t.variadic_tuple
        )


def _accepted(annotation: Any, reading: _Reading, depth: int = 0) -> ArgType | None:
    """What an annotation accepts, or None when it is not checked."""
    return reading.accepted(annotation, depth)


def _read(annotation: Any, reading: _Reading, depth: int) -> ArgType | None:
    # Only a class is looked up: hashing a deep generic alias walks all of it.
    if annotation is None or isinstance(annotation, type):
        plain = _PLAIN.get(annotation)
        if plain is not None:
            return ArgType(types=(plain,), variadic_tuple=annotation is tuple)
    if typing.is_typeddict(annotation):
        return _typed_dict(annotation, reading, depth)
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _accepted(typing.get_args(annotation)[0], reading, depth)
    if origin is typing.Literal:
        values = typing.get_args(annotation)
        if all(v is None or type(v) in (str, int, bool) for v in values):
            null: tuple[str, ...] = ("null",) if None in values else ()
            return ArgType(types=null, values=tuple(v for v in values if v is not None))
        return None
    if origin is typing.Union or origin is types.UnionType:
        members = [_accepted(m, reading, depth) for m in typing.get_args(annotation)]
        if any(m is None for m in members):
            return None
        return _union([m for m in members if m is not None])
    kind = _PLAIN.get(origin) if isinstance(origin, type) else None
    if kind not in ("array", "object"):
        return None
    args = typing.get_args(annotation)
    variadic = origin is tuple and (not args or (len(args) == 2 and args[1] is Ellipsis))
    if depth >= MAX_TYPE_DEPTH or not args:
        return ArgType(types=(kind,), variadic_tuple=variadic)

    def inner(a: Any) -> ArgType:
        return _accepted(a, reading, depth + 1) or ANY

    if kind == "object":  # dict[K, V], Mapping[K, V]: JSON's keys are strings, whatever K
        each = inner(args[-1])
        t = ArgType(types=(kind,), additional_properties=None if each is ANY else each)
        return reading.bounded(t)
    if variadic:  # tuple[int, ...]: checked as list[int] is
        args = args[:1]
    elif origin is tuple:  # tuple[int, str]; tuple[()] is the empty array
        t = ArgType(types=(kind,), prefix_items=tuple(inner(a) for a in args if a != ()))
        return reading.bounded(t)
    each = inner(args[0])
    t = ArgType(types=(kind,), items=None if each is ANY else each, variadic_tuple=variadic)
    return reading.bounded(t)


def _typed_dict(annotation: Any, reading: _Reading, depth: int) -> ArgType:
    """A ``TypedDict``: an object with its keys, those it requires, and no other."""
    title = getattr(annotation, "__name__", None)
    if annotation in reading.inside or depth >= MAX_TYPE_DEPTH:
        return ArgType(types=("object",), title=title)
    try:
        hints = typing.get_type_hints(annotation, include_extras=True)
    except Exception:  # a name its module does not define: an object, keys unchecked
        return ArgType(types=("object",), title=title)
    required_keys = set(getattr(annotation, "__required_keys__", ()))
    reading.inside.append(annotation)
    try:
        properties = []
        for name, hint in hints.items():
            inner, required = _key_of(hint)
            if required is not None:  # said in a string, which Python 3.11 reads wrong
                (required_keys.add if required else required_keys.discard)(name)
            properties.append((name, _accepted(inner, reading, depth + 1) or ANY))
    finally:
        reading.inside.pop()
    t = ArgType(
        types=("object",),
        properties=tuple(properties),
        required=tuple(n for n in hints if n in required_keys),
        title=title,
    )
    return reading.bounded(t)


def _key_of(hint: Any) -> tuple[Any, bool | None]:
    """A ``TypedDict`` key's type without ``Required``/``NotRequired``, and which of them
    it says (None: neither, the ``TypedDict``'s totality decides)."""
    origin = typing.get_origin(hint)
    if origin is typing.Annotated:
        return _key_of(typing.get_args(hint)[0])
    if origin is typing.Required or origin is typing.NotRequired:
        return typing.get_args(hint)[0], origin is typing.Required
    return hint, None


def _union(members: list[ArgType]) -> ArgType:
    """What any member accepts. The elements of an array (or of an object) are checked
    only when every member that is one says the same of them: a value is then checked
    against one element type, never against each member in turn."""
    kinds: list[str] = []
    allowed: list[Any] = []
    arrays: list[ArgType] = []
    objects: list[ArgType] = []
    for m in members:
        kinds.extend(k for k in m.types if k not in kinds)
        allowed.extend(v for v in m.values if not _has(allowed, v))
        if "array" in m.types and _array_shape(m) not in map(_array_shape, arrays):
            arrays.append(m)
        if "object" in m.types and _object_shape(m) not in map(_object_shape, objects):
            objects.append(m)
    array = arrays[0] if len(arrays) == 1 else ArgType()
    obj = objects[0] if len(objects) == 1 else ArgType()
    # Spelled a tuple when every array it may be is one (list[int] | tuple[int, ...]
    # is one shape of array, spelled as a list).
    tuples = [m.variadic_tuple for m in members if "array" in m.types]
    return ArgType(
        types=tuple(kinds),
        values=tuple(allowed),
        items=array.items,
        prefix_items=array.prefix_items,
        properties=obj.properties,
        required=obj.required,
        additional_properties=obj.additional_properties,
        title=obj.title,
        variadic_tuple=bool(tuples) and all(tuples),
    )


def _array_shape(t: ArgType) -> tuple[Any, ...]:
    return (t.items, t.prefix_items)


def _object_shape(t: ArgType) -> tuple[Any, ...]:
    return (t.properties, t.required, t.additional_properties, t.title)


def _has(values: list[Any], value: Any) -> bool:
    return any(type(v) is type(value) and v == value for v in values)
