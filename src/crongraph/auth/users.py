"""The user a request is served as: what `@auth.authenticate` returned, normalized as the reference does, and the
form stored in a run's config so that a run (or a cron's runs, later and unattended) carries its owner.

`@auth.authenticate` may return a string (the identity), a dict with "identity", an object with an `identity`
attribute, or a `(permissions, user)` tuple; permissions also come from a "permissions" key or attribute. The
`AuthUser` handed to handlers and graphs answers both `user.identity` and `user["identity"]` (the SDK's BaseUser
protocol), and any other attribute or key of what was returned.

Imports nothing of ours.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator, Mapping
from typing import Any


class UserShapeError(ValueError):
    """`@auth.authenticate` returned something that is not a user (the project's bug: a 500)."""


def _json_safe(value: Any, depth: int = 0) -> Any:
    """`value` with only JSON's types kept (what the run's config can store); other values are left out."""
    if depth > 8:
        return None
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v, depth + 1) for k, v in value.items() if _storable(v)}
    if isinstance(value, list | tuple):
        return [_json_safe(v, depth + 1) for v in value if _storable(v)]
    return None


def _storable(value: Any) -> bool:
    return value is None or isinstance(value, str | bool | int | float | Mapping | list | tuple)


class AuthUser:
    """A user as handlers and graphs see it. `fields` are what the user's own object or dict said about itself."""

    __slots__ = ("_fields", "_source")

    def __init__(self, fields: dict[str, Any], source: Any = None) -> None:
        self._fields = fields
        self._source = source

    # The SDK's BaseUser protocol

    @property
    def identity(self) -> str:
        return str(self._fields["identity"])

    @property
    def display_name(self) -> str:
        return str(self._fields.get("display_name") or self.identity)

    @property
    def is_authenticated(self) -> bool:
        return bool(self._fields.get("is_authenticated", True))

    @property
    def permissions(self) -> list[str]:
        return list(self._fields.get("permissions") or [])

    def dict(self) -> dict[str, Any]:
        return {
            **self._fields,
            "identity": self.identity,
            "display_name": self.display_name,
            "is_authenticated": self.is_authenticated,
        }

    def __getitem__(self, key: str) -> Any:
        return self.dict()[key]

    def __contains__(self, key: object) -> bool:
        return key in self.dict()

    def __iter__(self) -> Iterator[str]:
        return iter(self.dict())

    def __len__(self) -> int:
        return len(self.dict())

    def get(self, key: str, default: Any = None) -> Any:
        return self.dict().get(key, default)

    def keys(self) -> Any:
        return self.dict().keys()

    def values(self) -> Any:
        return self.dict().values()

    def items(self) -> Any:
        return self.dict().items()

    def model_dump(self, **_: Any) -> builtins.dict[str, Any]:
        return self.stored()

    def __getattr__(self, name: str) -> Any:
        # Attributes of the user's own object (a dataclass with a `tenant`, say) stay reachable, as in the reference.
        if name.startswith("__"):
            raise AttributeError(name)
        fields = object.__getattribute__(self, "_fields")
        if name in fields:
            return fields[name]
        source = object.__getattribute__(self, "_source")
        if source is not None and not isinstance(source, Mapping | str):
            return getattr(source, name)
        raise AttributeError(f"'{type(self).__name__}' has no attribute '{name}'")

    def __repr__(self) -> str:
        return f"AuthUser(identity={self.identity!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AuthUser) and other.dict() == self.dict()

    __hash__ = None  # type: ignore[assignment]

    def stored(self) -> builtins.dict[str, Any]:
        """The JSON form kept in a run's config (`langgraph_auth_user`) and a cron's payload."""
        safe = _json_safe(self.dict())
        assert isinstance(safe, dict)
        return safe

    @classmethod
    def from_stored(cls, value: Any) -> AuthUser | None:
        """The user from its stored form (or from a user object already); None when `value` names no user."""
        if isinstance(value, AuthUser):
            return value
        if isinstance(value, Mapping) and isinstance(value.get("identity"), str):
            return cls(dict(value))
        return None


def _fields_of(user: Any) -> dict[str, Any]:
    if isinstance(user, str):
        return {"identity": user}
    if isinstance(user, Mapping):
        if not isinstance(user.get("identity"), str):
            raise UserShapeError(f"a user dict needs a string 'identity'; got keys {sorted(map(str, user))[:10]}")
        return dict(user)
    identity = getattr(user, "identity", None)
    if not isinstance(identity, str):
        raise UserShapeError(
            f"expected a string identity, a dict with 'identity', or an object with an 'identity' attribute; got "
            f"{type(user).__name__}"
        )
    fields: dict[str, Any] = {}
    dump = getattr(user, "model_dump", None)
    if callable(dump):
        try:
            fields = dict(dump(mode="json"))
        except TypeError:
            fields = dict(dump())
    elif callable(getattr(user, "dict", None)):
        fields = dict(user.dict())
    elif hasattr(user, "__dict__"):
        fields = {k: v for k, v in vars(user).items() if not k.startswith("_")}
    fields["identity"] = identity
    for name in ("display_name", "is_authenticated"):
        try:
            value = getattr(user, name)
        except Exception:
            continue
        if value is not None:
            fields[name] = value
    return fields


def normalize(result: Any) -> tuple[AuthUser, tuple[str, ...]]:
    """The user and permissions `@auth.authenticate` returned (the shapes in the module doc). Raises UserShapeError."""
    if isinstance(result, tuple):
        if len(result) != 2:
            raise UserShapeError(f"expected a (permissions, user) tuple; got a tuple of {len(result)}")
        permissions, user = result
    elif isinstance(result, Mapping):
        permissions, user = result.get("permissions") or [], result
    elif not isinstance(result, str) and hasattr(result, "permissions"):
        permissions, user = result.permissions, result
    else:
        permissions, user = [], result
    if isinstance(permissions, str) or not all(isinstance(p, str) for p in permissions or []):
        raise UserShapeError("permissions must be a list of strings")
    perms = tuple(permissions or ())
    fields = _fields_of(user)
    fields["permissions"] = list(perms)
    return AuthUser(fields, user), perms
