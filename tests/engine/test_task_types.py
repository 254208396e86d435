"""Schedule data checked against the types a task's parameters are annotated with: what
is derived from which annotation, and every door of the Python API refusing a value of
the wrong type at once (create, update, run now; here and in a client without the task
code, from the spec a node published)."""

from __future__ import annotations

import collections.abc
import typing
from typing import Any, Literal, Optional, TypedDict, Union

import pytest

from tickwork import RunContext, Scheduler, ValidationError
from tickwork.clock import ManualClock
from tickwork.engine.registry import TaskRegistry, make_task, task
from tickwork.models import ArgType, TaskSpec


class Options(TypedDict):
    depth: int


class Region:
    pass


def typed(  # the annotations are strings here (from __future__ import annotations)
    ctx: RunContext,
    *,
    top: int = 5,
    ratio: float = 1.0,
    title: str = "",
    dry: bool = False,
    rows: list[int] | None = None,
    pair: tuple[int, int] = (0, 0),
    items: collections.abc.Sequence[str] = (),
    extra: dict[str, Any] | None = None,
    labels: collections.abc.Mapping[str, str] | None = None,
    limit: Optional[int] = None,  # noqa: UP045 - the spelling is what is tested
    key: Union[int, str] = 0,  # noqa: UP007 - the spelling is what is tested
    mode: Literal["fast", "slow"] = "fast",
    level: Literal[1, 2, True] = 1,
    size: Literal["auto"] | int = "auto",
    sloppy: int = None,  # type: ignore[assignment]  # noqa: RUF013 - accepts null too
    anything: Any = None,
    plain=None,  # type: ignore[no-untyped-def]
    region: Region | None = None,
    options: Options | None = None,
    either: int | Region = 0,
) -> None:
    """Every kind of annotation the check reads, and some it leaves alone."""


def types_of(fn: Any) -> dict[str, ArgType]:
    return make_task(fn, "t").spec.types


class TestDerived:
    def test_each_annotation_json_can_meet(self) -> None:
        got = {name: (t.types, t.values) for name, t in types_of(typed).items()}
        assert got == {
            "top": (("integer",), ()),
            "ratio": (("number",), ()),
            "title": (("string",), ()),
            "dry": (("boolean",), ()),
            "rows": (("array", "null"), ()),
            "pair": (("array",), ()),
            "items": (("array",), ()),
            "extra": (("object", "null"), ()),
            "labels": (("object", "null"), ()),
            "limit": (("integer", "null"), ()),
            "key": (("integer", "string"), ()),
            "mode": ((), ("fast", "slow")),
            "level": ((), (1, 2, True)),
            "size": (("integer",), ("auto",)),
            "sloppy": (("integer", "null"), ()),
            "options": (("object", "null"), ()),
        }  # anything, plain, region, either: not checked

    def test_an_annotation_that_cannot_be_resolved_leaves_only_its_parameter_unchecked(
        self,
    ) -> None:
        def task_fn(*, a: int, b: NotDefinedAnywhere = None) -> None:  # type: ignore[name-defined]  # noqa: F821
            pass

        assert set(types_of(task_fn)) == {"a"}

    def test_annotations_of_a_wrapped_function_and_a_callable_object(self) -> None:
        import functools

        @functools.wraps(typed)
        def wrapper(*args: Any, **kwargs: Any) -> None:
            pass

        assert types_of(wrapper)["top"].types == ("integer",)

        class Callable:
            def __call__(self, *, n: int) -> None:
                pass

        assert types_of(Callable())["n"].types == ("integer",)

    def test_only_keyword_parameters_and_not_ctx(self) -> None:
        def fn(ctx: RunContext, a: int, *args: int, b: str, **rest: int) -> None:
            pass

        assert set(types_of(fn)) == {"a", "b"}


class TestCheck:
    spec = make_task(typed, "reports:typed").spec

    @pytest.mark.parametrize(
        ("data", "message"),
        [
            ({"top": "x"}, "data.top must be an integer, not the string 'x'"),
            ({"top": True}, "data.top must be an integer, not true"),
            ({"top": 1.5}, "data.top must be an integer, not the number 1.5"),
            ({"top": None}, "data.top must be an integer, not null"),
            ({"ratio": False}, "data.ratio must be a number, not false"),
            ({"title": 3}, "data.title must be a string, not the number 3"),
            ({"dry": 0}, "data.dry must be true or false, not the number 0"),
            ({"rows": {}}, "data.rows must be an array or null, not an object"),
            ({"extra": []}, "data.extra must be an object or null, not an array"),
            ({"key": [1]}, "data.key must be an integer or a string, not an array"),
            ({"mode": "medium"}, "data.mode must be one of 'fast', 'slow', not the string"),
            ({"level": 3}, "data.level must be one of 1, 2, true, not the number 3"),
            ({"level": False}, "data.level must be one of 1, 2, true, not false"),
            ({"size": "big"}, "data.size must be an integer or 'auto', not the string 'big'"),
        ],
    )
    def test_a_value_of_the_wrong_type_is_refused_naming_its_key(
        self, data: dict[str, Any], message: str
    ) -> None:
        with pytest.raises(ValidationError) as err:
            self.spec.check_data(data)
        assert str(err.value).startswith(message)
        assert "task 'reports:typed' takes" in str(err.value)
        assert err.value.field == f"data.{next(iter(data))}"

    def test_values_that_fit_are_accepted(self) -> None:
        self.spec.check_data(
            {
                "top": 3,
                "ratio": 2,  # an integer is a number
                "title": "t",
                "dry": True,
                "rows": [1, 2],
                "pair": [1, 2],
                "items": [],
                "extra": {"a": [1]},
                "labels": None,
                "limit": None,
                "key": "k",
                "mode": "slow",
                "level": True,
                "size": 10,
                "sloppy": None,
                "anything": {"x": 1},
                "plain": [1],
                "region": "eu",
                "options": {"depth": 3},
                "either": "not checked",
            }
        )

    def test_the_types_are_published_with_the_spec_and_read_back(self) -> None:
        published = self.spec.to_dict()
        assert published["types"]["top"] == {"types": ["integer"], "values": []}
        assert published["types"]["mode"] == {"types": [], "values": ["fast", "slow"]}
        again = TaskSpec.from_dict(published)
        assert again == self.spec
        with pytest.raises(ValidationError, match=r"data\.top must be an integer"):
            again.check_data({"top": "x"})

    def test_a_spec_published_without_types_checks_names_only(self) -> None:
        old = self.spec.to_dict()
        del old["types"]
        spec = TaskSpec.from_dict(old)
        spec.check_data({"top": "x"})
        with pytest.raises(ValidationError, match="takes no argument 'nope'"):
            spec.check_data({"nope": 1})


