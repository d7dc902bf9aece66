"""How crongraph/http/custom_app.py composes the user's app with the API, without a server: route precedence (the
reference's), the lifespans' nesting, the middleware order, and `mount_prefix`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from crongraph.http.custom_app import compose


def answer(name: str) -> Route:
    path = "/" if name == "root" else f"/{name}"

    async def endpoint(request: Request) -> JSONResponse:
        return JSONResponse({"by": request.app.state.owner, "path": request.url.path})

    return Route(path, endpoint, methods=["GET"])


def make_api() -> Starlette:
    api = Starlette(routes=[answer(n) for n in ("root", "ok", "metrics", "info", "threads")])
    api.state.owner = "api"
    return api


def make_user(events: list[str], middleware: list[Middleware] | None = None) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        events.append("user started")
        yield
        events.append("user stopped")

    user = Starlette(routes=[answer(n) for n in ("ok", "info", "mine")], lifespan=lifespan, middleware=middleware)
    user.state.owner = "user"
    return user


def ours(events: list[str]) -> Any:
    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        events.append("crongraph started")
        yield
        events.append("crongraph stopped")

    return lifespan


class Tag:
    """Appends its name to the `x-order` response header: the header lists middleware innermost first."""

    def __init__(self, app: ASGIApp, name: str) -> None:
        self.app, self.name = app, name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def tagged(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = dict(message["headers"])
                order = headers.get(b"x-order", b"").decode()
                headers[b"x-order"] = f"{order},{self.name}".strip(",").encode()
                message["headers"] = list(headers.items())
            await send(message)

        await self.app(scope, receive, tagged if scope["type"] == "http" else send)


def test_user_routes_come_after_the_health_routes_and_before_the_api() -> None:
    events: list[str] = []
    app = compose(make_api(), make_user(events), [], ours(events), order=None, mount_prefix=None, meta=True)
    with TestClient(app) as client:
        assert client.get("/ok").json()["by"] == "api"  # unshadowable
        assert client.get("/metrics").json()["by"] == "api"
        assert client.get("/info").json()["by"] == "user"  # shadowed
        assert client.get("/mine").json()["by"] == "user"
        assert client.get("/threads").json()["by"] == "api"
        assert client.get("/").json()["by"] == "api"
        assert client.get("/nowhere").status_code == 404
        assert events == ["crongraph started", "user started"]
    assert events[2:] == ["user stopped", "crongraph stopped"]


def test_with_meta_disabled_the_user_may_answer_ok() -> None:
    app = compose(make_api(), make_user([]), [], ours([]), order=None, mount_prefix=None, meta=False)
    with TestClient(app) as client:
        assert client.get("/ok").json()["by"] == "user"


def test_middleware_order() -> None:
    for order, expected in (
        (None, "crongraph,user"),
        ("middleware_first", "crongraph,user"),
        ("auth_first", "user,crongraph"),
    ):
        user = make_user([], middleware=[Middleware(Tag, name="user")])
        app = compose(
            make_api(), user, [Middleware(Tag, name="crongraph")], ours([]), order=order, mount_prefix=None, meta=True
        )
        with TestClient(app) as client:
            assert client.get("/threads").headers["x-order"] == expected, order


def test_mount_prefix_moves_every_route_but_keeps_health_at_the_root() -> None:
    events: list[str] = []
    app = compose(make_api(), make_user(events), [], ours(events), order=None, mount_prefix="/api", meta=True)
    with TestClient(app) as client:
        assert client.get("/api/threads").json() == {"by": "api", "path": "/api/threads"}
        assert client.get("/api/mine").json()["by"] == "user"
        assert client.get("/threads").status_code == 404
        assert client.get("/ok").json()["by"] == "api" and client.get("/").json()["by"] == "api"
        assert events == ["crongraph started", "user started"]


def test_without_a_user_app_the_api_is_served_with_crongraphs_middleware() -> None:
    events: list[str] = []
    app = compose(
        make_api(), None, [Middleware(Tag, name="crongraph")], ours(events), order=None, mount_prefix=None, meta=True
    )
    with TestClient(app) as client:
        response = client.get("/info")
        assert response.json()["by"] == "api" and response.headers["x-order"] == "crongraph"
        assert events == ["crongraph started"]
