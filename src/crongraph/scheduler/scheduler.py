"""The cron scheduler: sleeps until the earliest due occurrence, fires what is due, and goes back to sleep.

No polling interval: it sleeps until `min(next_run_date)` of the enabled crons (one indexed lookup) and is woken
early by a CRONS notification when a cron, here or on another replica, becomes due before that moment. A cron
due later, or deleted, does not wake it: registering thousands of crons costs the scheduler nothing.

Firing is exactly-once by construction. For each due cron, inside one transaction (a savepoint of a batch):
1. compare-and-set `next_run_date` from the value read to the next occurrence (on PostgreSQL the due query also
   takes row locks with SKIP LOCKED, so replicas split the work instead of colliding);
2. insert each occurrence into cron_fires, whose primary key (cron_id, scheduled_for) forbids a second fire;
3. create the run, at cron priority, in the same transaction.
A crash anywhere before commit leaves the occurrence unfired and it fires after restart; after commit it is done.
If creating the run fails, the occurrence is recorded `failed` with the reason, never silently dropped.

Crons without a thread (each fire makes a new thread: the many) are fired together, the same three steps for the
whole batch in a handful of statements, because a burst of thousands due at one instant must not cost a round
trip per statement per cron on a server that is busy running the previous ones. Crons on a thread (whose
multitask strategy may refuse the run), and any batch the bulk path fails on, are fired one by one.

A burst is created before any of it executes: the RUNS hint that wakes the producers goes out once per tick,
after its last batch, and on PostgreSQL a replica that fired part of a burst holds its hint (and its log lines)
back while other replicas still fire the rest (up to OTHERS_WAIT). A replica that finds every due cron locked by
the others looks again after LOCKED_RETRY instead of spinning. On SQLite a tick's statements run inline on the
event loop, so a burst is created in one turn of the loop (10,000 fires: under a second of CPU).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any

from crongraph import notify
from crongraph.errors import CrongraphError, NotFound
from crongraph.observability import events
from crongraph.schedules.at import Schedule, parse_schedule
from crongraph.schedules.expression import load_timezone
from crongraph.schedules.policy import DuePlan, MissedPolicy, OverlapPolicy, plan_due
from crongraph.services.context import ServiceContext
from crongraph.services.cron_guards import Cancels, CronGuards, jittered, run_body
from crongraph.services.runs import CRON, RunService
from crongraph.storage import assistants, bulk, crons, tables
from crongraph.storage.common import Record

log = logging.getLogger("crongraph.scheduler")

# Crons per transaction. A burst of 10,000 is 20 batches: per batch a fixed handful of statements and one commit,
# so larger batches cost less per fire (100 -> 500: ~15% less CPU a fire on both backends); on SQLite a batch of
# 500 holds the writer ~40 ms. On PostgreSQL each replica locks only its own batch (SKIP LOCKED): 20 batches still
# split a 10,000 burst between replicas.
BATCH = 500
# Lost notifications cost latency, not correctness: never sleep longer than this.
MAX_SLEEP = timedelta(seconds=30)
# How soon a replica looks again when every due cron is locked by other replicas firing them.
LOCKED_RETRY = timedelta(milliseconds=50)
# Longest a replica that fired part of a burst keeps its RUNS hint back while other replicas fire the rest.
OTHERS_WAIT = timedelta(seconds=5)
# Skipped occurrences written to the fire log per firing, so that a long outage cannot write an unbounded log.
SKIP_LOG_LIMIT = 100


def _fires_together(cron: Record) -> bool:
    """Thread-less crons, and thread crons that enqueue (the default), without an overlap policy or a run limit:
    their runs are created without looking at the runs in flight, so a whole batch of them can be created at
    once. (Jitter is only a later `available_at`, so it fires together too.)"""
    strategy = (cron["payload"] or {}).get("multitask_strategy") or "enqueue"
    plain = (cron.get("overlap_policy") or OverlapPolicy.ALLOW) == OverlapPolicy.ALLOW and cron.get("max_runs") is None
    return plain and (cron["thread_id"] is None or strategy == "enqueue")


class CronScheduler:
    def __init__(self, ctx: ServiceContext, runs: RunService, guards: CronGuards | None = None) -> None:
        self.ctx = ctx
        self.runs = runs
        self.guards = guards or CronGuards(ctx, runs)
        self._wake = asyncio.Event()
        self._sleeping_until: datetime | None = None  # None while a tick works: then every change wakes it
        self._task: asyncio.Task[None] | None = None
        self._expressions: dict[str, Schedule] = {}
        self.fired = 0
        self.ticks = 0  # times it woke up and looked: should grow with fires, not with registrations
        self.last_tick: datetime | None = None

    async def start(self) -> None:
        if self._task is not None:
            return
        self.ctx.notifier.listen(notify.CRONS, self._on_change)
        self._task = asyncio.create_task(self._run_forever(), name="crongraph-scheduler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def stats(self) -> dict[str, Any]:
        return {
            "running": self._task is not None,
            "fired": self.fired,
            "ticks": self.ticks,
            "last_tick": self.last_tick,
            # Cost guards (docs/crons.md): overlap skips and cancels, buffered runs, pauses, manual and backfill
            # fires, cron runs ended and their tokens, since this process started.
            "guards": self.guards.stats(),
        }

    def _on_change(self, next_run_date: str) -> None:
        """A cron was created or changed: wake up only if it is due before the moment we sleep until."""
        if self._sleeping_until is not None and next_run_date:
            try:
                due = datetime.fromisoformat(next_run_date)
            except ValueError:
                due = None
            if due is not None and due.tzinfo is not None and due >= self._sleeping_until:
                return
        self._wake.set()

    async def _run_forever(self) -> None:
        backoff = 0.1
        while True:
            try:
                await self.tick()
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("scheduler tick failed; retrying in %.1fs", backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    async def tick(self) -> None:
        """Fire everything due, then sleep until the next occurrence or a wake-up."""
        self._wake.clear()
        self.ticks += 1
        fired: list[Record] = []
        seen = 0
        postgres = self.ctx.dialect == "postgresql"
        others_until = self.ctx.clock.now() + OTHERS_WAIT
        try:
            while True:
                before = len(fired)
                seen = await self.fire_due(fired, hint=False)
                # On PostgreSQL a short batch that fired something may mean other replicas hold the rest (SKIP
                # LOCKED): look again.
                if seen >= BATCH or (postgres and seen and len(fired) > before):
                    continue
                # Nothing unlocked is due (seen == 0): whatever is still due is held by other replicas.
                if postgres and fired and not seen and await self._others_firing(others_until):
                    # Part of this burst is being fired by other replicas. Until they are done, keep this one's
                    # RUNS hint and log lines back: sent now, they would start executing runs (on every replica)
                    # and logging on the cores that are still creating the others.
                    # (Not woken by _wake: set by any cron change during the tick, it would make this a spin.)
                    await self.ctx.clock.sleep_until(self.ctx.clock.now() + LOCKED_RETRY, asyncio.Event())
                    continue
                break
        finally:
            if fired:
                # One RUNS hint once the whole burst is created, not one per batch: woken earlier, the producers
                # (on PostgreSQL every replica's) would execute runs on the cores still creating the others.
                await self.ctx.notifier.notify(notify.RUNS, fired[-1]["run_id"])
            # The log events of a burst's fires are written once all of it is created (each after its commit, so
            # a logged fire is still a durable one), one summary line for a large tick (events.FIRED_LOG_EACH).
            events.cron_fired_many(fired)
        async with self.ctx.db.read() as conn:
            earliest = await crons.earliest_next(conn)
        clock = self.ctx.clock
        now = clock.now()
        limit = now + MAX_SLEEP
        looked = self.last_tick  # the moment the last batch's query looked for due crons
        if earliest is not None and looked is not None and earliest <= looked and seen == 0:
            # Due crons, none of them ours to fire: other replicas hold them (SKIP LOCKED) and are firing them.
            # Look again shortly instead of spinning on queries that find them locked, on the cores they use.
            earliest = now + LOCKED_RETRY
        self._sleeping_until = min(earliest, limit) if earliest else limit
        try:
            await clock.sleep_until(self._sleeping_until, self._wake)
        finally:
            self._sleeping_until = None

    async def _others_firing(self, until: datetime) -> bool:
        """Whether crons due when this replica last looked are still unfired (other replicas hold them), and
        `until` has not passed."""
        if self.ctx.clock.now() >= until or self.last_tick is None:
            return False
        async with self.ctx.db.read() as conn:
            earliest = await crons.earliest_next(conn)
        return earliest is not None and earliest <= self.last_tick

    async def fire_due(self, fired: list[Record] | None = None, *, hint: bool = True) -> int:
        """One batch: up to BATCH due crons, one transaction: the thread-less ones together, then the others with
        a savepoint per cron. Returns crons seen. The runs created are appended to `fired` for the caller to log
        (`events.cron_fired`); without it they are logged here, after the commit. `hint`: send the RUNS hint for
        the runs fired together (False: the caller sends one for all its batches)."""
        now = self.ctx.clock.now()
        self.last_tick = now
        created: list[tuple[Record | None, Cancels]] = []
        together_runs: list[Record] = []
        async with self.ctx.db.write() as conn:
            due = await crons.due(conn, now, BATCH, self.ctx.dialect)
            together = [c for c in due if _fires_together(c)]
            one_by_one = [c for c in due if not _fires_together(c)]
            if together:
                try:
                    async with conn.begin_nested():
                        together_runs = await self._fire_together(conn, together, now)
                except Exception:
                    log.exception("firing %d crons together failed; firing them one by one", len(together))
                    together_runs = []
                    one_by_one += together
            for cron in one_by_one:
                try:
                    async with conn.begin_nested():
                        created += await self._fire(conn, cron, now)
                except Exception as exc:
                    log.exception("cron %s: firing failed", cron["cron_id"])
                    async with conn.begin_nested():
                        await self._record_failure(conn, cron, now, exc)
        if together_runs and hint:
            # One wake-up for the whole batch: the producer claims whatever is due when woken, so a hint per run
            # (on PostgreSQL a NOTIFY per run, delivered to every replica) would only repeat it.
            await self.ctx.notifier.notify(notify.RUNS, together_runs[-1]["run_id"])
        for run, cancels in created:
            # The runs this fire cancelled (cancel_previous, an interrupt or rollback strategy) hear of it now.
            await self.runs.after_commit(run, cancels)
        made = together_runs + [run for run, _ in created if run is not None]
        self.fired += len(made)
        if fired is None:
            events.cron_fired_many(made)  # after commit: a logged fire is a durable one
        else:
            fired.extend(made)
        return len(due)

    def _expression(self, cron: Record) -> Schedule:
        expr = self._expressions.get(cron["schedule"])
        if expr is None:
            expr = self._expressions[cron["schedule"]] = parse_schedule(cron["schedule"])
        return expr

    def _plan(self, cron: Record, now: datetime) -> DuePlan:
        return plan_due(
            self._expression(cron),
            load_timezone(cron["timezone"]),
            cron["next_run_date"],
            now,
            policy=MissedPolicy(cron["missed_policy"]),
            end_time=cron["end_time"],
        )

    async def _fire_together(self, conn: Any, due: list[Record], now: datetime) -> list[Record]:
        """Fire crons whose runs need no look at the runs in flight (thread-less ones, and thread crons that
        enqueue) in a few statements: one compare-and-set for all, then every new thread, run and fire-log row
        inserted at once, and the busy threads marked in one update. Returns the runs created."""
        # A burst is thousands of crons on a few schedules due at one instant: plan each distinct one once.
        memo: dict[tuple[Any, ...], DuePlan] = {}
        plans: dict[str, DuePlan] = {}
        for cron in due:
            key = (cron["schedule"], cron["timezone"], cron["next_run_date"], cron["missed_policy"], cron["end_time"])
            plan = memo.get(key)
            if plan is None:
                plan = memo[key] = self._plan(cron, now)
            plans[cron["cron_id"]] = plan
        moves = [(c["cron_id"], c["next_run_date"], plans[c["cron_id"]].next_run_date) for c in due]
        ours = await crons.advance_many(conn, moves, self.ctx.dialect)
        known: dict[str, Record | None] = {}
        on_threads = await bulk.select_by_keys(
            conn, tables.threads, "thread_id", sorted({c["thread_id"] for c in due if c["thread_id"]}), ("metadata",)
        )
        busy: set[str] = set()
        named: dict[str, dict[str, Any]] = {}
        new_threads: list[Record] = []
        new_runs: list[Record] = []
        fires: list[Record] = []

        def fire_row(cron: Record, slot: datetime, outcome: str, run_id: str | None, detail: str | None) -> Record:
            return {
                "cron_id": cron["cron_id"],
                "scheduled_for": slot,
                "fired_at": now,
                "outcome": outcome,
                "run_id": run_id,
                "detail": detail,
            }

        for cron in due:
            if cron["cron_id"] not in ours:
                continue  # another scheduler fired it first
            plan = plans[cron["cron_id"]]
            for slot in plan.skipped[:SKIP_LOG_LIMIT]:
                fires.append(fire_row(cron, slot, "skipped", None, "missed while the server was down"))
            for slot in plan.fire:
                occurrence = (cron["cron_id"], slot)
                try:
                    body, assistant_id = self.runs.prepare(None, run_body(cron), cron=occurrence)
                    if assistant_id not in known:
                        known[assistant_id] = await assistants.get(conn, assistant_id)
                    assistant = known[assistant_id]
                    if assistant is None:
                        raise NotFound("Thread or assistant not found.")
                    marks = {"cron_id": cron["cron_id"], "cron_scheduled_for": slot.isoformat()}
                    if cron["thread_id"] is None:
                        thread, run = self.runs.new_thread_rows(
                            body, assistant, priority=CRON, extra_metadata=marks, cron=occurrence
                        )
                        new_threads.append(thread)
                    else:
                        existing = on_threads.get(cron["thread_id"])
                        if existing is None:
                            raise NotFound("Thread or assistant not found.")
                        run, metadata = self.runs.queued_run_row(
                            existing, body, assistant, priority=CRON, extra_metadata=marks, cron=occurrence
                        )
                        if metadata is not None:
                            named[existing["thread_id"]] = existing["metadata"] = metadata
                        busy.add(existing["thread_id"])
                except CrongraphError as exc:
                    fires.append(fire_row(cron, slot, "skipped", None, exc.detail))
                    continue
                start = jittered(cron, slot, run)
                if start is not None:
                    run["available_at"] = start  # jitter: the run waits, the slot and the fire log do not
                new_runs.append(run)
                fires.append(fire_row(cron, slot, "created", run["run_id"], None))
        dialect = self.ctx.dialect
        await bulk.insert_rows(conn, tables.threads, new_threads, dialect)
        busy_now = {"status": "busy", "updated_at": now}
        await bulk.update_by_keys(conn, tables.threads, "thread_id", sorted(busy), busy_now)
        await bulk.update_rows(conn, tables.threads, "thread_id", {t: {"metadata": m} for t, m in named.items()})
        await bulk.insert_rows(conn, tables.runs, new_runs, dialect)
        await bulk.insert_rows(conn, tables.cron_fires, fires, dialect)
        for f in fires:
            if f["outcome"] != "created":
                events.cron_not_fired(f["cron_id"], f["scheduled_for"], now, f["outcome"], f["detail"])
        return new_runs

    async def _fire(self, conn: Any, cron: Record, now: datetime) -> list[tuple[Record | None, Cancels]]:
        """One cron, one savepoint: claim its due occurrences, then create each run through the guards (overlap
        policy, jitter, the fire log); with max_runs, count the runs and finish the cron at the limit."""
        plan = self._plan(cron, now)
        if not await crons.advance(conn, cron["cron_id"], cron["next_run_date"], plan.next_run_date):
            return []  # another scheduler fired it first
        for slot in plan.skipped[:SKIP_LOG_LIMIT]:
            await crons.record_fire(
                conn, cron["cron_id"], slot, now, "skipped", detail="missed while the server was down"
            )
            events.cron_not_fired(cron["cron_id"], slot, now, "skipped", "missed while the server was down")
        limit = cron.get("max_runs")
        fired = cron.get("runs_fired") or 0
        created: list[tuple[Record | None, Cancels]] = []
        for slot in plan.fire:
            if limit is not None and fired >= limit:
                detail = f"max_runs: the cron already created its {limit} runs"
                await crons.record_fire(conn, cron["cron_id"], slot, now, "skipped", detail=detail)
                events.cron_not_fired(cron["cron_id"], slot, now, "skipped", detail)
                continue
            run, cancels = await self.guards.fire(conn, cron, slot, now)
            if run is not None or cancels:
                created.append((run, cancels))  # cancels are announced after commit, with or without a run
            if run is not None:
                fired += 1
        if limit is not None:
            changes: Record = {"runs_fired": fired}
            if fired >= limit:
                changes["next_run_date"] = None  # finished: nothing more fires
            await crons.update_fields(conn, cron["cron_id"], **changes)
        return created

    async def _record_failure(self, conn: Any, cron: Record, now: datetime, exc: Exception) -> None:
        """Creating the run failed unexpectedly: log the occurrence as failed and move on, so one broken cron
        cannot block the others or be retried in a tight loop."""
        slot = cron["next_run_date"]
        try:
            expr = self._expression(cron)
            following = expr.next_after(max(now, slot), load_timezone(cron["timezone"]))
        except Exception:
            following = None
        if not await crons.advance(conn, cron["cron_id"], slot, following):
            return
        await crons.record_fire(conn, cron["cron_id"], slot, now, "failed", detail=f"{type(exc).__name__}: {exc}")
        events.cron_not_fired(cron["cron_id"], slot, now, "failed", f"{type(exc).__name__}: {exc}")
