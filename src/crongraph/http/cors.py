"""Cross-origin access: Starlette's CORSMiddleware with `http.cors`, or, when `cors` is not configured, the
reference's default, which lets browser tools on any origin (LangGraph Studio, Agent Chat UI) use the API:
every origin, method and header, without credentials, exposing the pagination and Content-Location headers.

In development (`crongraph dev`, as `langgraph dev` does), a preflight asking for private network access is
answered `Access-Control-Allow-Private-Network: true`, which Chrome requires before a public page (Studio) may call
a server on the loopback or a private network. (Starlette refuses such a preflight unless allowed.)

`Cors` is Starlette's middleware with a cheaper path for the requests most clients (SDKs, curl, other servers)
send: no `Origin` header. Starlette parses every header and rebuilds the response's headers to add
`Vary: Origin`; here the raw names are scanned once and the header appended, with the same result.
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.types import Message, Receive, Scope, Send

from crongraph.config.schema import CorsConfig

DEFAULT_EXPOSE = ["x-pagination-total", "x-pagination-next", "content-location"]


def cors_options(cors: CorsConfig | None, *, private_network: bool = False) -> dict[str, Any]:
    """Keyword arguments for starlette.middleware.cors.CORSMiddleware."""
    if cors is None:
        return {
            "allow_private_network": private_network,
            "allow_origins": ["*"],
            "allow_credentials": False,
            "allow_methods": ["*"],
            "allow_headers": ["*"],
            "expose_headers": DEFAULT_EXPOSE,
        }
    return {
        "allow_private_network": private_network,
        "allow_origins": cors.allow_origins,
        "allow_methods": cors.allow_methods,
        "allow_headers": cors.allow_headers,
        "allow_credentials": cors.allow_credentials,
        "allow_origin_regex": cors.allow_origin_regex,
        "expose_headers": cors.expose_headers,
        "max_age": cors.max_age,
    }


_ORIGIN = b"origin"
_VARY = b"vary"


class Cors(CORSMiddleware):
    """CORSMiddleware (same options, same answers); requests without `Origin` only get `Vary: Origin` added."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, _ in scope["headers"]:
            if name == _ORIGIN:
                await super().__call__(scope, receive, send)
                return

        async def vary_on_origin(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.get("headers")
                if headers is None or not isinstance(headers, list):
                    headers = message["headers"] = list(headers or ())
                if any(name.lower() == _VARY for name, _ in headers):
                    # Rare (a route that varies on something else): Starlette's merge of the values.
                    mutable = MutableHeaders(scope=message)
                    mutable["Vary"] = ", ".join([*mutable.getlist("Vary"), "Origin"])
                else:
                    headers.append((_VARY, b"Origin"))
            await send(message)

        await self.app(scope, receive, vary_on_origin)
