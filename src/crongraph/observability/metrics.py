"""The Prometheus registry: every collector crongraph exposes at `/metrics`, and the text rendering.

Counters and histograms count what happened in this process (each replica is its own scrape target, so sums
across targets are right). The queue's depth is different: it is read from the database at scrape time
(`RuntimeSnapshot`), so every replica reports the same, correct figure. Nothing here knows the runtime; the
`/metrics` route hands a snapshot (the same dict served as JSON) to `render`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, PlatformCollector, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)

# Latency buckets in seconds: the API answers in milliseconds; waits and streams last seconds to minutes.
_LATENCY = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

HTTP_REQUESTS = Counter(
    "crongraph_http_requests",
    "HTTP requests answered, by method, route template (not raw path) and status code.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
HTTP_LATENCY = Histogram(
    "crongraph_http_request_duration_seconds",
    "Time from a request's arrival to the end of its response (streams included), by method and route template.",
    ["method", "route"],
    buckets=_LATENCY,
    registry=REGISTRY,
)
RUNS_FINISHED = Counter(
    "crongraph_runs_finished",
    "Runs whose outcome this process recorded (executed here, or reaped here after their worker died), by status.",
    ["status"],
    registry=REGISTRY,
)
RUN_DURATION = Histogram(
    "crongraph_run_duration_seconds",
    "Time a run executed in this process, from its claim to its recorded outcome.",
    buckets=_LATENCY,
    registry=REGISTRY,
)
CRON_FIRES = Counter(
    "crongraph_cron_fires",
    "Cron occurrences handled by this process's scheduler, by outcome: created (a run), skipped (missed-occurrence "
    "policy, busy thread, deleted assistant) or failed (creating the run failed).",
    ["outcome"],
    registry=REGISTRY,
)
CRON_LATENESS = Histogram(
    "crongraph_cron_fire_lateness_seconds",
    "Time from a cron occurrence's scheduled instant to the creation of its run.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0),
    registry=REGISTRY,
)


class RuntimeSnapshot(Collector):
    """Exposes the last snapshot handed to `render`: queue depth (from the database, across replicas), this
    process's workers, and the scheduler's `stats()`, read generically: `ticks` is the wake-up counter, every
    other number (bools as 0/1, datetimes as Unix seconds; nested dicts by joined keys) becomes a gauge
    `crongraph_scheduler_<key>`, so counters the scheduler adds appear without a change here."""

    def __init__(self) -> None:
        self.snapshot: Mapping[str, Any] = {}

    def describe(self) -> list[Metric]:
        return []  # the families depend on the snapshot; nothing to describe ahead of a scrape

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot
        runs = GaugeMetricFamily(
            "crongraph_runs_inflight",
            "Runs waiting (pending) and executing (running), across all replicas sharing the database.",
            labels=["status"],
        )
        for status, count in sorted((snap.get("runs") or {}).items()):
            runs.add_metric([str(status)], float(count))
        yield runs
        workers = snap.get("workers") or {}
        if workers:
            yield GaugeMetricFamily(
                "crongraph_workers_busy",
                "Worker slots executing a run in this process (and its execution workers).",
                value=workers["busy"],
            )
            yield GaugeMetricFamily(
                "crongraph_workers",
                "Worker slots of this process and its live execution workers (CRONGRAPH_WORKERS each).",
                value=workers["total"],
            )
            # Execution workers (`--exec-workers`): configured, and alive now (a dead one is restarted with a backoff).
            exec_workers = workers.get("exec_workers") or {}
            yield GaugeMetricFamily(
                "crongraph_exec_workers",
                "Execution worker processes configured (--exec-workers, CRONGRAPH_EXEC_WORKERS); 0 without.",
                value=float(exec_workers.get("configured", 0)),
            )
            yield GaugeMetricFamily(
                "crongraph_exec_workers_alive",
                "Execution worker processes alive and ready now (below crongraph_exec_workers while one restarts).",
                value=float(exec_workers.get("alive", 0)),
            )
        scheduler = dict(snap.get("scheduler") or {})
        ticks = scheduler.pop("ticks", None)
        if isinstance(ticks, int | float):
            yield CounterMetricFamily(
                "crongraph_scheduler_wakeups",
                "Times this process's scheduler woke up and looked for due crons.",
                value=float(ticks),
            )
        for key, number in sorted(_flatten(scheduler).items()):
            name = "crongraph_scheduler_" + "".join(c if c.isalnum() else "_" for c in key).lower()
            help_text = f"The scheduler's `{key}` (from its stats())."
            if key in _SCHEDULER_COUNTS or key.startswith("guards."):
                # Counts since this process started: counters, so that rate() and increase() apply.
                yield CounterMetricFamily(name, help_text, value=number)
            else:
                yield GaugeMetricFamily(name, help_text, value=number)


# The scheduler's stats() keys that only grow (with every `guards.*` key).
_SCHEDULER_COUNTS = frozenset({"fired"})


def _flatten(stats: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Numbers of a nested stats dict by dotted key (`guards.overlap_skipped`); other values are left out."""
    out: dict[str, float] = {}
    for key, value in stats.items():
        if isinstance(value, Mapping):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            number = _number(value)
            if number is not None:
                out[f"{prefix}{key}"] = number
    return out


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, datetime):
        return value.timestamp()
    return None


SNAPSHOT = RuntimeSnapshot()
REGISTRY.register(SNAPSHOT)

CONTENT_TYPE = CONTENT_TYPE_LATEST


def render(snapshot: Mapping[str, Any]) -> bytes:
    """The Prometheus text exposition (version 0.0.4) of every collector, with `snapshot` (the JSON shape of
    `Runtime.metrics()`) as the runtime's figures."""
    SNAPSHOT.snapshot = snapshot
    return generate_latest(REGISTRY)
