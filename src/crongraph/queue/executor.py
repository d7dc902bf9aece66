"""Execute one claimed run: build the graph's config from the assistant and the run, stream the graph into the
broker, and record the outcome under the run's lease.

Outcome rules: a graph that finishes or stops at an interrupt ends `success` (the thread becomes `idle` or
`interrupted`); a graph that raises ends `error` and publishes an `error` event; a cancelled run ends
`interrupted`, or with rollback is deleted together with the checkpoints it wrote.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from contextlib import AsyncExitStack
from typing import Any

from langgraph.types import Command

from crongraph import serde
from crongraph.auth.users import AuthUser
from crongraph.clock import Clock
from crongraph.graphs import context as run_context
from crongraph.graphs.execute import stream_graph
from crongraph.graphs.persistence import Persistence
from crongraph.graphs.registry import GraphRegistry
from crongraph.graphs.sqlite_saver import DEFER_COMMITS
from crongraph.queue import usage as run_usage
from crongraph.queue.group_commit import GroupCommit
from crongraph.storage import assistants, runs, threads
from crongraph.storage.common import Record
from crongraph.storage.database import Database
from crongraph.streams.broker import StreamBroker

log = logging.getLogger("crongraph.executor")


class RunCancelled(Exception):
    def __init__(self, action: str) -> None:
        self.action = action


# Who the run acts for, as the run service stamped it; an assistant's config cannot supply them.
_IDENTITY = ("langgraph_auth_user", "langgraph_auth_user_id", "langgraph_auth_permissions")


def build_config(run: Record, assistant: Record) -> dict[str, Any]:
    kwargs = run["kwargs"]
    base = assistant["config"] or {}
    given = kwargs.get("config") or {}
    configurable = {
        **{k: v for k, v in (base.get("configurable") or {}).items() if k not in _IDENTITY},
        **(given.get("configurable") or {}),
        "thread_id": run["thread_id"],
        "run_id": run["run_id"],
        "assistant_id": run["assistant_id"],
        "graph_id": assistant["graph_id"],
    }
    if kwargs.get("checkpoint_id"):
        configurable["checkpoint_id"] = kwargs["checkpoint_id"]
    if isinstance(kwargs.get("checkpoint"), dict):
        configurable.update({k: v for k, v in kwargs["checkpoint"].items() if k != "thread_id" and v is not None})
    # Stored as JSON; the graph gets the user object (`.identity` and `["identity"]`), as the reference passes it.
    user = AuthUser.from_stored(configurable.get("langgraph_auth_user"))
    if user is not None:
        configurable["langgraph_auth_user"] = user
    metadata = {
        **(base.get("metadata") or {}),
        **(given.get("metadata") or {}),
        **(run["metadata"] or {}),
        "run_id": run["run_id"],
        "thread_id": run["thread_id"],
        "assistant_id": run["assistant_id"],
        "graph_id": assistant["graph_id"],
    }
    config = {**base, **given, "configurable": configurable, "metadata": metadata}
    config.setdefault("recursion_limit", 25)
    return config


def _graph_input(kwargs: dict[str, Any]) -> Any:
    command = kwargs.get("command")
    if command:
        return Command(resume=command.get("resume"), update=command.get("update"), goto=command.get("goto") or ())
    return kwargs.get("input")


class Executor:
    def __init__(
        self,
        db: Database,
        graphs: GraphRegistry,
        persistence: Persistence,
        broker: StreamBroker,
        clock: Clock,
    ) -> None:
        self._db = db
        self._graphs = graphs
        self._persistence = persistence
        self._broker = broker
        self._clock = clock
        self.finished_hooks: list[Any] = []
        # Runs whose graph is running: only then may a cancel interrupt the task. Before, the run sees its cancel
        # when it starts; after, its outcome is being written and must not be cut off (that would leave it
        # `running` until the reaper ends it).
        self._interruptible: set[str] = set()
        # streams/run_tap.ProtocolRuns, set by runtime.py: thread-stream runs also write the thread's event log.
        self.protocol: Any = None
        # (graph id, *context keys) already warned about as not in the graph's context_schema: warned once each.
        self._dropped_warned: set[tuple[str, ...]] = set()
        # Outcomes of runs ending in the same loop iteration share one write transaction (each still fenced by its
        # own lease token; on PostgreSQL each is its own statement instead, where it has one), after the
        # checkpoints the runs wrote are committed.
        self._outcomes = GroupCommit(db, before_commit=self._commit_checkpoints)
        # Assistants read during this loop iteration: the runs of one claimed batch start in the same iteration
        # and read their assistant once, as fresh as reading it per run. Cleared at the next iteration. (On
        # PostgreSQL the claim and the hand-off at creation bring the assistant: a run reads it here only when it
        # was gone then.)
        self._assistants_now: dict[str, Record | None] = {}

    def _commit_checkpoints(self) -> Any:
        """An awaitable that commits the checkpointer's deferred writes (None: it defers none). SQLite's waits for
        its write lock without sleeping on the loop (acommit_pending)."""
        checkpointer = self._persistence.checkpointer
        commit = getattr(checkpointer, "acommit_pending", None) or getattr(checkpointer, "commit_pending", None)
        return commit() if commit is not None else None

    async def _assistant(self, assistant_id: str) -> Record | None:
        memo = self._assistants_now
        if assistant_id in memo:
            found = memo[assistant_id]
        else:
            async with self._db.read() as conn:
                found = await assistants.get(conn, assistant_id)
            if not memo:
                asyncio.get_running_loop().call_soon(memo.clear)
            memo[assistant_id] = found
        if found is None:
            return None
        # Each run gets its own copy of what reaches its graph (config and context), as if it had read the row.
        return {**found, "config": copy.deepcopy(found["config"]), "context": copy.deepcopy(found.get("context"))}

    async def execute(self, run: Record, cancel_action: dict[str, str], *, assistant: Record | None = None) -> None:
        """Run to completion. `cancel_action[run_id]` is set by whoever cancels this task, before cancelling it.
        `assistant`: the run's assistant as its creation (a run handed off at creation) or its claim (PostgreSQL)
        read it, else read here."""
        # The run's checkpoint writes commit at the end of their loop iteration (sqlite_saver.py, postgres_saver.py),
        # all before its outcome is committed (GroupCommit's before_commit).
        deferred = DEFER_COMMITS.set(True)
        try:
            await self._execute(run, cancel_action, assistant)
        finally:
            DEFER_COMMITS.reset(deferred)

    async def _execute(self, run: Record, cancel_action: dict[str, str], assistant: Record | None) -> None:
        run_id = run["run_id"]
        self._broker.start(run_id, run["thread_id"])

        def emit(name: str, data: Any) -> None:
            self._broker.publish(run_id, name, data)

        emit("metadata", {"run_id": run_id, "attempt": run["attempt"]})
        tap = self.protocol.tap(run) if self.protocol is not None else None
        if tap is not None:
            await tap.start()
        status, output, error, interrupts, stopped = "success", None, None, None, False
        graph: Any = None
        held = AsyncExitStack()  # the graph, held until the run is over (a factory's context manager exits then)
        failure: BaseException | None = None
        try:
            if cancel_action.get(run_id):
                raise asyncio.CancelledError  # cancelled between its claim and its start
            self._interruptible.add(run_id)
            if assistant is None:
                assistant = await self._assistant(run["assistant_id"])
            if assistant is None:
                raise LookupError(f"assistant {run['assistant_id']} was deleted before the run started")
            kwargs = run["kwargs"]
            config = build_config(run, assistant)
            given = run_context.merge_sources(
                assistant.get("context"), assistant["config"], kwargs.get("context"), kwargs.get("config")
            )
            graph = await held.enter_async_context(
                self._graphs.graph(assistant["graph_id"], config, access="threads.create_run", context=given)
            )
            context = self._fit_context(graph, assistant["graph_id"], given, config)
            outcome = await (tap.stream if tap is not None else stream_graph)(
                graph,
                _graph_input(kwargs),
                config,
                stream_modes=kwargs.get("stream_mode") or ["values"],
                subgraphs=bool(kwargs.get("subgraphs")),
                emit=emit,
                context=context,
                interrupt_before=kwargs.get("interrupt_before"),
                interrupt_after=kwargs.get("interrupt_after"),
                durability=_durability(kwargs),
            )
            output = serde.to_jsonable(outcome.output)
            # Only a run that may have stopped early pays for reading the state back.
            if outcome.interrupted or kwargs.get("interrupt_before") or kwargs.get("interrupt_after"):
                state = await graph.aget_state({"configurable": {"thread_id": run["thread_id"]}})
                interrupts = serde.to_jsonable({t.id: list(t.interrupts) for t in state.tasks if t.interrupts})
                stopped = bool(state.next)
        except asyncio.CancelledError as exc:
            action = cancel_action.get(run_id)
            if action is None:
                await _release(held, exc, run_id)
                raise  # the server is shutting down: the lease expires and the reaper decides
            failure = exc
            status, error = "interrupted", {"error": "Cancelled", "message": f"run cancelled ({action})"}
        except Exception as exc:
            failure = exc
            log.warning("run %s failed: %s: %s", run_id, type(exc).__name__, exc)
            status, error = "error", {"error": type(exc).__name__, "message": str(exc)}
            emit("error", error)
        self._interruptible.discard(run_id)
        cancel = cancel_action.get(run_id)
        values = output
        if status != "success" and cancel != "rollback" and graph is not None:
            # Stopped part way: the thread holds whatever the run checkpointed before it stopped.
            values = await _checkpointed_values(graph, run["thread_id"])
        # Released before the outcome is written, so whoever sees the run end also sees its resources closed.
        released = await _release(held, failure, run_id)
        if released is not None and status == "success":
            status, error = "error", {"error": type(released).__name__, "message": str(released)}
            emit("error", error)
        recorded: Record | None = None
        try:
            recorded = await self._record(run, status, output, values, error, interrupts, stopped, cancel)
        finally:
            # With the recorded outcome, waiters here need not ask storage; without one (the lease was lost, the
            # write failed) they must, since storage has the run's real end.
            self._broker.close(run_id, recorded)
            if tap is not None:
                await tap.finish(status, error, interrupts)
        if recorded is not None:
            for hook in self.finished_hooks:
                try:
                    hook(recorded)
                except Exception:
                    log.exception("run %s: a finished hook failed", run_id)

    def _fit_context(self, graph: Any, graph_id: str, given: dict[str, Any], config: dict[str, Any]) -> Any:
        """The run's context as the graph's context_schema instance; the keys it kept are mirrored into
        `configurable` as the reference does, for graphs that still read them there."""
        schema = getattr(graph, "context_schema", None)
        fitted = run_context.fit(schema, given)
        warned = self._dropped_warned
        # Bounded: clients sending ever new keys must not grow it (nor the log) without end.
        if fitted.dropped and (graph_id, *fitted.dropped) not in warned and len(warned) < 1000:
            warned.add((graph_id, *fitted.dropped))
            log.warning(
                "graph %s: context keys %s are not in its context_schema %s and are not passed to it",
                graph_id,
                fitted.dropped,
                run_context.schema_name(schema),
            )
        configurable = config["configurable"]
        configurable.update({k: v for k, v in fitted.kept.items() if k not in run_context.SYSTEM_KEYS})
        return fitted.value

    def take_interruptible(self, run_id: str) -> bool:
        """True (once) if the run's graph is running and its task may be cancelled now."""
        if run_id in self._interruptible:
            self._interruptible.discard(run_id)
            return True
        return False

    async def _record(
        self,
        run: Record,
        status: str,
        output: Any,
        values: Any,
        error: Any,
        interrupts: Any,
        stopped: bool,
        cancel: str | None,
    ) -> Record | None:
        """Write the outcome under the lease and bring the thread up to date; None when the lease was lost."""
        run_id, thread_id = run["run_id"], run["thread_id"]
        now = self._clock.now()
        rollback = cancel == "rollback"
        checkpointer = self._persistence.checkpointer
        if rollback:
            # Before the run's end is committed: the next run on the thread may start the moment it is, and must
            # not build on what this run wrote.
            await checkpointer.adelete_for_runs([run_id])
        # PostgreSQL, the common outcome: one autocommit statement when it is written alone (group_commit.py),
        # with the run's last checkpoint writes, taken out of the checkpointer's queue (so that the commit of the
        # checkpoints before outcomes does not send them on their own); any other way, they are sent first.
        at_once = not rollback and not run_usage.has_usage(values)
        taken = _TakenWrites.take(checkpointer, run_id) if at_once else None
        outcome = await self._outcomes.run(
            lambda conn: _write_outcome(
                conn, run, status, output, values, error, interrupts, stopped, rollback, now, self._db.dialect, taken
            ),
            None
            if not at_once
            else lambda conn: _write_outcome_at_once(
                conn, run, status, output, values, error, interrupts, stopped, now, self._broker, taken
            ),
            key=run_id,
        )
        if outcome is None:
            log.warning("run %s: lease lost before the outcome was written; outcome dropped", run_id)
            return None
        finished, delete_checkpoints = outcome
        if delete_checkpoints:
            await checkpointer.adelete_thread(thread_id)
        return finished


