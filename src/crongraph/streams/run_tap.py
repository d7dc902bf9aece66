"""Runs started through the thread-stream commands write their events to the thread log; this module is the
executor's side of that, and the janitor that guarantees every such run an end.

A protocol run is an ordinary run whose config carries `configurable.__event_streaming_v2` (as on the reference).
For it the executor asks `ProtocolRuns.tap(run)` for a `RunTap`, and then:
- `start()` takes the thread's run slot (so this run's events cannot pass the previous run's end in this
  process) and ends a run the log left open (its writer died);
- `stream(...)` replaces graphs/execute.stream_graph: it writes the root `running`, streams the graph in
  LangGraph's v2 form with v2 chat-model events and feeds each part to the RunTranslator; the root values also
  go to the run's classic stream;
- `finish(...)` runs after the outcome is committed: `input.requested` for each pending interrupt, the terminal
  of every child namespace still open, then the root terminal, which is always the run's last event. A cancelled
  run ends `failed` with "Run was cancelled".

The janitor writes the end the executor cannot: a run cancelled (or rolled back) before it started gets root
`running` then `failed`; a run whose worker died (reaped, or the server restarted) gets `failed` once its end has
been committed for `GRACE` seconds without a terminal event. It never puts a run's events inside another run's:
while the log has another run open, it waits. The unique (run_id, mark) index makes it safe for the executor and
any number of janitors to race for the same run's end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from typing import Any

from langgraph._internal._constants import CONFIG_KEY_STREAM_MESSAGES_V2
from langgraph.pregel import Pregel

from crongraph.clock import Clock
from crongraph.graphs.execute import Emit, Outcome
from crongraph.storage import assistants, runs, thread_events, threads
from crongraph.storage.common import Record
from crongraph.storage.database import Database
from crongraph.streams.protocol import Namespace, RunTranslator
from crongraph.streams.thread_log import END, OPEN, ThreadLog, draft

log = logging.getLogger("crongraph.thread_stream")

PROTOCOL_FLAG = "__event_streaming_v2"
# What a protocol run asks LangGraph for: tasks to open and close child namespaces, tools for tool execution.
LANGGRAPH_MODES = ["values", "updates", "messages", "custom", "tasks", "tools"]
# The stream modes recorded on a protocol run (the reference's list).
RECORDED_MODES = ["values", "updates", "messages", "tools", "lifecycle", "custom", "tasks", "checkpoints"]
CANCELLED = "Run was cancelled"
GRACE = timedelta(seconds=5)
SLOT_WAIT = 10.0


def is_protocol_run(run: Record) -> bool:
    config = (run.get("kwargs") or {}).get("config") or {}
    configurable = config.get("configurable") if isinstance(config, dict) else None
    return isinstance(configurable, dict) and bool(configurable.get(PROTOCOL_FLAG))


def _pending_interrupts(interrupts: Any) -> list[tuple[str, Any]]:
    """(id, value) of each interrupt in a thread's committed `interrupts` ({task id: [{id, value}]}), once."""
    found: dict[str, Any] = {}
    if isinstance(interrupts, dict):
        for items in interrupts.values():
            for item in items or []:
                if isinstance(item, dict) and isinstance(item.get("id"), str):
                    found.setdefault(item["id"], item.get("value"))
    return list(found.items())


