"""Meta routes: /ok, /info (what clients feature-detect from), and an operator's /metrics (the Prometheus text
format by default, as the reference; `?format=json` for the same figures as one JSON object)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response
from sqlalchemy import text

from crongraph import __version__
from crongraph.api.deps import RuntimeDep
from crongraph.api.errors import detail
from crongraph.api.routing import JSONRoute
from crongraph.observability import metrics as prometheus

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


@router.get(
    "/metrics",
    summary="Server metrics",
    description=(
        "Prometheus text format (version 0.0.4) by default: HTTP requests and latency by route template, runs by "
        "status and the queue's depth (read from the database, so right across replicas), run duration, cron fires, "
        "skips and failures, fire lateness, scheduler wake-ups. `format=json`: the queue's depth, this process's "
        "workers and the scheduler's counters as one JSON object."
    ),
    responses={200: {"content": {prometheus.CONTENT_TYPE: {}, "application/json": {}}}},
)
async def metrics(
    rt: RuntimeDep,
    format: Literal["prometheus", "json"] = Query("prometheus", description="`prometheus` (text) or `json`"),
) -> Any:
    snapshot = await rt.metrics()
    if format == "json":
        return snapshot
    return Response(prometheus.render(snapshot), media_type=prometheus.CONTENT_TYPE)


def _langgraph_version() -> str:
    from importlib.metadata import version

    return version("langgraph")