async def _write_outcome(
    conn: Any,
    run: Record,
    status: str,
    output: Any,
    values: Any,
    error: Any,
    interrupts: Any,
    stopped: bool,
    rollback: bool,
    now: Any,
    dialect: str,
    taken: _TakenWrites | None = None,
) -> tuple[Record, bool] | None:
    """The outcome's statements, in the caller's transaction (GroupCommit may share it with other runs' outcomes
    and run this again on its own): the run's end fenced by its lease token, its usage, and the thread brought up
    to date. (the run as recorded, whether the thread was deleted and its checkpoints are still to be), or None
    when the lease was lost."""
    run_id, thread_id = run["run_id"], run["thread_id"]
    if taken is not None:
        await taken.put_back()  # committed before the outcome, as every run's checkpoints are
    # Token usage of the AI messages the run added (cron budgets read it); the state before the run is read only
    # when some message reports usage.
    usage = None
    if run_usage.has_usage(values):
        before = await threads.get(conn, thread_id)
        usage = run_usage.run_usage(before["values"] if before else None, values)
    # On PostgreSQL the fenced finish also takes the thread's lock (one statement where two were); a run ended
    # under a lost lease locks nothing.
    locked = dialect == "postgresql"
    finish = runs.finish_and_lock_thread if locked else runs.finish
    finished = await finish(conn, run, status=status, output=output, error=error, now=now)
    if finished is None:
        return None
    if usage is not None:
        await runs.set_usage(conn, run_id, usage)
        finished["usage"] = usage
    if rollback:
        await runs.delete_one(conn, run_id)
    # Whether another run of the thread is pending or running is asked below, inside the statements that settle
    # the thread: on PostgreSQL only after its lock is held (by the finish above), in a later statement, so a run
    # created on it meanwhile (its creation holds the lock until it commits) is seen, not missed by a snapshot
    # taken before the wait.
    if not locked:
        await threads.lock(conn, thread_id, dialect)
    # A temporary thread goes with its last run; one that still has runs pending or running is only settled.
    if run["temporary"] and await threads.delete_if_no_inflight(conn, thread_id):
        return finished, True
    settled, changes = _settlement(status, values, error, interrupts, stopped, rollback, now)
    # `busy` instead when another run of the thread is pending or running (asked within the statement).
    await threads.settle_after_run(conn, thread_id, settled, **changes)
    return finished, False


