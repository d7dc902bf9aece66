"""The thread-stream commands (`POST /threads/{id}/commands`, or frames on the WebSocket): `run.start` and
`input.respond` create ordinary runs (listed, cancellable, subject to the multitask strategy); the subscription
commands belong to a WebSocket and are answered by api/thread_stream.py; anything else is `unknown_command`.

Each command gets one envelope back. A success carries `meta.applied_through_seq`: the thread's last stored seq
when the command took effect, before any event of its own, so a client that opens a stream with `since` at that
value sees all of its effects and none of the past. Decisions are made from committed state at once: a busy
thread's run is queued, rejected or supersedes the current one as its strategy says, without waiting.
"""

from __future__ import annotations

from typing import Any

from crongraph.errors import BadRequest, Conflict, CrongraphError, InvalidInput, NotFound
from crongraph.ids import parse_uuid
from crongraph.services.access import allowed
from crongraph.services.context import ServiceContext
from crongraph.services.runs import RunService
from crongraph.storage import runs, thread_events, threads
from crongraph.streams.run_tap import PROTOCOL_FLAG, RECORDED_MODES, ProtocolRuns, is_protocol_run
from crongraph.streams.thread_log import ThreadLog

STRATEGIES = ("reject", "rollback", "interrupt", "enqueue")
_STATUS = {NotFound: 404, Conflict: 409, InvalidInput: 422, BadRequest: 400}


