"""`http.configurable_headers`: which request headers a run created by the request receives in
`config.configurable`, with the reference's rules.

- `langsmith-trace` is always copied, and with it the `langsmith-metadata` (a JSON object), `langsmith-tags` and
  `langsmith-project` entries of `baggage` (tracing must follow a run whatever the patterns).
- `authorization`, `x-api-key`, `x-service-key` and `x-tenant-id` are never copied.
- Any other header is copied when it matches an `includes` pattern and no `excludes` pattern ("*" is the only
  wildcard; names are lower case). With no `includes`, nothing else is copied: that is the reference's default
  (langgraph-api 0.16.7), whatever its older docs say about `x-*` headers.
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Any

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from crongraph import run_headers
from crongraph.config.schema import ConfigurableHeaders

NEVER = frozenset({"authorization", "x-api-key", "x-service-key", "x-tenant-id"})
TRACE = "langsmith-trace"
_TRACE_RAW = TRACE.encode()
BAGGAGE_KEYS = ("langsmith-metadata", "langsmith-tags", "langsmith-project")


def _pattern(text: str) -> re.Pattern[str]:
    # Only literals and "*": a user's pattern cannot be a slow regular expression.
    return re.compile("(?s:" + ".*".join(re.escape(part) for part in text.lower().split("*")) + r")\Z")


class HeaderPolicy:
    def __init__(self, config: ConfigurableHeaders | None) -> None:
        config = config or ConfigurableHeaders()
        self._includes = [_pattern(p) for p in (config.includes or config.include or [])]
        self._excludes = [_pattern(p) for p in (config.excludes or config.exclude or [])]
        self._decided: dict[str, bool] = {}

    @property
    def copies_any(self) -> bool:
        """False when only the tracing headers can be copied (the default): a cheaper check per request."""
        return bool(self._includes)

    def allows(self, name: str) -> bool:
        decided = self._decided.get(name)
        if decided is None:
            decided = (
                name not in NEVER
                and not any(p.match(name) for p in self._excludes)
                and any(p.match(name) for p in self._includes)
            )
            if len(self._decided) < 4096:  # bounded: header names are chosen by clients
                self._decided[name] = decided
        return decided

    def select(self, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
        """The configurable entries for a request's raw ASGI headers (names already lower case)."""
        if not self._includes:
            # The default: only tracing headers can be copied. Every request crosses this, so it is one pass over
            # the raw names with nothing decoded unless a trace header is there.
            for raw_name, _ in headers:
                if raw_name == _TRACE_RAW:
                    break
            else:
                return {}
        chosen: dict[str, Any] = {}
        trace = False
        baggage = None
        for raw_name, raw_value in headers:
            name = raw_name.decode("latin-1")
            if name == TRACE:
                trace = True
                chosen[name] = raw_value.decode("latin-1")
            elif name == "baggage":
                baggage = raw_value.decode("latin-1")
            if name != TRACE and self.copies_any and self.allows(name):
                chosen[name] = raw_value.decode("latin-1")
        if trace and baggage:
            chosen.update(_baggage(baggage))
        return chosen


def _baggage(value: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for item in value.split(","):
        key, sep, raw = item.strip().partition("=")
        if not sep or key not in BAGGAGE_KEYS or key in found:
            continue
        text = urllib.parse.unquote(raw)
        if key == "langsmith-metadata":
            try:
                metadata = orjson.loads(text)
            except orjson.JSONDecodeError:
                continue
            if isinstance(metadata, dict):  # anything else is skipped, never an error
                found[key] = metadata
        elif key == "langsmith-tags":
            found[key] = text.split(",")
        else:
            found[key] = text
    return found


class ConfigurableHeadersMiddleware:
    """Sets `run_headers.CURRENT` for each HTTP request to the headers its runs receive."""

    def __init__(self, app: ASGIApp, policy: HeaderPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        chosen = self.policy.select(scope.get("headers") or [])
        if not chosen:
            await self.app(scope, receive, send)
            return
        token = run_headers.CURRENT.set(chosen)
        try:
            await self.app(scope, receive, send)
        finally:
            run_headers.CURRENT.reset(token)
