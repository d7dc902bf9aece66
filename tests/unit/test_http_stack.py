"""The per-request layers' fast paths answer exactly as the slow paths they skip: `Cors` as Starlette's
CORSMiddleware for every kind of request (with and without Origin, preflights, a route that sets its own Vary),
`HeaderPolicy.select` with no `includes` as the general selection, and RequestMetrics counts by route template
with its cached children."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from crongraph.config.schema import ConfigurableHeaders, CorsConfig
from crongraph.http.cors import Cors, cors_options
from crongraph.http.headers import HeaderPolicy
from crongraph.observability import metrics
from crongraph.observability.http import RequestMetrics


def plain(_request: Request) -> Response:
    return PlainTextResponse("hi")


def varying(_request: Request) -> Response:
    return PlainTextResponse("hi", headers={"Vary": "Accept-Encoding"})


def app(middleware: Any, options: dict[str, Any]) -> Starlette:
    routes = [Route("/plain", plain, methods=["GET", "POST"]), Route("/varying/{x}", varying)]
    return Starlette(routes=routes, middleware=[Middleware(middleware, **options), Middleware(RequestMetrics)])


REQUESTS: list[tuple[str, str, dict[str, str]]] = [
    ("GET", "/plain", {}),
    ("POST", "/plain", {"content-type": "application/json"}),
    ("GET", "/varying/1", {}),
    ("GET", "/plain", {"origin": "https://studio.example"}),
    ("GET", "/varying/1", {"origin": "https://studio.example"}),
    ("GET", "/plain", {"origin": "https://elsewhere.example"}),
    ("OPTIONS", "/plain", {"origin": "https://studio.example", "access-control-request-method": "POST"}),
    ("OPTIONS", "/plain", {"origin": "https://x.example", "access-control-request-method": "DELETE"}),
    ("GET", "/missing", {}),
]

CONFIGS = [
    cors_options(None),
    cors_options(None, private_network=True),
    cors_options(CorsConfig(allow_origins=["https://studio.example"], allow_credentials=True)),
]


@pytest.mark.parametrize("options", CONFIGS, ids=["default", "dev", "explicit"])
async def test_cors_answers_as_starlettes_middleware(options: dict[str, Any]) -> None:
    ours = httpx.AsyncClient(transport=httpx.ASGITransport(app=app(Cors, options)), base_url="http://t")
    theirs = httpx.AsyncClient(transport=httpx.ASGITransport(app=app(CORSMiddleware, options)), base_url="http://t")
    async with ours, theirs:
        for method, path, headers in REQUESTS:
            a = await ours.request(method, path, headers=headers)
            b = await theirs.request(method, path, headers=headers)
            assert (a.status_code, a.text) == (b.status_code, b.text), (method, path, headers)
            assert sorted(a.headers.multi_items()) == sorted(b.headers.multi_items()), (method, path, headers)


def raw(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.encode(), v.encode()) for k, v in headers.items()]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"user-agent": "x", "x-tenant": "a"},
        {"langsmith-trace": "t1", "baggage": "langsmith-project=p,langsmith-tags=a%2Cb"},
        {"baggage": "langsmith-project=p"},  # baggage without a trace is not copied
    ],
)
def test_header_selection_fast_path_matches_the_general_one(headers: dict[str, str]) -> None:
    default = HeaderPolicy(None)
    # The general path with a pattern that matches nothing: the same answer as the default's fast path.
    general = HeaderPolicy(ConfigurableHeaders(includes=["no-such-header-*"]))
    assert general.copies_any and not default.copies_any
    assert default.select(raw(headers)) == general.select(raw(headers))


async def test_request_metrics_count_by_route_template() -> None:
    def count(method: str, route: str, status: str) -> float:
        value = metrics.REGISTRY.get_sample_value(
            "crongraph_http_requests_total", {"method": method, "route": route, "status": status}
        )
        return value or 0.0

    before = count("GET", "/varying/{x}", "200"), count("GET", "<unmatched>", "404")
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app(Cors, cors_options(None))), base_url="http://t")
    async with client:
        for x in range(3):
            assert (await client.get(f"/varying/{x}")).status_code == 200
        assert (await client.get("/nowhere")).status_code == 404
    assert count("GET", "/varying/{x}", "200") == before[0] + 3
    assert count("GET", "<unmatched>", "404") == before[1] + 1
