"""Running the project's `@auth.authenticate` for one request.

The handler's parameters are filled by name, as the reference does: `request` (a Starlette Request), `headers`
(a dict of the raw header bytes, names lower case), `authorization` (the Authorization header as text, or None),
`method`, `path`, `path_params` (empty: authentication runs before routing), `query_params`, `scope`, `scopes`
(empty) and `user` (None). A parameter with any other name must have a default; the check happens once, at
startup. A synchronous handler runs in the thread pool.

Outcomes: a user (`users.normalize`), or `Refused` with a status, detail and headers: the handler's
`Auth.exceptions.HTTPException` with a 4xx status (that status), or 401 when it returned None. Anything else the handler
raises, or a result that is not a user, propagates (the middleware answers 500 and logs it).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from langgraph_sdk import Auth
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.types import Scope

from crongraph.auth.users import AuthUser, normalize

SUPPORTED = (
    "request",
    "headers",
    "authorization",
    "method",
    "path",
    "path_params",
    "query_params",
    "scope",
    "scopes",
    "user",
)


class Refused(Exception):
    """Authentication said no: answered with `status` and `{"detail": detail}`."""

    def __init__(self, status: int, detail: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = dict(headers or {})


def wanted_parameters(fn: Callable[..., Any]) -> frozenset[str]:
    """The parameters `fn` receives. Raises ValueError naming a required parameter that cannot be filled."""
    params = inspect.signature(fn).parameters.values()
    unknown = [
        p.name
        for p in params
        if p.name not in SUPPORTED
        and p.default is inspect.Parameter.empty
        and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    ]
    if unknown:
        raise ValueError(
            f"@auth.authenticate takes {', '.join(unknown)}, which the server cannot fill; it may take "
            f"{', '.join(SUPPORTED)}"
        )
    return frozenset(p.name for p in params if p.name in SUPPORTED)


class Authenticator:
    """Calls one `@auth.authenticate` handler with the arguments it asks for."""

    def __init__(self, auth: Auth) -> None:
        fn = auth._authenticate_handler
        assert fn is not None
        self._fn = fn
        self._wanted = wanted_parameters(fn)
        self._is_async = inspect.iscoroutinefunction(fn)

    def _arguments(self, scope: Scope) -> dict[str, Any]:
        wanted = self._wanted
        args: dict[str, Any] = {}
        raw_headers: list[tuple[bytes, bytes]] = list(scope.get("headers") or [])
        if "request" in wanted:
            # A websocket handshake has no Request; `headers` and `authorization` serve both.
            args["request"] = Request(scope) if scope["type"] == "http" else None
        if "headers" in wanted:
            args["headers"] = dict(raw_headers)
        if "authorization" in wanted:
            value = next((v for k, v in raw_headers if k == b"authorization"), None)
            args["authorization"] = value.decode("latin-1") if value is not None else None
        if "method" in wanted:
            args["method"] = scope.get("method", "GET")  # a websocket's handshake is a GET
        if "path" in wanted:
            args["path"] = scope["path"]
        if "path_params" in wanted:
            args["path_params"] = dict(scope.get("path_params") or {})
        if "query_params" in wanted:
            args["query_params"] = QueryParams(scope.get("query_string") or b"")
        if "scope" in wanted:
            args["scope"] = scope
        if "scopes" in wanted:
            args["scopes"] = []
        if "user" in wanted:
            args["user"] = None
        return args

    async def __call__(self, scope: Scope) -> tuple[AuthUser, tuple[str, ...]]:
        """The request's user and permissions. Raises Refused, or whatever the handler raised unexpectedly."""
        args = self._arguments(scope)
        try:
            if self._is_async:
                result = await self._fn(**args)
            else:
                result = await run_in_threadpool(self._fn, **args)  # type: ignore[arg-type]
        except Auth.exceptions.HTTPException as exc:
            if not 400 <= exc.status_code < 500:
                raise  # a 5xx of its own is a failure like any other: answered 500, logged
            raise Refused(exc.status_code, str(exc.detail), exc.headers) from None
        if result is None:
            raise Refused(401, "Unauthorized")
        return normalize(result)
