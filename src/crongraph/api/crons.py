"""Cron routes (wire contract §2), plus documented extensions the official clients ignore:
GET /runs/crons/{id}/runs (history with lateness), GET /runs/crons/{id}/fires (the fire log, skips included),
GET /runs/crons/{id}/next (next occurrences, in words), POST /runs/crons/preview (before creating one),
POST /runs/crons/{id}/trigger (run it now) and POST /runs/crons/{id}/backfill (past occurrences, exactly once)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Response
from pydantic import Field

from crongraph import views
from crongraph.api import limits
from crongraph.api.deps import RuntimeDep
from crongraph.api.params import pagination_headers, uuid_param
from crongraph.api.responses import JSONResponse
from crongraph.api.routing import JSONRoute
from crongraph.api.schemas import (
    Body,
    CronBackfill,
    CronCount,
    CronCreate,
    CronPatch,
    CronSearch,
    Schedule,
    Timezone,
)
from crongraph.schedules.policy import jitter_delay
from crongraph.storage.common import Record

router = APIRouter(tags=["crons"], route_class=JSONRoute)


def cron_view(row: Record, usage: Record | None = None) -> dict[str, Any]:
    return views.cron(row, usage)


async def _with_usage(rt: Any, rows: list[Record]) -> list[dict[str, Any]]:
    usage = await rt.crons.usage(rows)
    return [cron_view(r, usage.get(r["cron_id"])) for r in rows]


@router.post("/runs/crons")
async def create_cron(body: CronCreate, rt: RuntimeDep) -> Any:
    return cron_view(await rt.crons.create(None, body.given()))


@router.post("/threads/{thread_id}/runs/crons")
async def create_thread_cron(thread_id: str, body: CronCreate, rt: RuntimeDep) -> Any:
    return cron_view(await rt.crons.create(uuid_param(thread_id, "thread"), body.given()))


@router.post("/runs/crons/search")
async def search_crons(body: CronSearch, rt: RuntimeDep) -> Any:
    rows = await rt.crons.search(body.given())
    fields: list[str] | None = list(body.select) if body.select else None
    # `select` cannot name the usage extensions, so a selecting search skips their queries (the dashboard's
    # timeline reads 1,000 crons' schedules this way).
    items = [cron_view(r) for r in rows[: body.limit]] if fields else await _with_usage(rt, rows[: body.limit])
    return JSONResponse(
        [views.select(i, fields) for i in items],
        headers=pagination_headers(body.offset, body.limit, len(rows)),
    )


@router.post("/runs/crons/count")
async def count_crons(body: CronCount, rt: RuntimeDep) -> int:
    return await rt.crons.count(body.given())


class Preview(Body):
    schedule: Schedule
    timezone: Timezone | None = None
    count: int = Field(default=5, ge=1, le=1000)


@router.post("/runs/crons/preview")
async def preview_schedule(body: Preview, rt: RuntimeDep) -> Any:
    return rt.crons.preview(body.schedule, body.timezone, body.count)


@router.get("/runs/crons/{cron_id}")
async def get_cron(cron_id: str, rt: RuntimeDep) -> Any:
    row = await rt.crons.get(uuid_param(cron_id, "cron"))
    return (await _with_usage(rt, [row]))[0]


@router.patch("/runs/crons/{cron_id}")
async def patch_cron(cron_id: str, body: CronPatch, rt: RuntimeDep) -> Any:
    return cron_view(await rt.crons.update(uuid_param(cron_id, "cron"), body.given()))


@router.delete("/runs/crons/{cron_id}", status_code=204)
async def delete_cron(cron_id: str, rt: RuntimeDep) -> Response:
    await rt.crons.delete(uuid_param(cron_id, "cron"))
    return Response(status_code=204)


@router.get("/runs/crons/{cron_id}/runs")
async def cron_runs(
    cron_id: str,
    rt: RuntimeDep,
    limit: int = Query(default=10, ge=1, le=limits.MAX_LIMIT),
    offset: int = Query(default=0, ge=0, le=limits.MAX_OFFSET),
) -> Any:
    cron_id = uuid_param(cron_id, "cron")
    cron = await rt.crons.get(cron_id)
    rows = await rt.crons.runs_of(cron_id, limit=limit, offset=offset)
    out = []
    for row in rows:
        item = views.run(row)
        # Lateness against the moment the run was due: its slot plus its jitter (scheduled fires only; the
        # jitter is the cron's current jitter_seconds). Manual and backfill runs measure from their fire-log key.
        kind = (row["metadata"] or {}).get("cron_fire_kind")
        jitter = jitter_delay(cron_id, row["scheduled_for"], cron["jitter_seconds"] or 0) if kind is None else None
        due = row["scheduled_for"] + jitter if jitter is not None else row["scheduled_for"]
        item["delay_ms"] = round(max(0.0, (row["created_at"] - due).total_seconds()) * 1000, 3)
        item["jitter_ms"] = round(jitter.total_seconds() * 1000, 3) if jitter is not None else 0.0
        item["available_at"] = row["available_at"]
        item["usage"] = row.get("usage")
        out.append(item)
    return out


@router.get("/runs/crons/{cron_id}/fires")
async def cron_fires(
    cron_id: str,
    rt: RuntimeDep,
    limit: int = Query(default=50, ge=1, le=limits.MAX_LIMIT),
    offset: int = Query(default=0, ge=0, le=limits.MAX_OFFSET),
    outcome: str | None = Query(default=None, pattern="^(created|skipped|failed)$"),
) -> Any:
    return await rt.crons.fires_of(uuid_param(cron_id, "cron"), limit=limit, offset=offset, outcome=outcome)


@router.post("/runs/crons/{cron_id}/trigger")
async def trigger_cron(cron_id: str, rt: RuntimeDep) -> Any:
    return views.run(await rt.crons.trigger(uuid_param(cron_id, "cron")))


@router.post("/runs/crons/{cron_id}/backfill")
async def backfill_cron(cron_id: str, body: CronBackfill, rt: RuntimeDep) -> Any:
    result = await rt.crons.backfill(uuid_param(cron_id, "cron"), body.start, body.end)
    return {**result, "runs": [views.run(r) for r in result["runs"]]}


@router.get("/runs/crons/{cron_id}/next")
async def cron_next(cron_id: str, rt: RuntimeDep, count: int = Query(default=5, ge=1, le=1000)) -> Any:
    row = await rt.crons.get(uuid_param(cron_id, "cron"))
    preview = rt.crons.preview(row["schedule"], row["timezone"], count)
    if row["end_time"] is not None:
        preview["next_run_dates"] = [d for d in preview["next_run_dates"] if d < row["end_time"]]
    preview["enabled"] = row["enabled"]
    return preview