class ProtocolError(Exception):
    """A command that failed: its code (the protocol's vocabulary), message, and any extra envelope fields."""

    def __init__(self, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra


def error_envelope(command_id: Any, code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"type": "error", "id": command_id, "error": code, "message": message, **extra}


def success_envelope(command_id: Any, result: dict[str, Any], applied_through_seq: int) -> dict[str, Any]:
    return {"type": "success", "id": command_id, "result": result, "meta": {"applied_through_seq": applied_through_seq}}


def check_envelope(command: Any) -> dict[str, Any] | None:
    """None for a well-formed command, else the error envelope (the HTTP route answers it with 400)."""
    command_id = command.get("id") if isinstance(command, dict) else None
    valid_id = isinstance(command_id, int) and not isinstance(command_id, bool)
    if isinstance(command, dict) and valid_id and isinstance(command.get("method"), str):
        return None
    return error_envelope(
        command_id, "invalid_argument", "Protocol commands must include an integer id and string method."
    )


def _wire_error(exc: CrongraphError) -> ProtocolError:
    status = getattr(exc, "status", None) or _STATUS.get(type(exc), 400)  # Denied carries its own
    return ProtocolError("unknown_error", f"{status}: {exc.detail}")


async def check_thread_access(ctx: ServiceContext, thread_id: str, action: str, *, must_exist: bool) -> None:
    """With custom auth, the caller's `threads.<action>` filter must match the thread: a thread that exists and is
    hidden is "not found" (and, with `must_exist`, so is one that does not exist yet, as the reference's event
    streams do). Raises NotFound or Denied; nothing without auth."""
    visible = await allowed(ctx, "threads", action, {"thread_id": thread_id})
    if visible is None:
        return
    async with ctx.db.read() as conn:
        if await threads.get(conn, thread_id, visible) is not None:
            return
        if must_exist or await threads.get(conn, thread_id) is not None:
            raise NotFound(f"Thread with ID '{thread_id}' not found. Please verify the thread ID.")


def _thread_uuid(thread_id: str) -> str:
    parsed = parse_uuid(thread_id)
    if parsed is None:
        raise ProtocolError("unknown_error", "422: Invalid thread ID")
    return parsed


def _dict_param(params: dict[str, Any], name: str) -> dict[str, Any] | None:
    value = params.get(name)
    if value is not None and not isinstance(value, dict):
        raise ProtocolError("invalid_argument", f"{name} must be an object.")
    return value


def _run_config(params: dict[str, Any]) -> dict[str, Any]:
    """The run's config: the one given, marked as a protocol run (which makes the executor write the log)."""
    config = dict(_dict_param(params, "config") or {})
    configurable = config.get("configurable") or {}
    if not isinstance(configurable, dict):
        raise ProtocolError("invalid_argument", "config.configurable must be an object.")
    config["configurable"] = {**configurable, PROTOCOL_FLAG: True}
    return config


def _pending_interrupts(thread: dict[str, Any]) -> set[str]:
    found = set()
    for items in (thread.get("interrupts") or {}).values():
        for item in items or []:
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                found.add(item["id"])
    return found


class ThreadStreamService:
    def __init__(self, ctx: ServiceContext, run_service: RunService, thread_log: ThreadLog, protocol: ProtocolRuns):
        self.ctx = ctx
        self.runs = run_service
        self.log = thread_log
        self.protocol = protocol

    async def applied_through(self, thread_id: str) -> int:
        parsed = parse_uuid(thread_id)
        return await self.log.last_seq(parsed) if parsed else 0

    async def execute(self, thread_id: str, method: str, params: Any) -> tuple[dict[str, Any], int]:
        """Run `run.start` or `input.respond`: the result and the seq it was applied through. Raises
        ProtocolError (the caller builds the envelope)."""
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise ProtocolError("invalid_argument", "params must be an object.")
        try:
            # Another user's thread answers as one that does not exist, before anything about it is looked at.
            await check_thread_access(self.ctx, _thread_uuid(thread_id), "read", must_exist=False)
        except CrongraphError as exc:
            raise _wire_error(exc) from exc
        if method == "run.start":
            return await self.start_run(thread_id, params)
        if method == "input.respond":
            return await self.respond(thread_id, params)
        raise ProtocolError("unknown_command", f"Unknown protocol command: {method}")

    # run.start

    async def start_run(self, thread_id: str, params: dict[str, Any]) -> tuple[dict[str, Any], int]:
        assistant = params.get("assistant_id")
        if not isinstance(assistant, str) or not assistant:
            raise ProtocolError("invalid_argument", "run.start requires an assistant_id.")
        config = _run_config(params)
        metadata = _dict_param(params, "metadata") or {}
        checkpoint_id = config["configurable"].get("checkpoint_id")
        if checkpoint_id is not None and parse_uuid(checkpoint_id) is None:
            raise ProtocolError("invalid_argument", f"Invalid config.configurable.checkpoint_id: {checkpoint_id!r}.")
        _check_tracer(params.get("langsmith_tracer"))
        strategy = params.get("multitaskStrategy", params.get("multitask_strategy"))
        strategy = strategy if strategy in STRATEGIES else "enqueue"
        tid = _thread_uuid(thread_id)
        value = params.get("input")
        body: dict[str, Any] = {
            "assistant_id": assistant,
            "config": config,
            "metadata": {**metadata, "created_by": "system"},
            "multitask_strategy": strategy,
            "if_not_exists": "create",
            "stream_mode": RECORDED_MODES,
            "stream_subgraphs": True,
            "stream_resumable": True,
        }
        try:
            async with self.ctx.db.write() as conn:
                thread = await threads.get_for_update(conn, tid, self.ctx.dialect)
                # A value sent to a thread waiting on interrupts answers them (RemoteGraph's Command(resume=...)).
                if value is not None and thread is not None and _pending_interrupts(thread):
                    body["command"] = {"resume": value}
                else:
                    body["input"] = value
                before = await runs.inflight_on_thread(conn, tid) if thread is not None else []
                run, running = await self.runs.create_in(conn, tid, body)
                # Read in the transaction that creates the run: none of its events can precede this value.
                applied = await thread_events.last_seq(conn, tid)
        except CrongraphError as exc:
            raise _wire_error(exc) from exc
        superseded = strategy in ("interrupt", "rollback")
        await self.runs.after_commit(run, running)
        # The janitor ends in the log what never reaches an executor (such as the pending runs just superseded).
        self.protocol.watch(run["run_id"], tid)
        for other in before:
            if superseded and other["status"] == "pending" and is_protocol_run(other):
                self.protocol.watch(other["run_id"], tid)
        return {"run_id": run["run_id"]}, applied

    # input.respond

    async def respond(self, thread_id: str, params: dict[str, Any]) -> tuple[dict[str, Any], int]:
        answers = _answers(params)
        tid = _thread_uuid(thread_id)
        config = _run_config(params)
        metadata = _dict_param(params, "metadata") or {}
        known_namespaces = await self.log.requested_interrupts(tid)
        try:
            async with self.ctx.db.write() as conn:
                thread = await threads.get_for_update(conn, tid, self.ctx.dialect)
                assistant = (thread or {}).get("metadata", {}).get("assistant_id")
                if thread is None or not assistant:
                    raise ProtocolError("no_such_run", "No interrupted run is bound to this thread.")
                pending = _pending_interrupts(thread) - _consumed(await runs.inflight_on_thread(conn, tid))
                for interrupt_id, namespace, _ in answers:
                    known = known_namespaces.get(interrupt_id)
                    elsewhere = namespace is not None and known is not None and namespace != known
                    if interrupt_id not in pending or elsewhere:
                        message = f"Unknown or already-consumed interrupt: {interrupt_id}"
                        raise ProtocolError("no_such_interrupt", message)
                command: dict[str, Any] = {"resume": {i: response for i, _, response in answers}}
                for key in ("update", "goto"):
                    if params.get(key) is not None:
                        command[key] = params[key]
                body = {
                    "assistant_id": assistant,
                    "command": command,
                    "config": config,
                    "metadata": {**metadata, "created_by": "system"},
                    "multitask_strategy": "enqueue",
                    "stream_mode": RECORDED_MODES,
                    "stream_subgraphs": True,
                    "stream_resumable": True,
                }
                run, cancelled = await self.runs.create_in(conn, tid, body)
                applied = await thread_events.last_seq(conn, tid)
        except CrongraphError as exc:
            raise _wire_error(exc) from exc
        await self.runs.after_commit(run, cancelled)
        self.protocol.watch(run["run_id"], tid)
        return {}, applied


def _check_tracer(tracer: Any) -> None:
    if tracer is None:
        return
    if not isinstance(tracer, dict) or any(
        key not in ("project_name", "example_id") or not isinstance(value, str) for key, value in tracer.items()
    ):
        raise ProtocolError(
            "invalid_argument", "langsmith_tracer accepts only project_name and example_id, both strings."
        )


def _answers(params: dict[str, Any]) -> list[tuple[str, list[str] | None, Any]]:
    """(interrupt id, namespace or None, response) of a single or batch respond."""
    if "responses" in params:
        items = params["responses"]
        if not isinstance(items, list) or not items:
            raise ProtocolError("invalid_argument", "input.respond requires a non-empty responses array.")
    else:
        items = [params]
    answers = []
    for item in items:
        interrupt_id = item.get("interrupt_id") if isinstance(item, dict) else None
        if not isinstance(interrupt_id, str) or not interrupt_id:
            raise ProtocolError("invalid_argument", "input.respond requires an interrupt_id.")
        namespace = item.get("namespace")
        if not (isinstance(namespace, list) and all(isinstance(s, str) for s in namespace)):
            namespace = None
        answers.append((interrupt_id, namespace, item.get("response")))
    return answers


def _consumed(inflight: list[dict[str, Any]]) -> set[str]:
    """Interrupts a queued or running resume already answers."""
    found: set[str] = set()
    for run in inflight:
        resume = ((run.get("kwargs") or {}).get("command") or {}).get("resume")
        if isinstance(resume, dict):
            found.update(k for k in resume if isinstance(k, str))
    return found


class ThreadStreams:
    """The thread stream's parts, built and started by runtime.py: the event log, the executor's hook and
    janitor (`protocol`, which the executor reads as `Executor.protocol`), and the commands."""

    def __init__(self, ctx: ServiceContext, run_service: RunService) -> None:
        settings = ctx.settings
        # Other replicas (PostgreSQL) and execution workers announce what they store; else every writer is here.
        notifier = ctx.notifier if settings.is_postgres or settings.exec_workers else None
        keep = settings.thread_events_keep_runs
        self.log = ThreadLog(ctx.db, ctx.clock, keep_runs=keep, poll=5.0, notifier=notifier)
        self.protocol = ProtocolRuns(ctx.db, self.log, ctx.clock)
        self.commands = ThreadStreamService(ctx, run_service, self.log, self.protocol)

    async def check_read(self, thread_id: str) -> None:
        """Whether the caller may read the thread's event log (raises NotFound or Denied; see check_thread_access)."""
        await check_thread_access(self.commands.ctx, thread_id, "read", must_exist=True)

    async def start(self) -> None:
        await self.protocol.start()

    async def stop(self) -> None:
        await self.protocol.stop()
