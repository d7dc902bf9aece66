"""create_app(): the FastAPI application, its routers (less those `http.disable_*` removes), its limits, and a
lifespan that starts the runtime; composed with the project's `http` settings (CORS, configurable headers, the
user's own app, a mount prefix) by `crongraph/http/`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import ModuleType

from fastapi import APIRouter, FastAPI
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crongraph import __version__
from crongraph.api import assistants, crons, docs, errors, meta, runs, store, thread_stream, threads
from crongraph.api.responses import JSONResponse
from crongraph.auth.setup import auth_middleware
from crongraph.config import EXAMPLE, ProjectConfig
from crongraph.config.schema import HttpConfig
from crongraph.dashboard import router as dashboard_router
from crongraph.http.cors import Cors, cors_options
from crongraph.http.custom_app import compose, load_app
from crongraph.http.headers import ConfigurableHeadersMiddleware, HeaderPolicy
from crongraph.observability.http import RequestMetrics
from crongraph.protocols import install as install_protocols
from crongraph.runtime import Runtime


class BodyLimit:
    """Refuse bodies over the limit with 413: before reading them (Content-Length), or once the chunks read so
    far pass it (chunked uploads). The body is read here in full, so the 413 cannot be swallowed by the
    framework's body parsing (which would answer 400), then replayed to the app; later receive() calls, such as
    a streaming route waiting for the client to disconnect, go to the server as usual."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await self._too_large(send)
                return
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                # The client left before sending its body; nothing to answer.
                return
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.limit:
                await self._too_large(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, send: Send) -> None:
        response = JSONResponse({"detail": f"Request body exceeds {self.limit} bytes"}, status_code=413)
        await response({"type": "http"}, _empty_receive, send)


async def _empty_receive() -> Message:
    return {"type": "http.disconnect"}


def _routers(http: HttpConfig) -> list[ModuleType]:
    """The API's routers, less those `http.disable_*` removes (the reference's grouping: `disable_runs` removes
    runs and crons, and the thread-stream protocol, which creates runs; `disable_event_streaming` only the latter)."""
    # Routes are matched in order, one pattern at a time: the busiest routers (runs, crons) go first. No two
    # routers' paths overlap, so the order changes only how soon a request finds its route.
    chosen: list[ModuleType] = []
    if not http.disable_runs:
        chosen += [runs, crons]
    if not http.disable_threads:
        chosen.append(threads)
    if not http.disable_assistants:
        chosen.append(assistants)
    if not http.disable_store:
        chosen.append(store)
    if not (http.disable_runs or http.disable_event_streaming):
        chosen.append(thread_stream)
    if not http.disable_meta:
        chosen.append(meta)
    return chosen


def _include(api: FastAPI, router: APIRouter) -> None:
    """Add `router`'s routes to `api` as routes of its own. FastAPI's `include_router` keeps a router as one lazy
    entry whose every candidate route is matched through per-request bookkeeping (scope keys saved and restored,
    a routes-version walk): for a path near the end of the API that was half of a trivial request's CPU. Our
    routers carry nothing to combine (no prefix, dependencies or callbacks; their tags are on their routes), so
    their routes can be the app's own, matched by Starlette's plain loop in the same order."""
    assert not router.prefix and not router.dependencies and not router.callbacks, "combine them first"
    api.router.routes.extend(router.routes)


def _global_middleware(http: HttpConfig, private_network: bool) -> list[Middleware]:
    """crongraph's middleware around every route (the user's included), outermost first."""
    stack = [Middleware(Cors, **cors_options(http.cors, private_network=private_network))]
    stack.append(Middleware(ConfigurableHeadersMiddleware, policy=HeaderPolicy(http.configurable_headers)))
    return stack


def create_app(runtime: Runtime, project: ProjectConfig | None = None, *, private_network: bool = False) -> Starlette:
    """The ASGI app for `project`'s `http` settings (none: the defaults). `private_network` (for `crongraph dev`)
    answers preflights with Access-Control-Allow-Private-Network. Raises ConfigError when `http.app` cannot be
    loaded."""
    project = project or EXAMPLE
    http = project.http

    @asynccontextmanager
    async def lifespan(_app: object) -> AsyncIterator[None]:
        await runtime.start()
        api.state.runtime = runtime
        try:
            async with protocols_running():
                yield
        finally:
            await runtime.stop()

    meta_on = not http.disable_meta
    api = FastAPI(
        title="crongraph",
        version=__version__,
        description="The LangGraph Platform HTTP API, self-hosted, with exactly-once crons.",
        default_response_class=JSONResponse,
        # disable_meta removes /docs and /openapi.json with /info and /metrics, as in the reference.
        openapi_url="/openapi.json" if meta_on else None,
        # /docs is served from packaged assets (api/docs.py), never from a CDN; ReDoc (CDN only) is not served.
        docs_url=None,
        redoc_url=None,
    )
    errors.install(api)
    if meta_on:
        docs.install(api)
    for module in _routers(http):
        _include(api, module.router)
    if not http.disable_runs:
        # The cron dashboard (/dashboard) reads crons through the runs/crons API, so it goes with it.
        _include(api, dashboard_router)
    # MCP and A2A (http.disable_mcp / disable_a2a); the MCP SDK's task group lives as long as the app.
    protocols_running = install_protocols(api, http)

    if meta_on:

        @api.get("/", include_in_schema=False)
        async def root() -> dict[str, object]:
            return {"ok": True, "services": {}}

    else:
        # The reference keeps /ok with meta disabled, so that operators can tell the server is up.
        @api.get("/ok", include_in_schema=False)
        async def ok() -> dict[str, object]:
            return {"ok": True}

    api.add_middleware(BodyLimit, limit=runtime.settings.max_body_bytes)
    name = str(project.path) if project.path else "bundled example"
    user = load_app(http.app, project.base_dir, name) if http.app else None
    return compose(
        api,
        user,
        # Outermost: requests are counted and logged whatever answers them (CORS, the body limit, the user's app).
        # Authentication (langgraph.json `auth`) is innermost of ours: inside CORS, so preflights need no
        # credentials; `middleware_order` puts the user's middleware outside it (default) or inside it.
        [
            Middleware(RequestMetrics, access_log=bool(runtime.settings.access_log)),
            *_global_middleware(http, private_network),
            *auth_middleware(project, api, user),
        ],
        lifespan,
        order=http.middleware_order,
        mount_prefix=http.mount_prefix,
        meta=meta_on,
    )
