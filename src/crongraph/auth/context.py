"""The caller of the current request: the authenticated user, their permissions and the handlers that decide what
they may do. Set by the auth middleware for the request's task (and the tasks it starts); unset outside requests
(the scheduler's fires, the executor, maintenance) and when no `auth` is configured, which means "the system":
no handler runs and nothing is filtered.

Imports nothing of ours: any layer may read it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Caller:
    user: Any  # crongraph.auth.users.AuthUser (typed Any here to keep this module free of imports)
    permissions: tuple[str, ...]
    # crongraph.auth.handlers.Handlers: runs the project's @auth.on handlers. None: the user is known (a run's
    # owner, say) but nothing is to be authorized.
    handlers: Any = None


_CURRENT: ContextVar[Caller | None] = ContextVar("crongraph_auth_caller", default=None)


def current() -> Caller | None:
    """The caller of the request being served, or None (no auth configured, or not in a request)."""
    return _CURRENT.get()


@contextmanager
def acting_as(caller: Caller | None) -> Iterator[None]:
    """Serve the block as `caller` (None: as the system)."""
    token = _CURRENT.set(caller)
    try:
        yield
    finally:
        _CURRENT.reset(token)
