"""Storage rows become wire objects here, and only here (field order as the reference sends it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from crongraph.storage.common import Record
from crongraph.webhook_policy import redact_url


def assistant(row: Record) -> dict[str, Any]:
    return {
        "assistant_id": row["assistant_id"],
        "graph_id": row["graph_id"],
        "config": row["config"],
        "context": row["context"],
        "metadata": row["metadata"],
        "name": row["name"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "version": row["version"],
        "description": row["description"],
    }


def assistant_version(row: Record) -> dict[str, Any]:
    return {
        "assistant_id": row["assistant_id"],
        "graph_id": row["graph_id"],
        "config": row["config"],
        "context": row["context"],
        "metadata": row["metadata"],
        "name": row["name"],
        "created_at": row["created_at"],
        "version": row["version"],
        "description": row["description"],
    }


def thread(row: Record) -> dict[str, Any]:
    out = {
        "thread_id": row["thread_id"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "state_updated_at": row["state_updated_at"],
        "metadata": row["metadata"],
        "status": row["status"],
        "config": row["config"],
        "values": row["values"],
        "interrupts": row["interrupts"] or {},
        "error": row["error"],
    }
    if row.get("ttl"):
        out["ttl"] = row["ttl"]
    return out


def run(row: Record) -> dict[str, Any]:
    out = {
        "run_id": row["run_id"],
        "thread_id": row["thread_id"],
        "assistant_id": row["assistant_id"],
        "metadata": row["metadata"],
        "status": row["status"],
        "kwargs": with_webhook_redacted(row["kwargs"]),
        "multitask_strategy": row["multitask_strategy"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "langsmith_session_name": None,
    }
    if row.get("error"):
        # Extension: why the run failed ({"error": type, "message": text}), which the reference shows only on the
        # thread; a stateless cron's run is otherwise unexplained once its thread is gone.
        out["error"] = row["error"]
    if row.get("cron_id"):
        # Extension: which cron fired this run, for which slot, and how late.
        out["cron_id"] = row["cron_id"]
        out["scheduled_for"] = row["scheduled_for"]
    return out


def with_webhook_redacted(body: dict[str, Any] | None) -> dict[str, Any] | None:
    """A run's kwargs or a cron's payload as callers see it: the webhook URL without userinfo or secret query
    values (the stored URL, used for delivery, is unchanged)."""
    if not body or not isinstance(body.get("webhook"), str):
        return body
    shown = redact_url(body["webhook"])
    return body if shown == body["webhook"] else {**body, "webhook": shown}


def cron(row: Record, usage: Record | None = None) -> dict[str, Any]:
    """A cron as the reference sends it, then crongraph's extensions (docs/crons.md); `usage` (from
    CronService.usage) adds `usage` and `last_run`, as GET and search return them."""
    max_runs = row.get("max_runs")
    out = {
        "cron_id": row["cron_id"],
        "assistant_id": row["assistant_id"],
        "thread_id": row["thread_id"],
        "user_id": row["user_id"],
        "end_time": row["end_time"],
        "schedule": row["schedule"],
        "timezone": row["timezone"],
        "payload": with_webhook_redacted(row["payload"]),
        "next_run_date": row["next_run_date"],
        "metadata": row["metadata"],
        "on_run_completed": row["on_run_completed"],
        "enabled": row["enabled"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        # Extensions.
        "missed_policy": row["missed_policy"],
        "finished": row["next_run_date"] is None,
        "start_time": row.get("start_time"),
        "max_runs": max_runs,
        "remaining_runs": None if max_runs is None else max(0, max_runs - (row.get("runs_fired") or 0)),
        "overlap_policy": row.get("overlap_policy") or "allow",
        "jitter_seconds": row.get("jitter_seconds") or 0,
        "pause_after_failures": row.get("pause_after_failures"),
        "consecutive_failures": row.get("consecutive_failures") or 0,
        "max_tokens_per_day": row.get("max_tokens_per_day"),
        "paused_reason": row.get("paused_reason"),
    }
    if usage is not None:
        last = usage.get("last_run")
        out["usage"] = {
            "runs": usage["runs"],
            "runs_last_24h": usage["runs_recent"],
            "skipped": usage["skipped"],
            # Fires that could not create a run (the fire log's `failed`); runs that ended in error are failed_runs.
            "failed": usage["failed"],
            "failed_runs": usage.get("failed_runs", 0),
            "failed_runs_last_24h": usage.get("failed_runs_recent", 0),
            "tokens": usage.get("tokens", 0),
            "tokens_last_24h": usage.get("tokens_recent", 0),
        }
        out["last_run"] = last and {
            "run_id": last["run_id"],
            "thread_id": last["thread_id"],
            "status": last["status"],
            "scheduled_for": last["scheduled_for"],
            "created_at": last["created_at"],
        }
    return out


def select(obj: dict[str, Any], fields: Sequence[str] | None) -> dict[str, Any]:
    if not fields:
        return obj
    return {k: obj[k] for k in fields if k in obj}
