"""An execution worker's main (`crongraph exec-worker --fd N`, started by the server, never by hand).

A worker is a headless runtime: the server's settings and project (passed in the `CRONGRAPH_EXEC_WORKER`
environment variable as JSON: `{"settings": {...}, "config": "/abs/langgraph.json" | null}`), its own graph
registry, savers and database handle, and its own RunQueue and Executor under a lease owner of its own. It claims
runs exactly as the server's producer does (same claim statement, priorities, reserved slots, throttling), so
exactly-once, one running run per thread and fencing rest on storage. It serves no HTTP and runs no scheduler,
reaper or sweeper: the server does. Its finished hooks (webhooks, metrics, cron guards) run in the server: the
worker forwards each run-finished record.

It stops when the server says so (`stop`), when the pipe closes (the server died) or on SIGTERM, with the same
grace as the server's queue; SIGINT (a Ctrl-C reaching the whole process group) is left to the server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import os
import signal
import socket
from pathlib import Path
from typing import Any

from crongraph import notify
from crongraph.clock import SystemClock
from crongraph.graphs.persistence import Persistence, open_sqlite, store_options
from crongraph.graphs.registry import GraphRegistry
from crongraph.queue.executor import Executor
from crongraph.queue.producer import RunQueue
from crongraph.queue.workers import write_lock
from crongraph.queue.workers.channel import Channel
from crongraph.queue.workers.relay import ForwardingBroker, RelayNotifier
from crongraph.settings import Settings
from crongraph.storage.database import Database
from crongraph.streams.run_tap import ProtocolRuns
from crongraph.streams.thread_log import ThreadLog

log = logging.getLogger("crongraph.workers")

SPEC_ENV = "CRONGRAPH_EXEC_WORKER"
SERVER = -1  # the worker's one peer
# Hints a worker sends the server: RUNS/CANCEL (none today, kept for symmetry), THREAD_EVENTS (a thread-stream
# run's events were stored here: the server's followers read them).
FORWARDED = frozenset({notify.RUNS, notify.CANCEL, notify.THREAD_EVENTS})


class HeadlessRuntime:
    def __init__(self, settings: Settings, graphs: GraphRegistry, project: Any, channel: Channel) -> None:
        self.settings = settings
        self.graphs = graphs
        self.project = project
        self.channel = channel
        self.clock = SystemClock()
        self.notifier = RelayNotifier(FORWARDED)
        self.notifier.peers[SERVER] = channel
        self._persistence: Persistence | None = None

    async def start(self) -> None:
        settings, project = self.settings, self.project
        options = store_options(
            project.store if project else None,
            project.path if project else None,
            sweep_minutes=settings.ttl_sweep_seconds / 60,
        )
        # Migrated by the server before it started workers; writes take the lock shared with the server.
        self.db = Database(settings.resolved_database_url, writer_guard=write_lock.for_settings(settings))
        self._persistence = await open_sqlite(settings.data_dir, options)
        self.graphs.bind(self._persistence)
        broker = ForwardingBroker(self.channel)
        self.executor = Executor(self.db, self.graphs, self._persistence, broker, self.clock)
        self.executor.finished_hooks.append(lambda record: self.channel.send(("finished", record)))
        # Thread-stream runs write the thread's event log here; the server's followers are told on THREAD_EVENTS.
        thread_log = ThreadLog(
            self.db, self.clock, keep_runs=settings.thread_events_keep_runs, poll=5.0, notifier=self.notifier
        )
        self.executor.protocol = ProtocolRuns(self.db, thread_log, self.clock)
        self.queue = RunQueue(
            self.db,
            self.executor,
            self.notifier,
            self.clock,
            workers=settings.workers,
            lease_seconds=settings.lease_seconds,
        )
        await self.queue.start()

    async def stop(self) -> None:
        await self.queue.stop()
        if self._persistence is not None:
            await self._persistence.close()
        await self.db.dispose()


async def _serve(fd: int, settings: Settings, graphs: GraphRegistry, project: Any) -> int:
    channel = await Channel.open(socket.socket(fileno=fd))
    runtime = HeadlessRuntime(settings, graphs, project, channel)
    await runtime.start()
    gc.freeze()  # as the server does: what startup loaded lives as long as the process
    gc.set_threshold(20_000, 20, 20)
    owner = runtime.queue.owner
    channel.send(("ready", owner, os.getpid()))
    # Interactive first across processes (queue/producer.py): this queue's interactive state goes to the server,
    # which applies it and relays it to the other workers; theirs and the server's come back.
    runtime.queue.on_interactive = lambda active, until: channel.send(("interactive", owner, active, until))
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stopping.set)
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    async def listen() -> None:
        while (batch := await channel.receive()) is not None:
            for message in batch:
                if message[0] == "note":
                    runtime.notifier.deliver(message[1], message[2])
                elif message[0] == "interactive":
                    runtime.queue.interactive_elsewhere(message[1], message[2], message[3])
                elif message[0] == "forget":
                    runtime.queue.forget_peer(message[1])
                elif message[0] == "stop":
                    stopping.set()
        log.info("execution worker %d: the server closed the pipe; stopping", os.getpid())
        stopping.set()

    listener = asyncio.create_task(listen(), name="crongraph-worker-pipe")
    await stopping.wait()
    await runtime.stop()  # executing runs get the queue's grace; their ends are forwarded meanwhile
    listener.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await listener
    await channel.close()
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="crongraph exec-worker")
    parser.add_argument("--fd", type=int, required=True)
    args = parser.parse_args(argv)
    spec = json.loads(os.environ[SPEC_ENV])
    settings = Settings(**spec["settings"])
    from crongraph.graphs.config import EXAMPLE
    from crongraph.graphs.config import load as load_config
    from crongraph.observability import logs

    logs.configure(settings.log_format, settings.log_level)
    project = load_config(Path(spec["config"])) if spec.get("config") else EXAMPLE
    graphs = GraphRegistry.load(project)
    return asyncio.run(_serve(args.fd, settings, graphs, project))
