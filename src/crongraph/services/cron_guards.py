"""Cron cost guards: how one occurrence of a cron becomes a run (overlap policy, jitter, the fire log), and what
happens when a cron's run ends (its outcome and tokens in the fire log, pause on failures or token budget,
release of a buffered run).

Invariants:
- Every run a cron creates (scheduled, manual trigger, backfill) is created by `fire` inside the caller's
  transaction, together with its fire-log row (primary key (cron_id, scheduled_for)): both commit or neither.
  `fire` returns the runs its strategy or overlap policy cancelled; the caller passes them to
  `RunService.after_commit` after commit, or their executors would not hear of the cancel in time.
- An occurrence that creates no run (overlap skip, busy thread with `reject`, deleted assistant) is a `skipped`
  fire-log row whose detail says why: nothing is dropped silently.
- When a cron's run ends, a transaction writes its status and tokens on its fire-log row (once: a row with an
  outcome is not written again), updates the cron's consecutive failures, and disables the cron with a
  `paused_reason` when `pause_after_failures` or `max_tokens_per_day` is exceeded. The runs that end while one
  such transaction is written, or within ENDED_LINGER of the first, are recorded together in the next (a burst of
  10,000 cron runs is not 10,000 more transactions), each exactly as if alone: in the order they ended, each
  counted once. The hook runs after the
  run's outcome committed; a crash in between leaves those runs uncounted (their run rows still have their usage).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any

from crongraph import notify
from crongraph.errors import CrongraphError
from crongraph.observability import events
from crongraph.schedules.policy import OverlapPolicy, jitter_delay
from crongraph.services.context import ServiceContext
from crongraph.services.runs import CRON, RunService
from crongraph.storage import crons, threads
from crongraph.storage.common import Record

log = logging.getLogger("crongraph.cron_guards")

# Keys of a cron's payload that describe the schedule and its guards, not the run it creates.
CRON_KEYS = (
    "schedule",
    "timezone",
    "end_time",
    "enabled",
    "on_run_completed",
    "missed_policy",
    "max_runs",
    "start_time",
    "overlap_policy",
    "pause_after_failures",
    "max_tokens_per_day",
    "jitter_seconds",
)
# Run outcomes that count as failures for pause_after_failures.
FAILED = ("error", "timeout")
Cancels = list[tuple[str, str]]
# Cron runs whose end one transaction records at most (the runs that ended while the previous batch was written).
ENDED_BATCH = 500
# How long the recording waits for more runs to end before it writes a batch smaller than ENDED_BATCH. A
# transaction costs ~0.5 ms of CPU whatever its size: in a burst, runs end a few per turn of the event loop, and
# written as they end they cost a transaction each. Waiting this long makes the batch ~50 runs at 1,000 runs/s.
ENDED_LINGER = 0.05
# The columns of a cron the guards read when its run ends.
GUARD_COLUMNS = (
    "enabled",
    "consecutive_failures",
    "overlap_policy",
    "pause_after_failures",
    "max_tokens_per_day",
)


def run_body(cron: Record) -> dict[str, Any]:
    """The run a cron creates: its payload, minus the keys that describe the schedule."""
    payload = dict(cron["payload"])
    for key in CRON_KEYS:
        payload.pop(key, None)
    payload["metadata"] = {**(cron["metadata"] or {}), **(payload.get("metadata") or {})}
    if cron["thread_id"] is None:
        payload["on_completion"] = cron["on_run_completed"] or "delete"
        payload.pop("multitask_strategy", None)
    return payload


def jittered(cron: Record, slot: datetime, run: Record) -> datetime | None:
    """When the run of a scheduled occurrence may start with the cron's jitter: the slot plus its delay, or at
    once if it was created later than that; None without jitter_seconds."""
    jitter = cron.get("jitter_seconds") or 0
    if not jitter:
        return None
    start: datetime = max(run["available_at"], slot + jitter_delay(cron["cron_id"], slot, jitter))
    return start


class CronGuards:
    def __init__(self, ctx: ServiceContext, runs: RunService) -> None:
        self.ctx = ctx
        self.runs = runs
        # Cron runs ended and not yet recorded, and the one task recording them (see on_run_finished).
        self._ended: list[Record] = []
        self._flusher: asyncio.Task[None] | None = None
        self._stopping = False
        # Counters for /metrics (runtime.metrics()["cron_guards"]).
        self.counters: dict[str, int] = {
            "overlap_skipped": 0,
            "overlap_cancelled": 0,
            "buffered": 0,
            "paused_failures": 0,
            "paused_budget": 0,
            "manual_fires": 0,
            "backfill_fires": 0,
            "runs_ended": 0,
            "tokens": 0,
        }

    def stats(self) -> dict[str, int]:
        return dict(self.counters)

    # Creating a cron's run

    async def fire(
        self,
        conn: Any,
        cron: Record,
        slot: datetime,
        now: datetime,
        *,
        kind: str = "schedule",
        fill: bool = False,
    ) -> tuple[Record | None, Cancels]:
        """Create the run of one occurrence inside `conn`'s transaction and log it; (None, cancels) when the
        occurrence was skipped (logged with the reason).

        `kind` "manual" or "backfill" is an explicit request: the overlap policy and jitter do not apply, and a
        refusal (deleted assistant, busy thread with `reject`) raises instead of being logged, so the request
        fails and changes nothing. A backfill's runs queue on the cron's thread whatever its multitask strategy
        (they would cancel or refuse one another). `fill`: the occurrence already has a fire-log row without a
        run (skipped or failed), which becomes this run's."""
        explicit = kind != "schedule"
        cancels: Cancels = []
        hold = False
        if not explicit:
            verdict = await self._overlap(conn, cron, now)
            if isinstance(verdict, str):
                self.counters["overlap_skipped"] += 1
                await crons.record_fire(conn, cron["cron_id"], slot, now, "skipped", detail=verdict, kind=kind)
                events.cron_not_fired(cron["cron_id"], slot, now, "skipped", verdict)
                return None, []
            hold, cancels = verdict
        body = run_body(cron)
        if kind == "backfill" and cron["thread_id"] is not None:
            body["multitask_strategy"] = "enqueue"
        marks = {"cron_id": cron["cron_id"], "cron_scheduled_for": slot.isoformat()}
        if kind != "schedule":
            marks["cron_fire_kind"] = kind
        try:
            async with conn.begin_nested():
                run, cancelled = await self.runs.create_in(
                    conn,
                    cron["thread_id"],
                    body,
                    priority=CRON,
                    extra_metadata=marks,
                    cron=(cron["cron_id"], slot),
                )
        except CrongraphError as exc:
            if explicit:
                raise
            # A busy thread with multitask_strategy "reject", a deleted assistant: visible in the fire log.
            await crons.record_fire(conn, cron["cron_id"], slot, now, "skipped", detail=exc.detail, kind=kind)
            events.cron_not_fired(cron["cron_id"], slot, now, "skipped", exc.detail)
            return None, cancels
        start = crons.HELD if hold else (None if explicit else jittered(cron, slot, run))
        if start is not None:
            run["available_at"] = start
            await crons.set_available_at(conn, run["run_id"], start)
            self.counters["buffered"] += hold
        if fill:
            await crons.fill_fire(conn, cron["cron_id"], slot, now, run["run_id"], kind)
        else:
            await crons.record_fire(conn, cron["cron_id"], slot, now, "created", run_id=run["run_id"], kind=kind)
        if explicit:
            self.counters[f"{kind}_fires"] = self.counters.get(f"{kind}_fires", 0) + 1
        return run, cancels + cancelled

    async def _overlap(self, conn: Any, cron: Record, now: datetime) -> str | tuple[bool, Cancels]:
        """The overlap policy's verdict: a reason to skip, or (hold the new run, runs cancelled)."""
        policy = OverlapPolicy(cron.get("overlap_policy") or OverlapPolicy.ALLOW)
        if policy is OverlapPolicy.ALLOW:
            return False, []
        inflight = await crons.inflight_runs(conn, cron["cron_id"])
        if not inflight:
            return False, []
        running = [r for r in inflight if r["status"] == "running"]
        waiting = [r for r in inflight if r["status"] == "pending"]
        if policy is OverlapPolicy.SKIP:
            first = inflight[0]
            return f"overlap_policy skip: this cron's run {first['run_id']} is still {first['status']}"
        if policy is OverlapPolicy.BUFFER_ONE:
            if waiting and not running and await crons.release_held(conn, cron["cron_id"], now):
                # The run that held it ended without releasing it (a crash between its end and its hook).
                await self.ctx.notifier.notify(notify.RUNS, waiting[0]["run_id"])
            if waiting:
                return f"overlap_policy buffer_one: this cron's run {waiting[0]['run_id']} already waits"
            # On a thread the new run queues behind the running one by itself; a new thread needs holding.
            return cron["thread_id"] is None, []
        self.counters["overlap_cancelled"] += len(inflight)
        cancels = await self.runs.supersede_in(conn, inflight, "interrupt")
        for thread_id in {r["thread_id"] for r in waiting} - {r["thread_id"] for r in running}:
            if cron["thread_id"] is None:
                await threads.update_fields(conn, thread_id, status="idle", updated_at=now)
        return False, cancels

    # When a cron's run ends

    def on_run_finished(self, run: Record) -> None:
        """Executor and reaper finished hook (synchronous): the run joins the ones waiting to be recorded, which
        one task writes in one transaction per batch (the runs that ended meanwhile)."""
        if not run.get("cron_id") or run.get("scheduled_for") is None:
            return
        self._ended.append(run)
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_ended(), name="cron-guard-ended")

    async def stop(self) -> None:
        """Record what has ended, without waiting for more."""
        self._stopping = True
        try:
            if self._flusher is not None:
                await asyncio.gather(self._flusher, return_exceptions=True)
        finally:
            self._stopping = False

    async def _flush_ended(self) -> None:
        """Record the runs ended so far, ENDED_BATCH per transaction, until none is left. Started on the first
        one: by the time it runs, the runs that ended in the same turn of the event loop have joined it."""
        try:
            while self._ended:
                if len(self._ended) < ENDED_BATCH and not self._stopping:
                    # A lone run's record waits this long too: it is not on any client's path (the run's own
                    # outcome is committed and answered already).
                    await asyncio.sleep(ENDED_LINGER)
                batch, self._ended = self._ended[:ENDED_BATCH], self._ended[ENDED_BATCH:]
                try:
                    await self.runs_ended(batch)
                except Exception:
                    # One bad run must not cost the others their record: the batch rolled back, so retry alone.
                    log.exception("recording the end of %d cron runs failed; recording them one by one", len(batch))
                    for run in batch:
                        await self._ended_quietly(run)
        finally:
            self._flusher = None

    async def _ended_quietly(self, run: Record) -> None:
        try:
            await self.run_ended(run)
        except Exception:
            log.exception("cron %s: recording the end of run %s failed", run.get("cron_id"), run.get("run_id"))

    async def run_ended(self, run: Record) -> Record | None:
        """Record the end of one cron's run and apply the guards, in one transaction (see runs_ended)."""
        return (await self.runs_ended([run]))[0]

    async def runs_ended(self, ended: list[Record]) -> list[Record | None]:
        """Record the end of cron runs and apply the guards, all in one transaction, in the order given (a cron
        with several runs here counts them in that order, as if each were recorded alone). Per run: the changes
        made to its cron, or None when the cron is gone or the run was already counted."""
        now = self.ctx.clock.now()
        results: list[Record | None] = [None] * len(ended)
        released: list[str] = []
        paused: list[tuple[str, str]] = []
        async with self.ctx.db.write() as conn:
            cron_ids = sorted({r["cron_id"] for r in ended})
            rows = await crons.get_many_for_update(conn, cron_ids, self.ctx.dialect, GUARD_COLUMNS)
            occurrences = [(r["cron_id"], r["scheduled_for"]) for r in ended if r["cron_id"] in rows]
            unended = await crons.unended_fires(conn, occurrences)
            counted: list[tuple[int, Record]] = []
            for i, run in enumerate(ended):
                key = (run["cron_id"], run["scheduled_for"])
                if key in unended:
                    unended.discard(key)  # a run reported twice is counted once
                    counted.append((i, run))
            # The token budget sums the fire log: read it before this batch's tokens are written, then add them
            # run by run, so each run's check sees exactly what it would have seen alone.
            since = now - timedelta(days=1)
            budget_used = {
                cron_id: await crons.tokens_since(conn, cron_id, since)
                for cron_id in sorted({run["cron_id"] for _, run in counted})
                if rows[cron_id].get("max_tokens_per_day") and rows[cron_id]["enabled"]
            }
            await crons.fires_ended(
                conn,
                [
                    {
                        "cron_id": run["cron_id"],
                        "scheduled_for": run["scheduled_for"],
                        "status": run["status"],
                        "ended_at": run.get("ended_at") or now,
                        "usage": run.get("usage") or None,
                        "error": run_error_text(run.get("error")) if run["status"] != "success" else None,
                    }
                    for _, run in counted
                ],
            )
            written: dict[str, Record] = {}  # per cron, the changes to write once at the end
            for i, run in counted:
                cron = rows[run["cron_id"]]
                tokens = int((run.get("usage") or {}).get("total_tokens") or 0)
                self.counters["runs_ended"] += 1
                self.counters["tokens"] += tokens
                if cron["cron_id"] in budget_used and (run.get("ended_at") or now) >= since:
                    budget_used[cron["cron_id"]] += tokens
                if cron["overlap_policy"] == OverlapPolicy.BUFFER_ONE and not [
                    r for r in await crons.inflight_runs(conn, cron["cron_id"]) if r["status"] == "running"
                ]:
                    run_id = await crons.release_held(conn, cron["cron_id"], now)
                    if run_id is not None:
                        released.append(run_id)
                changes = self._guard_changes(cron, run, budget_used.get(cron["cron_id"]), now)
                if "paused_reason" in changes:
                    paused.append((cron["cron_id"], changes["paused_reason"]))
                cron.update(changes)  # the next run of the same cron here starts from these
                written.setdefault(cron["cron_id"], {}).update(changes)
                results[i] = changes
            await crons.update_many(conn, written)
        for run_id in released:
            await self.ctx.notifier.notify(notify.RUNS, run_id)
        for cron_id, reason in paused:
            log.warning("cron %s paused: %s", cron_id, reason)
            events.cron_paused(cron_id, reason)
        return results

    def _guard_changes(self, cron: Record, run: Record, tokens_used: int | None, now: datetime) -> Record:
        """The changes one ended run makes to its cron: its consecutive failures, and a pause (enabled false,
        paused_reason) when pause_after_failures or max_tokens_per_day is exceeded. `tokens_used`: the cron's
        tokens of the last 24 hours including this run's (None without a budget)."""
        changes: Record = {}
        status = run["status"]
        failures = cron["consecutive_failures"]
        if status in FAILED:
            failures += 1
        elif status == "success":
            failures = 0
        if failures != cron["consecutive_failures"]:
            changes["consecutive_failures"] = failures
        reason = self._pause_reason(cron, run, failures, tokens_used) if cron["enabled"] else None
        if reason is not None:
            changes.update(enabled=False, paused_reason=reason, updated_at=now)
        return changes

    def _pause_reason(self, cron: Record, run: Record, failures: int, tokens_used: int | None) -> str | None:
        limit = cron.get("pause_after_failures")
        if limit and failures >= limit and run["status"] in FAILED:
            self.counters["paused_failures"] += 1
            error = run.get("error") or {}
            last = f"{error.get('error', run['status'])}: {error.get('message', '')}".rstrip(": ")
            return (
                f"pause_after_failures: {failures} consecutive runs ended in error (limit {limit}); "
                f"last error in run {run['run_id']}: {last}"
            )
        budget = cron.get("max_tokens_per_day")
        if budget and tokens_used is not None and tokens_used > budget:
            self.counters["paused_budget"] += 1
            return (
                f"max_tokens_per_day: {tokens_used} tokens in the last 24 hours exceed the budget of {budget} "
                f"(last run {run['run_id']})"
            )
        return None


def run_error_text(error: Any) -> str | None:
    """A run's stored error (`{"error": type, "message": text}`) as one line for the fire log, at most 1,000
    characters; None when there is none."""
    if not error:
        return None
    if isinstance(error, dict):
        kind, message = error.get("error"), error.get("message")
        text = f"{kind}: {message}" if kind and message else str(message or kind or error)
    else:
        text = str(error)
    text = " ".join(text.split())
    return text if len(text) <= 1000 else text[:997] + "..."
