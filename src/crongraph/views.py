"""Storage rows become wire objects here, and only here (field order as the reference sends it)."""

from __future__ import annotations

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


def select(obj: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
    if not fields:
        return obj
    return {k: obj[k] for k in fields if k in obj}
