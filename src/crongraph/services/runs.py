"""Runs: create (with the thread's multitask strategy), wait for, cancel, list and delete.

Creating a run is one transaction: the thread row is locked, the strategy applied to the runs in flight on it,
the run inserted `pending` and the thread marked busy. The queue is woken after commit.

A client's run created by `create` (interactive, not delayed) whose thread has nothing in flight is instead handed
off to this process's queue when it has a free slot (queue/handoff.py): inserted already claimed under this
process's lease and executed at once after commit, with no wake-up, claim or notification.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from crongraph import notify, run_headers, webhook_policy
from crongraph.errors import BadRequest, Conflict, InvalidInput, NotFound
from crongraph.ids import new_id, parse_uuid, system_assistant_id
from crongraph.queue.handoff import Slot, Slots
from crongraph.services.access import AUTH_KEYS, allowed, run_identity
from crongraph.services.context import ServiceContext
from crongraph.services.threads import ThreadService
from crongraph.storage import assistants, runs, threads
from crongraph.storage.common import Record
from crongraph.storage.filters import Match
from crongraph.streams.broker import Event

# Priorities: lower runs first.
INTERACTIVE = 0
BACKGROUND = 1
CRON = 2

BUSY = "Thread is already running a task. Wait for it to finish or choose a different multitask strategy."
RESERVED_METADATA = ("thread_id", "assistant_id", "run_id", "cron_id")
RESERVED_CONFIGURABLE = (
    *AUTH_KEYS,
    "langgraph_request_id",
    "__after_seconds__",
)


def _graph_names(assistant: Record) -> dict[str, str]:
    """What a thread's metadata says of the graph that runs on it."""
    return {"graph_id": assistant["graph_id"], "assistant_id": assistant["assistant_id"]}


def _renamed(metadata: dict[str, Any] | None, assistant: Record) -> dict[str, Any] | None:
    """The thread's metadata naming the assistant's graph, or None when it already does (nothing to write)."""
    metadata = metadata or {}
    names = _graph_names(assistant)
    return None if all(metadata.get(k) == v for k, v in names.items()) else {**metadata, **names}


def _identity_of(body: dict[str, Any]) -> dict[str, Any] | None:
    """The owner's identity a cron's stored payload carries (written by the cron service, never by a client)."""
    configurable = (body.get("config") or {}).get("configurable") or {}
    found = {k: configurable[k] for k in AUTH_KEYS if k in configurable}
    return found or None


def _sanitize(body: dict[str, Any]) -> None:
    """Strip reserved keys the way the reference does: silently, not as an error."""
    if isinstance(body.get("metadata"), dict):
        body["metadata"] = {k: v for k, v in body["metadata"].items() if k not in RESERVED_METADATA}
    config = body.get("config")
    if isinstance(config, dict) and isinstance(config.get("configurable"), dict):
        config["configurable"] = {k: v for k, v in config["configurable"].items() if k not in RESERVED_CONFIGURABLE}


@dataclass(frozen=True)
class RunGuard:
    """What the auth handlers decided for creating a run: the filter the thread must match, the one a (non-system)
    assistant must match, and the metadata keys the handler stamped, which a thread the run creates carries too."""

    thread: Match | None = None
    assistant: Match | None = None
    stamped: dict[str, Any] = field(default_factory=dict)


OPEN = RunGuard()


def run_output(run: Record, thread_values: Any) -> Any:
    """The body of wait and join for a finished run."""
    if run["status"] == "error" and run.get("error"):
        return {"__error__": run["error"]}
    if run.get("output") is not None:
        return run["output"]
    return thread_values if thread_values is not None else {}


