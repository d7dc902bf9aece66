"""Routes whose handlers return plain data are answered with our orjson JSONResponse directly, and whose JSON
bodies are parsed with orjson.

FastAPI would otherwise validate and re-encode every return value through pydantic (slow for large graph
states, and it writes UTC as "Z" where the reference writes "+00:00"). Parsing with orjson, as the reference does,
refuses what the stdlib parser lets through but nothing downstream can store: NaN, Infinity and lone surrogates
become 422 "Invalid JSON in request body", and integers beyond 64 bits become floats instead of failing later.
Bodies nested deeper than crongraph can send back, or holding NUL characters, are refused with 422 naming the
limit (serde.loads_request), before any handler runs."""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request
from fastapi.routing import APIRoute
from starlette.responses import Response

from crongraph import serde
from crongraph.api.responses import JSONResponse


class _OrjsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            # orjson.JSONDecodeError subclasses json.JSONDecodeError, which FastAPI turns into a 422; FastAPI
            # re-raises an HTTPException as it is (any other error would become a generic 400).
            try:
                self._json = serde.loads_request(await self.body())
            except serde.UnacceptableJson as exc:
                raise HTTPException(status_code=422, detail=str(exc)) from None
        return self._json


def _answering_json(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(endpoint)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = await endpoint(*args, **kwargs)
        return result if isinstance(result, Response) else JSONResponse(result)

    return wrapper


class JSONRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        kwargs["response_model"] = None
        super().__init__(path, _answering_json(endpoint), **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def parse_with_orjson(request: Request) -> Response:
            return await handler(_OrjsonRequest(request.scope, request.receive))

        return parse_with_orjson
