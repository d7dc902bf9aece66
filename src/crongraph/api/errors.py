"""The one place errors become HTTP: domain errors to statuses, validation errors to a readable sentence, and
anything unexpected to a 500 that still has the contract's shape (and is logged with its traceback).

Unexpected errors are answered by `InternalErrors`, a middleware inside Starlette's ServerErrorMiddleware, and not
by an `Exception` handler: Starlette re-raises after such a handler has answered, and uvicorn then closes the
connection, so a client's next request on the same keep-alive connection failed too. Only a response already
under way (a stream cut mid-body) is still ended by closing the connection: that is the only way HTTP/1.1 can say
the body is incomplete.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crongraph.api.responses import JSONResponse
from crongraph.errors import BadRequest, Conflict, CrongraphError, Denied, InvalidInput, NotFound, Unavailable

log = logging.getLogger("crongraph.api")

_STATUS = {NotFound: 404, Conflict: 409, InvalidInput: 422, BadRequest: 400, Unavailable: 503}


def detail(status: int, message: str) -> Response:
    return JSONResponse({"detail": message or "unknown error"}, status_code=status)


def _location(loc: tuple[Any, ...]) -> str:
    # Parts are shortened: a location can hold a client's dict key, and a detail must not echo kilobytes.
    parts = [_short(str(p)) for p in loc if p not in ("body", "query", "path")]
    # Union members appear in the location as type names; they say nothing to a user.
    parts = [
        p for p in parts if not (p[:1].islower() and ("[" in p or p in {"str", "int", "float", "bool", "dict", "list"}))
    ]
    return ".".join(parts)


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def validation_message(errors: list[dict[str, Any]]) -> str:
    if any(e.get("type") == "json_invalid" for e in errors):
        return "Invalid JSON in request body"
    seen: list[str] = []
    for error in errors:
        where = _location(tuple(error.get("loc", ())))
        msg = error.get("msg", "invalid value")
        text = f"{where}: {msg}" if where else msg
        if text not in seen:
            seen.append(text)
    return "; ".join(seen[:5])


def internal_error(request_line: str) -> Response:
    """A 500 with a generic detail; the traceback goes to the log under an id the detail repeats."""
    incident = uuid.uuid4().hex[:12]
    log.exception("unhandled error %s on %s", incident, request_line)
    return detail(500, f"Internal server error (incident {incident}); the server log has the details.")


class InternalErrors:
    """Answers an unexpected exception with a 500 and keeps the connection (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            if started:
                raise
            response = internal_error(f"{scope.get('method', '')} {scope.get('path', '')}")
            await response(scope, receive, send)


def install(app: FastAPI) -> None:
    """Error handlers, and the `InternalErrors` middleware (added here so that it sits inside Starlette's
    ServerErrorMiddleware and outside its ExceptionMiddleware, whatever else app.py adds later)."""
    app.add_middleware(InternalErrors)

    @app.exception_handler(CrongraphError)
    async def _domain(_request: Request, exc: CrongraphError) -> Response:
        if isinstance(exc, Denied):
            response = detail(exc.status, exc.detail)
            response.headers.update(exc.headers)
            return response
        return detail(_STATUS.get(type(exc), 400), exc.detail)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> Response:
        return detail(422, validation_message(list(exc.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 204:
            return Response(status_code=204)
        return detail(exc.status_code, exc.detail if isinstance(exc.detail, str) else "unknown error")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        # A backstop for errors raised outside InternalErrors (in a middleware app.py adds around it).
        return internal_error(f"{request.method} {request.url.path}")