class RunService:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self.threads = ThreadService(ctx)
        # This process's queue, set by runtime.py once built: runs created here may be handed to it directly.
        self.queue: Slots | None = None

    # Creating

    def resolve_assistant(self, value: Any) -> str:
        if isinstance(value, str):
            if value in self.ctx.graphs:
                return system_assistant_id(value)
            parsed = parse_uuid(value)
            if parsed is not None:
                return parsed
        graphs = ", ".join(self.ctx.graphs.ids)
        raise InvalidInput(
            f"Invalid assistant: '{value}'. Must be either:\n- A valid assistant UUID, or\n"
            f"- One of the registered graphs: {graphs}"
        )

    def _validate(self, thread_id: str | None, body: dict[str, Any], *, webhook: bool = True) -> None:
        config = body.get("config") or {}
        if config.get("configurable") and body.get("context"):
            raise BadRequest("Cannot specify both configurable and context. Prefer setting context alone.")
        command = body.get("command") or {}
        if thread_id is None and command.get("resume") is not None:
            raise BadRequest("You must provide a thread_id when resuming.")
        # A cron's webhook was checked when the cron was saved; its fires are not refused later.
        if webhook and body.get("webhook"):
            problem = webhook_policy.check_url(body["webhook"], self.ctx.webhook_policy)
            if problem:
                raise InvalidInput(problem)

    async def create(
        self,
        thread_id: str | None,
        body: dict[str, Any],
        *,
        priority: int = INTERACTIVE,
        extra_metadata: dict[str, Any] | None = None,
        cron: tuple[str, datetime] | None = None,
    ) -> Record:
        """Create a run in a transaction of its own, and tell the queue (and the runs it cancelled) after commit."""
        body, assistant_id = self.prepare(thread_id, body, cron=cron)
        guard = await self.authorize_create(thread_id, body, assistant_id)
        queue = self.queue
        # Delayed runs wait for their moment in the queue like any other; background and cron runs are claimed
        # under the producer's priorities and reserved slots.
        handing = queue is not None and priority == INTERACTIVE and not body.get("after_seconds")
        slot = queue.reserve() if handing and queue is not None else None
        try:
            made = await self._create_at_once(
                thread_id, body, assistant_id, priority, extra_metadata, cron, guard, slot
            )
            if made is None:
                async with self.ctx.db.write() as own:
                    made = await self._create_in(
                        own, thread_id, body, assistant_id, priority, extra_metadata, cron, guard, slot
                    )
            run, cancelled = made
        except BaseException:
            if slot is not None and queue is not None:
                queue.release(slot)
            raise
        if slot is not None and queue is not None:
            if slot.taken:
                # Known to the broker before any await: a wait or stream on it needs no look at storage.
                self.ctx.broker.start(run["run_id"], run["thread_id"])
                queue.hand_off(slot, dict(run))
                await self.after_commit(None, cancelled)
                # The creation's answer is the run as created, `pending`, as the reference answers (and clients
                # test); it is running already, as any reader of the run sees from now on.
                return {**run, **runs.UNCLAIMED}
            queue.release(slot)
        await self.after_commit(run, cancelled)
        return run

    async def create_in(
        self,
        conn: Any,
        thread_id: str | None,
        body: dict[str, Any],
        *,
        priority: int = INTERACTIVE,
        extra_metadata: dict[str, Any] | None = None,
        cron: tuple[str, datetime] | None = None,
    ) -> tuple[Record, list[tuple[str, str]]]:
        """Create a run inside the caller's transaction (the scheduler fires in its own). Returns the run and the
        running runs its multitask strategy cancelled: the caller passes both to `after_commit` once the
        transaction commits; otherwise the executing runs hear of their cancel only at their next lease renewal,
        and usually finish first."""
        body, assistant_id = self.prepare(thread_id, body, cron=cron)
        guard = await self.authorize_create(thread_id, body, assistant_id)
        return await self._create_in(conn, thread_id, body, assistant_id, priority, extra_metadata, cron, guard)

    async def authorize_create(self, thread_id: str | None, body: dict[str, Any], assistant_id: str) -> RunGuard:
        """Run the `threads.create_run` auth handler on a prepared body (its metadata is what the handler leaves)
        and the `assistants.read` one; OPEN outside an authenticated request."""
        asked: dict[str, Any] = {
            "thread_id": thread_id,
            "assistant_id": assistant_id,
            "run_id": None,
            "status": "pending",
            "metadata": dict(body.get("metadata") or {}),
            "prevent_insert_if_inflight": body.get("multitask_strategy") == "reject",
            "multitask_strategy": body.get("multitask_strategy") or "enqueue",
            "if_not_exists": body.get("if_not_exists") or "reject",
            "after_seconds": body.get("after_seconds") or 0,
            "kwargs": {k: body.get(k) for k in ("input", "command", "config", "context", "stream_mode", "webhook")},
        }
        before = dict(asked["metadata"])
        thread = await allowed(self.ctx, "threads", "create_run", asked)
        metadata = asked.get("metadata") or {}
        stamped = {k: v for k, v in metadata.items() if k not in before or before[k] != v}
        body["metadata"] = metadata
        assistant = await allowed(self.ctx, "assistants", "read", {"assistant_id": assistant_id})
        if thread is None and assistant is None and not stamped:
            return OPEN
        return RunGuard(thread, assistant, stamped)

    def prepare(
        self, thread_id: str | None, body: dict[str, Any], *, cron: tuple[str, datetime] | None = None
    ) -> tuple[dict[str, Any], str]:
        """A run request made ready to create: reserved keys stripped, checked, its assistant resolved, and the
        identity of who creates it stamped in its configurable (a cron's fire keeps its owner's, which the cron
        service stored)."""
        body = dict(body)
        owner = _identity_of(body) if cron is not None else run_identity()
        _sanitize(body)
        self._validate(thread_id, body, webhook=cron is None)
        run_headers.merge_into(body)  # http.configurable_headers of the request creating the run, if any
        if owner:
            config = dict(body.get("config") or {})
            config["configurable"] = {**(config.get("configurable") or {}), **owner}
            body["config"] = config
        return body, self.resolve_assistant(body.get("assistant_id"))

    def new_thread_rows(
        self,
        body: dict[str, Any],
        assistant: Record,
        *,
        priority: int,
        extra_metadata: dict[str, Any] | None,
        cron: tuple[str, datetime] | None,
    ) -> tuple[Record, Record]:
        """The thread and run rows that creating a stateless run (a prepared body) inserts, without inserting
        them: for a caller that creates many runs in a few statements (the scheduler)."""
        now = self.ctx.clock.now()
        thread_id = new_id()
        temporary = body.get("on_completion", "delete") == "delete"
        thread = self._new_thread_row(thread_id, body, assistant, True, extra_metadata)
        run = self._run_row(
            thread_id, body, assistant["assistant_id"], None, temporary, priority, extra_metadata, cron, now
        )
        return thread, run

    def queued_run_row(
        self,
        thread: Record,
        body: dict[str, Any],
        assistant: Record,
        *,
        priority: int,
        extra_metadata: dict[str, Any] | None,
        cron: tuple[str, datetime] | None,
    ) -> tuple[Record, dict[str, Any] | None]:
        """The run row that creating an `enqueue` run on an existing thread inserts (the strategy needs no look at
        the runs in flight), and the thread metadata to write when it does not yet name the graph (else None)."""
        now = self.ctx.clock.now()
        run = self._run_row(
            thread["thread_id"], body, assistant["assistant_id"], "enqueue", False, priority, extra_metadata, cron, now
        )
        return run, _renamed(thread["metadata"], assistant)

    async def create_batch(self, bodies: list[dict[str, Any]]) -> list[Record]:
        """Stateless runs, all created in one transaction or none."""
        prepared = []
        for body in bodies:
            body = dict(body)
            _sanitize(body)
            self._validate(None, body)
            run_headers.merge_into(body)
            prepared.append((body, self.resolve_assistant(body.get("assistant_id"))))
        guards = []
        for body, assistant_id in prepared:
            # prepare() is not used here; the identity of the caller is stamped the same way.
            owner = run_identity()
            if owner:
                config = dict(body.get("config") or {})
                config["configurable"] = {**(config.get("configurable") or {}), **owner}
                body["config"] = config
            guards.append(await self.authorize_create(None, body, assistant_id))
        created: list[tuple[Record, list[tuple[str, str]]]] = []
        async with self.ctx.db.write() as conn:
            for (body, assistant_id), guard in zip(prepared, guards, strict=True):
                created.append(await self._create_in(conn, None, body, assistant_id, INTERACTIVE, None, None, guard))
        for run, cancelled in created:
            await self.after_commit(run, cancelled)
        return [run for run, _ in created]

    async def after_commit(self, run: Record | None, cancelled: list[tuple[str, str]]) -> None:
        for run_id, action in cancelled:
            await self.ctx.notifier.notify(notify.CANCEL, f"{run_id}:{action}")
        if run is not None:
            await self.ctx.notifier.notify(notify.RUNS, run["run_id"])

    async def _create_at_once(
        self,
        thread_id: str | None,
        body: dict[str, Any],
        assistant_id: str,
        priority: int,
        extra_metadata: dict[str, Any] | None,
        cron: tuple[str, datetime] | None,
        guard: RunGuard,
        slot: Slot | None,
    ) -> tuple[Record, list[tuple[str, str]]] | None:
        """PostgreSQL, a run on an existing thread: the run created in one autocommit statement
        (storage/runs.create_on_thread) when what `_create_in` would do needs no read first: no assistant-read
        filter, and the strategy has nothing to cancel or refuse (enqueue: the run goes in behind the thread's runs;
        another strategy: only when none is pending or running). None when nothing was written (the thread or
        assistant is missing, the thread changed meanwhile, or a strategy applies): `_create_in` does it then."""
        if self.ctx.dialect != "postgresql" or guard.assistant is not None:
            return None
        if thread_id is None:
            return await self._create_stateless_at_once(body, assistant_id, priority, extra_metadata, cron, guard, slot)
        strategy = body.get("multitask_strategy") or "enqueue"
        now = self.ctx.clock.now()
        run = self._run_row(thread_id, body, assistant_id, strategy, False, priority, extra_metadata, cron, now)
        if slot is not None:
            slot.claim(run)
        async with self.ctx.db.autocommit() as conn:
            assistant, inserted = await runs.create_on_thread(
                conn, run, require_idle=strategy != "enqueue", visible=guard.thread
            )
        if slot is not None:
            slot.taken = inserted and run["status"] == "running"
            slot.assistant = assistant if slot.taken else None
            if not inserted:
                slot.run_id = None
        return (run, []) if inserted else None

    async def _create_stateless_at_once(
        self,
        body: dict[str, Any],
        assistant_id: str,
        priority: int,
        extra_metadata: dict[str, Any] | None,
        cron: tuple[str, datetime] | None,
        guard: RunGuard,
        slot: Slot | None,
    ) -> tuple[Record, list[tuple[str, str]]] | None:
        """PostgreSQL, a stateless run: its new thread and the run created in one autocommit statement
        (storage/runs.create_with_thread), the rows as `_create_in` makes them; None when nothing was written (the
        assistant does not exist: `_create_in` says so)."""
        now = self.ctx.clock.now()
        thread_id = new_id()
        temporary = body.get("on_completion", "delete") == "delete"
        # The thread's metadata as _new_thread_row merges it, the assistant's graph names (known only to the
        # statement) between the run's config metadata and the run's own metadata.
        first = dict((body.get("config") or {}).get("metadata", {}))
        thread = self.threads.new_row(thread_id, {**(body.get("metadata") or {}), **(extra_metadata or {})})
        thread["status"] = "busy"
        thread["metadata"].update(guard.stamped)  # a thread created by the run is its creator's too
        run = self._run_row(thread_id, body, assistant_id, None, temporary, priority, extra_metadata, cron, now)
        if slot is not None:
            slot.claim(run)
        async with self.ctx.db.autocommit() as conn:
            assistant = await runs.create_with_thread(conn, thread, first, run)
        if slot is not None:
            slot.taken = assistant is not None
            slot.assistant = assistant
            if assistant is None:
                slot.run_id = None
                run.update(runs.UNCLAIMED)
        return None if assistant is None else (run, [])

    async def _create_in(
        self,
        conn: Any,
        thread_id: str | None,
        body: dict[str, Any],
        assistant_id: str,
        priority: int,
        extra_metadata: dict[str, Any] | None,
        cron: tuple[str, datetime] | None,
        guard: RunGuard = OPEN,
        slot: Slot | None = None,
    ) -> tuple[Record, list[tuple[str, str]]]:
        """With `slot` (reserved in this process's queue), the run is inserted claimed under it when its thread has
        nothing in flight once the strategy is applied (`slot.taken`)."""
        now = self.ctx.clock.now()
        stateless = thread_id is None
        marked: Record | None = None
        if not stateless and self.ctx.dialect == "postgresql":
            assert thread_id is not None
            # The assistant's read and the thread's marking (below) in one statement: the thread is locked and marked
            # busy only when the assistant exists.
            assistant, marked = await threads.mark_busy_with_assistant(conn, thread_id, assistant_id, now, guard.thread)
        else:
            assistant = await assistants.get(conn, assistant_id)
        if assistant is None:
            raise NotFound("Thread or assistant not found.")
        # As in the reference, the graphs' own (system) assistants are usable by anyone who may create the run.
        if (
            guard.assistant is not None
            and (assistant["metadata"] or {}).get("created_by") != "system"
            and await assistants.get(conn, assistant_id, guard.assistant) is None
        ):
            raise NotFound("Thread or assistant not found.")
        temporary = stateless and body.get("on_completion", "delete") == "delete"
        strategy = None if stateless else (body.get("multitask_strategy") or "enqueue")
        cancelled: list[tuple[str, str]] = []
        idle = True  # whether no run of the thread is pending or running (with the strategy applied)
        ask = False  # whether the insert itself must ask that (the enqueue strategy on an existing thread)
        if stateless:
            thread_id = new_id()
            thread = None
        else:
            assert thread_id is not None
            # Locks the thread's row until commit: runs are added to a thread one transaction at a time.
            if self.ctx.dialect == "postgresql":
                thread = marked
            else:
                thread = await threads.mark_busy_for_run(
                    conn, thread_id, _graph_names(assistant), now, self.ctx.dialect, guard.thread
                )
            if thread is None and body.get("if_not_exists") != "create":
                raise NotFound("Thread or assistant not found.")
            if thread is None and guard.thread is not None and await threads.get(conn, thread_id) is not None:
                raise NotFound("Thread or assistant not found.")  # someone else's: hidden, never created over
        if thread is None:
            row = self._new_thread_row(thread_id, body, assistant, stateless, extra_metadata)
            row["metadata"].update(guard.stamped)  # a thread created by the run is its creator's too
            await threads.insert_new(conn, row)
        else:
            if strategy in ("interrupt", "rollback"):
                inflight = await runs.inflight_on_thread(conn, thread_id)
                if inflight:
                    cancelled = await self._supersede(conn, inflight, strategy, now)
                # Pending ones ended just now; a running one is only asked to stop, and goes first.
                idle = not cancelled
            elif strategy == "reject":
                if await runs.has_inflight(conn, thread_id):
                    raise Conflict(BUSY)
            else:
                ask = True
        run = self._run_row(thread_id, body, assistant_id, strategy, temporary, priority, extra_metadata, cron, now)
        if slot is not None and idle:
            slot.claim(run)
            slot.assistant = assistant
            if ask:
                # The thread's row is locked (above), so no run can be added to it before commit: the insert goes
                # in claimed unless one of its runs is pending or running.
                slot.taken = await runs.insert_claimed_unless_busy(conn, run)
                return run, cancelled
        await runs.insert_new(conn, run)
        return run, cancelled

    def _new_thread_row(
        self,
        thread_id: str,
        body: dict[str, Any],
        assistant: Record,
        stateless: bool,
        extra_metadata: dict[str, Any] | None,
    ) -> Record:
        meta = {**(body.get("config") or {}).get("metadata", {}), **_graph_names(assistant)}
        if stateless:
            # A fresh thread carries the run's metadata too (a stateless cron's threads are findable by it).
            meta.update({**(body.get("metadata") or {}), **(extra_metadata or {})})
        row = self.threads.new_row(thread_id, meta)
        row["status"] = "busy"
        return row

    def _run_row(
        self,
        thread_id: str,
        body: dict[str, Any],
        assistant_id: str,
        strategy: str | None,
        temporary: bool,
        priority: int,
        extra_metadata: dict[str, Any] | None,
        cron: tuple[str, datetime] | None,
        now: datetime,
    ) -> Record:
        after = body.get("after_seconds") or 0
        return {
            "run_id": new_id(),
            "thread_id": thread_id,
            "assistant_id": assistant_id,
            "status": "pending",
            "metadata": {**(body.get("metadata") or {}), **(extra_metadata or {})},
            "kwargs": {
                "input": body.get("input"),
                "command": body.get("command"),
                "config": body.get("config") or {},
                "context": body.get("context") or {},
                "stream_mode": _stream_modes(body.get("stream_mode")),
                "interrupt_before": body.get("interrupt_before"),
                "interrupt_after": body.get("interrupt_after"),
                "webhook": body.get("webhook"),
                "feedback_keys": body.get("feedback_keys"),
                "temporary": temporary,
                "subgraphs": bool(body.get("stream_subgraphs")),
                "resumable": bool(body.get("stream_resumable")),
                "checkpoint_during": body.get("checkpoint_during"),
                "durability": body.get("durability") or "async",
                "checkpoint_id": body.get("checkpoint_id"),
                "checkpoint": body.get("checkpoint"),
            },
            "multitask_strategy": strategy,
            "priority": priority,
            "available_at": now + timedelta(seconds=after),
            "created_at": now,
            "updated_at": now,
            "ended_at": None,
            "lease_owner": None,
            "lease_token": None,
            "lease_expires_at": None,
            "attempt": 0,
            "cancel_action": None,
            "temporary": temporary,
            "output": None,
            "error": None,
            "cron_id": cron[0] if cron else None,
            "scheduled_for": cron[1] if cron else None,
        }

    async def supersede_in(self, conn: Any, inflight: list[Record], action: str) -> list[tuple[str, str]]:
        """Cancel these runs (pending ones end now, running ones are asked to stop) inside the caller's
        transaction; returns the running ones, which the caller passes to `after_commit` once committed."""
        return await self._supersede(conn, inflight, action, self.ctx.clock.now())

    async def _supersede(self, conn: Any, inflight: list[Record], action: str, now: datetime) -> list[tuple[str, str]]:
        pending = [r["run_id"] for r in inflight if r["status"] == "pending"]
        running = [r["run_id"] for r in inflight if r["status"] == "running"]
        ended: list[Record] = []
        if pending:
            ended = await runs.cancel_pending(conn, pending, now)
            if action == "rollback":
                for run_id in pending:
                    await runs.delete_one(conn, run_id)
        if running:
            await runs.request_cancel(conn, running, action)
        # Whoever waits on a cancelled pending run learns its end here (the transaction commits right after).
        for run in ended:
            self.ctx.broker.close(run["run_id"], run)
        return [(run_id, action) for run_id in running]

    # Reading

    async def get(self, thread_id: str | None, run_id: str, *, ended_too: bool = False) -> Record:
        """The run. With `ended_too`, also a run that ended here recently and whose row is gone (a temporary
        thread's run, a rollback), so that joining it just after it ended still answers its outcome (not when the
        caller's auth filter applies: with its thread gone, nothing says whose it was)."""
        visible = await allowed(self.ctx, "threads", "read", {"thread_id": thread_id, "run_id": run_id})
        async with self.ctx.db.read() as conn:
            run = await runs.get(conn, run_id, thread_id, visible)
        if run is None and ended_too and visible is None:
            final = self.ctx.broker.final(run_id)
            if final is not None and thread_id in (None, final["thread_id"]):
                return final
        if run is None:
            raise NotFound(f"Run {run_id} not found")
        return run

    async def list(self, thread_id: str, *, limit: int, offset: int, status: str | None) -> list[Record]:
        visible = await allowed(self.ctx, "threads", "search", {"thread_id": thread_id, "metadata": {}})
        async with self.ctx.db.read() as conn:
            if await threads.get(conn, thread_id, visible) is None:
                raise NotFound(f"Thread with ID '{thread_id}' not found")
            return await runs.list_for_thread(conn, thread_id, limit=limit, offset=offset, status=status)

    async def wait_for_end(self, run_id: str) -> Record:
        """Block until the run is in a terminal state and return its final record. A run that ended in this
        process is answered by the broker without a query, and one executing here is waited for there without one;
        otherwise the database is the authority (the run may execute on another replica), polled once a second in
        case its end is not signalled here."""
        broker = self.ctx.broker
        seen = False
        while True:
            final = broker.final(run_id)
            if final is not None:
                return final
            if self.queue is not None and self.queue.is_executing(run_id) and not broker.is_done(run_id):
                # Its end is closed in the broker with its record (without one when its lease was lost: then the
                # database is asked, on the next turn, once the run has left the queue).
                seen = True
                await _wait_done(broker, run_id)
                continue
            async with self.ctx.db.read() as conn:
                run = await runs.get(conn, run_id)
            if run is None:
                final = broker.final(run_id)
                if final is not None:
                    return final
                if seen:
                    # Ended elsewhere and deleted with its temporary thread, or rolled back.
                    return {"run_id": run_id, "status": "interrupted", "output": None, "error": None}
                raise NotFound(f"Run {run_id} not found")
            seen = True
            if run["status"] in runs.TERMINAL:
                return run
            if broker.is_done(run_id):
                # It ended here without a record (its lease was lost): its row changes only when the reaper ends
                # it, and wait_done() would return at once; ask again in a second rather than in a tight loop.
                await asyncio.sleep(1.0)
                continue
            await _wait_done(broker, run_id)

    async def join(self, run_id: str) -> Any:
        run = await self.wait_for_end(run_id)
        thread_values = None
        if run.get("output") is None and run.get("thread_id"):
            async with self.ctx.db.read() as conn:
                thread = await threads.get(conn, run["thread_id"])
            thread_values = thread["values"] if thread else None
        return run_output(run, thread_values)

    async def events(self, run_id: str, after: int = 0) -> AsyncIterator[Event]:
        async for event in self.ctx.broker.subscribe(run_id, after):
            yield event

    # Cancelling and deleting

    # builtins.list: inside this class `list` is the method above.
    async def cancel(
        self, thread_id: str | None, run_ids: builtins.list[str] | None, action: str
    ) -> builtins.list[Record]:
        asked = {"thread_id": thread_id, "run_ids": run_ids, "action": action}
        visible = await allowed(self.ctx, "threads", "update", asked)
        now = self.ctx.clock.now()
        async with self.ctx.db.write() as conn:
            found = await runs.list_inflight(
                conn, thread_id=thread_id, run_ids=run_ids, statuses=runs.INFLIGHT, visible=visible
            )
            cancelled = await self._supersede(conn, found, action, now)
            for thread in {r["thread_id"] for r in found if r["status"] == "pending"}:
                if not await runs.has_inflight(conn, thread):
                    await threads.update_fields(conn, thread, status="idle", updated_at=now)
        await self.after_commit(None, cancelled)
        return found

    async def cancel_by_status(self, status: str, action: str) -> int:
        statuses = runs.INFLIGHT if status == "all" else (status,)
        visible = await allowed(self.ctx, "threads", "update", {"thread_id": None, "status": status, "action": action})
        async with self.ctx.db.read() as conn:
            found = await runs.list_inflight(conn, thread_id=None, run_ids=None, statuses=statuses, visible=visible)
        if found:
            await self.cancel(None, [r["run_id"] for r in found], action)
        return len(found)

    async def delete(self, thread_id: str, run_id: str) -> None:
        visible = await allowed(self.ctx, "threads", "delete", {"thread_id": thread_id, "run_id": run_id})
        async with self.ctx.db.write() as conn:
            run = await runs.get(conn, run_id, thread_id, visible)
            if run is None:
                raise NotFound(f"Run {run_id} not found")
            if run["status"] in runs.INFLIGHT:
                raise Conflict(f"Run {run_id} is {run['status']}; cancel it before deleting it")
            await runs.delete_one(conn, run_id)


def _stream_modes(value: Any) -> list[str]:
    if value is None:
        return ["values"]
    return [value] if isinstance(value, str) else list(value)


async def _wait_done(broker: Any, run_id: str) -> None:
    """Until the broker has the run's end, or a second has passed. A timeout scope, not `wait_for`, which would
    run the wait in a task of its own: one task and one loop turn more on every wait's way out."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(1.0):
            await broker.wait_done(run_id)