def _settlement(
    status: str, values: Any, error: Any, interrupts: Any, stopped: bool, rollback: bool, now: Any
) -> tuple[str, dict[str, Any]]:
    """What the thread becomes after the run (unless another of its runs is pending or running): its status and
    the other columns written."""
    if status == "error":
        settled = "error"
    elif interrupts or stopped:
        settled = "interrupted"
    else:
        settled = "idle"
    changes: dict[str, Any] = {"updated_at": now}
    if not rollback:
        changes["error"] = error if status == "error" else None
        changes["interrupts"] = interrupts or {}
        if isinstance(values, dict):
            changes["values"] = {k: v for k, v in values.items() if k != "__interrupt__"}
            changes["state_updated_at"] = now
    return settled, changes


async def _write_outcome_at_once(
    conn: Any,
    run: Record,
    status: str,
    output: Any,
    values: Any,
    error: Any,
    interrupts: Any,
    stopped: bool,
    now: Any,
    broker: StreamBroker,
    taken: _TakenWrites | None = None,
) -> tuple[Record, bool] | None:
    """PostgreSQL, on an autocommit connection: what _write_outcome writes for a run that is not rolled back and
    reports no usage, in one statement (storage/runs.finish_and_settle; for a temporary thread
    storage/runs.finish_and_delete_thread, its checkpoints deleted too), with the run's stored events still
    unwritten and its END row, which carries the run's record as this statement leaves it (the broker then writes
    no END row of its own); None when nothing was written (the caller then runs _write_outcome in a transaction,
    and the broker writes the events and END row as usual). The run's last checkpoint writes (`taken`) go in the
    same statement; on a temporary thread, which the statement deletes with its checkpoints, they are dropped."""
    inserts = None
    if taken is not None and not run["temporary"]:
        inserts = await taken.inserts()
    batch = broker.end_with_outcome(run["run_id"], runs.ended(run, status, output, error, now))
    finished: Record | None = None
    outcome: dict[str, Any] = {"status": status, "output": output, "error": error, "now": now, "batch": batch}
    try:
        if run["temporary"]:
            finished = await runs.finish_and_delete_thread(conn, run, **outcome)
        else:
            settled, changes = _settlement(status, values, error, interrupts, stopped, False, now)
            finished = await runs.finish_and_settle(
                conn, run, settled=settled, changes=changes, checkpoints=inserts, **outcome
            )
    finally:
        if batch is not None:
            broker.outcome_written(run["run_id"], batch, finished is not None)
    if finished is None:
        return None
    if taken is not None:
        taken.written()
    return finished, False