class ProtocolRuns:
    def __init__(self, db: Database, thread_log: ThreadLog, clock: Clock) -> None:
        self.db = db
        self.log = thread_log
        self.clock = clock
        self._watched: dict[str, str] = {}  # run id -> thread id
        self._missing_since: dict[str, Any] = {}
        self._live: set[str] = set()  # runs a tap of this process is writing
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # The executor's hook

    def tap(self, run: Record) -> RunTap | None:
        return RunTap(self, run) if is_protocol_run(run) else None

    async def graph_name(self, thread_id: str, run: Record | None) -> str:
        """The graph a run runs (for events written without its executor): its assistant's, else the thread's."""
        async with self.db.read() as conn:
            assistant = await assistants.get(conn, run["assistant_id"]) if run is not None else None
            if assistant is not None:
                return str(assistant["graph_id"])
            thread = await threads.get(conn, thread_id)
        return str((thread or {}).get("metadata", {}).get("graph_id") or "")

    async def end_dangling(self, thread_id: str, run_id: str) -> None:
        """Before a run opens: end a run the log left open, once it is clear its own writer will not."""
        for _ in range(10):
            last = await self.log.last_mark(thread_id)
            if last is None or last["mark"] == END or last["run_id"] == run_id:
                return
            await asyncio.sleep(0.1)
        if last is None:
            return
        async with self.db.read() as conn:
            other = await runs.get(conn, last["run_id"])
        graph_name = await self.graph_name(thread_id, other)
        await self.log.append(thread_id, [_ending(last["run_id"], other, graph_name)])

    # The janitor

    def watch(self, run_id: str, thread_id: str) -> None:
        self._watched[run_id] = thread_id
        self._wake.set()

    def forget(self, run_id: str) -> None:
        self._watched.pop(run_id, None)
        self._missing_since.pop(run_id, None)

    async def start(self) -> None:
        async with self.db.read() as conn:
            dangling = await thread_events.open_runs(conn)
            inflight = await runs.list_inflight(conn, thread_id=None, run_ids=None, statuses=runs.INFLIGHT)
        for row in dangling:
            self._watched[row["run_id"]] = row["thread_id"]
        for run in inflight:
            if is_protocol_run(run):
                self._watched[run["run_id"]] = run["thread_id"]
        self._task = asyncio.create_task(self._run_forever(), name="crongraph-thread-stream-janitor")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run_forever(self) -> None:
        while True:
            if not self._watched:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), 30)
                continue
            try:
                await self.sweep()
            except Exception:
                log.exception("thread stream janitor failed; retrying")
            await asyncio.sleep(0.5)

    async def sweep(self) -> None:
        """One look at every watched run (two queries in all), acting only on those that need an end."""
        now = self.clock.now()
        watched = {r: t for r, t in self._watched.items() if r not in self._live}
        if not watched:
            return
        async with self.db.read() as conn:
            found = await thread_events.runs_by_id(conn, list(watched))
            marks = await thread_events.existing_marks(conn, list(watched))
        for run_id, thread_id in watched.items():
            run = found.get(run_id)
            if (run_id, END) in marks:
                self.forget(run_id)
                continue
            if run is not None and run["status"] in runs.INFLIGHT:
                continue
            opened = (run_id, OPEN) in marks
            if opened or (run is not None and run["attempt"] > 0):
                # Its executor writes the end right after committing it; only a dead one leaves it to us.
                ended_at = run["ended_at"] if run is not None else self._missing_since.setdefault(run_id, now)
                if ended_at is not None and now - ended_at < GRACE:
                    continue
            graph_name = await self.graph_name(thread_id, run)
            drafts = [_ending(run_id, run, graph_name)]
            if not opened:
                running = {"event": "running", "graph_name": graph_name}
                drafts.insert(0, draft(run_id, "lifecycle", (), running, mark=OPEN))
            if await self.log.append(thread_id, drafts, when_idle=True) is not None:
                self.forget(run_id)
            # else another run is streaming: this one's end follows it, at a later sweep


def _ending(run_id: str, run: Record | None, graph_name: str) -> Any:
    """The root `failed` that ends a run its executor did not end."""
    if run is None or run["status"] == "interrupted":
        message = CANCELLED
    else:
        error = run.get("error")
        message = str((error if isinstance(error, dict) else {}).get("message") or "Run ended without a terminal event")
    return draft(run_id, "lifecycle", (), {"event": "failed", "graph_name": graph_name, "error": message}, mark=END)


