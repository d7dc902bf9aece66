"""The in-process notifier: a synchronous fan-out to listeners in this process (the embedded SQLite mode)."""

from __future__ import annotations

from collections import defaultdict

from crongraph.notify import Listener


class LocalNotifier:
    def __init__(self) -> None:
        self._listeners: dict[str, list[Listener]] = defaultdict(list)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def listen(self, channel: str, listener: Listener) -> None:
        self._listeners[channel].append(listener)

    async def notify(self, channel: str, payload: str) -> None:
        self.deliver(channel, payload)

    def deliver(self, channel: str, payload: str) -> None:
        for listener in self._listeners.get(channel, ()):
            listener(payload)
