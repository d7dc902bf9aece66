"""Crons: create, change, delete, search, and the history and preview extensions.

All schedule math is in schedules/ (expression.py, at.py, policy.py); this module validates a request against
them, keeps `next_run_date` true (recomputed from now on create, schedule or time-zone change, and re-enable, so
that a paused cron never fires a stale occurrence), and wakes the scheduler after every change.

Cost guards (docs/crons.md): per-owner limits are checked in the transaction that makes a cron active, under a
per-owner lock; manual triggers and backfills create their runs through CronGuards.fire under the cron's row
lock, in the transaction that writes their fire-log rows, so a backfill repeated or racing creates nothing twice.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError

from crongraph import notify, webhook_policy
from crongraph.errors import BadRequest, Conflict, InvalidInput, NotFound
from crongraph.ids import new_id, parse_uuid, system_assistant_id
from crongraph.observability import events
from crongraph.schedules.at import AtInstant, Schedule
from crongraph.schedules.at import parse_schedule as parse_any_schedule
from crongraph.schedules.expression import InvalidSchedule, InvalidTimezone, load_timezone
from crongraph.schedules.policy import MissedPolicy, OverlapPolicy, first_run_date, shortest_interval
from crongraph.services.access import AUTH_KEYS, allowed, caller_identity, run_identity
from crongraph.services.context import ServiceContext
from crongraph.services.cron_guards import CRON_KEYS, Cancels, CronGuards
from crongraph.services.cron_inserts import CronInserts
from crongraph.services.runs import RunService
from crongraph.storage import assistants, crons, runs, threads
from crongraph.storage.common import Record

# Keys of a cron's payload that describe the schedule and its guards, not the run it creates.
SCHEDULE_KEYS = CRON_KEYS
# Occurrences one backfill request may create: a larger range is refused (split it into several requests).
MAX_BACKFILL_RUNS = 100
_TICK = timedelta(microseconds=1)


def cron_not_found(cron_id: str) -> NotFound:
    return NotFound(f"Cron '{cron_id}' not found")


def parse_schedule(schedule: str, timezone: str | None) -> tuple[Schedule, ZoneInfo]:
    try:
        tz = load_timezone(timezone)
    except InvalidTimezone as exc:
        raise InvalidInput(str(exc)) from None
    try:
        return parse_any_schedule(schedule), tz
    except InvalidSchedule as exc:
        raise InvalidInput(str(exc)) from None


def as_utc(value: Any, name: str = "end_time") -> datetime | None:
    """The reference stores end_time as a string and then crashes comparing it; we keep an aware datetime
    (a naive one is read as UTC)."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidInput(f"Invalid {name}: '{value}' is not an ISO-8601 date-time") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    moment: datetime = value.astimezone(UTC)
    return moment


