"""Task data checked inside arrays and objects: what is read of ``list[int]``,
``tuple[int, str]``, ``dict[str, float]``, a ``TypedDict`` and their nesting, the path
an error names, the published form (and the form published before elements were
checked), and the bounds that keep the check linear and its recursion shallow."""

from __future__ import annotations

import collections.abc
import typing
from typing import Annotated, Any, Literal, NotRequired, Optional, TypedDict

import pytest

from tickwork import RunContext, ValidationError
from tickwork.data_types import ANY, MAX_TYPE_DEPTH, ArgType
from tickwork.engine.registry import make_task
from tickwork.models import TaskSpec


class Limits(TypedDict):
    cpu: float
    memory: NotRequired[int]


class Job(TypedDict, total=False):
    name: typing.Required[str]
    tags: list[str]
    limits: Limits


class Tree(TypedDict):
    name: str
    children: list[Tree]


class Region:
    pass


def shaped(  # the annotations are strings here (from __future__ import annotations)
    ctx: RunContext,
    *,
    items: list[int] = [],  # noqa: B006 - never called
    names: collections.abc.Sequence[str] = (),
    flags: tuple[bool, ...] = (),
    pair: tuple[int, str] = (0, ""),
    limits: dict[str, float] | None = None,
    by_id: dict[int, str] | None = None,
    rows: list[dict[str, float]] = [],  # noqa: B006
    grid: list[list[int]] = [],  # noqa: B006
    maybe: list[int | None] = [],  # noqa: B006
    modes: list[Literal["fast", "slow"]] = [],  # noqa: B006
    opt: Optional[list[Annotated[int, "a count"]]] = None,  # noqa: UP045 - the spelling is tested
    job: Job | None = None,
    jobs: list[Job] = [],  # noqa: B006
    tree: Tree | None = None,
    anything: list[Any] = [],  # noqa: B006
    classes: list[Region] = [],  # noqa: B006
    partly: tuple[int, Region] = (0, Region()),
    settings: dict[str, Any] | None = None,
    either: list[int] | list[str] = [],  # noqa: B006
    same: list[int] | tuple[int, ...] | None = None,
    ids: set[int] = set(),  # noqa: B006
) -> None:
    """Each shape of container the check reads."""


SPEC = make_task(shaped, "reports:shaped").spec


def refusal(data: dict[str, Any], spec: TaskSpec = SPEC) -> ValidationError:
    with pytest.raises(ValidationError) as err:
        spec.check_data(data)
    return err.value


class TestRead:
    @pytest.mark.parametrize(
        ("name", "spelled"),
        [
            ("items", "list[int]"),
            ("names", "list[str]"),
            ("flags", "tuple[bool, ...]"),
            ("pair", "tuple[int, str]"),
            ("limits", "dict[str, float] | None"),
            ("by_id", "dict[str, str] | None"),  # JSON's keys are strings, whatever K says
            ("rows", "list[dict[str, float]]"),
            ("grid", "list[list[int]]"),
            ("maybe", "list[int | None]"),
            ("modes", "list[Literal['fast', 'slow']]"),
            ("opt", "list[int] | None"),
            ("job", "Job | None"),
            ("jobs", "list[Job]"),
            ("tree", "Tree | None"),
            ("anything", "list"),
            ("classes", "list"),
            ("partly", "tuple[int, Any]"),
            ("settings", "dict | None"),
            ("either", "list"),  # two shapes of array: the elements are not checked
            ("same", "list[int] | None"),  # one shape, spelt two ways
        ],
    )
    def test_the_full_type_is_shown(self, name: str, spelled: str) -> None:
        assert SPEC.types[name].annotation() == spelled

    def test_tuples_are_spelled_as_written(self) -> None:
        def fn(
            *,
            counts: tuple[int, ...] | None = None,
            spans: dict[str, tuple[float, ...]] | None = None,
            anything: tuple = (),  # type: ignore[type-arg]
            pair: list[tuple[int, str]] = [],  # noqa: B006 - never called
        ) -> None:
            pass

        spec = make_task(fn, "t").spec
        assert {name: t.annotation() for name, t in spec.types.items()} == {
            "counts": "tuple[int, ...] | None",
            "spans": "dict[str, tuple[float, ...]] | None",
            "anything": "tuple",
            "pair": "list[tuple[int, str]]",
        }
        again = TaskSpec.from_dict(spec.to_dict())
        assert [t.annotation() for t in again.types.values()] == [
            t.annotation() for t in spec.types.values()
        ]

    def test_a_set_is_not_checked_json_has_none(self) -> None:
        assert "ids" not in SPEC.types

    def test_a_typed_dict_has_its_keys_and_those_it_requires(self) -> None:
        job = SPEC.types["job"]
        assert job.types == ("object", "null") and job.title == "Job"
        assert [k for k, _ in job.properties or ()] == ["name", "tags", "limits"]
        assert job.required == ("name",)
        limits = dict(job.properties or ())["limits"]
        assert limits.required == ("cpu",) and limits.title == "Limits"

    def test_a_typed_dict_inside_itself_is_an_object_there(self) -> None:
        children = dict(SPEC.types["tree"].properties or ())["children"]
        assert children.items == ArgType(types=("object",), title="Tree")

    def test_the_depth_read_is_bounded(self) -> None:
        deep: Any = int
        for _ in range(3 * MAX_TYPE_DEPTH):
            deep = list[deep]

        def fn(*, nested: Any = None) -> None:
            pass

        fn.__annotations__ = {"nested": deep}  # a local name: no string to resolve
        t: ArgType | None = make_task(fn, "t").spec.types["nested"]
        levels = 0
        while t is not None:
            levels, t = levels + 1, t.items
        assert levels == MAX_TYPE_DEPTH + 1


