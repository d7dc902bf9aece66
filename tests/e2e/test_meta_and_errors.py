"""Meta endpoints (wire contract §7) and the error contract (§1): every refusal is a 4xx with a string `detail`
that names the problem, bad input changes nothing, and no input a client can send gets a 500.

The sweep runs on its own server, so that its before/after snapshot sees only its own requests.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.server import ServerProcess

AGENT_ID = "fe096781-5601-53d2-b2f6-0d3403f7e9ca"
MISSING = "00000000-0000-4000-8000-000000000000"


# Meta


def test_ok_and_root(server: ServerProcess) -> None:
    for path in ("/ok", "/ok?check_db=1", "/"):
        response = httpx.get(server.url + path)
        assert response.status_code == 200, path
        assert response.json() == {"ok": True, "services": {}}


def test_info(server: ServerProcess) -> None:
    info = httpx.get(server.url + "/info").json()
    assert isinstance(info["version"], str) and isinstance(info["langgraph_py_version"], str)
    assert info["flags"]["assistants"] is True and info["flags"]["crons"] is True
    assert info["flags"]["langsmith"] is False
    assert info["host"]["kind"] == "self-hosted"


def test_metrics_count_the_queue(server: ServerProcess) -> None:
    def queued() -> dict[str, int]:
        body = httpx.get(server.url + "/metrics?format=json").json()
        assert body["workers"]["total"] >= 1
        return body["runs"]  # type: ignore[no-any-return]

    before = queued()
    thread = httpx.post(server.url + "/threads", json={}).json()["thread_id"]
    run = httpx.post(
        f"{server.url}/threads/{thread}/runs", json={"assistant_id": "agent", "input": {}, "after_seconds": 3600}
    ).json()
    assert queued()["pending"] == before["pending"] + 1
    cancel = httpx.post(f"{server.url}/threads/{thread}/runs/{run['run_id']}/cancel?wait=1")
    assert cancel.status_code in (200, 202, 204), cancel.text
    assert queued()["pending"] == before["pending"]


def test_docs_and_openapi(server: ServerProcess) -> None:
    docs = httpx.get(server.url + "/docs")
    assert docs.status_code == 200 and docs.headers["content-type"].startswith("text/html")
    assert "openapi.json" in docs.text
    # Swagger UI from crongraph's own packaged files, no CDN (an air-gapped host gets a working page).
    assert "cdn." not in docs.text and "https://" not in docs.text
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        served = httpx.get(f"{server.url}/docs/assets/{asset}")
        assert served.status_code == 200 and len(served.content) > 100_000, asset
    spec = httpx.get(server.url + "/openapi.json")
    assert spec.status_code == 200
    paths = spec.json()["paths"]
    for path in (
        "/assistants",
        "/assistants/search",
        "/assistants/{assistant_id}/versions",
        "/threads",
        "/threads/search",
        "/threads/{thread_id}/state",
        "/threads/{thread_id}/history",
        "/threads/{thread_id}/copy",
        "/store/items",
        "/store/namespaces",
        "/runs/crons",
        "/ok",
        "/info",
    ):
        assert path in paths, path


# Exact messages the contract names


@pytest.fixture(scope="module")
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url) as c:
        yield c


def test_contract_error_messages(http: httpx.Client) -> None:
    thread_id = str(uuid.uuid4())
    assert http.post("/threads", json={"thread_id": thread_id}).status_code == 200
    assistant_id = str(uuid.uuid4())
    assert http.post("/assistants", json={"graph_id": "agent", "assistant_id": assistant_id}).status_code == 200
    cases: list[tuple[str, str, Any, int, str]] = [
        ("GET", "/threads/foo", None, 422, "Invalid thread ID: must be a UUID"),
        ("GET", "/assistants/agent", None, 422, "Invalid assistant ID: must be a UUID"),
        (
            "GET",
            f"/threads/{MISSING}",
            None,
            404,
            f"Thread with ID '{MISSING}' not found. Please verify the thread ID.",
        ),
        ("POST", "/threads", {"thread_id": thread_id}, 409, f"Thread with ID {thread_id} already exists"),
        (
            "POST",
            "/assistants",
            {"graph_id": "agent", "assistant_id": AGENT_ID},
            409,
            f"Assistant {AGENT_ID} already exists",
        ),
        (
            "POST",
            "/assistants",
            {"graph_id": "agent", "assistant_id": "x"},
            422,
            "Invalid assistant ID: must be a UUID",
        ),
        ("POST", "/threads", {"thread_id": "x"}, 422, "Invalid thread ID: must be a UUID"),
        ("GET", "/no/such/route", None, 404, "Not Found"),
        ("PUT", "/threads", None, 405, "Method Not Allowed"),
    ]
    for method, path, body, status, message in cases:
        response = http.request(method, path, json=body)
        assert (response.status_code, response.json()) == (status, {"detail": message}), (method, path)
    graph = http.post("/assistants", json={"graph_id": "nope"})
    assert graph.status_code == 404
    assert graph.json()["detail"].startswith("Graph 'nope' not found. Expected one of: ['agent', 'echo'")


def test_malformed_bodies(http: httpx.Client) -> None:
    json_type = {"content-type": "application/json"}
    for path in ("/threads", "/assistants", "/threads/search", "/assistants/search", "/store/items/search"):
        for raw in (b"{bad", b'{"metadata": NaN}', b'{"metadata": {"a": "\\ud800"}}', b"{}}", b"\xff"):
            response = http.post(path, content=raw, headers=json_type)
            assert response.status_code == 422, (path, raw)
            assert response.json() == {"detail": "Invalid JSON in request body"}, (path, raw)
        for raw in (b"[]", b"null", b"3", b'"text"'):
            response = http.post(path, content=raw, headers=json_type)
            assert response.status_code == 422, (path, raw)
            assert "valid dictionary" in response.json()["detail"], (path, raw)
    empty = http.post("/assistants", content=b"", headers=json_type)
    assert empty.status_code == 422 and empty.json()["detail"] == "Field required"
    text = http.post("/threads/count", content=b"{}", headers={"content-type": "text/plain"})
    assert text.status_code == 422 and isinstance(text.json()["detail"], str)


def test_oversize_bodies_are_413(http: httpx.Client) -> None:
    big = b'{"metadata": {"x": "' + b"a" * (16 * 1024 * 1024) + b'"}}'
    declared = http.post("/threads", content=big, headers={"content-type": "application/json"})
    assert declared.status_code == 413
    assert declared.json() == {"detail": "Request body exceeds 16777216 bytes"}

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(big), 1024 * 1024):
            yield big[start : start + 1024 * 1024]

    chunked = http.post("/threads", content=chunks(), headers={"content-type": "application/json"})
    assert chunked.status_code == 413
    # Just under the limit is fine.
    fits = b'{"metadata": {"x": "' + b"a" * (16 * 1024 * 1024 - 64) + b'"}}'
    ok = http.post("/threads/count", content=fits, headers={"content-type": "application/json"})
    assert ok.status_code == 200


# The sweep: a server of its own, a snapshot of everything, and wrong input everywhere


class Sweep:
    def __init__(self, proc: ServerProcess) -> None:
        self.http = httpx.Client(base_url=proc.url, timeout=30)
        created = self.http.post("/threads", json={"metadata": {"role": "fixture"}, "graph_id": "agent"}).json()
        self.thread_id = created["thread_id"]
        run = self.http.post(
            f"/threads/{self.thread_id}/runs/wait",
            json={"assistant_id": "agent", "input": {"messages": [{"role": "user", "content": "hi"}]}},
        )
        assert run.status_code == 200, run.text
        made = self.http.post("/assistants", json={"graph_id": "echo", "metadata": {"role": "fixture"}}).json()
        self.assistant_id = made["assistant_id"]
        assert (
            self.http.put("/store/items", json={"namespace": ["fx"], "key": "k", "value": {"v": 1}}).status_code == 204
        )

    def snapshot(self) -> dict[str, Any]:
        """Everything bad input could have changed."""
        get = self.http.get
        post = self.http.post
        return {
            "threads": post("/threads/search", json={"limit": 1000}).json(),
            "assistants": post("/assistants/search", json={"limit": 1000}).json(),
            "versions": post(f"/assistants/{self.assistant_id}/versions", json={}).json(),
            "state": get(f"/threads/{self.thread_id}/state").json(),
            "history": post(f"/threads/{self.thread_id}/history", json={"limit": 100}).json(),
            "namespaces": post("/store/namespaces", json={}).json(),
            "item": get("/store/items", params={"namespace": "fx", "key": "k"}).json(),
            "crons": post("/runs/crons/search", json={"limit": 1000}).json(),
        }


@pytest.fixture(scope="module")
def sweep(server_factory: Callable[..., ServerProcess]) -> Iterator[Sweep]:
    proc = server_factory()
    s = Sweep(proc)
    yield s
    s.http.close()
    proc.stop()


def assert_refused_well(response: httpx.Response, what: Any) -> None:
    assert response.status_code < 500, (what, response.status_code, response.text)
    if response.status_code >= 400:
        body = response.json()
        assert list(body) == ["detail"], (what, body)
        assert isinstance(body["detail"], str) and body["detail"], (what, body)


WRONG_TYPES: list[Any] = [None, True, 0, -1, 1.5, "text", "", [], ["x"], [1, 2], {}, {"a": 1}, 2**70]

BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/assistants"): {"graph_id": "agent", "name": "n", "metadata": {}},
    ("PATCH", "/assistants/{aid}"): {"name": "n", "metadata": {"m": 1}},
    ("POST", "/assistants/search"): {"limit": 5, "metadata": {"a": 1}},
    ("POST", "/assistants/count"): {"graph_id": "agent"},
    ("POST", "/assistants/{aid}/versions"): {"limit": 5},
    ("POST", "/assistants/{aid}/latest"): {"version": 1},
    ("POST", "/threads"): {"metadata": {"a": 1}},
    ("PATCH", "/threads/{tid}"): {"metadata": {"a": 1}},
    ("POST", "/threads/search"): {"limit": 5, "status": "idle"},
    ("POST", "/threads/count"): {"status": "idle"},
    ("POST", "/threads/prune"): {"thread_ids": [MISSING]},
    ("POST", "/threads/{tid}/state"): {"values": {"count": 1}, "as_node": "step"},
    ("POST", "/threads/{tid}/state/checkpoint"): {"checkpoint": {"checkpoint_id": MISSING}},
    ("POST", "/threads/{tid}/history"): {"limit": 5},
    ("PUT", "/store/items"): {"namespace": ["sweep"], "key": "k", "value": {}},
    ("DELETE", "/store/items"): {"namespace": ["sweep"], "key": "k"},
    ("POST", "/store/items/search"): {"namespace_prefix": ["sweep"]},
    ("POST", "/store/namespaces"): {"prefix": ["sweep"]},
}
FIELDS: dict[tuple[str, str], list[str]] = {
    ("POST", "/assistants"): ["graph_id", "assistant_id", "config", "context", "metadata", "if_exists", "name"],
    ("PATCH", "/assistants/{aid}"): ["graph_id", "config", "context", "metadata", "name", "description"],
    ("POST", "/assistants/search"): ["metadata", "graph_id", "name", "limit", "offset", "sort_by", "select"],
    ("POST", "/assistants/count"): ["metadata", "graph_id", "name"],
    ("POST", "/assistants/{aid}/versions"): ["metadata", "limit", "offset"],
    ("POST", "/assistants/{aid}/latest"): ["version"],
    ("POST", "/threads"): ["thread_id", "metadata", "if_exists", "supersteps", "graph_id", "ttl"],
    ("PATCH", "/threads/{tid}"): ["metadata", "ttl"],
    ("POST", "/threads/search"): ["metadata", "values", "ids", "status", "limit", "offset", "sort_by", "extract"],
    ("POST", "/threads/count"): ["metadata", "values", "status"],
    ("POST", "/threads/prune"): ["thread_ids", "strategy"],
    ("POST", "/threads/{tid}/state"): ["values", "as_node", "checkpoint", "checkpoint_id"],
    ("POST", "/threads/{tid}/state/checkpoint"): ["checkpoint", "subgraphs", "select"],
    ("POST", "/threads/{tid}/history"): ["limit", "before", "metadata", "checkpoint", "select"],
    ("PUT", "/store/items"): ["namespace", "key", "value", "index", "ttl"],
    ("DELETE", "/store/items"): ["namespace", "key"],
    ("POST", "/store/items/search"): ["namespace_prefix", "filter", "limit", "offset", "query"],
    ("POST", "/store/namespaces"): ["prefix", "suffix", "max_depth", "limit", "offset"],
}


def _path(template: str, sweep: Sweep, thread_id: str | None = None, assistant_id: str | None = None) -> str:
    return template.format(tid=thread_id or sweep.thread_id, aid=assistant_id or sweep.assistant_id)


def test_wrong_types_in_every_field_never_get_a_500(sweep: Sweep) -> None:
    for (method, template), base in BODIES.items():
        for field in FIELDS[(method, template)]:
            for value in WRONG_TYPES:
                body = {**base, field: value}
                response = sweep.http.request(method, _path(template, sweep), json=body)
                assert_refused_well(response, (method, template, body))


def test_refused_writes_change_nothing(sweep: Sweep) -> None:
    superstep = [{"updates": [{"values": {"count": 1}, "as_node": "nope"}]}]
    refused: list[tuple[str, str, Any]] = [
        ("POST", "/assistants", {"graph_id": 5}),
        ("POST", "/assistants", {"graph_id": "agent", "metadata": "x"}),
        ("POST", "/assistants", {"graph_id": "agent", "config": []}),
        ("POST", "/assistants", {"graph_id": "agent", "if_exists": "maybe"}),
        ("POST", "/assistants", {"graph_id": "nope"}),
        ("POST", "/assistants", {"graph_id": "agent", "assistant_id": "x"}),
        ("POST", "/assistants", {"graph_id": "agent", "assistant_id": AGENT_ID}),
        ("PATCH", "/assistants/{aid}", {"metadata": []}),
        ("PATCH", "/assistants/{aid}", {"graph_id": "nope", "name": "renamed"}),
        ("PATCH", "/assistants/{aid}", {"name": 5}),
        ("POST", "/assistants/{aid}/latest", {"version": "x"}),
        ("POST", "/assistants/{aid}/latest", {"version": 99}),
        ("POST", "/assistants/{aid}/latest", {"version": 0}),
        ("POST", "/assistants/{aid}/latest", {}),
        ("POST", "/threads", {"thread_id": 5}),
        ("POST", "/threads", {"metadata": "x"}),
        ("POST", "/threads", {"ttl": "x"}),
        ("POST", "/threads", {"ttl": {"ttl": -1}}),
        ("POST", "/threads", {"supersteps": "x"}),
        ("POST", "/threads", {"supersteps": superstep, "graph_id": "agent"}),
        ("POST", "/threads", {"supersteps": [{"updates": [{"values": {"count": 1}}]}]}),
        ("POST", "/threads", {"graph_id": "agent", "supersteps": [{"updates": [{"command": {"bogus": 1}}]}]}),
        ("POST", "/threads", {"graph_id": "agent", "supersteps": [{"updates": []}]}),
        ("POST", "/threads", {"if_exists": "maybe"}),
        ("POST", "/threads", {"thread_id": "{tid}"}),
        ("PATCH", "/threads/{tid}", {"metadata": []}),
        ("PATCH", "/threads/{tid}", {"ttl": {"ttl": 0}}),
        ("POST", "/threads/prune", {"thread_ids": "x"}),
        ("POST", "/threads/prune", {"thread_ids": ["x", "{tid}"]}),
        ("POST", "/threads/prune", {"thread_ids": ["{tid}"], "strategy": "nuke"}),
        ("POST", "/threads/{tid}/state", {"values": {"count": 1}, "as_node": "nope"}),
        ("POST", "/threads/{tid}/state", {"values": [1], "as_node": "step"}),
        ("POST", "/threads/{tid}/state", {"values": {"count": 1}, "as_node": 5}),
        ("POST", "/threads/{tid}/state", {"values": {"count": 1}, "checkpoint_id": MISSING}),
        ("POST", "/threads/{tid}/state", {"values": {"count": 1}, "checkpoint": "x"}),
        ("POST", "/threads/{tid}/state", {"values": {"messages": [5]}}),
        ("POST", "/threads/{tid}/state", {"values": {"messages": [{"role": "nobody"}]}}),
        ("POST", "/threads/{tid}/state", {"values": {"count": 1}, "checkpoint": {"checkpoint_ns": "nope"}}),
        ("PUT", "/store/items", {"namespace": "fx", "key": "k", "value": {"v": 2}}),
        ("PUT", "/store/items", {"namespace": ["fx", "a.b"], "key": "k", "value": {"v": 2}}),
        ("PUT", "/store/items", {"namespace": ["fx"], "key": "k", "value": 2}),
        ("PUT", "/store/items", {"namespace": ["fx"], "key": 5, "value": {"v": 2}}),
        ("PUT", "/store/items", {"namespace": ["fx"], "key": "k", "value": {"v": 2}, "ttl": -5}),
        ("DELETE", "/store/items", {"namespace": ["fx"], "key": 5}),
        ("DELETE", "/store/items", {"namespace": "fx", "key": "k"}),
    ]
    before = sweep.snapshot()
    for method, template, body in refused:
        path = _path(template, sweep)
        if body.get("thread_id") == "{tid}":
            body = {**body, "thread_id": sweep.thread_id}
        if "thread_ids" in body and isinstance(body["thread_ids"], list):
            body = {**body, "thread_ids": [_path(i, sweep) for i in body["thread_ids"]]}
        response = sweep.http.request(method, path, json=body)
        assert 400 <= response.status_code < 500, (method, path, body, response.text)
        assert_refused_well(response, (method, path, body))
    for path in ("/assistants", "/threads", f"/threads/{sweep.thread_id}/state", f"/assistants/{sweep.assistant_id}"):
        method = "PATCH" if path == f"/assistants/{sweep.assistant_id}" else "POST"
        response = sweep.http.request(
            method, path, content=b'{"metadata": {', headers={"content-type": "application/json"}
        )
        assert response.status_code == 422
    assert sweep.snapshot() == before


def test_bad_path_ids_everywhere(sweep: Sweep) -> None:
    before = sweep.snapshot()
    routes = [
        ("GET", "/assistants/{aid}"),
        ("PATCH", "/assistants/{aid}"),
        ("DELETE", "/assistants/{aid}"),
        ("POST", "/assistants/{aid}/versions"),
        ("POST", "/assistants/{aid}/latest"),
        ("GET", "/assistants/{aid}/graph"),
        ("GET", "/assistants/{aid}/schemas"),
        ("GET", "/assistants/{aid}/subgraphs"),
        ("GET", "/threads/{tid}"),
        ("PATCH", "/threads/{tid}"),
        ("DELETE", "/threads/{tid}"),
        ("POST", "/threads/{tid}/copy"),
        ("GET", "/threads/{tid}/state"),
        ("POST", "/threads/{tid}/state"),
        ("POST", "/threads/{tid}/state/checkpoint"),
        ("GET", "/threads/{tid}/history"),
        ("POST", "/threads/{tid}/history"),
    ]
    bodies = {
        "/assistants/{aid}/latest": {"version": 1},
        "/threads/{tid}/state": {"values": {"count": 1}},
        "/threads/{tid}/state/checkpoint": {"checkpoint": {"checkpoint_id": MISSING}},
    }
    for method, template in routes:
        body = bodies.get(template, {}) if method in ("POST", "PATCH") else None
        for bad, status in (("not-a-uuid", 422), ("1234", 422), (MISSING, 404)):
            response = sweep.http.request(method, _path(template, sweep, bad, bad), json=body)
            assert response.status_code == status, (method, template, bad, response.text)
            detail = response.json()["detail"]
            what = "thread" if "{tid}" in template else "assistant"
            if status == 422:
                assert detail == f"Invalid {what} ID: must be a UUID"
            else:
                assert MISSING in detail and "not found" in detail
    bad_checkpoint = sweep.http.get(f"/threads/{sweep.thread_id}/state/nope")
    assert bad_checkpoint.json() == {"detail": "Invalid checkpoint ID: must be a UUID"}
    assert sweep.snapshot() == before


# Keys the fixture graphs, messages, checkpoints and commands use, so that random bodies reach past validation.
KNOWN_KEYS = [
    "messages",
    "count",
    "role",
    "content",
    "type",
    "checkpoint_id",
    "checkpoint_ns",
    "resume",
    "goto",
    "update",
    "updates",
    "values",
    "as_node",
    "command",
    "ttl",
    "strategy",
    "$eq",
    "$gt",
]
KEYS = st.text(max_size=8) | st.sampled_from(KNOWN_KEYS)


def _nested(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    # A named function, not a lambda: hypothesis reads `extend`'s source to check that it recurses, and finding a
    # lambda's source can give up on a loaded machine, which it then reports as a deprecation (an error here).
    return st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3)


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(["agent", "step", "__start__", "values", "idle", "delete", MISSING, AGENT_ID, "a.b", ""]),
    _nested,
    max_leaves=8,
)
ENDPOINTS = sorted(BODIES)


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, str, dict[str, Any]]:
    method, template = draw(st.sampled_from(ENDPOINTS))
    known = FIELDS[(method, template)] + ["junk"]
    body = draw(st.dictionaries(st.sampled_from(known), JSON_VALUES, max_size=4))
    return method, template, body


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(request=requests())
def test_random_bodies_never_get_a_500(sweep: Sweep, request: tuple[str, str, dict[str, Any]]) -> None:
    method, template, body = request
    response = sweep.http.request(method, _path(template, sweep), json=body)
    assert_refused_well(response, request)