class CronService:
    def __init__(self, ctx: ServiceContext, runs_service: RunService, guards: CronGuards | None = None) -> None:
        self.ctx = ctx
        self.runs = runs_service
        self.guards = guards or CronGuards(ctx, runs_service)
        self._inserts = CronInserts(ctx.db, lambda conn, row: self._check_owner_limit(conn, row["user_id"]))

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

    def _check_interval(self, expr: Schedule, tz: ZoneInfo, schedule: str, now: datetime) -> None:
        shortest = self.ctx.settings.min_cron_interval_seconds
        if not shortest:
            return
        gap = shortest_interval(expr, tz, now)
        if gap is not None and gap.total_seconds() < shortest:
            raise InvalidInput(
                f"Schedule '{schedule}' fires every {gap.total_seconds():g} seconds; this server's shortest "
                f"allowed interval is {shortest:g} seconds (CRONGRAPH_MIN_CRON_INTERVAL_SECONDS)"
            )

    async def _check_owner_limit(self, conn: Any, owner: str, exclude: str | None = None) -> None:
        """Refuse one more active cron for `owner` past CRONGRAPH_MAX_CRONS_PER_OWNER (call in the transaction
        that makes the cron active: the per-owner lock makes check and write one step across replicas)."""
        limit = self.ctx.settings.max_crons_per_owner
        if not limit:
            return
        await crons.lock_owner(conn, owner, self.ctx.dialect)
        active = await crons.active_count(conn, owner, exclude)
        if active >= limit:
            raise Conflict(
                f"This owner already has {active} active crons, the most this server allows "
                f"(CRONGRAPH_MAX_CRONS_PER_OWNER={limit}); pause or delete one first"
            )

    @staticmethod
    def _check_times(
        expr: Schedule | None, tz: ZoneInfo, schedule: str, end_time: datetime | None, now: datetime
    ) -> None:
        """Refuse what can only be a mistake: an end_time or an `@at` instant already past."""
        if end_time is not None and end_time <= now:
            raise InvalidInput(f"end_time {end_time.isoformat()} is in the past: this cron would never fire")
        if isinstance(expr, AtInstant) and expr.next_after(now, tz) is None:
            at = expr.at(tz)
            when = at.isoformat() if at is not None else str(expr.wall)
            raise InvalidInput(f"Invalid cron schedule '{schedule}': the instant {when} is in the past")

    def _guards(self, body: dict[str, Any], current: Record | None) -> Record:
        """The guard columns a create or patch body sets (a create's missing keys take their defaults)."""
        out: Record = {}
        if current is None:
            out = {
                "max_runs": None,
                "runs_fired": 0,
                "start_time": None,
                "overlap_policy": OverlapPolicy.ALLOW.value,
                "pause_after_failures": self.ctx.settings.pause_after_failures,
                "consecutive_failures": 0,
                "max_tokens_per_day": None,
                "jitter_seconds": 0,
                "paused_reason": None,
            }
        for key in ("max_runs", "pause_after_failures", "max_tokens_per_day"):
            if key in body:
                out[key] = body[key]
        if "start_time" in body:
            out["start_time"] = as_utc(body["start_time"], "start_time")
        if body.get("overlap_policy") is not None:
            out["overlap_policy"] = body["overlap_policy"]
        if "jitter_seconds" in body:
            out["jitter_seconds"] = body["jitter_seconds"] or 0
        return out

    async def create(self, thread_id: str | None, body: dict[str, Any]) -> Record:
        assistant_id = self._assistant_id(body["assistant_id"])
        self._check_webhook(body)
        expr, tz = parse_schedule(body["schedule"], body.get("timezone"))
        end_time = as_utc(body.get("end_time"))
        now = self.ctx.clock.now()
        self._check_times(expr, tz, body["schedule"], end_time, now)
        self._check_interval(expr, tz, body["schedule"], now)
        guards = self._guards(body, None)
        # An end_time before the first occurrence is accepted, as the reference does: the cron is finished.
        next_run = first_run_date(expr, tz, now, end_time, guards["start_time"])
        cron_id = new_id()
        payload = dict(body)
        payload["assistant_id"] = assistant_id
        config = dict(payload.get("config") or {})
        # Its runs act for whoever creates it, later and unattended: the identity is the caller's, never the body's.
        configurable = {k: v for k, v in (config.get("configurable") or {}).items() if k not in AUTH_KEYS}
        config["configurable"] = {**configurable, "cron_id": cron_id, **(run_identity() or {})}
        payload["config"] = config
        metadata = await self._authorize_create(cron_id, thread_id, assistant_id, body, payload, end_time)
        row = {
            "cron_id": cron_id,
            "assistant_id": assistant_id,
            "thread_id": thread_id,
            "user_id": caller_identity() or "",
            "schedule": body["schedule"],
            "timezone": body.get("timezone"),
            "end_time": end_time,
            "payload": payload,
            "metadata": metadata,
            "on_run_completed": None if thread_id else (body.get("on_run_completed") or "delete"),
            "enabled": body.get("enabled", True) is not False,
            "next_run_date": next_run,
            "missed_policy": body.get("missed_policy") or MissedPolicy.LATEST.value,
            "created_at": now,
            "updated_at": now,
            **guards,
        }
        try:
            # Group commit with concurrent creates; answered once its row is committed, with its own row's error.
            checked = bool(row["enabled"] and next_run is not None and self.ctx.settings.max_crons_per_owner)
            await self._inserts.insert(row, checked)
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

    async def _authorize_create(
        self,
        cron_id: str,
        thread_id: str | None,
        assistant_id: str,
        body: dict[str, Any],
        payload: dict[str, Any],
        end_time: datetime | None,
    ) -> dict[str, Any]:
        """Run the `crons.create` auth handler (the metadata it leaves is the cron's), and check the caller may
        read the cron's thread and (non-system) assistant: another user's is "not found", as in the reference."""
        asked: dict[str, Any] = {
            "payload": payload,
            "schedule": body["schedule"],
            "cron_id": cron_id,
            "thread_id": thread_id,
            "user_id": caller_identity(),
            "end_time": end_time,
            "metadata": dict(body.get("metadata") or {}),
        }
        await allowed(self.ctx, "crons", "create", asked)
        thread_visible = (
            await allowed(self.ctx, "threads", "read", {"thread_id": thread_id}) if thread_id is not None else None
        )
        assistant_visible = await allowed(self.ctx, "assistants", "read", {"assistant_id": assistant_id})
        if thread_visible is not None or assistant_visible is not None:
            async with self.ctx.db.read() as conn:
                assistant = await assistants.get(conn, assistant_id)
                if (
                    assistant is not None
                    and assistant_visible is not None
                    and (assistant["metadata"] or {}).get("created_by") != "system"
                    and await assistants.get(conn, assistant_id, assistant_visible) is None
                ):
                    raise NotFound(f"Assistant '{body['assistant_id']}' not found")
                if thread_visible is not None and await threads.get(conn, str(thread_id), thread_visible) is None:
                    raise NotFound(f"Thread with ID '{thread_id}' not found. Please verify the thread ID.")
        return dict(asked.get("metadata") or {})

    async def get(self, cron_id: str) -> Record:
        visible = await allowed(self.ctx, "crons", "read", {"cron_id": cron_id})
        async with self.ctx.db.read() as conn:
            row = await crons.get(conn, cron_id, visible)
        if row is None:
            raise cron_not_found(cron_id)
        return row

    async def update(self, cron_id: str, body: dict[str, Any]) -> Record:
        if not body:
            raise BadRequest("Request body cannot be empty")
        self._check_webhook(body)
        asked = {"cron_id": cron_id, "payload": body, "schedule": body.get("schedule")}
        if body.get("metadata") is not None:
            asked["metadata"] = dict(body["metadata"])
        visible = await allowed(self.ctx, "crons", "update", asked)
        if asked.get("metadata") is not None:
            body = {**body, "metadata": asked["metadata"]}
        now = self.ctx.clock.now()
        async with self.ctx.db.write() as conn:
            current = await crons.get_for_update(conn, cron_id, self.ctx.dialect, visible)
            if current is None:
                raise cron_not_found(cron_id)
            changes: dict[str, Any] = {"updated_at": now}
            schedule = body.get("schedule") or current["schedule"]
            timezone = body["timezone"] if "timezone" in body else current["timezone"]
            expr, tz = parse_schedule(schedule, timezone)
            end_time = as_utc(body["end_time"]) if "end_time" in body else current["end_time"]
            enabled = body["enabled"] if body.get("enabled") is not None else current["enabled"]
            self._check_times(
                expr if body.get("schedule") is not None else None,
                tz,
                schedule,
                end_time if "end_time" in body else None,
                now,
            )
            if body.get("schedule") is not None:
                self._check_interval(expr, tz, schedule, now)
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
            guards = self._guards(body, current)
            changes.update(guards)
            reenabled = enabled and not current["enabled"]
            if reenabled:
                # Someone re-enabled it: whatever paused it is forgotten, and failures count from zero.
                changes["paused_reason"] = None
                changes["consecutive_failures"] = 0
            start_time = guards.get("start_time", current["start_time"])
            max_runs = guards.get("max_runs", current["max_runs"])
            recompute = any(k in body for k in ("schedule", "timezone", "end_time", "start_time", "max_runs"))
            if recompute or reenabled:
                changes["next_run_date"] = first_run_date(expr, tz, now, end_time, start_time)
            if max_runs is not None and current["runs_fired"] >= max_runs:
                changes["next_run_date"] = None  # its runs are used up
            next_run = changes.get("next_run_date", current["next_run_date"])
            if enabled and next_run is not None and (reenabled or current["next_run_date"] is None):
                await self._check_owner_limit(conn, current["user_id"] or "", exclude=cron_id)
            payload = {**current["payload"], **body}
            payload["assistant_id"] = current["assistant_id"]
            config = dict(payload.get("config") or {})
            # The runs keep acting for the cron's creator, whatever config a patch sends.
            owner = (current["payload"].get("config") or {}).get("configurable") or {}
            configurable = {k: v for k, v in (config.get("configurable") or {}).items() if k not in AUTH_KEYS}
            owner_keys = {k: owner[k] for k in AUTH_KEYS if k in owner}
            config["configurable"] = {**configurable, "cron_id": cron_id, **owner_keys}
            payload["config"] = config
            changes["payload"] = payload
            await crons.update_fields(conn, cron_id, **changes)
        updated = {**current, **changes}
        await self._wake(updated["next_run_date"], updated["enabled"])
        if current["enabled"] and not updated["enabled"]:
            events.cron_paused(cron_id, "enabled set to false by a client")
        return updated

    async def delete(self, cron_id: str) -> None:
        visible = await allowed(self.ctx, "crons", "delete", {"cron_id": cron_id})
        async with self.ctx.db.write() as conn:
            if not await crons.delete_one(conn, cron_id, visible):
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

    async def _search_filter(self, assistant_id: str | None, thread_id: str | None, body: dict[str, Any]) -> Any:
        asked = {"assistant_id": assistant_id, "thread_id": thread_id}
        asked.update(limit=body.get("limit", 10), offset=body.get("offset", 0))
        return await allowed(self.ctx, "crons", "search", asked)

    async def search(self, body: dict[str, Any]) -> list[Record]:
        assistant_id, thread_id = self._search_ids(body)
        visible = await self._search_filter(assistant_id, thread_id, body)
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
                visible=visible,
            )

    async def count(self, body: dict[str, Any]) -> int:
        assistant_id, thread_id = self._search_ids(body)
        visible = await self._search_filter(assistant_id, thread_id, body)
        async with self.ctx.db.read() as conn:
            return await crons.count(
                conn,
                dialect=self.ctx.dialect,
                assistant_id=assistant_id,
                thread_id=thread_id,
                metadata=body.get("metadata"),
                visible=visible,
            )

    # Extensions: history, usage, preview

    async def usage(self, rows: list[Record]) -> dict[str, Record]:
        ids = [r["cron_id"] for r in rows]
        async with self.ctx.db.read() as conn:
            stats = await crons.usage(conn, ids, self.ctx.clock.now() - timedelta(days=1))
            last = await crons.last_runs(conn, ids)
        for cron_id in ids:
            entry = stats.setdefault(cron_id, crons.empty_usage())
            entry["last_run"] = last.get(cron_id)
        return stats

    # Extensions: trigger and backfill

    async def trigger(self, cron_id: str) -> Record:
        """Run the cron now, whatever its schedule, state and overlap policy (an explicit request): one run,
        logged as a `manual` fire. Its fire-log key is the request's instant, moved off whole seconds (where
        every scheduled occurrence is), so it never takes a scheduled occurrence's place."""
        now = self.ctx.clock.now()
        key = now if now.microsecond else now + _TICK
        visible = await allowed(self.ctx, "crons", "update", {"cron_id": cron_id})
        async with self.ctx.db.write() as conn:
            cron = await crons.get_for_update(conn, cron_id, self.ctx.dialect, visible)
            if cron is None:
                raise cron_not_found(cron_id)
            while await crons.fire_exists(conn, cron_id, key):
                key += _TICK  # two triggers within a microsecond
                if not key.microsecond:
                    key += _TICK
            run, cancels = await self.guards.fire(conn, cron, key, now, kind="manual")
        assert run is not None  # an explicit fire raises rather than skip
        await self.runs.after_commit(run, cancels)
        return run

    async def backfill(self, cron_id: str, start: datetime, end: datetime) -> Record:
        """One run per occurrence of the cron's schedule in [start, end) that has none yet: `{"created",
        "existing", "deferred", "runs"}`. Occurrences logged skipped or failed get their run now; those with a
        run are `existing`. On an enabled cron, occurrences from its next_run_date on are the scheduler's
        (it fires them by its missed policy) and are counted `deferred`. Refused (422) when `end` is in the
        future, `start` is not before `end`, or more than MAX_BACKFILL_RUNS runs would be created."""
        now = self.ctx.clock.now()
        if start >= end:
            raise InvalidInput(f"backfill start {start.isoformat()} must be before end {end.isoformat()}")
        if end > now:
            raise InvalidInput(
                f"backfill end {end.isoformat()} is in the future: a backfill creates runs for past occurrences; "
                "the schedule fires the others"
            )
        created: list[tuple[Record, Cancels]] = []
        visible = await allowed(self.ctx, "crons", "update", {"cron_id": cron_id})
        async with self.ctx.db.write() as conn:
            cron = await crons.get_for_update(conn, cron_id, self.ctx.dialect, visible)
            if cron is None:
                raise cron_not_found(cron_id)
            expr, tz = parse_schedule(cron["schedule"], cron["timezone"])
            lower = max(start, cron["start_time"]) if cron["start_time"] else start
            upper = min(end, cron["end_time"]) if cron["end_time"] else end
            owned = cron["next_run_date"] if cron["enabled"] and cron["next_run_date"] is not None else None
            slots = expr.occurrences_between(lower - _TICK, upper - _TICK, tz, limit=10_000) if lower < upper else []
            deferred = [t for t in slots if owned is not None and t >= owned]
            slots = [t for t in slots if owned is None or t < owned]
            logged = {f["scheduled_for"]: f for f in await crons.existing_fires(conn, cron_id, lower, upper)}
            existing = [t for t in slots if t in logged and logged[t]["outcome"] == "created"]
            todo = [t for t in slots if t not in existing]
            if len(todo) > MAX_BACKFILL_RUNS:
                raise InvalidInput(
                    f"backfill would create {len(todo)}{'+' if len(slots) >= 10_000 else ''} runs; the limit is "
                    f"{MAX_BACKFILL_RUNS} per request: split the range from {start.isoformat()} to {end.isoformat()}"
                )
            for slot in todo:
                run, cancels = await self.guards.fire(conn, cron, slot, now, kind="backfill", fill=slot in logged)
                assert run is not None  # an explicit fire raises rather than skip
                created.append((run, cancels))
        for run, cancels in created:
            await self.runs.after_commit(run, cancels)
        return {
            "created": len(created),
            "existing": len(existing),
            "deferred": len(deferred),
            "runs": [run for run, _ in created],
        }

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
