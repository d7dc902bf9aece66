"""The run event broker: each run's events, in order, for any number of subscribers.

Events are serialized once, when published. A subscriber may start at any point (Last-Event-ID) and is replayed
what it missed. A run's events stay for `retention` seconds after it ends so that a late join still sees them;
after that, joiners fall back to the run's stored outcome.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from crongraph import serde


@dataclass(frozen=True)
class Event:
    id: int
    name: str
    data: bytes  # JSON


@dataclass
class _RunLog:
    events: list[Event] = field(default_factory=list)
    done: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def poke(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()


class StreamBroker:
    def __init__(self, retention: float = 300.0) -> None:
        self._logs: dict[str, _RunLog] = {}
        self._retention = retention

    def _log(self, run_id: str) -> _RunLog:
        log = self._logs.get(run_id)
        if log is None:
            log = self._logs[run_id] = _RunLog()
        return log

    def publish(self, run_id: str, name: str, data: Any) -> None:
        log = self._log(run_id)
        log.events.append(Event(len(log.events) + 1, name, serde.dumps(data)))
        log.poke()

    def close(self, run_id: str) -> None:
        log = self._log(run_id)
        log.done = True
        log.poke()
        asyncio.get_running_loop().call_later(self._retention, self._logs.pop, run_id, None)

    def known(self, run_id: str) -> bool:
        return run_id in self._logs

    def is_done(self, run_id: str) -> bool:
        log = self._logs.get(run_id)
        return log is not None and log.done

    async def subscribe(self, run_id: str, after: int = 0) -> AsyncIterator[Event]:
        """Every event after `after`, then live ones, until the run ends."""
        log = self._log(run_id)
        cursor = after
        while True:
            while cursor < len(log.events):
                cursor += 1
                yield log.events[cursor - 1]
            if log.done:
                return
            await log.changed.wait()

    async def wait_done(self, run_id: str) -> None:
        log = self._log(run_id)
        while not log.done:
            await log.changed.wait()
