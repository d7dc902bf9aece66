"""Running the project's `@auth.on` handlers and checking what they return.

For a (resource, action) the most specific handler runs, as in the reference: `@auth.on.<resource>.<action>`, then
`@auth.on.<resource>`, then `@auth.on(actions=...)` for any resource, then `@auth.on`. With none, the request is
allowed unfiltered. The handler receives `Auth.types.AuthContext` and the value (a dict it may change in place:
what it leaves there is what the service stores). It returns:

- `None` or `True`: allowed, unfiltered;
- `False`: refused, 403; raising `Auth.exceptions.HTTPException`: refused with its status, detail and headers
  (an `assert` that fails: 403 with its message, as in the reference);
- a filter: allowed, on the resources whose metadata matches it (anything else is "not found"). The filter
  language is the reference's: `{"key": value}` and `{"key": {"$eq": value}}` (equality of a top-level metadata
  key), `{"key": {"$contains": value or [values]}}` (the key holds a list with every value), `$and` / `$or` over
  lists of at least two filters, nested at most twice. Values are JSON scalars (strings, numbers, booleans, null).

Any other result, or a filter outside that language, is the project's bug: `InvalidFilter` (a 500 with a generic
detail; the reason is in the server log).
"""

from __future__ import annotations

from typing import Any

from langgraph_sdk import Auth

from crongraph.auth.context import Caller
from crongraph.errors import Denied

Filter = dict[str, Any]

_INT64 = (-(2**63), 2**63 - 1)
_MAX_NESTING = 2


class InvalidFilter(Exception):
    """An auth handler returned something that is not a result or a filter (the project's bug)."""


class Handlers:
    """The `@auth.on` handlers of one Auth instance."""

    def __init__(self, auth: Auth) -> None:
        self._auth = auth
        self._chosen: dict[tuple[str, str], Any] = {}

    @property
    def any(self) -> bool:
        return bool(self._auth._handlers or self._auth._global_handlers)

    def handler_for(self, resource: str, action: str) -> Any:
        key = (resource, action)
        if key in self._chosen:
            return self._chosen[key]
        chosen = None
        for candidate in (key, (resource, "*"), ("*", action), ("*", "*")):
            handlers = self._auth._handlers.get(candidate)
            if handlers:
                chosen = handlers[-1]
                break
        if chosen is None and self._auth._global_handlers:
            chosen = self._auth._global_handlers[-1]
        self._chosen[key] = chosen
        return chosen

    def store_without_its_own_handler(self) -> bool:
        """True when store requests are judged only by a handler written for every resource: the filters such a
        handler returns narrow store searches by item value, but cannot keep one user from another's namespaces
        (as in the reference, only a `store` handler that scopes the namespace does)."""
        own = any(key[0] == "store" for key in self._auth._handlers)
        return not own and any(self.handler_for("store", a) is not None for a in ("get", "put", "delete"))

    def uncovered(self) -> list[str]:
        """ "resource.action" pairs no handler covers, when some handlers exist (they are allowed unfiltered)."""
        if not self._auth._handlers or self._auth._global_handlers or ("*", "*") in self._auth._handlers:
            return []
        pairs = {
            "assistants": ("create", "read", "update", "delete", "search"),
            "threads": ("create", "create_run", "read", "update", "delete", "search"),
            "crons": ("create", "read", "update", "delete", "search"),
            "store": ("put", "get", "search", "delete", "list_namespaces"),
        }
        return [f"{r}.{a}" for r, actions in pairs.items() for a in actions if self.handler_for(r, a) is None]

    async def authorize(self, caller: Caller, resource: str, action: str, value: dict[str, Any]) -> Filter | None:
        """Run the handler for (resource, action) on `value` (changed in place by the handler). The filter to apply,
        or None for "all allowed". Raises Denied, InvalidFilter, or what the handler raised unexpectedly."""
        handler = self.handler_for(resource, action)
        if handler is None:
            return None
        ctx = Auth.types.AuthContext(
            user=caller.user,
            permissions=list(caller.permissions),
            resource=resource,  # type: ignore[arg-type]
            action=action,  # type: ignore[arg-type]
        )
        try:
            result = await handler(ctx=ctx, value=value)
        except Auth.exceptions.HTTPException as exc:
            raise Denied(str(exc.detail), exc.status_code, dict(exc.headers or {})) from None
        except AssertionError as exc:
            raise Denied(str(exc) or "Forbidden") from None
        if result is None or result is True:
            return None
        if result is False:
            raise Denied("Forbidden")
        if not isinstance(result, dict):
            raise InvalidFilter(
                f"the {resource}.{action} auth handler returned a {type(result).__name__}; expected a filter dict, "
                "None, True or False"
            )
        check_filter(result)
        return result or None


def _scalar(value: Any) -> bool:
    if isinstance(value, int) and not isinstance(value, bool):
        return _INT64[0] <= value <= _INT64[1]
    return value is None or isinstance(value, str | bool | float)


def check_filter(spec: Any, depth: int = 0) -> None:
    """Raise InvalidFilter unless `spec` is in the filter language (module doc)."""
    if depth > _MAX_NESTING:
        raise InvalidFilter("an auth filter nests $and/$or more than twice")
    if not isinstance(spec, dict):
        raise InvalidFilter(f"an auth filter must be a dict; got {type(spec).__name__}")
    for key, value in spec.items():
        if not isinstance(key, str):
            raise InvalidFilter(f"auth filter keys must be strings; got {key!r}")
        if key in ("$and", "$or"):
            if not isinstance(value, list) or len(value) < 2:
                raise InvalidFilter(f"{key} in an auth filter takes a list of at least two filters")
            for group in value:
                check_filter(group, depth + 1)
        elif key.startswith("$"):
            raise InvalidFilter(f"unknown operator {key!r} in an auth filter (known: $and, $or)")
        elif isinstance(value, dict):
            if len(value) != 1:
                raise InvalidFilter(f"auth filter on {key!r}: an operator object has exactly one of $eq, $contains")
            ((op, operand),) = value.items()
            if op == "$eq":
                if not _scalar(operand):
                    raise InvalidFilter(f"auth filter on {key!r}: $eq takes a string, number, boolean or null")
            elif op == "$contains":
                items = operand if isinstance(operand, list) else [operand]
                if not all(_scalar(item) for item in items):
                    raise InvalidFilter(f"auth filter on {key!r}: $contains takes scalars or a list of scalars")
            else:
                raise InvalidFilter(f"auth filter on {key!r}: unknown operator {op!r} (known: $eq, $contains)")
        elif not _scalar(value):
            raise InvalidFilter(f"auth filter on {key!r}: values are strings, numbers, booleans or null")
