"""Crons: create, change, delete, search, and the history and preview extensions.

All schedule math is in schedules/expression.py and schedules/policy.py; this module validates a request against
them, keeps `next_run_date` true (recomputed from now on create, schedule or time-zone change, and re-enable, so
that a paused cron never fires a stale occurrence), and wakes the scheduler after every change.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError

from crongraph import notify, webhook_policy
from crongraph.errors import BadRequest, InvalidInput, NotFound
from crongraph.ids import new_id, parse_uuid, system_assistant_id
from crongraph.schedules.expression import CronExpression, InvalidSchedule, InvalidTimezone, load_timezone
from crongraph.schedules.policy import MissedPolicy, first_run_date
from crongraph.services.context import ServiceContext
from crongraph.services.runs import RunService
from crongraph.storage import assistants, crons, runs, threads
from crongraph.storage.common import Record

# Keys of a cron's payload that describe the schedule, not the run it creates.
SCHEDULE_KEYS = ("schedule", "timezone", "end_time", "enabled", "on_run_completed", "missed_policy")


def cron_not_found(cron_id: str) -> NotFound:
    return NotFound(f"Cron '{cron_id}' not found")


def parse_schedule(schedule: str, timezone: str | None) -> tuple[CronExpression, ZoneInfo]:
    try:
        tz = load_timezone(timezone)
    except InvalidTimezone as exc:
        raise InvalidInput(str(exc)) from None
    try:
        return CronExpression.parse(schedule), tz
    except InvalidSchedule as exc:
        raise InvalidInput(str(exc)) from None


def as_utc(value: Any) -> datetime | None:
    """The reference stores end_time as a string and then crashes comparing it; we keep an aware datetime
    (a naive one is read as UTC)."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidInput(f"Invalid end_time: '{value}' is not an ISO-8601 date-time") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class CronService:
    def __init__(self, ctx: ServiceContext, runs_service: RunService) -> None:
        self.ctx = ctx
        self.runs = runs_service

    async def _wake(self, next_run_date: datetime | None, enabled: bool = True) -> None:
        """Tell the schedulers a cron is due at `next_run_date`: those sleeping past it wake up."""
        if next_run_date is not None and enabled:
            await self.ctx.notifier.notify(notify.CRONS, next_run_date.isoformat())

    def _assistant_id(self, value: str) -> str:
        if value in self.ctx.graphs:
            return system_assistant_id(value)
        parsed = parse_uuid(value)
        if parsed is None:
            raise NotFound(f"Assistant '{value}' not found")
        return parsed

    def _check_webhook(self, body: dict[str, Any]) -> None:
        """A cron's runs call its webhook: refuse a bad target now, not at every fire."""
        if body.get("webhook"):
            problem = webhook_policy.check_url(body["webhook"], self.ctx.webhook_policy)
            if problem:
                raise InvalidInput(problem)

    async def create(self, thread_id: str | None, body: dict[str, Any]) -> Record:
        assistant_id = self._assistant_id(body["assistant_id"])
        self._check_webhook(body)
        expr, tz = parse_schedule(body["schedule"], body.get("timezone"))
        end_time = as_utc(body.get("end_time"))
        now = self.ctx.clock.now()
        next_run = first_run_date(expr, tz, now, end_time)
        if next_run is None:
            raise InvalidInput("end_time is in the past: this cron would never fire")
        cron_id = new_id()
        payload = dict(body)
        payload["assistant_id"] = assistant_id
        config = dict(payload.get("config") or {})
        config["configurable"] = {**(config.get("configurable") or {}), "cron_id": cron_id}
        payload["config"] = config
        row = {
            "cron_id": cron_id,
            "assistant_id": assistant_id,
            "thread_id": thread_id,
            "user_id": "",
            "schedule": body["schedule"],
            "timezone": body.get("timezone"),
            "end_time": end_time,
            "payload": payload,
            "metadata": body.get("metadata") or {},
            "on_run_completed": None if thread_id else (body.get("on_run_completed") or "delete"),
            "enabled": body.get("enabled", True) is not False,
            "next_run_date": next_run,
            "missed_policy": body.get("missed_policy") or MissedPolicy.LATEST.value,
            "created_at": now,
            "updated_at": now,
        }
        try:
            async with self.ctx.db.write() as conn:
                await crons.insert_new(conn, row)
        except IntegrityError:
            # The foreign keys refused it: one statement on the hot path, and the reads only when it fails.
            async with self.ctx.db.read() as conn:
                if await assistants.get(conn, assistant_id) is None:
                    raise NotFound(f"Assistant '{body['assistant_id']}' not found") from None
                if thread_id is not None and await threads.get(conn, thread_id) is None:
                    raise NotFound(f"Thread with ID '{thread_id}' not found. Please verify the thread ID.") from None
            raise
        await self._wake(next_run, row["enabled"])
        return row

    async def get(self, cron_id: str) -> Record:
        async with self.ctx.db.read() as conn:
            row = await crons.get(conn, cron_id)
        if row is None:
            raise cron_not_found(cron_id)
        return row

    async def update(self, cron_id: str, body: dict[str, Any]) -> Record:
        if not body:
            raise BadRequest("Request body cannot be empty")
        self._check_webhook(body)
        now = self.ctx.clock.now()
        async with self.ctx.db.write() as conn:
            current = await crons.get(conn, cron_id)
            if current is None:
                raise cron_not_found(cron_id)
            changes: dict[str, Any] = {"updated_at": now}
            schedule = body.get("schedule") or current["schedule"]
            timezone = body["timezone"] if "timezone" in body else current["timezone"]
            expr, tz = parse_schedule(schedule, timezone)
            end_time = as_utc(body["end_time"]) if "end_time" in body else current["end_time"]
            enabled = body["enabled"] if body.get("enabled") is not None else current["enabled"]
            if body.get("schedule") is not None:
                changes["schedule"] = body["schedule"]
            if "timezone" in body:
                changes["timezone"] = body["timezone"]
            if "end_time" in body:
                changes["end_time"] = end_time
            if body.get("enabled") is not None:
                changes["enabled"] = body["enabled"]
            if body.get("on_run_completed") is not None and current["thread_id"] is None:
                changes["on_run_completed"] = body["on_run_completed"]
            if body.get("missed_policy") is not None:
                changes["missed_policy"] = body["missed_policy"]
            if body.get("metadata") is not None:
                changes["metadata"] = {**current["metadata"], **body["metadata"]}
            recompute = any(k in body for k in ("schedule", "timezone", "end_time")) or (
                enabled and not current["enabled"]
            )
            if recompute:
                changes["next_run_date"] = first_run_date(expr, tz, now, end_time)
            payload = {**current["payload"], **body}
            payload["assistant_id"] = current["assistant_id"]
            config = dict(payload.get("config") or {})
            config["configurable"] = {**(config.get("configurable") or {}), "cron_id": cron_id}
            payload["config"] = config
            changes["payload"] = payload
            await crons.update_fields(conn, cron_id, **changes)
        updated = {**current, **changes}
        await self._wake(updated["next_run_date"], updated["enabled"])
        return updated

    async def delete(self, cron_id: str) -> None:
        async with self.ctx.db.write() as conn:
            if not await crons.delete_one(conn, cron_id):
                raise cron_not_found(cron_id)

    def _search_ids(self, body: dict[str, Any]) -> tuple[str | None, str | None]:
        assistant_id = body.get("assistant_id")
        thread_id = body.get("thread_id")
        if assistant_id:
            # The reference rejects graph names here although its docs allow them; we resolve them.
            assistant_id = (
                system_assistant_id(assistant_id) if assistant_id in self.ctx.graphs else parse_uuid(assistant_id)
            )
            if assistant_id is None:
                raise InvalidInput("Invalid assistant ID: must be a UUID or a graph id")
        if thread_id:
            thread_id = parse_uuid(thread_id)
            if thread_id is None:
                raise InvalidInput("Invalid thread ID: must be a UUID")
        return assistant_id, thread_id

    async def search(self, body: dict[str, Any]) -> list[Record]:
        assistant_id, thread_id = self._search_ids(body)
        async with self.ctx.db.read() as conn:
            return await crons.search(
                conn,
                dialect=self.ctx.dialect,
                assistant_id=assistant_id,
                thread_id=thread_id,
                enabled=body.get("enabled"),
                metadata=body.get("metadata"),
                limit=body["limit"],
                offset=body["offset"],
                sort_by=(body.get("sort_by") or "created_at").lower(),
                sort_order=body.get("sort_order") or "desc",
            )

    async def count(self, body: dict[str, Any]) -> int:
        assistant_id, thread_id = self._search_ids(body)
        async with self.ctx.db.read() as conn:
            return await crons.count(
                conn,
                dialect=self.ctx.dialect,
                assistant_id=assistant_id,
                thread_id=thread_id,
                metadata=body.get("metadata"),
            )

    # Extensions: history, usage, preview

    async def usage(self, rows: list[Record]) -> dict[str, Record]:
        ids = [r["cron_id"] for r in rows]
        async with self.ctx.db.read() as conn:
            stats = await crons.usage(conn, ids, self.ctx.clock.now() - timedelta(days=1))
            last = await crons.last_runs(conn, ids)
        for cron_id in ids:
            entry = stats.setdefault(cron_id, {"runs": 0, "runs_recent": 0, "skipped": 0, "failed": 0, "last": None})
            entry["last_run"] = last.get(cron_id)
        return stats

    async def runs_of(self, cron_id: str, *, limit: int, offset: int) -> list[Record]:
        await self.get(cron_id)
        async with self.ctx.db.read() as conn:
            return await runs.for_cron(conn, cron_id, limit=limit, offset=offset)

    async def fires_of(self, cron_id: str, *, limit: int, offset: int, outcome: str | None) -> list[Record]:
        await self.get(cron_id)
        async with self.ctx.db.read() as conn:
            return await crons.fires(conn, cron_id, limit=limit, offset=offset, outcome=outcome)

    def preview(self, schedule: str, timezone: str | None, count: int, after: datetime | None = None) -> dict[str, Any]:
        expr, tz = parse_schedule(schedule, timezone)
        start = after or self.ctx.clock.now()
        return {
            "schedule": schedule,
            "timezone": timezone,
            "description": expr.describe(tz),
            "next_run_dates": expr.upcoming(start, tz, count),
        }
