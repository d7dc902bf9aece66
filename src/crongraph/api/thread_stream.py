"""The thread-centric stream's routes (spec: thread-stream.md): commands, the event stream over SSE, and the
same stream over a WebSocket.

- `POST /threads/{id}/commands`: one command in, one envelope out (200, protocol errors included; 400 only for
  a body that is not JSON or not a command).
- `POST /threads/{id}/stream/events`: replays the thread's log after `since`, then follows it live; it never
  ends because a run did. Headers go out at once; a heartbeat comment every keep-alive interval.
- WebSocket on the same path: commands in, responses and events out. Each subscription replays (after its
  `since`) and then follows, with SSE's semantics; an event goes out once per socket whatever the number of
  subscriptions it matches.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import APIRouter, Request, WebSocket, WebSocketDisconnect
from starlette.responses import Response

from crongraph import serde
from crongraph.api.deps import RuntimeDep
from crongraph.api.responses import JSONResponse
from crongraph.api.sse import HEARTBEAT, sse_response, with_keepalive
from crongraph.errors import CrongraphError, NotFound
from crongraph.ids import parse_uuid
from crongraph.services.thread_stream import (
    ProtocolError,
    check_envelope,
    error_envelope,
    success_envelope,
)
from crongraph.streams.protocol import Filter, FilterError
from crongraph.streams.thread_log import Gap, LogEvent

if TYPE_CHECKING:
    from crongraph.services.thread_stream import ThreadStreams

router = APIRouter(tags=["thread-stream"])
log = logging.getLogger("crongraph.thread_stream")

NO_RUN = "No active run is bound to this thread."
READ_FAILED = "The thread's event log could not be read; reconnect with `since`."
BAD_THREAD = "Invalid thread ID: it must be a UUID."


def _gap_error(gap: Gap) -> dict[str, Any]:
    message = f"Events after seq {gap.since} are no longer kept; resuming at seq {gap.first}."
    return error_envelope(None, "resume_gap", message, since=gap.since, min_available_seq=gap.first)


def _event_frame(event: LogEvent) -> bytes:
    return b"event: %s\r\ndata: %s\r\nid: %d\r\n\r\n" % (event.method.encode(), event.body, event.seq)


def _error_frame(error: dict[str, Any]) -> bytes:
    return b"event: error\r\ndata: " + orjson.dumps(error) + b"\r\n\r\n"


def _bad_body(message: str) -> Response:
    return JSONResponse({"detail": message}, status_code=400)


# Commands over HTTP


@router.post("/threads/{thread_id}/commands")
async def command(thread_id: str, request: Request, rt: RuntimeDep) -> Response:
    try:
        body = serde.loads_request(await request.body())
    except orjson.JSONDecodeError:
        return _bad_body("Invalid JSON body")
    except serde.UnacceptableJson as exc:
        return JSONResponse({"detail": str(exc)}, status_code=422)
    problem = check_envelope(body)
    if problem is not None:
        return JSONResponse(problem, status_code=400)
    streams: ThreadStreams = rt.thread_streams
    method, command_id = body["method"], body["id"]
    try:
        if method in ("run.start", "input.respond"):
            result, applied = await streams.commands.execute(thread_id, method, body.get("params"))
            return JSONResponse(success_envelope(command_id, result, applied))
        if method == "subscription.subscribe":
            # Over HTTP a subscription has nowhere to deliver to: the SSE body carries its own filter.
            result = {"subscription_id": str(uuid.uuid4()), "replayed_events": 0}
        elif method == "subscription.unsubscribe":
            params = body.get("params")
            subscription = params.get("subscription_id") if isinstance(params, dict) else None
            raise ProtocolError("no_such_subscription", f"Unknown subscription: {subscription}")
        elif method in ("subscription.reconnect", "agent.getTree"):
            raise ProtocolError("no_such_run", NO_RUN)
        else:
            raise ProtocolError("unknown_command", f"Unknown protocol command: {method}")
    except ProtocolError as exc:
        return JSONResponse(error_envelope(command_id, exc.code, exc.message, **exc.extra))
    return JSONResponse(success_envelope(command_id, result, await streams.commands.applied_through(thread_id)))


# Events over SSE


@router.post("/threads/{thread_id}/stream/events")
async def stream_events(thread_id: str, request: Request, rt: RuntimeDep) -> Response:
    try:
        body = serde.loads_request(await request.body())
    except orjson.JSONDecodeError:
        return _bad_body("Invalid JSON body")
    except serde.UnacceptableJson as exc:
        return JSONResponse({"detail": str(exc)}, status_code=422)
    try:
        wanted, since = Filter.parse(body)
    except FilterError as exc:
        return _bad_body(str(exc))
    streams: ThreadStreams = rt.thread_streams
    parsed = parse_uuid(thread_id)
    if parsed is not None:
        await streams.check_read(parsed)  # custom auth: another user's thread is "not found"
    source = _sse_frames(streams, parsed, wanted, since)
    return sse_response(with_keepalive(source, rt.settings.keepalive_seconds, HEARTBEAT), {})


async def _sse_frames(
    streams: ThreadStreams, thread_id: str | None, wanted: Filter, since: int | None
) -> AsyncIterator[bytes]:
    if thread_id is None:
        # Nothing can ever be read for it: say so, then end the stream (clients report the frame).
        yield _error_frame(error_envelope(None, "invalid_argument", BAD_THREAD))
        return
    try:
        async for item in streams.log.follow(thread_id, since, wanted.accepts):
            yield _error_frame(_gap_error(item)) if isinstance(item, Gap) else _event_frame(item)
    except Exception:
        # Say why the stream ends (the SDK reports this frame), then end it: the client reconnects with `since`.
        log.exception("thread %s: reading its event log failed", thread_id)
        yield _error_frame(error_envelope(None, "unknown_error", READ_FAILED))


# Events (and commands) over a WebSocket


@router.websocket("/threads/{thread_id}/stream/events")
async def stream_events_socket(websocket: WebSocket, thread_id: str) -> None:
    streams: ThreadStreams = websocket.app.state.runtime.thread_streams
    parsed = parse_uuid(thread_id)
    if parsed is not None:
        try:
            await streams.check_read(parsed)  # custom auth: another user's thread is "not found"
        except CrongraphError as exc:
            await websocket.close(code=4404 if isinstance(exc, NotFound) else 4403, reason=exc.detail[:120])
            return
    await _Socket(streams, websocket, thread_id).serve()


class _Socket:
    def __init__(self, streams: ThreadStreams, websocket: WebSocket, thread_id: str) -> None:
        self.streams = streams
        self.ws = websocket
        self.thread_id = parse_uuid(thread_id)
        self.subscriptions: dict[str, asyncio.Task[None]] = {}
        self.sent: set[int] = set()
        self.send_lock = asyncio.Lock()
        # What this socket has seen of the current run, for agent.getTree: root, then child namespaces.
        self.root: dict[str, Any] | None = None
        self.children: dict[tuple[str, ...], dict[str, Any]] = {}

    async def serve(self) -> None:
        await self.ws.accept()
        if self.thread_id is None:
            await self._send(error_envelope(None, "invalid_argument", BAD_THREAD))
            await self.ws.close(code=4422, reason=BAD_THREAD)
            return
        try:
            while True:
                message = await self.ws.receive()
                if message["type"] == "websocket.disconnect":
                    return
                raw = message.get("text") if message.get("text") is not None else message.get("bytes")
                await self._handle(raw or b"")
        except WebSocketDisconnect:
            return
        finally:
            for task in self.subscriptions.values():
                task.cancel()
            for task in self.subscriptions.values():
                with contextlib.suppress(BaseException):
                    await task

    async def _send(self, payload: dict[str, Any]) -> None:
        async with self.send_lock:
            await self.ws.send_text(orjson.dumps(payload).decode())

    async def _send_event(self, event: LogEvent) -> bool:
        async with self.send_lock:
            if event.seq in self.sent:
                return False
            self.sent.add(event.seq)
            if event.method == "lifecycle":
                self._observe(event)
            await self.ws.send_text(event.body.decode())
            return True

    async def _handle(self, raw: str | bytes) -> None:
        try:
            command = serde.loads_request(raw)
        except orjson.JSONDecodeError:
            await self._send(error_envelope(None, "invalid_argument", "Protocol commands must be valid JSON."))
            return
        except serde.UnacceptableJson as exc:
            await self._send(error_envelope(None, "invalid_argument", str(exc)))
            return
        problem = check_envelope(command)
        if problem is not None:
            await self._send(problem)
            return
        command_id, method, params = command["id"], command["method"], command.get("params") or {}
        assert self.thread_id is not None
        try:
            if method in ("run.start", "input.respond"):
                result, applied = await self.streams.commands.execute(self.thread_id, method, params)
            else:
                result = await self._local(method, params if isinstance(params, dict) else {})
                applied = await self.streams.log.last_seq(self.thread_id)
        except ProtocolError as exc:
            await self._send(error_envelope(command_id, exc.code, exc.message, **exc.extra))
            return
        await self._send(success_envelope(command_id, result, applied))

    async def _local(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        if method == "subscription.subscribe":
            return await self._subscribe(None, params, reconnect=False)
        if method == "subscription.reconnect":
            since = params.get("since")
            if not isinstance(since, int) or isinstance(since, bool) or since < 0:
                raise ProtocolError("invalid_argument", "subscription.reconnect requires since, an integer >= 0.")
            return await self._subscribe(params.get("subscription_id"), params, reconnect=True)
        if method == "subscription.unsubscribe":
            subscription_id = params.get("subscription_id")
            task = self.subscriptions.pop(subscription_id, None) if isinstance(subscription_id, str) else None
            if task is None:
                raise ProtocolError("no_such_subscription", f"Unknown subscription: {subscription_id}")
            task.cancel()
            return {}
        if method == "agent.getTree":
            if self.root is None:
                raise ProtocolError("no_such_run", NO_RUN)
            return {"tree": self._tree()}
        raise ProtocolError("unknown_command", f"Unknown protocol command: {method}")

    async def _subscribe(self, subscription_id: Any, params: dict[str, Any], *, reconnect: bool) -> dict[str, Any]:
        """Replay what is stored (after `since`) before answering, then follow from there in the background."""
        assert self.thread_id is not None
        try:
            wanted, since = Filter.parse(params)
        except FilterError as exc:
            raise ProtocolError("invalid_argument", str(exc)) from exc
        log = self.streams.log
        if since is not None:
            first = await log.first_seq(self.thread_id)
            if first is not None and since + 1 < first:
                gap = _gap_error(Gap(since, first))
                if reconnect:
                    raise ProtocolError("resume_gap", gap["message"], since=since, min_available_seq=first)
                await self._send(gap)
        stored, cursor = await log.read(self.thread_id, since or 0, wanted.accepts)
        replayed = 0
        for event in stored:
            replayed += await self._send_event(event)
        if not isinstance(subscription_id, str) or not subscription_id:
            subscription_id = str(uuid.uuid4())
        previous = self.subscriptions.pop(subscription_id, None)
        if previous is not None:
            previous.cancel()
        self.subscriptions[subscription_id] = asyncio.create_task(self._pump(wanted, cursor))
        return {"subscription_id": subscription_id, "replayed_events": replayed}

    async def _pump(self, wanted: Filter, cursor: int) -> None:
        assert self.thread_id is not None
        try:
            async for item in self.streams.log.follow(self.thread_id, cursor, wanted.accepts):
                if isinstance(item, Gap):
                    await self._send(_gap_error(item))
                else:
                    await self._send_event(item)
        except (WebSocketDisconnect, RuntimeError):
            return  # the socket closed under us
        except Exception:
            log.exception("thread %s: reading its event log failed", self.thread_id)
            with contextlib.suppress(Exception):
                await self._send(error_envelope(None, "unknown_error", READ_FAILED))
                await self.ws.close(code=1011, reason="thread stream ended")

    def _observe(self, event: LogEvent) -> None:
        data = orjson.loads(event.body)["params"]["data"]
        status, ns = data.get("event"), event.namespace
        if not ns:
            if status == "running":
                self.root, self.children = {"graph_name": data.get("graph_name")}, {}
            if self.root is not None:
                self.root["status"] = status
        elif self.root is not None:
            node = self.children.setdefault(ns, {"graph_name": data.get("graph_name")})
            node["status"] = "running" if status == "started" else status

    def _tree(self) -> dict[str, Any]:
        def build(ns: tuple[str, ...], info: dict[str, Any]) -> dict[str, Any]:
            node = {"namespace": list(ns), "status": info.get("status"), "graph_name": info.get("graph_name")}
            kids = [build(c, i) for c, i in self.children.items() if len(c) == len(ns) + 1 and c[: len(ns)] == ns]
            if kids:
                node["children"] = kids
            return node

        assert self.root is not None
        return build((), self.root)
