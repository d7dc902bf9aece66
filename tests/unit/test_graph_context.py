"""A run's context as the reference builds it (graphs/context.py): which source wins, and how a dict becomes the
graph's context_schema (dataclass, TypedDict, pydantic model) with its defaults; and how a graph factory's
parameters are told apart (graphs/server_runtime.py). Pure functions, no server."""

from __future__ import annotations

import dataclasses
import typing
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import pytest
import typing_extensions
from langgraph_sdk.runtime import ServerRuntime
from pydantic import BaseModel, ConfigDict, Field

from crongraph.graphs.config import ConfigError, GraphSpec
from crongraph.graphs.context import ContextError, fit, merge_sources, user_configurable
from crongraph.graphs.loader import load_graph
from crongraph.graphs.server_runtime import build, classify


@dataclasses.dataclass
class Agent:
    model: str = "default-model"
    retries: int = 3
    tags: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class NeedsUser:
    user_id: str
    model: str = "m"


@dataclasses.dataclass
class Positive:
    n: int = 1

    def __post_init__(self) -> None:
        if self.n <= 0:
            raise ValueError("n must be positive")


class Typed(typing.TypedDict, total=False):
    model: str


class TypedExt(typing_extensions.TypedDict, total=False):
    model: str
    user: str


class Model(BaseModel):
    model: str = "pyd"
    temperature: float = 0.5
    api_base: str = Field(default="x", alias="apiBase")


