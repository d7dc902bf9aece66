"""The request headers a run's `config.configurable` receives (langgraph.json `http.configurable_headers`).

The HTTP layer (`crongraph/http/headers.py`) chooses them per request and sets `CURRENT` for the request's task;
the run service merges them into each run it creates in that request. Outside a request (cron fires, the
scheduler) `CURRENT` is empty, so nothing is merged. Imports nothing of ours: any layer may read it.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

CURRENT: ContextVar[dict[str, Any]] = ContextVar("crongraph_run_headers", default={})  # noqa: B039 (never mutated)


def merge_into(body: dict[str, Any]) -> None:
    """Copy the current request's chosen headers into `body["config"]["configurable"]`; as in the reference they
    overwrite keys of the same name the body gave. `body` is the run service's own copy (changed in place)."""
    headers = CURRENT.get()
    if not headers:
        return
    config = dict(body.get("config") or {})
    config["configurable"] = {**(config.get("configurable") or {}), **headers}
    body["config"] = config
