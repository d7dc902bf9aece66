"""A project's `http` settings and startup messages, through a real crongraph process: the user's custom app (and
the reference's precedence between its routes and the built-in ones), CORS as configured and by default, request
headers reaching the graph's config, a `disable_*` switch, the project's .env, and the startup warnings."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.errors import NotFoundError

from tests.support.server import ROOT, ServerProcess

PROJECT = ROOT / "tests" / "fixtures" / "http_project" / "langgraph.json"
ALLOWED = "https://allowed.example"


@pytest.fixture(scope="module")
def project(server_factory: Callable[..., ServerProcess]) -> ServerProcess:
    return server_factory(config=PROJECT)


@pytest.fixture
async def http(project: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=project.url, timeout=30) as client:
        yield client


def preflight(origin: str, method: str = "POST", **extra: str) -> dict[str, str]:
    return {"Origin": origin, "Access-Control-Request-Method": method, **extra}


# The custom app


async def test_the_custom_app_answers_with_its_middleware_and_lifespan(http: httpx.AsyncClient) -> None:
    response = await http.get("/custom/hello")
    assert response.status_code == 200
    assert response.json() == {"hello": "world", "lifespan": ["started"]}
    assert response.headers["x-custom-middleware"] == "yes"


async def test_user_routes_shadow_built_in_routes_except_the_health_and_docs_ones(http: httpx.AsyncClient) -> None:
    # As in the reference: /info (and /, /assistants/..., ...) can be replaced by the user's app; /ok, /metrics,
    # /docs and /openapi.json cannot.
    assert (await http.get("/info")).json() == {"custom_info": True}
    ok = await http.get("/ok")
    assert ok.status_code == 200 and ok.json().get("ok") is True and "shadowed" not in ok.json()
    assert (await http.get("/openapi.json")).json()["info"]["title"] == "crongraph"
    # The built-in API still answers behind the user's routes, wrapped in the user's middleware like the rest.
    search = await http.post("/assistants/search", json={})
    assert search.status_code == 200 and [a["graph_id"] for a in search.json()] == ["agent"]
    assert search.headers["x-custom-middleware"] == "yes"


# CORS as configured


async def test_a_preflight_from_a_configured_origin_is_allowed(http: httpx.AsyncClient) -> None:
    response = await http.options(
        "/runs/wait", headers=preflight(ALLOWED, "POST", **{"Access-Control-Request-Headers": "content-type"})
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert set(response.headers["access-control-allow-methods"].split(", ")) == {"GET", "POST"}
    assert response.headers["access-control-max-age"] == "120"


async def test_a_preflight_from_another_origin_or_for_another_method_is_refused(http: httpx.AsyncClient) -> None:
    other = await http.options("/runs/wait", headers=preflight("https://elsewhere.example"))
    assert other.status_code == 400 and "access-control-allow-origin" not in other.headers
    delete = await http.options("/threads/x", headers=preflight(ALLOWED, "DELETE"))
    assert delete.status_code == 400


async def test_a_simple_request_carries_cors_headers_only_for_the_configured_origin(http: httpx.AsyncClient) -> None:
    allowed = await http.post("/assistants/search", json={}, headers={"Origin": ALLOWED})
    assert allowed.headers["access-control-allow-origin"] == ALLOWED
    assert allowed.headers["access-control-expose-headers"] == "content-location"
    other = await http.post("/assistants/search", json={}, headers={"Origin": "https://elsewhere.example"})
    assert other.status_code == 200 and "access-control-allow-origin" not in other.headers


# CORS by default (no `cors` key): any origin, as the reference, so Studio and Agent Chat UI connect


async def test_without_cors_config_browser_tools_on_any_origin_are_allowed(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        for origin in ("https://smith.langchain.com", "http://localhost:3000"):
            headers = preflight(origin, "POST", **{"Access-Control-Request-Headers": "content-type,x-api-key"})
            response = await client.options("/threads/search", headers=headers)
            assert response.status_code == 200, response.text
            assert response.headers["access-control-allow-origin"] == "*"
            assert response.headers["access-control-allow-headers"] == "content-type,x-api-key"
            assert "access-control-allow-credentials" not in response.headers
        simple = await client.post("/threads/search", json={}, headers={"Origin": "https://smith.langchain.com"})
        assert simple.headers["access-control-allow-origin"] == "*"
        assert "content-location" in simple.headers["access-control-expose-headers"]


async def test_dev_answers_private_network_preflights_as_langgraph_dev(
    server_factory: Callable[..., ServerProcess],
) -> None:
    # Chrome asks before a public page (Studio) may call the loopback; `langgraph dev` allows it, `serve` does not.
    dev = server_factory(command="dev")
    headers = preflight("https://smith.langchain.com", **{"Access-Control-Request-Private-Network": "true"})
    async with httpx.AsyncClient(base_url=dev.url, timeout=30) as client:
        response = await client.options("/runs/wait", headers=headers)
    assert response.status_code == 200
    assert response.headers["access-control-allow-private-network"] == "true"


# configurable_headers, disable_store, .env


async def test_configured_request_headers_reach_the_graphs_config(project: ServerProcess) -> None:
    headers = {"x-user-id": "u-1", "x-user-secret": "hidden", "x-other": "o", "authorization": "Bearer t"}
    client = get_client(url=project.url, headers=headers)
    try:
        stateless = await client.runs.wait(None, "agent", input={})
        thread = await client.threads.create()
        on_thread = await client.runs.wait(thread["thread_id"], "agent", input={})
    finally:
        await client.http.client.aclose()
    for result in (stateless, on_thread):
        seen = result["headers"]
        assert seen["x-user-id"] == "u-1"
        assert seen["user-agent"].startswith("langgraph-sdk")  # included by the fixture's pattern
        assert "x-user-secret" not in seen and "x-other" not in seen and "authorization" not in seen


async def test_a_disabled_router_is_not_mounted(project: ServerProcess) -> None:
    client = get_client(url=project.url)
    try:
        with pytest.raises(NotFoundError):
            await client.store.put_item(["notes"], "a", {"text": "x"})
        assert len(await client.assistants.search()) == 1
    finally:
        await client.http.client.aclose()


async def test_the_projects_env_file_is_loaded_by_dotenv(project: ServerProcess) -> None:
    client = get_client(url=project.url)
    try:
        result: dict[str, Any] = await client.runs.wait(None, "agent", input={})  # type: ignore[assignment]
    finally:
        await client.http.client.aclose()
    assert result["env"] == {
        "HTTP_FIXTURE_GREETING": "hello",
        "HTTP_FIXTURE_QUOTED": "two words # not a comment",
        "HTTP_FIXTURE_EXPANDED": "hello-world",
        "HTTP_FIXTURE_EXPORTED": "single quoted",
    }


# Startup messages


def test_startup_warns_about_unknown_and_unhonoured_keys(project: ServerProcess) -> None:
    log = project.log()
    assert 'WARNING: unknown key "grafs" ignored (did you mean "graphs"?)' in log
    # Custom auth (auth.path) is honoured and tested in test_auth.py; this project has none, so no warning about it.
    assert "This server is OPEN" not in log
    assert "build-only keys, ignored by crongraph" in log and "python_version" in log


def test_a_malformed_value_stops_the_server_with_one_line_naming_key_and_file(tmp_path: Path) -> None:
    config = tmp_path / "langgraph.json"
    config.write_text('{"graphs": {"agent": "./a.py:graph"}, "http": {"cors": {"allow_origins": "*"}}}')
    done = subprocess.run(
        [sys.executable, "-m", "crongraph", "serve", "--port", "0", "--config", str(config), "--db", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert str(config) in lines[0] and '"http.cors.allow_origins": Input should be a valid list' in lines[0]
