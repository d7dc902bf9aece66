"""Protocol adapters beside the HTTP API: MCP (`mcp.py`) and A2A (`a2a.py`). Like `api/`, they call services and
nothing below them. `install` mounts them on the app unless langgraph.json's `http.disable_mcp` /
`http.disable_a2a` says not to, and returns what must run for the app's life (the MCP SDK's task group)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI

from crongraph.config.schema import HttpConfig


def install(api: FastAPI, http: HttpConfig) -> Callable[[], AbstractAsyncContextManager[None]]:
    """Mount the enabled protocols' routes on `api`; the returned context manager is entered in the app's
    lifespan, after the runtime has started."""
    mcp_endpoint = None
    if not http.disable_mcp:
        from crongraph.protocols import mcp

        mcp_endpoint = mcp.McpEndpoint()
        api.state.mcp = mcp_endpoint
        api.include_router(mcp.router)
    if not http.disable_a2a:
        from crongraph.protocols import a2a

        api.include_router(a2a.router)

    @asynccontextmanager
    async def running() -> AsyncIterator[None]:
        if mcp_endpoint is None:
            yield
            return
        async with mcp_endpoint.running():
            yield

    return running
