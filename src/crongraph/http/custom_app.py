"""`http.app` and `http.mount_prefix`: the user's Starlette/FastAPI app served beside crongraph's API, with the
reference's precedence.

Routes are matched in this order (as langgraph-api 0.16.7's server.py does):
1. crongraph's `/ok`, `/metrics`, `/docs`, `/openapi.json`: a user route cannot shadow them;
2. the user's routes: they shadow every other built-in route (`/`, `/info`, `/assistants/...`, `/threads/...`);
3. crongraph's API (mounted at "" behind the user's routes: it also answers unknown paths with its 404).

The user's app becomes the outer app, so its own middleware, exception handlers and state apply to its routes; its
lifespan runs inside crongraph's (the server is started before the user's startup code and stopped after its
shutdown code). Middleware order: with `middleware_order` "middleware_first" (the default) the user's middleware
wraps crongraph's (CORS, headers); with "auth_first" crongraph's wraps the user's.

With `mount_prefix` every route moves under the prefix, except `/`, `/ok` and `/metrics`, which stay at the root
too for health checks.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp

from crongraph.config import ConfigError
from crongraph.config.imports import import_location

Lifespan = Callable[[Any], AbstractAsyncContextManager[Any]]
UNSHADOWABLE = ("/ok", "/metrics", "/docs", "/openapi.json")
ROOT_PATHS = ("/", "/ok", "/metrics")


def load_app(spec: str, base_dir: Path, config_name: str) -> Starlette:
    """Import `spec` ("./file.py:var" relative to the project, or "package.module:var"). Raises ConfigError."""
    location, _, variable = spec.rpartition(":")
    where = f'{config_name}: "http.app" ({spec})'
    module = import_location(location, base_dir, where, "crongraph_user_app_")
    app = getattr(module, variable, None)
    if not isinstance(app, Starlette):
        found = "nothing" if app is None else f"a {type(app).__name__}"
        raise ConfigError(f"{where}: '{variable}' is {found}; expected a Starlette or FastAPI application.")
    return app


def _forward(api: ASGIApp, paths: tuple[str, ...]) -> list[BaseRoute]:
    # A Route whose endpoint is an ASGI app hands the request over unchanged (any method).
    return [Route(path, endpoint=api) for path in paths]


def combine(ours: Lifespan, theirs: Lifespan, user_app: Starlette) -> Lifespan:
    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[Any]:
        async with ours(app) as our_state, theirs(user_app) as their_state:
            state = {**(our_state or {}), **(their_state or {})}
            yield state or None

    return lifespan


def ordered(ours: list[Middleware], theirs: list[Middleware], order: str | None) -> list[Middleware]:
    """First in the list is outermost."""
    return [*ours, *theirs] if order == "auth_first" else [*theirs, *ours]


def compose(
    api: Starlette,
    user: Starlette | None,
    middleware: list[Middleware],
    lifespan: Lifespan,
    *,
    order: str | None,
    mount_prefix: str | None,
    meta: bool,
) -> Starlette:
    """The app to serve: `api` alone, or composed with `user` and/or under `mount_prefix` (see the module doc).
    `middleware` is crongraph's global middleware (outermost first); `lifespan` starts and stops crongraph."""
    theirs: list[Middleware] = []
    app = api
    if user is not None:
        theirs = list(user.user_middleware)
        user.user_middleware = []
        lifespan = combine(lifespan, user.router.lifespan_context, user)
        forwarded = _forward(api, UNSHADOWABLE) if meta else []
        user.router.routes = [*forwarded, *user.router.routes, Mount("", app=api)]
        app = user
    stack = ordered(middleware, theirs, order)
    if mount_prefix:
        return Starlette(
            routes=[*_forward(api, ROOT_PATHS), Mount(mount_prefix, app=app)], middleware=stack, lifespan=lifespan
        )
    app.user_middleware = [*stack, *(app.user_middleware if app is api else [])]
    app.router.lifespan_context = lifespan
    return app