class RunTap:
    def __init__(self, owner: ProtocolRuns, run: Record) -> None:
        self._owner = owner
        self.run = run
        self.thread_id: str = run["thread_id"]
        self.run_id: str = run["run_id"]
        self._writer = owner.log.writer(self.thread_id, self.run_id)
        self._translator = RunTranslator(self._publish)
        self._graph_name = str(run["assistant_id"])
        self._slot = False
        self._opened = False
        self._finished = False

    def _publish(self, method: str, namespace: Namespace, data: Any, node: str | None) -> None:
        self._writer.publish(method, namespace, data, node)

    async def start(self) -> None:
        self._owner._live.add(self.run_id)
        try:
            self._slot = await self._owner.log.acquire_slot(self.thread_id, SLOT_WAIT)
            await self._owner.end_dangling(self.thread_id, self.run_id)
        except Exception:
            log.exception("run %s: could not prepare its thread stream", self.run_id)

    def _open(self, graph_name: str | None) -> None:
        """Root `running`: when the graph starts (its name is in the config then), or, for a run that failed
        before that, when it ends."""
        if self._opened:
            return
        self._opened = True
        if graph_name:
            self._graph_name = graph_name
        self._writer.publish("lifecycle", (), {"event": "running", "graph_name": self._graph_name}, mark=OPEN)

    async def stream(
        self,
        graph: Pregel[Any, Any, Any, Any],
        payload: Any,
        config: dict[str, Any],
        *,
        stream_modes: list[str],
        subgraphs: bool,
        emit: Emit,
        **kwargs: Any,
    ) -> Outcome:
        """Drop-in for stream_graph (the classic stream modes are ignored: a protocol run streams them all)."""
        configurable = {**config.get("configurable", {}), CONFIG_KEY_STREAM_MESSAGES_V2: True}
        config = {**config, "configurable": configurable}
        self._open(configurable.get("graph_id"))
        translator = self._translator
        # "tools" is a stream mode of LangGraph's newer protocol that its typed overloads do not list yet.
        async for part in graph.astream(  # type: ignore[call-overload]
            payload, config, stream_mode=LANGGRAPH_MODES, subgraphs=True, version="v2", **kwargs
        ):
            translator.feed(part)
            if part["type"] == "values" and not part["ns"]:
                emit("values", part["data"])
        outcome = Outcome(output=translator.output)
        if translator.root_interrupts:
            outcome.interrupted = True
            if isinstance(outcome.output, dict):
                outcome.output = {**outcome.output, "__interrupt__": list(translator.root_interrupts)}
        return outcome

    async def finish(self, status: str, error: Any, interrupts: Any) -> None:
        """End the run's events after its outcome is committed (status: success, error or interrupted)."""
        if self._finished:
            return
        self._finished = True
        try:
            if not self._opened:
                self._open(await self._owner.graph_name(self.thread_id, self.run))
            translator = self._translator
            root: dict[str, Any] = {"graph_name": self._graph_name}
            if status == "success":
                pending = _pending_interrupts(interrupts)
                if not pending and interrupts is None:
                    pending = [(i.id, i.value) for i in translator.root_interrupts if hasattr(i, "id")]
                for interrupt_id, value in pending:
                    namespace = translator.interrupt_namespaces.get(interrupt_id, ())
                    data = {"interrupt_id": interrupt_id, "payload": value, "value": value}
                    self._writer.publish("input.requested", namespace, data)
                root["event"] = "interrupted" if pending else "completed"
                translator.finish(root["event"], None)
            else:
                message = CANCELLED
                if status == "error":
                    message = str((error or {}).get("message") or "Run failed")
                translator.finish("failed", message)
                root.update(event="failed", error=message)
            self._writer.publish("lifecycle", (), {"event": root.pop("event"), **root}, mark=END)
            await self._writer.flush()
            await self._owner.log.prune(self.thread_id)
        except Exception:
            log.exception("run %s: could not end its thread stream; the janitor will", self.run_id)
            self._owner.watch(self.run_id, self.thread_id)
        finally:
            if self._slot:
                self._owner.log.release_slot(self.thread_id)
                self._slot = False
            self._owner._live.discard(self.run_id)
