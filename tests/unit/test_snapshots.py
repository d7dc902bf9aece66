"""The pure parts of reading state back: `select` on a ThreadState and `extract` paths on a searched thread."""

from __future__ import annotations

import pytest

from crongraph.errors import InvalidInput
from crongraph.services.snapshots import check_state_select, extract, parse_path, select_state

THREAD = {"values": {"messages": [{"content": "a"}, {"content": "b"}], "count": 2}, "metadata": {"k": {"n": [1]}}}


@pytest.mark.parametrize(
    ("path", "steps"),
    [
        ("values", ["values"]),
        ("values.messages[-1].content", ["values", "messages", -1, "content"]),
        ("metadata.k.n[0]", ["metadata", "k", "n", 0]),
        ("a[0][1].b", ["a", 0, 1, "b"]),
    ],
)
def test_parse_path(path: str, steps: list[str | int]) -> None:
    assert parse_path(path) == steps


@pytest.mark.parametrize("path", ["", ".a", "a.", "a..b", "[0]", "a[", "a[x]", "a[0]b", "a]"])
def test_parse_path_refuses(path: str) -> None:
    with pytest.raises(InvalidInput, match="Invalid extract path"):
        parse_path(path)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("values.messages[-1].content", "b"),
        ("values.messages[0]", {"content": "a"}),
        ("values.messages[2]", None),
        ("values.messages[-3]", None),
        ("values.count.deeper", None),
        ("metadata.k.n[0]", 1),
        ("nothing", None),
    ],
)
def test_extract(path: str, value: object) -> None:
    assert extract(THREAD, parse_path(path)) == value


def test_select_state() -> None:
    state = {"values": {"a": 1, "b": 2}, "next": ["x"], "tasks": []}
    assert select_state(state, None) is state
    assert select_state(state, ["next"]) == {"next": ["x"]}
    assert select_state(state, ["values.a", "values.missing"]) == {"values": {"a": 1}}
    assert select_state(state, ["values", "values.a"]) == {"values": {"a": 1, "b": 2}}
    check_state_select(["values.a", "checkpoint", "parent_checkpoint"])
    for bad in (["bogus"], ["values."], ["Values"]):
        with pytest.raises(InvalidInput, match="Invalid select field"):
            check_state_select(bad)
