"""Hostile input (issue 11): every nasty input of the issue and its kin, on every route that takes it, gets a 4xx
whose detail names the problem, changes nothing in the database (every table of every database file, row by
row, before and after), and leaves the server answering on the same keep-alive connection. The deepest body
crongraph accepts can be read back through every read route; an internal error is a proper 500 that keeps the
connection; metadata filters take any key on every search route."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from crongraph.api import limits
from tests.support.server import ROOT, ServerProcess

HOSTILE_CONFIG = ROOT / "tests" / "fixtures" / "hostile" / "langgraph.json"
NEVER = "0 0 1 1 *"  # once a year: no cron of this module fires while it runs


def nested(levels: int, leaf: Any = 1) -> Any:
    """A value `levels` objects deep ({"a": {"a": ... leaf}}); a scalar when levels is 0."""
    value = leaf
    for _ in range(levels):
        value = {"a": value}
    return value


def body_at_depth(depth: int, key: str, wrap: Callable[[Any], Any] = lambda v: v) -> dict[str, Any]:
    """A body `depth` levels deep (the body itself is level 1) whose `key` holds the nested part."""
    inner = wrap(nested(1))  # measure what `wrap` adds
    extra = _depth(inner) - 1
    return {key: wrap(nested(depth - 1 - extra))}


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


@pytest.fixture(scope="module")
def hostile_server(server_factory: Callable[..., ServerProcess]) -> ServerProcess:
    return server_factory(config=HOSTILE_CONFIG)


@pytest.fixture(scope="module")
def http(hostile_server: ServerProcess) -> Iterator[httpx.Client]:
    # One connection for the whole module: every answer must leave it usable.
    with httpx.Client(base_url=hostile_server.url, timeout=30, limits=httpx.Limits(max_connections=1)) as c:
        yield c


@pytest.fixture(scope="module")
def fingerprint(hostile_server: ServerProcess) -> Callable[[], dict[str, str]]:
    """Every table of every database the server writes, as a digest of its sorted rows."""
    url = hostile_server.database_url
    if url:
        import psycopg

        dsn = url.replace("+psycopg", "")

        def pg() -> dict[str, str]:
            with psycopg.connect(dsn) as conn:
                names = [
                    r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
                ]
                return {name: _digest(conn.execute(f'SELECT * FROM "{name}"').fetchall()) for name in names}

        return pg

    def lite() -> dict[str, str]:
        out = {}
        for path in sorted(hostile_server.data_dir.glob("*.db")):
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY 1")]
                for name in names:
                    out[f"{path.name}:{name}"] = _digest(conn.execute(f'SELECT * FROM "{name}"').fetchall())
            finally:
                conn.close()
        return out

    return lite


def _digest(rows: list[Any]) -> str:
    return f"{len(rows)}:" + hashlib.sha256("\n".join(sorted(repr(tuple(r)) for r in rows)).encode()).hexdigest()


@pytest.fixture(scope="module")
def ids(http: httpx.Client) -> dict[str, str]:
    thread = http.post("/threads", json={"metadata": {"kind": "target"}}).json()["thread_id"]
    cron = http.post("/runs/crons", json={"assistant_id": "agent", "schedule": NEVER}).json()["cron_id"]
    assistant = http.post("/assistants", json={"graph_id": "agent", "name": "target"}).json()["assistant_id"]
    http.put("/store/items", json={"namespace": ["ns"], "key": "k", "value": {"v": 1}})
    return {"thread": thread, "cron": cron, "assistant": assistant}


TOO_DEEP = limits.MAX_JSON_DEPTH + 1
HUGE = str(2**63)
DIGITS = "1" * 4400
LONG_TZ = "/".join(["a"] * 400)

# (method, path, json body or None, query params or None, expected status, words the detail must contain)
CASES: list[tuple[str, str, Any, Any, int, str]] = [
    # 1. numbers and dates out of range
    ("GET", "/runs/crons/{cron}/runs", None, {"offset": HUGE}, 422, "offset"),
    ("GET", "/runs/crons/{cron}/fires", None, {"offset": HUGE}, 422, "offset"),
    ("GET", "/runs/crons/{cron}/runs", None, {"limit": HUGE}, 422, "limit"),
    ("GET", "/runs/crons/{cron}/fires", None, {"limit": "-1"}, 422, "limit"),
    ("GET", "/threads/{thread}/runs", None, {"offset": HUGE}, 422, "offset"),
    ("POST", "/threads/search", {"offset": 2**63}, None, 422, "offset"),
    ("POST", "/runs/crons/search", {"offset": 2**63}, None, 422, "offset"),
    ("POST", "/assistants/search", {"offset": 2**63}, None, 422, "offset"),
    ("POST", "/assistants/{assistant}/versions", {"offset": 2**63}, None, 422, "offset"),
    ("POST", "/store/items/search", {"offset": 2**63}, None, 422, "offset"),
    ("POST", "/store/namespaces", {"offset": 2**63}, None, 422, "offset"),
    ("POST", "/store/namespaces", {"max_depth": 2**40}, None, 422, "max_depth"),
    (
        "POST",
        "/runs/crons",
        {"assistant_id": "agent", "schedule": NEVER, "config": {"recursion_limit": 2**40}},
        None,
        422,
        "recursion_limit",
    ),
    (
        "POST",
        "/runs/crons",
        {"assistant_id": "agent", "schedule": NEVER, "end_time": "9999-12-31T23:59:59-23:59"},
        None,
        422,
        "end_time",
    ),
    (
        "POST",
        "/runs/crons",
        {"assistant_id": "agent", "schedule": NEVER, "end_time": "0001-01-01T00:00:00+05:00"},
        None,
        422,
        "end_time",
    ),
    (
        "POST",
        "/threads/{thread}/runs/crons",
        {"assistant_id": "agent", "schedule": NEVER, "end_time": "9999-12-31T23:59:59-23:59"},
        None,
        422,
        "end_time",
    ),
    ("PATCH", "/runs/crons/{cron}", {"end_time": "9999-12-31T23:59:59-23:59"}, None, 422, "end_time"),
    ("POST", "/runs/crons", {"assistant_id": "agent", "schedule": DIGITS + " * * * *"}, None, 422, "schedule"),
    ("PATCH", "/runs/crons/{cron}", {"schedule": DIGITS + " * * * *"}, None, 422, "schedule"),
    ("POST", "/runs/crons/preview", {"schedule": DIGITS + " * * * *"}, None, 422, "schedule"),
    (
        "POST",
        "/runs/crons",
        {"assistant_id": "agent", "schedule": "99999999999999999999 * * * *"},
        None,
        422,
        "out of range",
    ),
    ("POST", "/runs/crons", {"assistant_id": "agent", "schedule": "\u00b2 * * * *"}, None, 422, "schedule"),
    ("POST", "/runs/crons", {"assistant_id": "agent", "schedule": "*/\u00b2 * * * *"}, None, 422, "schedule"),
    ("GET", "/assistants/{assistant}/graph", None, {"xray": "\u00b2"}, 422, "xray"),
    # 2. time zones: only IANA names
    ("POST", "/runs/crons", {"assistant_id": "agent", "schedule": NEVER, "timezone": LONG_TZ}, None, 422, "timezone"),
    (
        "POST",
        "/runs/crons",
        {"assistant_id": "agent", "schedule": NEVER, "timezone": "../../etc/passwd"},
        None,
        422,
        "timezone",
    ),
    (
        "POST",
        "/runs/crons",
        {"assistant_id": "agent", "schedule": NEVER, "timezone": "/usr/share/zoneinfo/UTC"},
        None,
        422,
        "timezone",
    ),
    (
        "POST",
        "/runs/crons",
        {"assistant_id": "agent", "schedule": NEVER, "timezone": "Europe//Paris"},
        None,
        422,
        "timezone",
    ),
    ("PATCH", "/runs/crons/{cron}", {"timezone": LONG_TZ}, None, 422, "timezone"),
    ("PATCH", "/runs/crons/{cron}", {"timezone": "zoneinfo/../UTC"}, None, 422, "timezone"),
    ("POST", "/runs/crons/preview", {"schedule": NEVER, "timezone": "../UTC"}, None, 422, "timezone"),
    # 3. nesting depth, on every route that stores JSON
    ("POST", "/threads", body_at_depth(TOO_DEEP, "metadata"), None, 422, "nested"),
    ("PATCH", "/threads/{thread}", body_at_depth(TOO_DEEP, "metadata"), None, 422, "nested"),
    ("POST", "/threads/{thread}/state", body_at_depth(TOO_DEEP, "values"), None, 422, "nested"),
    (
        "POST",
        "/threads/{thread}/runs",
        {"assistant_id": "agent", **body_at_depth(TOO_DEEP, "input")},
        None,
        422,
        "nested",
    ),
    (
        "POST",
        "/threads/{thread}/runs/wait",
        {"assistant_id": "agent", **body_at_depth(TOO_DEEP, "input")},
        None,
        422,
        "nested",
    ),
    ("POST", "/runs/wait", {"assistant_id": "agent", **body_at_depth(TOO_DEEP, "context")}, None, 422, "nested"),
    (
        "POST",
        "/threads/{thread}/runs",
        {"assistant_id": "agent", **body_at_depth(TOO_DEEP, "command")},
        None,
        422,
        "nested",
    ),
    (
        "POST",
        "/runs/crons",
        {"assistant_id": "agent", "schedule": NEVER, **body_at_depth(TOO_DEEP, "input")},
        None,
        422,
        "nested",
    ),
    (
        "POST",
        "/runs/crons",
        {"assistant_id": "agent", "schedule": NEVER, **body_at_depth(TOO_DEEP, "metadata")},
        None,
        422,
        "nested",
    ),
    ("PATCH", "/runs/crons/{cron}", body_at_depth(TOO_DEEP, "metadata"), None, 422, "nested"),
    ("POST", "/assistants", {"graph_id": "agent", **body_at_depth(TOO_DEEP, "config")}, None, 422, "nested"),
    ("POST", "/assistants", {"graph_id": "agent", **body_at_depth(TOO_DEEP, "context")}, None, 422, "nested"),
    ("PATCH", "/assistants/{assistant}", body_at_depth(TOO_DEEP, "metadata"), None, 422, "nested"),
    (
        "PUT",
        "/store/items",
        {"namespace": ["ns"], "key": "deep", **body_at_depth(TOO_DEEP, "value")},
        None,
        422,
        "nested",
    ),
    (
        "POST",
        "/threads/{thread}/commands",
        {"id": 1, "method": "run.start", **body_at_depth(TOO_DEEP, "params")},
        None,
        422,
        "nested",
    ),
    ("POST", "/threads", {"metadata": {"a": "x\u0000y"}}, None, 422, "NUL"),
    ("PUT", "/store/items", {"namespace": ["ns"], "key": "k\u0000", "value": {}}, None, 422, "NUL"),
    # 4. store namespace labels
    ("DELETE", "/store/items", {"namespace": ["a.b"], "key": "k"}, None, 422, "namespace"),
    ("DELETE", "/store/items", {"namespace": [""], "key": "k"}, None, 422, "namespace"),
    ("POST", "/store/namespaces", {"prefix": ["a.b"]}, None, 422, "prefix"),
    ("POST", "/store/namespaces", {"suffix": [""]}, None, 422, "suffix"),
    ("GET", "/store/items", None, {"namespace": "a..b", "key": "k"}, 422, "namespace"),
    ("GET", "/store/items", None, {"namespace": ".", "key": "k"}, 422, "namespace"),
    ("PUT", "/store/items", {"namespace": ["a.b"], "key": "k", "value": {}}, None, 422, "namespace"),
    ("POST", "/store/items/search", {"namespace_prefix": ["a.b"]}, None, 422, "namespace"),
    # 7. lengths: schedules, ids, keys
    ("POST", "/runs/crons", {"assistant_id": "agent", "schedule": "*" * (4 * 1024 * 1024)}, None, 422, "schedule"),
    ("POST", "/runs/crons", {"assistant_id": "a" * 5000, "schedule": NEVER}, None, 422, "assistant_id"),
    ("PUT", "/store/items", {"namespace": ["ns"], "key": "k" * 5000, "value": {}}, None, 422, "key"),
    ("POST", "/threads", {"metadata": {"k" * 5000: 1}}, None, 422, "metadata"),
]


def _case_id(case: tuple[str, str, Any, Any, int, str]) -> str:
    method, path, _, params, _, words = case
    return f"{method} {path} {words}" + (f" {sorted(params)}" if params else "")


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_hostile_input_is_refused_and_changes_nothing(
    case: tuple[str, str, Any, Any, int, str],
    http: httpx.Client,
    ids: dict[str, str],
    fingerprint: Callable[[], dict[str, str]],
) -> None:
    method, path, body, params, status, words = case
    before = fingerprint()
    response = http.request(method, path.format(**ids), json=body, params=params)
    assert response.status_code == status, response.text[:500]
    detail = response.json()["detail"]
    assert isinstance(detail, str) and words.lower() in detail.lower(), detail
    assert len(detail) < 1000, "the detail must not echo a huge input"
    assert fingerprint() == before
    assert http.get("/ok").status_code == 200


def test_last_event_id_that_is_not_an_ascii_number_is_refused(http: httpx.Client, ids: dict[str, str]) -> None:
    run = http.post(f"/threads/{ids['thread']}/runs/wait", json={"assistant_id": "agent", "input": {}})
    assert run.status_code == 200, run.text
    runs = http.get(f"/threads/{ids['thread']}/runs").json()
    # The run's stream, and the thread's (which stays open, so the fuzzing gate leaves it to this table).
    for path in (f"/threads/{ids['thread']}/runs/{runs[0]['run_id']}/stream", f"/threads/{ids['thread']}/stream"):
        for value in ("\u00b2".encode("latin-1"), b"9" * 5000):
            response = http.get(path, headers=[(b"Last-Event-ID", value)])
            assert response.status_code == 422 and "Last-Event-ID" in response.json()["detail"], (path, response)
    assert http.get("/threads/not-a-uuid/stream").status_code == 422
    assert http.get("/ok").status_code == 200


def test_the_deepest_accepted_body_can_be_read_back_everywhere(
    http: httpx.Client, hostile_server: ServerProcess
) -> None:
    deepest = limits.MAX_JSON_DEPTH
    assert http.post("/threads", json=body_at_depth(deepest + 1, "metadata")).status_code == 422
    metadata = body_at_depth(deepest, "metadata")["metadata"]

    # Threads: create, patch, state update; read by get, search, count, state, history, copy.
    thread = http.post("/threads", json={"metadata": metadata})
    assert thread.status_code == 200, thread.text
    tid = thread.json()["thread_id"]
    assert http.patch(f"/threads/{tid}", json={"metadata": metadata}).status_code == 200
    run = http.post(
        f"/threads/{tid}/runs/wait",
        json={"assistant_id": "agent", **body_at_depth(deepest, "input", lambda v: {"payload": v})},
    )
    assert run.status_code == 200, run.text
    state = http.post(f"/threads/{tid}/state", json=body_at_depth(deepest, "values", lambda v: {"payload": v}))
    assert state.status_code == 200, state.text
    assert http.get(f"/threads/{tid}").json()["metadata"]["a"] == metadata["a"]
    assert http.post("/threads/search", json={"limit": 1000}).status_code == 200
    assert http.post("/threads/search", json={"metadata": metadata}).json()[0]["thread_id"] == tid
    assert http.post("/threads/count", json={"metadata": metadata}).json() == 1
    assert http.get(f"/threads/{tid}/state").status_code == 200
    assert http.post(f"/threads/{tid}/history", json={"limit": 10}).status_code == 200
    assert http.get(f"/threads/{tid}/history").status_code == 200
    assert http.get(f"/threads/{tid}/runs").status_code == 200
    assert http.post(f"/threads/{tid}/copy").status_code == 200

    # Crons: create, patch; read by get, search, count, the CLI.
    cron = http.post(
        "/runs/crons",
        json={"assistant_id": "agent", "schedule": NEVER, "metadata": metadata, "input": metadata},
    )
    assert cron.status_code == 200, cron.text
    cid = cron.json()["cron_id"]
    assert http.patch(f"/runs/crons/{cid}", json={"metadata": metadata}).status_code == 200
    assert http.get(f"/runs/crons/{cid}").status_code == 200
    assert http.post("/runs/crons/search", json={"limit": 1000}).status_code == 200
    assert http.post("/runs/crons/count", json={"metadata": metadata}).json() == 1
    listed = subprocess.run(
        [sys.executable, "-m", "crongraph", "crons", "--url", hostile_server.url, "list"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listed.returncode == 0 and cid in listed.stdout, listed.stderr

    # Assistants: create, patch; read by get, search, count, versions.
    assistant = http.post("/assistants", json={"graph_id": "agent", "config": metadata, "metadata": metadata})
    assert assistant.status_code == 200, assistant.text
    aid = assistant.json()["assistant_id"]
    assert http.patch(f"/assistants/{aid}", json={"context": metadata}).status_code == 200
    assert http.get(f"/assistants/{aid}").status_code == 200
    assert http.post("/assistants/search", json={"limit": 1000}).status_code == 200
    assert http.post("/assistants/count", json={"metadata": metadata}).json() == 1
    assert http.post(f"/assistants/{aid}/versions", json={}).status_code == 200

    # Store: put; read by get and search.
    value = body_at_depth(deepest, "value")["value"]
    assert http.put("/store/items", json={"namespace": ["deep"], "key": "k", "value": value}).status_code == 204
    assert http.get("/store/items", params={"namespace": "deep", "key": "k"}).json()["value"] == value
    assert http.post("/store/items/search", json={"namespace_prefix": ["deep"]}).json()["items"][0]["value"] == value


def test_an_internal_error_is_a_proper_500_and_keeps_the_connection(
    http: httpx.Client, hostile_server: ServerProcess
) -> None:
    """GET /assistants/{id}/graph of a graph whose drawing raises: user code failing inside the server."""
    undrawable = http.post("/assistants/search", json={"graph_id": "undrawable"}).json()[0]["assistant_id"]
    first = http.get("/ok")
    port = first.extensions["network_stream"].get_extra_info("client_addr")[1]
    failed = http.get(f"/assistants/{undrawable}/graph")
    assert failed.status_code == 500
    assert failed.headers["content-type"] == "application/json"
    detail = failed.json()["detail"]
    assert "Internal server error" in detail and "RuntimeError" not in detail and "on purpose" not in detail
    after = http.get("/ok")
    assert after.status_code == 200
    # The same TCP connection answered after the 500.
    assert after.extensions["network_stream"].get_extra_info("client_addr")[1] == port
    incident = detail.split("incident ")[1].split(")")[0]
    log = Path(hostile_server.log_path).read_text()
    assert incident in log and "this graph cannot be drawn (on purpose)" in log  # the traceback is logged


def test_metadata_filters_take_any_key_on_every_search_route(http: httpx.Client) -> None:
    odd = {"a b": 1, "x.y": "z", 'q"': True, "$p": [1], "w[0]": {"n": None}}
    tid = http.post("/threads", json={"metadata": odd}).json()["thread_id"]
    cid = http.post("/runs/crons", json={"assistant_id": "agent", "schedule": NEVER, "metadata": odd}).json()["cron_id"]
    aid = http.post("/assistants", json={"graph_id": "agent", "metadata": odd}).json()["assistant_id"]
    for key, value in odd.items():
        one = {key: value}
        assert [t["thread_id"] for t in http.post("/threads/search", json={"metadata": one}).json()] == [tid]
        assert [c["cron_id"] for c in http.post("/runs/crons/search", json={"metadata": one}).json()] == [cid]
        assert [a["assistant_id"] for a in http.post("/assistants/search", json={"metadata": one}).json()] == [aid]
        assert http.post("/threads/count", json={"metadata": one}).json() == 1
    # A filter that matches nothing of the same shape.
    assert http.post("/threads/search", json={"metadata": {"a b": 2}}).json() == []

    # Thread history: checkpoint metadata carries `source` and `step`; odd keys match nothing, plain ones work.
    assert http.post(f"/threads/{tid}/runs/wait", json={"assistant_id": "agent", "input": {}}).status_code == 200
    everything = http.post(f"/threads/{tid}/history", json={"limit": 100}).json()
    assert everything
    for flt in ({"a b": 1}, {"x.y": "z"}, {'q"': 1}, {"$x": 1}, {"a[0]": 1}, {"source": {"x": 1}}):
        response = http.post(f"/threads/{tid}/history", json={"metadata": flt})
        assert response.status_code == 200 and response.json() == [], (flt, response.text)
    inputs = http.post(f"/threads/{tid}/history", json={"metadata": {"source": "input"}}).json()
    assert inputs and all(s["metadata"]["source"] == "input" for s in inputs)
    step = everything[0]["metadata"]["step"]
    at_step = http.post(f"/threads/{tid}/history", json={"metadata": {"step": step}}).json()
    assert [s["checkpoint"]["checkpoint_id"] for s in at_step] == [everything[0]["checkpoint"]["checkpoint_id"]]
    one = http.post(f"/threads/{tid}/history", json={"metadata": {"step": step}, "limit": 1}).json()
    assert len(one) == 1
