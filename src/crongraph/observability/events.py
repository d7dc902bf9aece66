"""What other modules emit: one structured log event and the matching metrics per cron fire, skip, failure and
pause, and per finished run. A fire is emitted after its transaction committed, so a logged run exists; a skip or
failure once its fire-log row is written, inside the firing transaction (a batch that then fails to commit is
retried, and may report it again).

Log events (logger `crongraph.cron`): `cron.fired` (cron_id, run_id, scheduled_for, lateness_ms; at DEBUG in a
tick of more than FIRED_LOG_EACH fires, which logs one `cron.fired_many` instead),
`cron.skipped` and `cron.failed` (cron_id, scheduled_for, lateness_ms, reason), `cron.paused` (cron_id, reason).
"""

from __future__ import annotations

import logging
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
    cron_log.info("cron.fired", **_fired_fields(run))


# A tick that fires more than this many logs each `cron.fired` at DEBUG and one `cron.fired_many` line at INFO: a
# line per fire was 10-35% of the CPU of a burst's tick.
FIRED_LOG_EACH = 20


def cron_fired_many(runs: list[dict[str, Any]]) -> None:
    """The fires of one scheduler tick (run rows, as for cron_fired): their metrics each, and up to
    FIRED_LOG_EACH `cron.fired` lines at INFO; beyond that `cron.fired` at DEBUG and one `cron.fired_many` at
    INFO (count, earliest and latest scheduled_for, lateness_ms median and max)."""
    if len(runs) <= FIRED_LOG_EACH:
        for run in runs:
            cron_fired(run)
        return
    metrics.CRON_FIRES.labels("created").inc(len(runs))
    late = sorted(
        max(lateness, 0.0)
        for lateness in (_lateness(r.get("scheduled_for"), r.get("created_at")) for r in runs)
        if lateness is not None
    )
    for value in late:
        metrics.CRON_LATENESS.observe(value)
    if logging.getLogger("crongraph.cron").isEnabledFor(logging.DEBUG):
        for run in runs:
            cron_log.debug("cron.fired", **_fired_fields(run))
    slots = sorted(r["scheduled_for"] for r in runs if r.get("scheduled_for") is not None)
    cron_log.info(
        "cron.fired_many",
        count=len(runs),
        first_scheduled_for=_iso(slots[0]) if slots else None,
        last_scheduled_for=_iso(slots[-1]) if slots else None,
        lateness_ms_median=round(late[len(late) // 2] * 1000, 1) if late else None,
        lateness_ms_max=round(late[-1] * 1000, 1) if late else None,
    )


def _fired_fields(run: dict[str, Any]) -> dict[str, Any]:
    lateness = _lateness(run.get("scheduled_for"), run.get("created_at"))
    return {
        "cron_id": run.get("cron_id"),
        "run_id": run.get("run_id"),
        "thread_id": run.get("thread_id"),
        "scheduled_for": _iso(run.get("scheduled_for")),
        "lateness_ms": None if lateness is None else round(lateness * 1000, 1),
    }


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