class TestCheck:
    @pytest.mark.parametrize(
        ("data", "field", "message"),
        [
            ({"items": [1, 2, 3, "x"]}, "data.items[3]", "must be an integer, not the string 'x'"),
            ({"items": [1, True]}, "data.items[1]", "must be an integer, not true"),
            ({"names": ["a", None]}, "data.names[1]", "must be a string, not null"),
            ({"flags": [True, 0]}, "data.flags[1]", "must be true or false, not the number 0"),
            ({"pair": [1, 2]}, "data.pair[1]", "must be a string, not the number 2"),
            ({"pair": [1]}, "data.pair", "must be an array of 2 items, not of 1"),
            ({"pair": [1, "a", 3]}, "data.pair", "must be an array of 2 items, not of 3"),
            ({"limits": {"cpu": "x"}}, "data.limits.cpu", "must be a number, not the string 'x'"),
            ({"limits": {"max cpu": []}}, "data.limits['max cpu']", "must be a number, not an"),
            ({"by_id": {"1": 1}}, "data.by_id['1']", "must be a string, not the number 1"),
            ({"rows": [{"a": 1}, {"b": True}]}, "data.rows[1].b", "must be a number, not true"),
            ({"rows": [{}, 3]}, "data.rows[1]", "must be an object, not the number 3"),
            ({"grid": [[1], [2, "3"]]}, "data.grid[1][1]", "must be an integer, not the string"),
            ({"maybe": [1, None, 1.5]}, "data.maybe[2]", "must be an integer or null, not the"),
            ({"modes": ["fast", "medium"]}, "data.modes[1]", "must be one of 'fast', 'slow', not"),
            ({"opt": [1, "2"]}, "data.opt[1]", "must be an integer, not the string '2'"),
            ({"job": {"tags": []}}, "data.job", "needs the key 'name'"),
            ({"job": {"name": "j", "nme": 1}}, "data.job", "takes no key 'nme', only name, tags,"),
            ({"job": {"name": "j", "tags": ["a", 1]}}, "data.job.tags[1]", "must be a string, not"),
            ({"job": {"name": 1}}, "data.job.name", "must be a string, not the number 1"),
            ({"job": {"name": "j", "limits": {}}}, "data.job.limits", "needs the key 'cpu'"),
            (
                {"jobs": [{"name": "a"}, {"name": "b", "limits": {"cpu": 1, "memory": 0.5}}]},
                "data.jobs[1].limits.memory",
                "must be an integer, not the number 0.5",
            ),
            (
                {"tree": {"name": "a", "children": [{"name": "b", "children": []}, 3]}},
                "data.tree.children[1]",
                "must be an object, not the number 3",
            ),
            ({"partly": [1.5, "anything"]}, "data.partly[0]", "must be an integer, not the"),
            ({"same": ["a"]}, "data.same[0]", "must be an integer, not the string 'a'"),
        ],
    )
    def test_the_first_wrong_part_is_named_by_its_path(
        self, data: dict[str, Any], field: str, message: str
    ) -> None:
        e = refusal(data)
        assert e.field == field
        assert str(e).startswith(f"{field} {message}"), str(e)
        key = next(iter(data))
        assert str(e).endswith(
            f"(task 'reports:shaped' takes {key}: {SPEC.types[key].annotation()})"
        )

    def test_values_that_fit_are_accepted(self) -> None:
        SPEC.check_data(
            {
                "items": [1, 2],
                "names": [],
                "flags": [True, False],
                "pair": [1, "a"],
                "limits": {"cpu": 1, "memory": 2.5},
                "by_id": {"1": "one"},
                "rows": [{"a": 1.5}, {}],
                "grid": [[], [1, 2]],
                "maybe": [None, 3],
                "modes": ["slow"],
                "opt": None,
                "job": {"name": "j", "tags": ["x"], "limits": {"cpu": 0.5}},
                "jobs": [{"name": "a"}],
                "tree": {"name": "a", "children": [{"name": 3, "not": "checked below"}]},
                "anything": [1, "a", None, {}],
                "classes": [{"x": 1}],
                "partly": [1, {"any": "thing"}],
                "settings": {"a": [1, {"b": None}]},
                "either": [1, "mixed", None],
                "same": [1, 2],
                "ids": "not checked",
            }
        )

    def test_the_first_error_stops_the_check(self) -> None:
        e = refusal({"items": ["a", "b"], "names": [1]})
        assert e.field == "data.items[0]"

    def test_a_long_array_is_checked_to_its_end(self) -> None:
        items = [*range(200_000), "x"]
        assert refusal({"items": items}).field == "data.items[200000]"
        SPEC.check_data({"items": items[:-1]})

    def test_data_deeper_than_the_type_is_not_walked(self) -> None:
        deep: Any = "bottom"
        for _ in range(10_000):  # deeper than Python's recursion limit
            deep = [deep]
        SPEC.check_data({"anything": deep, "settings": {"a": deep}})
        assert refusal({"grid": [[deep]]}).field == "data.grid[0][0]"

    def test_a_union_of_one_shape_is_checked_once_not_per_member(self) -> None:
        """Each level is ``list[T] | tuple[T, ...]``: a check that tried each member in
        turn would walk 2**30 paths to the wrong value at the bottom."""
        t: Any = int
        for _ in range(30):
            t = list[t] | tuple[t, ...]

        def fn(*, deep: Any) -> None:
            pass

        fn.__annotations__ = {"deep": t}
        spec = make_task(fn, "t").spec
        bad: Any = "x"
        for _ in range(30):
            bad = [bad]
        e = refusal({"deep": bad}, spec)
        assert e.field == "data.deep" + "[0]" * 30
        assert "must be an integer, not the string 'x'" in str(e)


