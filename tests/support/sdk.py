"""What end-to-end tests share around the official Python SDK: a client that is closed after use, waiting for a
condition the server reports, and the cron extension endpoints the SDK has no method for.

Waiting is polling the API until a check returns something truthy (that value is returned), with a generous
deadline for a loaded machine and a short poll so that a test ends as soon as the condition holds: never a fixed
sleep followed by counting what happened. A check that never holds fails the test with what it waited for.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, TypeVar

from langgraph_sdk import get_client, get_sync_client

T = TypeVar("T")


@asynccontextmanager
async def sdk_client(url: str, **kwargs: Any) -> AsyncIterator[Any]:
    """`langgraph_sdk.get_client(url=url, **kwargs)` (headers=, timeout= …), its HTTP connections closed on exit."""
    client = get_client(url=url, **kwargs)
    try:
        yield client
    finally:
        await client.http.client.aclose()


@contextmanager
def sync_sdk_client(url: str, **kwargs: Any) -> Iterator[Any]:
    """`langgraph_sdk.get_sync_client(url=url, **kwargs)`, its HTTP connections closed on exit."""
    client = get_sync_client(url=url, **kwargs)
    try:
        yield client
    finally:
        client.http.client.close()


async def eventually(
    check: Callable[[], Awaitable[T | None]], within: float = 20.0, what: str = "the condition", every: float = 0.05
) -> T:
    """Await `check()` every `every` seconds until it returns something truthy, and return that; AssertionError
    naming `what` after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(every)


def eventually_sync(
    check: Callable[[], T | None], within: float = 30.0, what: str = "the condition", every: float = 0.1
) -> T:
    """`eventually` for synchronous checks (the sync SDK client, a browser page, a log file)."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        time.sleep(every)


async def get_cron(client: Any, cron_id: str) -> dict[str, Any]:
    """GET /runs/crons/{cron_id}: one cron with crongraph's extension fields (usage, remaining_runs, finished …)."""
    return await client.http.get(f"/runs/crons/{cron_id}")  # type: ignore[no-any-return]


async def cron_runs(client: Any, cron_id: str, limit: int = 100, **params: Any) -> list[dict[str, Any]]:
    """GET /runs/crons/{cron_id}/runs: the runs a cron created, newest first."""
    return await client.http.get(f"/runs/crons/{cron_id}/runs", params={"limit": limit, **params})  # type: ignore[no-any-return]


async def cron_fires(client: Any, cron_id: str, limit: int = 1000, **params: Any) -> list[dict[str, Any]]:
    """GET /runs/crons/{cron_id}/fires: the cron's fire log (created, skipped … with a detail), newest slot first;
    `params` filter it (outcome=…)."""
    return await client.http.get(f"/runs/crons/{cron_id}/fires", params={"limit": limit, **params})  # type: ignore[no-any-return]
