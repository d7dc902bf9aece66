"""Routes whose handlers return plain data are answered with our orjson JSONResponse directly.

FastAPI would otherwise validate and re-encode every return value through pydantic (slow for large graph
states, and it writes UTC as "Z" where the reference writes "+00:00")."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from fastapi.routing import APIRoute
from starlette.responses import Response

from crongraph.api.responses import JSONResponse


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
