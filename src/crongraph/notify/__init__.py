"""Wake-up hints between the parts of the server (and, on PostgreSQL, between replicas).

Notifications carry ids, never data, and may be lost: every consumer can also find its work by asking storage, so
a lost notification costs latency, never correctness. Channels form a closed set:
- RUNS:   a run became claimable (payload: run id or ""; listeners must not depend on it: the PostgreSQL notifier
          sends one RUNS hint per flush, whatever the number of runs)
- CANCEL: a running run should stop (payload: run id)
- CRONS:  a cron may now be due earlier than before: created, changed, resumed (payload: its next_run_date,
          ISO 8601; "" when unknown, which wakes every scheduler)
- RUN_EVENTS: a run's events were stored (payload: run id, or "<run id>:end" once it ended); PostgreSQL only
- THREAD_EVENTS: events of a thread's stream were stored (payload: "<thread id> <writer>"); PostgreSQL only
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

RUNS = "crongraph_runs"
CANCEL = "crongraph_cancel"
CRONS = "crongraph_crons"
RUN_EVENTS = "crongraph_run_events"
THREAD_EVENTS = "crongraph_thread_events"
CHANNELS = (RUNS, CANCEL, CRONS, RUN_EVENTS, THREAD_EVENTS)

Listener = Callable[[str], None]


class Notifier(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    def listen(self, channel: str, listener: Listener) -> None: ...
    async def notify(self, channel: str, payload: str) -> None: ...
