"""What the protocol adapters know of the HTTP request that reached them, carried to handlers that run in another
task (the MCP SDK serves each request in a task of its own, outside the request's context variables).

`user` is the seam for auth (a later issue): today always None, and the adapters act as an anonymous client of
the API does. When auth arrives, the route fills it from the request, and the services receive it with each call,
so that an MCP tool call or an A2A message runs as that user.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.types import Scope

from crongraph import run_headers

if TYPE_CHECKING:
    from crongraph.runtime import Runtime

SCOPE_KEY = "crongraph.caller"


@dataclass(frozen=True)
class Caller:
    """The runtime serving the request, the headers its runs receive (`http.configurable_headers`), the user."""

    runtime: Runtime
    run_headers: dict[str, Any] = field(default_factory=dict)
    user: Any = None

    @contextmanager
    def acting(self) -> Iterator[None]:
        """Within the block, runs created carry this request's configurable headers, as any API run does."""
        token = run_headers.CURRENT.set(self.run_headers)
        try:
            yield
        finally:
            run_headers.CURRENT.reset(token)


def caller_of(request: Request) -> Caller:
    """The caller of a request that reached a crongraph route (the runtime is on the FastAPI app's state)."""
    return Caller(runtime=request.app.state.runtime, run_headers=dict(run_headers.CURRENT.get()))


def remember(scope: Scope, caller: Caller) -> None:
    scope[SCOPE_KEY] = caller


def recall(scope: Scope) -> Caller:
    caller: Caller = scope[SCOPE_KEY]
    return caller
