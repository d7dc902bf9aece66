"""What other modules emit: one structured log event and the matching metrics per cron fire, skip, failure and
pause, and per finished run. A fire is emitted after its transaction committed, so a logged run exists; a skip or
failure once its fire-log row is written, inside the firing transaction (a batch that then fails to commit is
retried, and may report it again).

Log events (logger `crongraph.cron`): `cron.fired` (cron_id, run_id, scheduled_for, lateness_ms),
`cron.skipped` and `cron.failed` (cron_id, scheduled_for, lateness_ms, reason), `cron.paused` (cron_id, reason).
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import structlog

from crongraph.observability import metrics

cron_log = structlog.get_logger("crongraph.cron")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _lateness(scheduled_for: datetime | None, at: datetime | None) -> float | None:
    if scheduled_for is None or at is None:
        return None
    return (at - scheduled_for).total_seconds()


def cron_fired(run: dict[str, Any]) -> None:
    """A cron occurrence created `run` (a run row: cron_id, run_id, scheduled_for, created_at)."""
    lateness = _lateness(run.get("scheduled_for"), run.get("created_at"))
    metrics.CRON_FIRES.labels("created").inc()
    if lateness is not None:
        metrics.CRON_LATENESS.observe(max(lateness, 0.0))
    cron_log.info(
        "cron.fired",
        cron_id=run.get("cron_id"),
        run_id=run.get("run_id"),
        thread_id=run.get("thread_id"),
        scheduled_for=_iso(run.get("scheduled_for")),
        lateness_ms=None if lateness is None else round(lateness * 1000, 1),
    )


def cron_not_fired(cron_id: str, scheduled_for: datetime, at: datetime, outcome: str, reason: str | None) -> None:
    """An occurrence that created no run: `outcome` is "skipped" (policy, busy thread, missing assistant) or
    "failed" (creating the run raised); `reason` is what the fire log says."""
    lateness = _lateness(scheduled_for, at)
    metrics.CRON_FIRES.labels(outcome).inc()
    emit = cron_log.warning if outcome == "failed" else cron_log.info
    emit(
        f"cron.{outcome}",
        cron_id=cron_id,
        run_id=None,
        scheduled_for=_iso(scheduled_for),
        lateness_ms=None if lateness is None else round(lateness * 1000, 1),
        reason=reason,
    )


def cron_paused(cron_id: str, reason: str) -> None:
    """A cron stopped firing (enabled set to false by a client, or by a guard): `reason` says which."""
    cron_log.info("cron.paused", cron_id=cron_id, reason=reason)


def run_finished(run: dict[str, Any]) -> None:
    """An Executor/Reaper finished hook: counts the run's recorded outcome."""
    metrics.RUNS_FINISHED.labels(str(run.get("status"))).inc()


class RunTimer:
    """Times one run's execution: `with RunTimer(): ...` observes `crongraph_run_duration_seconds`."""

    def __enter__(self) -> RunTimer:
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        metrics.RUN_DURATION.observe(time.perf_counter() - self._start)
