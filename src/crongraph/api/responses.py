"""JSON responses through orjson (serde), with the contract's timestamp form."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse as StarletteJSONResponse

from crongraph import serde


class JSONResponse(StarletteJSONResponse):
    def render(self, content: Any) -> bytes:
        return serde.dumps(content)
