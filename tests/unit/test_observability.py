"""The pieces of observability/ and server_file.py that need no server: the scheduler's stats read generically
into metrics, the shutdown-cancellation filter, JSON log lines, and the server record's trust rule."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from crongraph import server_file
from crongraph.observability import metrics
from crongraph.observability.logs import _ShutdownCancellation


def test_scheduler_stats_become_metrics_whatever_their_keys() -> None:
    snapshot = {
        "runs": {"pending": 3, "running": 1},
        "workers": {"busy": 1, "total": 8},
        "scheduler": {
            "running": True,
            "ticks": 7,
            "last_tick": datetime(2026, 1, 1, tzinfo=UTC),
            "guards": {"overlap_skipped": 2, "note": "not a number"},
        },
    }
    families = {f.name: f for f in text_string_to_metric_families(metrics.render(snapshot).decode())}
    values = {s.name: s.value for f in families.values() for s in f.samples if not s.labels}
    assert {s.labels["status"]: s.value for s in families["crongraph_runs_inflight"].samples} == {
        "pending": 3.0,
        "running": 1.0,
    }
    assert families["crongraph_scheduler_wakeups"].type == "counter"
    assert values["crongraph_scheduler_wakeups_total"] == 7
    assert values["crongraph_scheduler_running"] == 1
    # Counts since the process started are counters (rate() applies); states are gauges.
    assert families["crongraph_scheduler_guards_overlap_skipped"].type == "counter"
    assert values["crongraph_scheduler_guards_overlap_skipped_total"] == 2
    assert families["crongraph_scheduler_running"].type == "gauge"
    assert values["crongraph_scheduler_last_tick"] == datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    assert not any("note" in name for name in families)


def _record(name: str, exc: BaseException | None, msg: str = "Exception in ASGI application\n") -> logging.LogRecord:
    return logging.LogRecord(name, logging.ERROR, __file__, 1, msg, (), (type(exc), exc, None) if exc else None)


def test_only_uvicorns_report_of_a_cancelled_response_is_dropped() -> None:
    keep = _ShutdownCancellation()
    assert not keep.filter(_record("uvicorn.error", asyncio.CancelledError()))
    assert keep.filter(_record("uvicorn.error", ValueError("a real bug")))
    assert keep.filter(_record("crongraph.queue", asyncio.CancelledError()))
    cut = _record("uvicorn.error", None, "Cancel 2 running task(s), timeout graceful shutdown exceeded")
    assert keep.filter(cut) and cut.levelno == logging.INFO


def test_json_logs_are_one_object_per_line_for_structlog_and_stdlib_loggers() -> None:
    # In a child process: logging is configured once per process, for good.
    code = (
        "import logging, structlog\n"
        "from crongraph.observability import logs\n"
        "logs.configure('json', 'info')\n"
        "structlog.get_logger('crongraph.cron').info('cron.fired', cron_id='c', lateness_ms=1.5)\n"
        "logging.getLogger('crongraph.queue').warning('run %s failed', 'r')\n"
        "logging.getLogger('crongraph.queue').debug('not shown at info')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert [line["event"] for line in lines] == ["cron.fired", "run r failed"]
    assert lines[0]["lateness_ms"] == 1.5 and lines[0]["logger"] == "crongraph.cron"
    assert lines[1]["level"] == "warning" and "timestamp" in lines[1]


def test_a_server_record_is_trusted_only_while_its_process_lives(tmp_path: Path) -> None:
    data = tmp_path / ".crongraph"
    assert server_file.record(data, "http://127.0.0.1:2025") is not None
    assert server_file.read(data) == "http://127.0.0.1:2025"
    assert server_file.find(tmp_path / "a" / "b") == ("http://127.0.0.1:2025", data / "server.json")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    body = json.loads((data / "server.json").read_text())
    (data / "server.json").write_text(json.dumps({**body, "pid": int(dead.stdout)}))
    assert server_file.read(data) is None  # kill -9 left it behind: ignored
    server_file.remove(data)
    assert (data / "server.json").exists(), "only the process that wrote a record removes it"
    server_file.record(data, "http://127.0.0.1:2026")
    server_file.remove(data)
    assert not (data / "server.json").exists()


@pytest.mark.parametrize("value", ["", "not json", "[]", '{"url": 5, "pid": 1}'])
def test_a_broken_server_record_is_ignored(tmp_path: Path, value: str) -> None:
    (tmp_path / "server.json").write_text(value)
    assert server_file.read(tmp_path) is None
    assert os.path.exists(tmp_path / "server.json")
