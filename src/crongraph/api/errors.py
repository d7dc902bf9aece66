"""The one place errors become HTTP: domain errors to statuses, validation errors to a readable sentence, and
anything unexpected to a 500 that still has the contract's shape (and is logged with its traceback)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from crongraph.api.responses import JSONResponse
from crongraph.errors import BadRequest, Conflict, CrongraphError, InvalidInput, NotFound

log = logging.getLogger("crongraph.api")

_STATUS = {NotFound: 404, Conflict: 409, InvalidInput: 422, BadRequest: 400}


def detail(status: int, message: str) -> Response:
    return JSONResponse({"detail": message or "unknown error"}, status_code=status)


def _location(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    # Union members appear in the location as type names; they say nothing to a user.
    parts = [
        p for p in parts if not (p[:1].islower() and ("[" in p or p in {"str", "int", "float", "bool", "dict", "list"}))
    ]
    return ".".join(parts)


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


def install(app: FastAPI) -> None:
    @app.exception_handler(CrongraphError)
    async def _domain(_request: Request, exc: CrongraphError) -> Response:
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
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return detail(500, f"Internal error: {type(exc).__name__}. The server log has the details.")
