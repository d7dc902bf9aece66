"""Meta routes: /ok, /info (what clients feature-detect from), and an operator's /metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import text

from crongraph import __version__
from crongraph.api.deps import RuntimeDep
from crongraph.api.errors import detail
from crongraph.api.routing import JSONRoute

router = APIRouter(tags=["meta"], route_class=JSONRoute)


@router.get("/ok")
async def ok(rt: RuntimeDep, check_db: int = 0) -> Any:
    if check_db:
        try:
            async with rt.ctx.db.read() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as exc:
            return detail(500, f"database check failed: {exc}")
    return {"ok": True, "services": {}}


@router.get("/info")
async def info(rt: RuntimeDep) -> Any:
    return {
        "version": __version__,
        "langgraph_py_version": _langgraph_version(),
        "flags": {
            "assistants": True,
            "crons": True,
            "langsmith": False,
            "langsmith_tracing_replicas": False,
            "langsmith_tracing_session_on_runs": False,
        },
        "host": {
            "kind": "self-hosted",
            "project_id": None,
            "host_revision_id": None,
            "revision_id": None,
            "tenant_id": None,
        },
        "crongraph": {"backend": rt.ctx.db.dialect, "graphs": rt.ctx.graphs.ids},
    }


@router.get("/metrics")
async def metrics(rt: RuntimeDep) -> Any:
    return await rt.metrics()


def _langgraph_version() -> str:
    from importlib.metadata import version

    return version("langgraph")
