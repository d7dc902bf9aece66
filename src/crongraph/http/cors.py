"""Cross-origin access: Starlette's CORSMiddleware with `http.cors`, or, when `cors` is not configured, the
reference's default, which lets browser tools on any origin (LangGraph Studio, Agent Chat UI) use the API:
every origin, method and header, without credentials, exposing the pagination and Content-Location headers.

In development (`crongraph dev`, as `langgraph dev` does), a preflight asking for private network access is
answered `Access-Control-Allow-Private-Network: true`, which Chrome requires before a public page (Studio) may call
a server on the loopback or a private network. (Starlette refuses such a preflight unless allowed.)
"""

from __future__ import annotations

from typing import Any

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