class OpenModel(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str = "open"


# Sources


def test_run_context_overlays_the_assistant_context_key_by_key() -> None:
    merged = merge_sources({"model": "a", "retries": 1}, {}, {"model": "b"}, {})
    assert merged == {"model": "b", "retries": 1}


def test_each_side_falls_back_to_its_configurable_only_when_it_has_no_context() -> None:
    assistant_config = {"configurable": {"model": "from-assistant-config", "retries": 2}}
    assert merge_sources({}, assistant_config, {}, None) == {"model": "from-assistant-config", "retries": 2}
    assert merge_sources({"model": "ctx"}, assistant_config, None, None) == {"model": "ctx"}
    run_config = {"configurable": {"model": "from-run-config"}}
    assert merge_sources({"model": "ctx"}, {}, {}, run_config) == {"model": "from-run-config"}
    assert merge_sources({}, {}, {"model": "run-ctx"}, run_config) == {"model": "run-ctx"}
    assert merge_sources(None, None, None, None) == {}


def test_crongraphs_own_configurable_keys_are_never_context() -> None:
    config = {
        "configurable": {
            "cron_id": "c",
            "thread_id": "t",
            "checkpoint_id": "k",
            "__pregel_x": 1,
            "langgraph_auth_user": None,
            "model": "m",
        }
    }
    assert user_configurable(config) == {"model": "m"}
    assert merge_sources({}, {}, {}, config) == {"model": "m"}


# Fitting


def test_dataclass_defaults_apply_to_an_empty_context() -> None:
    fitted = fit(Agent, {})
    assert fitted.value == Agent() and fitted.value.model == "default-model"
    assert fit(Agent, {"model": "m2"}).value == Agent(model="m2")


def test_unknown_keys_are_dropped_and_named() -> None:
    fitted = fit(Agent, {"model": "m2", "bogus": 1, "also": 2})
    assert fitted.value == Agent(model="m2")
    assert fitted.kept == {"model": "m2"}
    assert fitted.dropped == ["also", "bogus"]


def test_a_missing_required_field_is_refused_by_name() -> None:
    with pytest.raises(ContextError) as raised:
        fit(NeedsUser, {"model": "x"})
    assert str(raised.value) == (
        "The run's context does not fit the graph's context_schema NeedsUser: missing required field(s) 'user_id'"
    )
    assert fit(NeedsUser, {"user_id": "u"}).value == NeedsUser(user_id="u")


def test_a_dataclass_refusing_a_value_is_a_context_error() -> None:
    with pytest.raises(ContextError, match="Positive: ValueError: n must be positive"):
        fit(Positive, {"n": 0})


@pytest.mark.parametrize("schema", [Typed, TypedExt], ids=["typing", "typing_extensions"])
def test_typeddict_stays_a_dict_of_its_keys(schema: Any) -> None:
    fitted = fit(schema, {"model": "m", "bogus": 1})
    assert fitted.value == {"model": "m"} and type(fitted.value) is dict
    assert fitted.dropped == ["bogus"]


def test_pydantic_model_is_validated_with_defaults_and_aliases() -> None:
    assert fit(Model, {}).value == Model()
    fitted = fit(Model, {"temperature": "0.9", "apiBase": "y", "bogus": True})
    assert (fitted.value.temperature, fitted.value.api_base, fitted.dropped) == (0.9, "y", ["bogus"])


def test_pydantic_refusal_names_the_field() -> None:
    with pytest.raises(ContextError) as raised:
        fit(Model, {"temperature": "hot"})
    message = str(raised.value)
    assert message.startswith("The run's context does not fit the graph's context_schema Model: temperature: ")
    assert "\n" not in message


def test_an_open_pydantic_model_keeps_every_key() -> None:
    fitted = fit(OpenModel, {"model": "m", "extra": 1})
    assert fitted.dropped == [] and fitted.value.model_extra == {"extra": 1}


def test_without_a_schema_the_dict_is_passed_as_is() -> None:
    fitted = fit(None, {"anything": 1})
    assert fitted.value == {"anything": 1} and fitted.dropped == []


def test_a_context_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(ContextError, match="must be a JSON object, not list"):
        fit(Agent, [1, 2])


# Factories


class Ctx(BaseModel):
    endpoint: str = "e"


def test_factory_parameters_by_annotation_by_name_or_neither() -> None:
    def none() -> None: ...
    def config_only(config: dict[str, Any]) -> None: ...
    def any_name(whatever: dict[str, Any]) -> None: ...
    def runtime_only(rt: ServerRuntime) -> None: ...  # type: ignore[type-arg]  # bare, as users write it
    def typed(rt: ServerRuntime[Ctx], cfg: Any) -> None: ...
    def annotated(cfg: Any, rt: Annotated[ServerRuntime[Ctx], "x"]) -> None: ...
    def by_name(config, runtime):  # type: ignore[no-untyped-def]
        ...
    def with_default(config: Any, extra: int = 1) -> None: ...

    assert (classify(none).config_param, classify(none).runtime_param) == (None, None)
    assert (classify(config_only).config_param, classify(config_only).runtime_param) == ("config", None)
    assert classify(any_name).config_param == "whatever"
    assert (classify(runtime_only).config_param, classify(runtime_only).runtime_param) == (None, "rt")
    assert (classify(typed).config_param, classify(typed).runtime_param, classify(typed).context_type) == (
        "cfg",
        "rt",
        Ctx,
    )
    assert classify(annotated).runtime_param == "rt" and classify(annotated).context_type is Ctx
    assert (classify(by_name).config_param, classify(by_name).runtime_param) == ("config", "runtime")
    assert classify(with_default).config_param == "config"


def test_a_context_manager_factory_is_classified_through_its_wrapper() -> None:
    @asynccontextmanager
    async def make(runtime: ServerRuntime, config: Any) -> Any:  # type: ignore[type-arg]
        yield None

    call = classify(make)
    assert (call.config_param, call.runtime_param) == ("config", "runtime")


def test_factories_no_server_can_call_are_refused_with_the_reason() -> None:
    def two_configs(a: Any, b: Any) -> None: ...
    def three(a: Any, b: Any, c: Any) -> None: ...
    def two_runtimes(a: ServerRuntime, b: ServerRuntime) -> None: ...  # type: ignore[type-arg]

    with pytest.raises(ValueError, match="neither is the runtime; annotate one `ServerRuntime`"):
        classify(two_configs)
    with pytest.raises(ValueError, match="it takes 3 parameters"):
        classify(three)
    with pytest.raises(ValueError, match="more than one parameter is annotated ServerRuntime"):
        classify(two_runtimes)


def test_runtime_carries_context_only_for_a_run() -> None:
    store = object()
    run = build("threads.create_run", store, {"a": 1})
    assert run.execution_runtime is run and run.context == {"a": 1} and run.user is None and run.store is store
    read = build("assistants.read", store, {"a": 1})
    assert read.execution_runtime is None and not hasattr(read, "context")
    assert read.access_context == "assistants.read"
    with pytest.raises(PermissionError):
        read.ensure_user()


def test_a_factory_no_server_can_call_stops_the_start_naming_the_graph(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text("def make(first, second):\n    raise AssertionError('never called')\n")
    with pytest.raises(ConfigError) as raised:
        load_graph(GraphSpec("bad", "./bad.py:make"), tmp_path, "langgraph.json")
    assert str(raised.value).startswith(
        'langgraph.json: graph "bad" (./bad.py:make) is a factory the server cannot call: it takes two parameters '
        "(first, second) and neither is the runtime"
    )
