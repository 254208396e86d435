"""What a task parameter accepts of JSON data (``ArgType``), and the check of one value
against it, down into arrays and objects.

An ``ArgType`` is a small JSON-Schema-like tree: the JSON kinds a value may have, the
values a ``Literal`` allows and, for an array or an object, what its elements must be.
It is published with the task's spec, so a process without the task's code checks the
same; the published form of a type without elements is the one tickwork always wrote
(``{"types": [...], "values": [...]}``) and the element keys are added beside it, so
older specs read as before and older readers still check the outer kind. So is
``"tuple": true`` for a ``tuple[int, ...]``: a reader that does not know it checks the
same and only spells it ``list[int]``.

The check stops at the first problem and names its path (``[3]``, ``.cpu``); it visits
each part of the value at most once, because a type has at most one shape per JSON
kind (``list[int] | list[str]`` leaves the elements unchecked), and recurses no deeper
than the type, which is at most ``MAX_TYPE_DEPTH`` containers deep.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from tickwork.limits import MAX_ECHO_CHARS, echo

JSON = Any

#: The JSON types a task parameter can accept, by the names JSON Schema gives them, and
#: ``any``: a part of an array or object whose annotation is not checked.
JSON_TYPES: Final = ("integer", "number", "string", "boolean", "array", "object", "null")

#: Containers inside each other whose elements are checked; deeper ones are checked for
#: their kind only (data itself nests at most ``limits.MAX_JSON_DEPTH`` levels).
MAX_TYPE_DEPTH: Final = 32

_TYPE_PHRASES: Final = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "boolean": "true or false",
    "array": "an array",
    "object": "an object",
    "null": "null",
    "any": "anything",
}
_PYTHON_NAMES: Final = {
    "integer": "int",
    "number": "float",
    "string": "str",
    "boolean": "bool",
    "array": "list",
    "object": "dict",
    "null": "None",
}


def json_type(value: Any) -> str:
    """The JSON type of a decoded JSON value (``integer`` for an int, never for a bool)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def shown(value: Any) -> str:
    """A JSON value as a message quotes it: ``'x'``, ``3``, ``true``, ``null``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return echo(value)


def what(value: Any) -> str:
    """A value a task parameter refused, as a message names it: ``the string 'x'``."""
    kind = json_type(value)
    if kind == "string":
        return f"the string {echo(value)}"
    if kind in ("integer", "number"):
        return f"the number {echo(value)}"
    if kind in ("boolean", "null"):
        return shown(value)
    return _TYPE_PHRASES.get(kind, f"a {kind}")


def path_step(key: str) -> str:
    """One key of an object in a path: ``.cpu``, or ``['a b']`` when it is no name."""
    if key.isidentifier() and len(key) <= MAX_ECHO_CHARS:
        return f".{key}"
    return f"[{echo(key)}]"


@dataclass(frozen=True, slots=True)
class ArgType:
    """What one task parameter (or one part of its value) accepts: a value of one of
    ``types`` (``number`` includes integers; ``any`` is anything), or one of ``values``
    (a ``Literal``). An array's elements are each ``items`` (``list[int]``) or, one per
    position, ``prefix_items`` (``tuple[int, str]``); an object's values are each
    ``additional_properties`` (``dict[str, float]``), or its keys are ``properties``, of
    which ``required`` must be there and no other key may (a ``TypedDict`` named
    ``title``). ``None`` for any of them: not checked. ``variadic_tuple``: the array is
    annotated as a tuple of any length (``tuple[int, ...]``); it is checked as a list
    is, and only spelled differently (so it takes no part in comparing checks)."""

    types: tuple[str, ...] = ()
    values: tuple[JSON, ...] = ()
    items: ArgType | None = None
    prefix_items: tuple[ArgType, ...] | None = None
    properties: tuple[tuple[str, ArgType], ...] | None = None
    required: tuple[str, ...] = ()
    additional_properties: ArgType | None = None
    title: str | None = None
    variadic_tuple: bool = field(default=False, compare=False)

    def accepts(self, value: Any) -> bool:
        """Whether the value is of one of the kinds (its elements aside)."""
        kind = json_type(value)
        if kind in self.types or (kind == "integer" and "number" in self.types):
            return True
        if "any" in self.types:
            return True
        return any(type(v) is type(value) and v == value for v in self.values)

    def problem(self, value: Any) -> tuple[str, str] | None:
        """The first part of ``value`` this does not accept, as (its path below the value,
        what is wrong): ``("[3]", "must be an integer, not the string 'x'")``."""
        if not self.accepts(value):
            return "", f"must be {self.describe()}, not {what(value)}"
        if isinstance(value, list | tuple):
            return self._array_problem(value)
        if isinstance(value, dict):
            return self._object_problem(value)
        return None

    def _array_problem(self, value: list[Any] | tuple[Any, ...]) -> tuple[str, str] | None:
        if self.prefix_items is not None:
            if len(value) != len(self.prefix_items):
                n = len(self.prefix_items)
                return "", (
                    f"must be an array of {n} item{'' if n == 1 else 's'}, not of {len(value)}"
                )
            for i, (t, v) in enumerate(zip(self.prefix_items, value, strict=True)):
                found = t.problem(v)
                if found is not None:
                    return f"[{i}]{found[0]}", found[1]
        elif self.items is not None:
            items = self.items
            for i, v in enumerate(value):
                found = items.problem(v)
                if found is not None:
                    return f"[{i}]{found[0]}", found[1]
        return None

    def _object_problem(self, value: dict[str, Any]) -> tuple[str, str] | None:
        if self.properties is not None:
            properties = dict(self.properties)
            for key, v in value.items():
                t = properties.get(key)
                if t is None:
                    return "", (f"takes no key {echo(key)}, only {', '.join(properties) or 'none'}")
                found = t.problem(v)
                if found is not None:
                    return f"{path_step(key)}{found[0]}", found[1]
            for key in self.required:
                if key not in value:
                    return "", f"needs the key {key!r}"
        elif self.additional_properties is not None:
            each = self.additional_properties
            for key, v in value.items():
                found = each.problem(v)
                if found is not None:
                    return f"{path_step(str(key))}{found[0]}", found[1]
        return None

    def describe(self) -> str:
        """``an integer or null``, ``one of 'fast', 'slow'``: what a message says."""
        parts = [_TYPE_PHRASES.get(t, t) for t in self.types]
        if self.values:
            listed = ", ".join(shown(v) for v in self.values)
            parts.append(f"one of {listed}" if len(self.values) > 1 else listed)
        if len(parts) <= 1:
            return "".join(parts)
        return f"{', '.join(parts[:-1])} or {parts[-1]}"

    def annotation(self) -> str:
        """The Python spelling: ``int | None``, ``Literal['fast', 'slow']``,
        ``list[dict[str, float]]``, ``tuple[int, str]``, a ``TypedDict``'s name."""
        if "any" in self.types:
            return self.title or "Any"
        parts = [self._spelled(t) for t in self.types if t != "null"]
        if self.values:
            parts.insert(0, f"Literal[{', '.join(repr(v) for v in self.values)}]")
        if "null" in self.types:
            parts.append("None")
        return " | ".join(parts)

    def _spelled(self, kind: str) -> str:
        if kind == "array" and self.prefix_items is not None:
            inside = ", ".join(t.annotation() for t in self.prefix_items)
            return f"tuple[{inside or '()'}]"
        if kind == "array" and self.variadic_tuple:
            return "tuple" if self.items is None else f"tuple[{self.items.annotation()}, ...]"
        if kind == "array" and self.items is not None:
            return f"list[{self.items.annotation()}]"
        if kind == "object" and self.title is not None:
            return self.title
        if kind == "object" and self.additional_properties is not None:
            return f"dict[str, {self.additional_properties.annotation()}]"
        return _PYTHON_NAMES.get(kind, kind)

    def to_dict(self) -> dict[str, Any]:
        """The published form: ``types`` and ``values`` always (all a type without
        elements has, as tickwork has always written it), the other keys when set."""
        d: dict[str, Any] = {"types": list(self.types), "values": list(self.values)}
        if self.items is not None:
            d["items"] = self.items.to_dict()
        if self.prefix_items is not None:
            d["prefix_items"] = [t.to_dict() for t in self.prefix_items]
        if self.properties is not None:
            d["properties"] = {k: t.to_dict() for k, t in self.properties}
            d["required"] = list(self.required)
        if self.additional_properties is not None:
            d["additional_properties"] = self.additional_properties.to_dict()
        if self.title is not None:
            d["title"] = self.title
        if self.variadic_tuple:
            d["tuple"] = True
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], depth: int = 0) -> ArgType:
        """A published type, of this tickwork or an older one (no element keys: its
        elements are not checked). Parts deeper than ``MAX_TYPE_DEPTH`` are dropped."""
        types = tuple(str(t) for t in d.get("types") or ())
        values = tuple(d.get("values") or ())
        variadic = d.get("tuple") is True
        if depth >= MAX_TYPE_DEPTH:
            return cls(types=types, values=values, variadic_tuple=variadic)

        def inner(x: Any) -> ArgType:
            return cls.from_dict(x, depth + 1) if isinstance(x, dict) else ANY

        items = d.get("items")
        prefix = d.get("prefix_items")
        properties = d.get("properties")
        additional = d.get("additional_properties")
        title = d.get("title")
        return cls(
            types=types,
            values=values,
            items=inner(items) if isinstance(items, dict) else None,
            prefix_items=tuple(inner(t) for t in prefix) if isinstance(prefix, list) else None,
            properties=(
                tuple((str(k), inner(t)) for k, t in properties.items())
                if isinstance(properties, dict)
                else None
            ),
            required=tuple(str(k) for k in d.get("required") or ()),
            additional_properties=inner(additional) if isinstance(additional, dict) else None,
            title=title if isinstance(title, str) else None,
            variadic_tuple=variadic,
        )


#: A part whose annotation is not checked (``Any``, a class): it takes anything.
ANY: Final = ArgType(types=("any",))
