"""Builds the server for the chosen backend and starts and stops its parts in order. Nothing else knows which
backend it runs on: this is the one place that chooses the notifier, the stream broker and the savers.

Start order: schema → graph savers → system assistants → notifier → broker → reaper → queue → scheduler. Stop is
the reverse, and idempotent.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from crongraph import views
from crongraph.clock import Clock, SystemClock
from crongraph.graphs.persistence import Persistence, open_postgres, open_sqlite, store_options
from crongraph.graphs.registry import GraphRegistry
from crongraph.notify import Notifier
from crongraph.notify.local import LocalNotifier
from crongraph.observability import events
from crongraph.queue.executor import Executor
from crongraph.queue.producer import RunQueue
from crongraph.queue.reaper import Reaper
from crongraph.queue.webhooks import WebhookSender
from crongraph.queue.workers import write_lock
from crongraph.scheduler.scheduler import CronScheduler
from crongraph.services.assistants import AssistantService
from crongraph.services.context import ServiceContext
from crongraph.services.cron_guards import CronGuards
from crongraph.services.crons import CronService
from crongraph.services.runs import RunService
from crongraph.services.thread_stream import ThreadStreams
from crongraph.services.thread_sweeper import ThreadSweeper, thread_ttl_options
from crongraph.services.threads import ThreadService
from crongraph.settings import Settings
from crongraph.storage import runs as run_rows
from crongraph.storage.database import Database
from crongraph.streams.broker import StreamBroker
from crongraph.webhook_policy import WebhookUrlPolicy

if TYPE_CHECKING:
    from crongraph.config import ProjectConfig
    from crongraph.queue.workers.supervisor import WorkerSupervisor
    from crongraph.streams.pg_broker import PgBroker

log = logging.getLogger("crongraph")


class Runtime:
    def __init__(
        self,
        settings: Settings,
        graphs: GraphRegistry,
        clock: Clock | None = None,
        project: ProjectConfig | None = None,
    ) -> None:
        self.settings = settings
        self.graphs = graphs
        self.clock = clock or SystemClock()
        # langgraph.json's store and checkpointer.ttl; resolving the embeddings may raise a ConfigError.
        self._store_options = store_options(
            project.store if project else None,
            project.path if project else None,
            sweep_minutes=settings.ttl_sweep_seconds / 60,
        )
        self._thread_ttl = thread_ttl_options(project.checkpointer if project else None)
        self._webhooks_config = project.webhooks if project else None
        self._webhook_policy = WebhookUrlPolicy.build(
            self._webhooks_config.url if self._webhooks_config else None,
            allow_private=settings.webhook_allow_private,
            disabled=bool(project and project.http and project.http.disable_webhooks),
        )
        self._project_path = project.path if project else None
        self._started = False
        self._persistence: Persistence | None = None
        # Execution workers (settings.exec_workers; SQLite only): child processes executing runs beside this one.
        self.exec_workers: WorkerSupervisor | None = None
        self._pg_broker: PgBroker | None = None

    async def start(self) -> None:
        if self._started:
            return  # the CLI starts it before serving (to report a failure plainly); the app's lifespan again
        settings = self.settings
        if settings.exec_workers and settings.is_postgres:
            raise ValueError(
                "CRONGRAPH_EXEC_WORKERS: execution workers serve SQLite only; on PostgreSQL run more replicas"
            )
        if not settings.is_postgres:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        # With execution workers, one writer at a time across the processes without SQLite's sleeping busy handler.
        self.db = Database(settings.resolved_database_url, writer_guard=write_lock.for_settings(settings))
        await self.db.migrate()
        if settings.is_postgres:
            self._persistence = await open_postgres(self.db.url, self._store_options)
            notifier: Notifier = self._postgres_notifier()
        else:
            self._persistence = await open_sqlite(settings.data_dir, self._store_options)
            notifier = self._local_notifier()
        self.graphs.bind(self._persistence)
        if settings.is_postgres:
            self.broker = self._postgres_broker(notifier)
        else:
            self.broker = StreamBroker(settings.stream_retention_seconds)
        self.ctx = ServiceContext(
            settings=settings,
            db=self.db,
            graphs=self.graphs,
            persistence=self._persistence,
            notifier=notifier,
            broker=self.broker,
            clock=self.clock,
            default_thread_ttl=self._thread_ttl.default,
            webhook_policy=self._webhook_policy,
        )
        self.assistants = AssistantService(self.ctx)
        self.threads = ThreadService(self.ctx)
        self.runs = RunService(self.ctx)
        # Cron cost guards: shared by the scheduler, trigger/backfill and the runs' finished hooks (one set of
        # counters for /metrics).
        self.cron_guards = CronGuards(self.ctx, self.runs)
        self.crons = CronService(self.ctx, self.runs, self.cron_guards)
        self.store = self._persistence.store
        await self.assistants.ensure_system_assistants()
        await notifier.start()
        await self._start_broker()
        self.executor = Executor(self.db, self.graphs, self._persistence, self.broker, self.clock)
        self.webhooks = WebhookSender(
            views.run,
            self.clock,
            attempts=settings.webhook_attempts,
            backoff=settings.webhook_backoff_seconds,
            timeout=settings.webhook_timeout_seconds,
            policy=self._webhook_policy,
            headers=self._webhooks_config.headers if self._webhooks_config else None,
            allowed_fields=self._webhooks_config.allowed_fields if self._webhooks_config else None,
        )
        if not self._webhook_policy.disabled:
            self.executor.finished_hooks.append(self.webhooks.on_run_finished)
        self.executor.finished_hooks.append(events.run_finished)
        self.thread_streams = ThreadStreams(self.ctx, self.runs)
        self.executor.protocol = self.thread_streams.protocol
        self.queue = RunQueue(
            self.db,
            self.executor,
            notifier,
            self.clock,
            workers=settings.workers,
            lease_seconds=settings.lease_seconds,
        )
        self.runs.queue = self.queue  # runs created here may be handed to it directly (queue/handoff.py)
        self.reaper = Reaper(
            self.db,
            self.clock,
            lease_seconds=settings.lease_seconds,
            owner=self.queue.owner,
            embedded=not settings.is_postgres,
            executing=self.queue.is_executing,
        )
        if not self._webhook_policy.disabled:
            self.reaper.finished_hooks.append(self.webhooks.on_run_finished)
        self.reaper.finished_hooks.append(events.run_finished)
        self.executor.finished_hooks.append(self.cron_guards.on_run_finished)
        self.reaper.finished_hooks.append(self.cron_guards.on_run_finished)
        self.scheduler = CronScheduler(self.ctx, self.runs, self.cron_guards)
        await self.reaper.start()
        self.thread_sweeper = ThreadSweeper(
            self.ctx, self._thread_ttl.interval or settings.ttl_sweep_seconds, self._thread_ttl.limit
        )
        await self.thread_sweeper.start()
        await self.thread_streams.start()
        await self.queue.start()
        await self._start_exec_workers(notifier)
        if settings.scheduler:
            await self.scheduler.start()
        self._started = True

    def _local_notifier(self) -> Notifier:
        if not self.settings.exec_workers:
            return LocalNotifier()
        # Hints reach the execution workers too (queue/workers/relay.py).
        from crongraph.queue.workers.relay import RelayNotifier
        from crongraph.queue.workers.supervisor import FORWARDED

        return RelayNotifier(FORWARDED)

    async def _start_exec_workers(self, notifier: Notifier) -> None:
        if not self.settings.exec_workers:
            return
        from crongraph.queue.workers.relay import RelayNotifier
        from crongraph.queue.workers.supervisor import WorkerSupervisor

        assert isinstance(notifier, RelayNotifier)
        # Started after the reaper's start-up pass (which ends every run left `running` by an earlier life of
        # this server): from then on it ends only runs whose lease expired, never a live worker's.
        self.exec_workers = WorkerSupervisor(
            self.settings.exec_workers,
            self.settings,
            self._project_path,
            notifier,
            self.broker,
            self.executor.finished_hooks,
            queue=self.queue,  # interactive first across processes
        )
        await self.exec_workers.start()
        self.reaper.describe_owner = self.exec_workers.describe_owner  # WorkerLost names the worker and its pid

    def _postgres_notifier(self) -> Notifier:
        from crongraph.notify.postgres import PostgresNotifier

        return PostgresNotifier(self.db.url)

    def _postgres_broker(self, notifier: Notifier) -> StreamBroker:
        # Any replica may stream or join a run another executes: events go through the database.
        from crongraph.streams.pg_broker import PgBroker

        self._pg_broker = PgBroker(self.db, notifier, self.clock, self.settings.stream_retention_seconds)
        return self._pg_broker

    async def _start_broker(self) -> None:
        if self._pg_broker is not None:
            await self._pg_broker.open()

    async def _stop_broker(self) -> None:
        if self._pg_broker is not None:
            await self._pg_broker.aclose()

    async def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        await self.scheduler.stop()
        if self.exec_workers is not None:
            # The workers stop with the same grace as this queue, at the same time.
            await asyncio.gather(self.queue.stop(), self.exec_workers.stop())
        else:
            await self.queue.stop()
        await self.thread_streams.stop()
        await self.webhooks.stop()
        await self.reaper.stop()
        await self.cron_guards.stop()
        await self.thread_sweeper.stop()
        await self._stop_broker()
        await self.ctx.notifier.stop()
        if self._persistence is not None:
            await self._persistence.close()
        await self.db.dispose()

    async def metrics(self) -> dict[str, Any]:
        async with self.db.read() as conn:
            queued = await run_rows.count_inflight(conn)
        workers: dict[str, Any] = {"busy": self.queue.busy_slots, "total": self.settings.workers}
        if self.exec_workers is not None:
            # Slots of this process and of its live execution workers (each has settings.workers).
            alive = self.exec_workers.alive
            workers = {
                "busy": workers["busy"] + self.exec_workers.busy_slots,
                "total": self.settings.workers * (1 + alive),
                "processes": 1 + alive,
                "exec_workers": {"alive": alive, "configured": self.settings.exec_workers},
            }
        return {
            "workers": workers,
            "runs": queued,
            "scheduler": self.scheduler.stats(),
        }
