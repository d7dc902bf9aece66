"""create_app(): the FastAPI application, its routers, limits, and a lifespan that starts the runtime."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crongraph import __version__
from crongraph.api import assistants, crons, errors, meta, runs, store, thread_stream, threads
from crongraph.api.responses import JSONResponse
from crongraph.runtime import Runtime


class BodyLimit:
    """Refuse bodies over the limit with 413: before reading them (Content-Length), or once the chunks read so
    far pass it (chunked uploads). The body is read here in full, so the 413 cannot be swallowed by the
    framework's body parsing (which would answer 400), then replayed to the app; later receive() calls, such as
    a streaming route waiting for the client to disconnect, go to the server as usual."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await self._too_large(send)
                return
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                # The client left before sending its body; nothing to answer.
                return
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.limit:
                await self._too_large(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, send: Send) -> None:
        response = JSONResponse({"detail": f"Request body exceeds {self.limit} bytes"}, status_code=413)
        await response({"type": "http"}, _empty_receive, send)


async def _empty_receive() -> Message:
    return {"type": "http.disconnect"}


def create_app(runtime: Runtime) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        app.state.runtime = runtime
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(
        title="crongraph",
        version=__version__,
        description="The LangGraph Platform HTTP API, self-hosted, with exactly-once crons.",
        lifespan=lifespan,
        default_response_class=JSONResponse,
    )
    errors.install(app)
    # Routes are matched in order, one pattern at a time: the busiest routers (runs, crons) go first. No two
    # routers' paths overlap, so the order changes only how soon a request finds its route.
    for module in (runs, crons, threads, assistants, store, thread_stream, meta):
        app.include_router(module.router)

    @app.get("/", include_in_schema=False)
    async def root() -> dict[str, object]:
        return {"ok": True, "services": {}}

    app.add_middleware(BodyLimit, limit=runtime.settings.max_body_bytes)
    return app