class _TakenWrites:
    """A run's last checkpoint writes, taken from the PostgreSQL checkpointer's queue for its outcome's statement
    (graphs/postgres_saver.take_writes): written there, or else put back and committed before the outcome is
    written another way (once, however many times the outcome is tried)."""

    def __init__(self, checkpointer: Any, run_id: str, recorders: list[Any]) -> None:
        self._checkpointer = checkpointer
        self._run_id = run_id
        self._recorders: list[Any] | None = recorders

    @classmethod
    def take(cls, checkpointer: Any, run_id: str) -> _TakenWrites | None:
        take = getattr(checkpointer, "take_writes", None)
        recorders = take(run_id) if take is not None else None
        return cls(checkpointer, run_id, recorders) if recorders else None

    async def inserts(self) -> tuple[tuple[str, ...], dict[str, Any]] | None:
        """The writes as the outcome statement's INSERTs (postgres_saver.outcome_inserts); None when they are
        not merged (put back and committed now instead)."""
        if self._recorders is None:
            return None
        from crongraph.graphs.postgres_saver import outcome_inserts  # only PostgreSQL's checkpointer takes writes

        merged = outcome_inserts(self._recorders)
        if merged is None:
            await self.put_back()
        return merged

    def written(self) -> None:
        self._recorders = None

    async def put_back(self) -> None:
        recorders, self._recorders = self._recorders, None
        if recorders:
            await self._checkpointer.put_back(recorders, self._run_id)


async def _release(held: AsyncExitStack, failure: BaseException | None, run_id: str) -> BaseException | None:
    """Exit what the run holds (telling it how the run ended); the exception the exit raised, if any."""
    try:
        if failure is None:
            await held.aclose()
        else:
            await held.__aexit__(type(failure), failure, failure.__traceback__)
    except Exception as exc:
        log.warning("run %s: releasing its graph failed: %s: %s", run_id, type(exc).__name__, exc)
        return exc
    return None


async def _checkpointed_values(graph: Any, thread_id: str) -> Any:
    try:
        state = await graph.aget_state({"configurable": {"thread_id": thread_id}})
    except Exception:
        log.exception("reading the state of thread %s after its run stopped failed", thread_id)
        return None
    return serde.to_jsonable(state.values) if state.values else None


def _durability(kwargs: dict[str, Any]) -> str:
    if kwargs.get("durability"):
        return str(kwargs["durability"])
    # The deprecated flag: checkpoints during the run, or only at its end.
    if kwargs.get("checkpoint_during") is False:
        return "exit"
    return "async"
