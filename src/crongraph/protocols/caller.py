"""What the protocol adapters know of the HTTP request that reached them, carried to handlers that run in another
task (the MCP SDK serves each request in a task of its own, outside the request's context variables).

`auth` is the authenticated caller the auth middleware set for the request (None without `auth` in
langgraph.json); `acting()` serves a block as that caller wherever it runs, so an MCP tool listing sees only the
assistants the user may read and a tool call runs as that user, exactly like the same request through the API.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.types import Scope

from crongraph import run_headers
from crongraph.auth import context as auth_context

if TYPE_CHECKING:
    from crongraph.runtime import Runtime

SCOPE_KEY = "crongraph.caller"


@dataclass(frozen=True)
class Caller:
    """The runtime serving the request, the headers its runs receive (`http.configurable_headers`), and the
    authenticated caller (`crongraph.auth.context.Caller`, None without auth)."""

    runtime: Runtime
    run_headers: dict[str, Any] = field(default_factory=dict)
    auth: auth_context.Caller | None = None

    @contextmanager
    def acting(self) -> Iterator[None]:
        """Within the block, the services see this request's caller (what it may see and do) and the runs it
        creates carry its configurable headers, as for any API request."""
        token = run_headers.CURRENT.set(self.run_headers)
        try:
            with auth_context.acting_as(self.auth):
                yield
        finally:
            run_headers.CURRENT.reset(token)


def caller_of(request: Request) -> Caller:
    """The caller of a request that reached a crongraph route (the runtime is on the FastAPI app's state)."""
    return Caller(
        runtime=request.app.state.runtime,
        run_headers=dict(run_headers.CURRENT.get()),
        auth=auth_context.current(),
    )


def remember(scope: Scope, caller: Caller) -> None:
    scope[SCOPE_KEY] = caller


def recall(scope: Scope) -> Caller:
    caller: Caller = scope[SCOPE_KEY]
    return caller