class TestPublished:
    def test_the_element_types_are_published_and_read_back(self) -> None:
        published = SPEC.to_dict()
        assert published["types"]["items"] == {
            "types": ["array"],
            "values": [],
            "items": {"types": ["integer"], "values": []},
        }
        assert published["types"]["job"]["required"] == ["name"]
        assert published["types"]["job"]["title"] == "Job"
        again = TaskSpec.from_dict(published)
        assert again == SPEC
        assert refusal({"jobs": [{"name": 1}]}, again).field == "data.jobs[0].name"

    def test_a_tuple_of_any_length_is_published_as_before_and_marked(self) -> None:
        """``tuple[bool, ...]`` is published as the previous tickwork published it (a
        list of booleans, which it reads and checks), with ``"tuple": true`` beside it
        for the spelling; the form without it, as the previous tickwork wrote it, reads
        as before: checked the same, spelled ``list[bool]``."""
        flags = SPEC.types["flags"]
        published = SPEC.to_dict()["types"]["flags"]
        before = {"types": ["array"], "values": [], "items": {"types": ["boolean"], "values": []}}
        assert published == before | {"tuple": True}
        assert ArgType.from_dict(published).annotation() == "tuple[bool, ...]"
        older = ArgType.from_dict(before)
        assert older.annotation() == "list[bool]" and older == flags  # the same checks
        wrong = ("[1]", "must be true or false, not the number 1")
        assert older.problem([True, 1]) == flags.problem([True, 1]) == wrong
        again = TaskSpec.from_dict(SPEC.to_dict())
        assert again.types["flags"].annotation() == "tuple[bool, ...]"
        assert refusal({"flags": [True, 1]}, again).field == "data.flags[1]"

    def test_a_type_without_elements_is_published_as_before(self) -> None:
        assert SPEC.to_dict()["types"]["anything"] == {"types": ["array"], "values": []}

    def test_a_type_published_before_elements_were_checked_checks_the_kind(self) -> None:
        """What a node of the previous tickwork stored: ``types`` and ``values`` only."""
        old = SPEC.to_dict()
        old["types"] = {
            k: {"types": t["types"], "values": t["values"]} for k, t in old["types"].items()
        }
        spec = TaskSpec.from_dict(old)
        spec.check_data({"items": ["not", "checked"], "job": {"nme": 1}})
        assert refusal({"items": {}}, spec).field == "data.items"

    def test_a_published_form_deeper_than_the_bound_is_cut(self) -> None:
        leaf: dict[str, Any] = {"types": ["integer"], "values": []}
        for _ in range(5 * MAX_TYPE_DEPTH):
            leaf = {"types": ["array"], "values": [], "items": leaf}
        t: ArgType | None = ArgType.from_dict(leaf)
        levels = 0
        while t is not None:
            levels, t = levels + 1, t.items
        assert levels == MAX_TYPE_DEPTH + 1

    def test_unreadable_parts_take_anything(self) -> None:
        t = ArgType.from_dict(
            {"types": ["array"], "values": [], "prefix_items": ["?", {"types": ["integer"]}]}
        )
        assert t.prefix_items == (ANY, ArgType(types=("integer",)))
        assert t.problem([{"a": 1}, 2]) is None
        assert t.problem([1, "2"]) == ("[1]", "must be an integer, not the string '2'")


