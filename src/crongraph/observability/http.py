"""ASGI middleware that counts every HTTP request by route template and, when enabled, writes one access-log
event per request (`http.request`: method, path, route, status, duration_ms, client).

The route template (`/threads/{thread_id}/runs`) comes from the route Starlette matched, so the metrics' label
set stays bounded whatever paths clients send; a request refused by authentication before routing is counted as
`<refused>`, a path no route has as `<unmatched>`.
"""

from __future__ import annotations

import time

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crongraph.observability import metrics

access_log = structlog.get_logger("crongraph.access")


class RequestMetrics:
    def __init__(self, app: ASGIApp, access_log: bool = False) -> None:
        self.app = app
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # what the client gets if the app raises before answering

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            elapsed = time.perf_counter() - start
            route = getattr(scope.get("route"), "path", None) or _route_of(status)
            method = str(scope.get("method", ""))
            metrics.HTTP_REQUESTS.labels(method, route, str(status)).inc()
            metrics.HTTP_LATENCY.labels(method, route).observe(elapsed)
            if self.access_log:
                client = scope.get("client")
                access_log.info(
                    "http.request",
                    method=method,
                    path=scope.get("path"),
                    route=route,
                    status=status,
                    duration_ms=round(elapsed * 1000, 2),
                    client=f"{client[0]}:{client[1]}" if client else None,
                )


def _route_of(status: int) -> str:
    """The label of a request no route ran: refused by authentication before routing (401, 403), or a path no
    route has. Both bounded: the raw path never becomes a label."""
    return "<refused>" if status in (401, 403) else "<unmatched>"
