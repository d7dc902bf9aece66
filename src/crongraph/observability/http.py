"""ASGI middleware that counts every HTTP request by route template and, when enabled, writes one access-log
event per request (`http.request`: method, path, route, status, duration_ms, client).

The route template (`/threads/{thread_id}/runs`) comes from the route Starlette matched, so the metrics' label
set stays bounded whatever paths clients send; a request refused by authentication before routing is counted as
`<refused>`, a path no route has as `<unmatched>`.

Every request crosses this layer, so its own cost is kept to a few dictionary lookups: the Prometheus children of
each (method, route, status) are looked up once and kept (`labels()` takes a lock and builds its key each call),
and the access-log event is built only when the `crongraph.access` logger would write it (structlog runs its
processors, timestamp included, before the standard library's level check).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crongraph.observability import metrics

ACCESS_LOGGER = "crongraph.access"
access_log = structlog.get_logger(ACCESS_LOGGER)
_access_std = logging.getLogger(ACCESS_LOGGER)

# (method, route, status) -> (requests counter child, latency histogram child). Bounded like the label set itself:
# methods are those routes accept (others are `<unmatched>` or 405), routes are templates, statuses are codes.
_CHILDREN: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def _children(method: str, route: str, status: int) -> tuple[Any, Any]:
    key = (method, route, status)
    found = _CHILDREN.get(key)
    if found is None:
        found = (metrics.HTTP_REQUESTS.labels(method, route, str(status)), metrics.HTTP_LATENCY.labels(method, route))
        if len(_CHILDREN) < 10_000:  # a safety bound: the label set is bounded, but methods come from clients
            _CHILDREN[key] = found
    return found


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
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            elapsed = time.perf_counter() - start
            status = int(status)
            route = getattr(scope.get("route"), "path", None) or _route_of(status)
            method = str(scope.get("method", ""))
            requests, latency = _children(method, route, status)
            requests.inc()
            latency.observe(elapsed)
            if self.access_log and _access_std.isEnabledFor(logging.INFO):
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
