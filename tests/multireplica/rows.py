"""Rows for tests that work on storage directly: a thread, and a pending run on it, as the services write them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from crongraph.ids import new_id


def thread_row(now: datetime) -> dict[str, Any]:
    return {
        "thread_id": new_id(),
        "status": "busy",
        "metadata": {},
        "config": {},
        "values": None,
        "interrupts": {},
        "error": None,
        "ttl": None,
        "created_at": now,
        "updated_at": now,
        "state_updated_at": now,
    }


def run_row(thread_id: str, now: datetime, priority: int = 2) -> dict[str, Any]:
    return {
        "run_id": new_id(),
        "thread_id": thread_id,
        "assistant_id": new_id(),
        "status": "pending",
        "metadata": {},
        "kwargs": {},
        "multitask_strategy": "enqueue",
        "priority": priority,
        "available_at": now,
        "created_at": now,
        "updated_at": now,
        "ended_at": None,
        "lease_owner": None,
        "lease_token": None,
        "lease_expires_at": None,
        "attempt": 0,
        "cancel_action": None,
        "temporary": False,
        "output": None,
        "error": None,
        "cron_id": None,
        "scheduled_for": None,
    }