registry = TaskRegistry()


@task("report", registry=registry)
def report(
    ctx: RunContext,
    *,
    top: int = 5,
    mode: Literal["fast", "slow"] = "fast",
    limits: dict[str, list[float]] | None = None,
) -> int:
    return top


class TestEveryDoorOfThePythonApi:
    async def test_create_update_and_run_now_refuse_a_wrong_type(
        self, db_url: str, clock: ManualClock
    ) -> None:
        async with Scheduler(db_url, registry=registry, clock=clock, shutdown_grace=1) as s:
            with pytest.raises(ValidationError, match=r"data\.top must be an integer") as err:
                await s.add_schedule("report", "0 3 * * *", id="r", data={"top": "x"})
            assert err.value.field == "data.top"
            assert await s.list_schedules() == []
            await s.add_schedule("report", "0 3 * * *", id="r", data={"top": 2})
            with pytest.raises(ValidationError, match=r"data\.mode must be one of 'fast', 'slow'"):
                await s.update_schedule("r", data={"mode": "medium"})
            assert (await s.get_schedule("r")).data == {"top": 2}
            with pytest.raises(ValidationError, match=r"data\.top must be an integer, not true"):
                await s.run_now("r", data={"top": True})
            assert await s.list_runs("r") == []

    async def test_a_client_without_the_task_checks_the_published_types(self, db_url: str) -> None:
        async with (
            Scheduler(db_url, registry=registry, shutdown_grace=1),
            Scheduler(db_url, engine=False, registry=TaskRegistry()) as client,
        ):
            spec = await client.task_spec("report")
            assert spec.types["top"] == ArgType(types=("integer",))
            with pytest.raises(ValidationError, match=r"data\.top must be an integer"):
                await client.add_schedule("report", "manual", id="c", data={"top": "3"})
            await client.add_schedule("report", "manual", id="c", data={"top": 3})
            with pytest.raises(ValidationError, match=r"data\.top must be an integer"):
                await client.run_now("c", data={"top": "3"})
            with pytest.raises(ValidationError) as err:
                await client.run_now("c", data={"limits": {"cpu": [0.5, "1"]}})
            assert err.value.field == "data.limits.cpu[1]"
            assert str(err.value) == (
                "data.limits.cpu[1] must be a number, not the string '1' "
                "(task 'report' takes limits: dict[str, list[float]] | None)"
            )

    async def test_a_wrong_value_inside_the_data_is_refused_naming_its_path(
        self, db_url: str, clock: ManualClock
    ) -> None:
        async with Scheduler(db_url, registry=registry, clock=clock, shutdown_grace=1) as s:
            with pytest.raises(ValidationError) as err:
                await s.add_schedule(
                    "report", "manual", id="r", data={"limits": {"cpu": [1, True]}}
                )
            assert err.value.field == "data.limits.cpu[1]"
            assert str(err.value).startswith("data.limits.cpu[1] must be a number, not true")
            await s.add_schedule("report", "manual", id="r", data={"limits": {"cpu": [1, 2.5]}})
            with pytest.raises(ValidationError, match=r"^data\.limits\.mem must be an array"):
                await s.update_schedule("r", data={"limits": {"mem": 4}})
            with pytest.raises(ValidationError, match=r"^data\.limits\.cpu\[0\] must be a"):
                await s.run_now("r", data={"limits": {"cpu": [None]}})
            assert (await s.get_schedule("r")).data == {"limits": {"cpu": [1, 2.5]}}
            assert await s.list_runs("r") == []


def test_annotations_are_resolved_in_the_tasks_module() -> None:
    """``from __future__ import annotations`` leaves strings: they are read where the
    task was defined, so a name imported there (``Literal``) resolves."""
    assert isinstance(typed.__annotations__["mode"], str)
    assert typing.get_type_hints(typed)["mode"] == Literal["fast", "slow"]
    assert types_of(typed)["mode"].values == ("fast", "slow")
