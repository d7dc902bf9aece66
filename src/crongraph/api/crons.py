"""Cron routes (wire contract §2), plus documented extensions the official clients ignore:
GET /runs/crons/{id}/runs (history with lateness), GET /runs/crons/{id}/fires (the fire log, skips included),
GET /runs/crons/{id}/next (next occurrences, in words) and POST /runs/crons/preview (before creating one)."""

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
from crongraph.api.schemas import Body, CronCount, CronCreate, CronPatch, CronSearch, Schedule, Timezone
from crongraph.storage.common import Record

router = APIRouter(tags=["crons"], route_class=JSONRoute)


def cron_view(row: Record, usage: Record | None = None) -> dict[str, Any]:
    out = {
        "cron_id": row["cron_id"],
        "assistant_id": row["assistant_id"],
        "thread_id": row["thread_id"],
        "user_id": row["user_id"],
        "end_time": row["end_time"],
        "schedule": row["schedule"],
        "timezone": row["timezone"],
        "payload": views.with_webhook_redacted(row["payload"]),
        "next_run_date": row["next_run_date"],
        "metadata": row["metadata"],
        "on_run_completed": row["on_run_completed"],
        "enabled": row["enabled"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        # Extensions.
        "missed_policy": row["missed_policy"],
        "finished": row["next_run_date"] is None,
    }
    if usage is not None:
        last = usage.get("last_run")
        out["usage"] = {
            "runs": usage["runs"],
            "runs_last_24h": usage["runs_recent"],
            "skipped": usage["skipped"],
            "failed": usage["failed"],
        }
        out["last_run"] = last and {
            "run_id": last["run_id"],
            "thread_id": last["thread_id"],
            "status": last["status"],
            "scheduled_for": last["scheduled_for"],
            "created_at": last["created_at"],
        }
    return out


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
    items = await _with_usage(rt, rows[: body.limit])
    fields = list(body.select) if body.select else None
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
    rows = await rt.crons.runs_of(uuid_param(cron_id, "cron"), limit=limit, offset=offset)
    out = []
    for row in rows:
        item = views.run(row)
        item["delay_ms"] = round((row["created_at"] - row["scheduled_for"]).total_seconds() * 1000, 3)
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


@router.get("/runs/crons/{cron_id}/next")
async def cron_next(cron_id: str, rt: RuntimeDep, count: int = Query(default=5, ge=1, le=1000)) -> Any:
    row = await rt.crons.get(uuid_param(cron_id, "cron"))
    preview = rt.crons.preview(row["schedule"], row["timezone"], count)
    if row["end_time"] is not None:
        preview["next_run_dates"] = [d for d in preview["next_run_dates"] if d < row["end_time"]]
    preview["enabled"] = row["enabled"]
    return preview
