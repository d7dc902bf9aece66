"""The validation boundary's pure parts: the one nesting limit (and orjson's, which it relies on), request bodies
refused by depth and NUL, schedule and time-zone limits, dates pushed out of range by their offset, and the
metadata filter handed to LangGraph's checkpointers."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from crongraph import serde
from crongraph.api import limits
from crongraph.api.schemas import CronCreate, StoreDelete, StoreNamespaces
from crongraph.schedules.expression import (
    MAX_SCHEDULE_CHARS,
    CronExpression,
    InvalidSchedule,
    InvalidTimezone,
    load_timezone,
)
from crongraph.storage.filters import checkpoint_filter, contains


def nested(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = {"a": value}
    return value


def test_orjson_serializes_exactly_the_depth_the_limits_rely_on() -> None:
    # Pins orjson's own limit: if an upgrade lowers it, the arithmetic below is wrong and this fails first.
    orjson.dumps(nested(serde.SERIALIZE_DEPTH))
    with pytest.raises(TypeError):
        orjson.dumps(nested(serde.SERIALIZE_DEPTH + 1))
    assert serde.MAX_REQUEST_DEPTH + serde.ENVELOPE_DEPTH <= serde.SERIALIZE_DEPTH
    assert limits.MAX_JSON_DEPTH == serde.MAX_REQUEST_DEPTH


def test_the_deepest_accepted_body_serializes_inside_any_envelope_the_limit_allows() -> None:
    body = serde.loads_request(serde.dumps(nested(serde.MAX_REQUEST_DEPTH - 1)))
    envelope: Any = body
    for _ in range(serde.ENVELOPE_DEPTH):
        envelope = [envelope]
    serde.dumps(envelope)


@pytest.mark.parametrize("depth", [1, 2, serde.MAX_REQUEST_DEPTH])
def test_bodies_up_to_the_limit_are_accepted(depth: int) -> None:
    text = "[" * depth + "]" * depth
    assert serde.loads_request(text) is not None
    # The same depth reached through objects and mixed containers.
    assert serde.loads_request(serde.dumps(nested(depth - 1))) == nested(depth - 1)


@pytest.mark.parametrize("depth", [serde.MAX_REQUEST_DEPTH + 1, 300, 1024, 1025, 50_000])
def test_deeper_bodies_are_refused_naming_the_limit(depth: int) -> None:
    with pytest.raises(serde.UnacceptableJson, match=f"limit is {serde.MAX_REQUEST_DEPTH} levels"):
        serde.loads_request("[" * depth + "]" * depth)


def test_depth_is_counted_per_branch_not_per_bracket() -> None:
    # Many siblings (more brackets than the limit) at a shallow depth pass the slow path.
    wide = {"items": [{"a": [1]} for _ in range(500)]}
    assert serde.loads_request(serde.dumps(wide)) == wide


@pytest.mark.parametrize(
    "text",
    ['{"a": "x\\u0000y"}', '{"k\\u0000": 1}', '["\\u0000"]', '"\\u0000"'],
)
def test_nul_characters_are_refused(text: str) -> None:
    with pytest.raises(serde.UnacceptableJson, match="NUL"):
        serde.loads_request(text)


def test_an_escaped_backslash_before_u0000_is_not_a_nul() -> None:
    assert serde.loads_request('{"a": "\\\\u0000"}') == {"a": "\\u0000"}


def test_malformed_json_is_still_a_decode_error() -> None:
    with pytest.raises(orjson.JSONDecodeError):
        serde.loads_request("{")


# ---- schedules and time zones --------------------------------------------------------------------------


def test_schedules_over_the_length_limit_are_refused_before_parsing_and_fast() -> None:
    CronExpression("*/5 * * * *")
    start = time.perf_counter()
    with pytest.raises(InvalidSchedule, match=f"limit is {MAX_SCHEDULE_CHARS}"):
        CronExpression("1," * (2 * 1024 * 1024) + "1 * * * *")
    assert time.perf_counter() - start < 0.5
    assert limits.MAX_SCHEDULE_CHARS == MAX_SCHEDULE_CHARS


@pytest.mark.parametrize(
    "schedule",
    [
        "1" * 4400 + " * * * *",
        "9" * 19 + " * * * *",
        "\u00b2 * * * *",
        "*/\u00b2 * * * *",
        "0 0 \u00b2W * *",
        "0 0 * * 1#\u00b2",
        "0 0 * * 1#" + "9" * 30,
    ],
)
def test_numbers_python_cannot_or_should_not_read_are_invalid_schedules(schedule: str) -> None:
    with pytest.raises(InvalidSchedule):
        CronExpression(schedule)


def test_long_steps_and_leading_zeros_keep_their_meaning() -> None:
    assert CronExpression("*/" + "9" * 30 + " * * * *").minutes == (0,)
    assert CronExpression("0" * 40 + "5 * * * *").minutes == (5,)


@pytest.mark.parametrize(
    "name",
    [
        "/".join(["a"] * 400),
        "../../etc/passwd",
        "/usr/share/zoneinfo/UTC",
        "Europe//Paris",
        "Europe/../UTC",
        "zoneinfo/UTC",
        "Europe/Paris/",
        "x" * 65,
        "utc",
    ],
)
def test_only_iana_names_are_time_zones(name: str) -> None:
    with pytest.raises(InvalidTimezone):
        load_timezone(name)


@pytest.mark.parametrize("name", ["UTC", "Europe/Paris", "America/Argentina/ComodRivadavia", "Etc/GMT+5", None, ""])
def test_iana_names_load(name: str | None) -> None:
    assert load_timezone(name) is not None


# ---- dates and bounds in the request models --------------------------------------------------------------


@pytest.mark.parametrize("end_time", ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+05:00"])
def test_an_offset_that_pushes_a_date_out_of_range_is_a_validation_error(end_time: str) -> None:
    with pytest.raises(ValidationError, match="out of range"):
        CronCreate.model_validate({"assistant_id": "agent", "schedule": "* * * * *", "end_time": end_time})


def test_dates_are_kept_in_utc() -> None:
    body = CronCreate.model_validate(
        {"assistant_id": "agent", "schedule": "* * * * *", "end_time": "9999-12-31T23:59:59+01:00"}
    )
    assert body.given()["end_time"] == "9999-12-31T22:59:59Z"


@pytest.mark.parametrize("labels", [["a.b"], [""], ["ok", "x.y"]])
def test_store_labels_are_checked_on_every_model(labels: list[str]) -> None:
    with pytest.raises(ValidationError, match="namespace"):
        StoreDelete.model_validate({"namespace": labels, "key": "k"})
    with pytest.raises(ValidationError, match="prefix"):
        StoreNamespaces.model_validate({"prefix": labels})
    with pytest.raises(ValidationError, match="suffix"):
        StoreNamespaces.model_validate({"suffix": labels})


# ---- metadata filters for LangGraph's checkpointers ------------------------------------------------------


def test_postgres_takes_the_whole_filter() -> None:
    odd = {"a b": 1, "x.y": {"z": [1]}}
    assert checkpoint_filter(odd, "postgresql") == (odd, True)


@pytest.mark.parametrize(
    ("wanted", "pushed", "exact"),
    [
        (None, None, True),
        ({"source": "input"}, {"source": "input"}, True),
        ({"step": 1}, {"step": 1}, False),  # json_extract reads true as 1: confirm in Python
        ({"a b": 1}, None, False),
        ({"x.y": "z"}, None, False),  # a dot would be a path into a nested object
        ({"$x": "1", "source": "loop"}, {"source": "loop"}, False),
        ({"ok": True}, None, False),
        ({"ok": {"n": 1}}, None, False),
        ({"big": 2**70}, None, False),
    ],
)
def test_sqlite_gets_only_what_its_json_paths_can_say(
    wanted: dict[str, Any] | None, pushed: dict[str, Any] | None, exact: bool
) -> None:
    assert checkpoint_filter(wanted, "sqlite") == (pushed, exact)


def test_contains_is_the_confirmation_for_odd_keys() -> None:
    assert contains({"a b": 1, "source": "loop"}, {"a b": 1})
    assert not contains({"a b": True}, {"a b": 1})
    assert not contains({"x": {"y": "z"}}, {"x.y": "z"})
