"""Path and query helpers shared by the routers."""

from __future__ import annotations

from crongraph.errors import InvalidInput
from crongraph.ids import parse_uuid


def uuid_param(value: str, what: str) -> str:
    """A path id must be a UUID: 422 `Invalid <what> ID: must be a UUID` otherwise, as the reference says."""
    parsed = parse_uuid(value)
    if parsed is None:
        raise InvalidInput(f"Invalid {what} ID: must be a UUID")
    return parsed


def pagination_headers(offset: int, limit: int, returned: int) -> dict[str, str]:
    """The reference's headers: with a further page, Next = offset+limit and Total = Next+1 (not a true total)."""
    if returned > limit:
        nxt = offset + limit
        return {"X-Pagination-Next": str(nxt), "X-Pagination-Total": str(nxt + 1)}
    return {"X-Pagination-Total": str(offset + returned)}
