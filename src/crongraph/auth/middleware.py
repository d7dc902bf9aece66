"""Authentication for every protected route: runs `@auth.authenticate` and serves the request as its user.

Which requests are authenticated, as in the reference:
- the health and description routes are public: `/`, `/ok`, `/info`, `/metrics`, `/docs`, `/openapi.json`
  (and `/redoc`, and the `/docs/assets/` files), at the root or under `http.mount_prefix`, and the dashboard's page
  shells and static files (`/dashboard`, `/dashboard/crons/{id}`, `/dashboard/static/…`: no data; their script
  calls the API with a token);
- the project's own routes (`http.app`) only with `http.enable_custom_route_auth` (their handlers then find the
  user in `request.user` and the permissions in `request.auth.scopes`);
- every other path: assistants, threads, runs, crons, the store, the thread-stream protocol, and unknown paths
  (which are answered 404 only once authenticated), websockets included.

A refusal is answered with its status (401 without credentials) and `{"detail": ...}`; an authenticate handler
that fails unexpectedly with a 500 whose detail names only an incident id (the traceback goes to the log). The
middleware sits inside CORS, so preflights are answered without credentials.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from starlette.authentication import AuthCredentials
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

from crongraph.api.errors import detail, internal_error
from crongraph.auth.authenticate import Authenticator, Refused
from crongraph.auth.context import Caller, acting_as
from crongraph.auth.handlers import Handlers

log = logging.getLogger("crongraph.auth")

PUBLIC = frozenset({"/", "/ok", "/info", "/metrics", "/docs", "/docs/oauth2-redirect", "/openapi.json", "/redoc"})
# The dashboard's page shells and static files hold no data: their script reads it through the API with the token
# the reader pastes (a browser navigation cannot send one), so they must load before it is given.
PUBLIC_DASHBOARD = ("/dashboard", "/dashboard/", "/dashboard/crons/", "/dashboard/static/")
# The files of the /docs page (Swagger UI, packaged with crongraph), public like the page itself.
PUBLIC_PREFIXES = ("/docs/assets/",)


class AuthMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        authenticator: Authenticator,
        handlers: Handlers,
        mount_prefix: str | None = None,
        custom_routes: Sequence[BaseRoute] = (),
        custom_route_auth: bool = False,
    ) -> None:
        self.app = app
        self.authenticator = authenticator
        self.handlers = handlers
        self.prefix = (mount_prefix or "").rstrip("/")
        self.custom_routes = list(custom_routes)
        self.custom_route_auth = custom_route_auth

    def _route_path(self, path: str) -> str:
        if self.prefix and (path == self.prefix or path.startswith(self.prefix + "/")):
            return path[len(self.prefix) :] or "/"
        return path

    def _is_custom(self, scope: Scope, route_path: str) -> bool:
        probe = {**scope, "path": route_path, "root_path": ""}
        return any(route.matches(probe)[0] is Match.FULL for route in self.custom_routes)

    def _protected(self, scope: Scope) -> bool:
        route_path = self._route_path(scope["path"])
        if self.custom_routes and self._is_custom(scope, route_path):
            return self.custom_route_auth
        if route_path in PUBLIC_DASHBOARD[:2] or route_path.startswith(PUBLIC_DASHBOARD[2:] + PUBLIC_PREFIXES):
            return False
        return route_path not in PUBLIC

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not self._protected(scope):
            await self.app(scope, receive, send)
            return
        try:
            user, permissions = await self.authenticator(scope)
        except Refused as refused:
            await self._refuse(scope, receive, send, refused.status, refused.detail, refused.headers)
            return
        except Exception:
            if scope["type"] == "websocket":
                log.exception("authenticating a websocket on %s failed", scope.get("path"))
                await send({"type": "websocket.close", "code": 1011, "reason": "Internal server error"})
                return
            response = internal_error(f"{scope.get('method', '')} {scope.get('path', '')} (authenticate)")
            await response(scope, receive, send)
            return
        scope["user"] = user
        scope["auth"] = AuthCredentials(list(permissions))
        with acting_as(Caller(user, permissions, self.handlers)):
            await self.app(scope, receive, send)

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, status: int, message: str, headers: dict[str, str]
    ) -> None:
        if scope["type"] == "websocket":
            # Closing before accepting refuses the handshake (403); 1008 is "policy violation".
            await send({"type": "websocket.close", "code": 1008, "reason": message[:120]})
            return
        response = detail(status, message)
        response.headers.update(headers)
        await response(scope, receive, send)
