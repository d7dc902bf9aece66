"""The one seam between services and the project's auth handlers: `allowed(ctx, resource, action, value)` runs
the handler for the current request's caller and gives back the `Match` storage applies in SQL (None: nothing to
filter). Outside a request, or without `auth` configured, it does nothing and costs one context-variable read.

Also the identity a run carries (`run_identity`): the keys the reference puts in a run's `config.configurable`
for its graph (`langgraph_auth_user`, `langgraph_auth_user_id`, `langgraph_auth_permissions`).
"""

from __future__ import annotations

from typing import Any

from crongraph.auth import context
from crongraph.services.context import ServiceContext
from crongraph.storage.filters import Match

AUTH_KEYS = ("langgraph_auth_user", "langgraph_auth_user_id", "langgraph_auth_permissions")


async def allowed(ctx: ServiceContext, resource: str, action: str, value: dict[str, Any]) -> Match | None:
    """Authorize `action` on `resource` for the current caller (`value` is the reference's value for it and may be
    changed by the handler). Raises Denied when refused."""
    caller = context.current()
    if caller is None or caller.handlers is None:
        return None
    spec = await caller.handlers.authorize(caller, resource, action, value)
    return Match(spec, ctx.dialect) if spec else None


def caller_identity() -> str | None:
    """The current caller's identity, or None outside an authenticated request."""
    caller = context.current()
    return str(caller.user.identity) if caller is not None else None


def run_identity() -> dict[str, Any] | None:
    """The configurable entries naming the current caller, for a run (or a cron) created in this request; None
    outside an authenticated request."""
    caller = context.current()
    if caller is None:
        return None
    return {
        "langgraph_auth_user": caller.user.stored(),
        "langgraph_auth_user_id": caller.user.identity,
        "langgraph_auth_permissions": list(caller.permissions),
    }


async def store_allowed(action: str, value: dict[str, Any]) -> dict[str, Any] | None:
    """Run the `store.<action>` auth handler on `value` (it may rewrite the namespace or key in place); the filter
    it returned, which a search adds to the item filter. Raises Denied when refused."""
    caller = context.current()
    if caller is None or caller.handlers is None:
        return None
    return await caller.handlers.authorize(caller, "store", action, value)  # type: ignore[no-any-return]
