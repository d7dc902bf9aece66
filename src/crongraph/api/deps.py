"""The runtime, as a FastAPI dependency."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

if TYPE_CHECKING:
    from crongraph.runtime import Runtime


async def _runtime(request: Request) -> Runtime:
    # async on purpose: FastAPI runs a plain `def` dependency in its thread pool, a thread hop on every request.
    return request.app.state.runtime  # type: ignore[no-any-return]


RuntimeDep = Annotated["Runtime", Depends(_runtime)]