class TestDefaultsPublished:
    """The defaults a node publishes with a task: what ``tickwork tasks``, ``GET /tasks``
    and the dashboard show an argument left out of the data will be."""

    def test_json_defaults_are_published_and_read_back(self) -> None:
        def fn(
            *,
            region: str = "eu",
            top: int = 3,
            rate: float = 0.5,
            dry: bool = False,
            nothing: None = None,
            ids: tuple[int, ...] = (1, 2),
            limits: dict[str, list[int]] | None = None,
            named: dict[str, Any] = {"a": [1, {"b": None}]},  # noqa: B006
            needed: str,
        ) -> None:
            pass

        spec = make_task(fn, "t").spec
        assert spec.defaults == {
            "region": "eu",
            "top": 3,
            "rate": 0.5,
            "dry": False,
            "nothing": None,
            "ids": [1, 2],  # a tuple as JSON has it
            "limits": None,
            "named": {"a": [1, {"b": None}]},
        }
        assert "needed" not in spec.defaults
        again = TaskSpec.from_dict(spec.to_dict())
        assert again.defaults == spec.defaults

    def test_a_default_json_cannot_carry_or_too_long_to_show_is_left_out(self) -> None:
        def fn(
            *,
            when: object = object(),
            nan: float = float("nan"),
            keyed: dict[int, str] = {1: "a"},  # noqa: B006
            long: str = "x" * 500,
            deep: list[Any] = [[[[[[[[[[1]]]]]]]]]],  # noqa: B006
            short: str = "ok",
        ) -> None:
            pass

        spec = make_task(fn, "t").spec
        assert spec.defaults == {"short": "ok"}
        assert set(spec.arguments) - set(spec.required) == {
            "when",
            "nan",
            "keyed",
            "long",
            "deep",
            "short",
        }

    def test_a_spec_published_without_defaults_reads_with_none(self) -> None:
        published = SPEC.to_dict()
        del published["defaults"]
        assert TaskSpec.from_dict(published).defaults == {}
        published["defaults"] = "not an object"
        assert TaskSpec.from_dict(published).defaults == {}
