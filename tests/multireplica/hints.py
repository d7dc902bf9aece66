"""A notification listener for tests: the payloads a channel delivered, and a wait for one of them."""

from __future__ import annotations

import asyncio


class Heard:
    """Listener callback (`notifier.listen(channel, heard)`) keeping every payload in arrival order."""

    def __init__(self) -> None:
        self.payloads: list[str] = []
        self.changed = asyncio.Event()

    def __call__(self, payload: str) -> None:
        self.payloads.append(payload)
        self.changed.set()

    async def until(self, payload: str) -> None:
        """Until `payload` has been heard (at once if it was); TimeoutError after 10 s."""
        async with asyncio.timeout(10):
            while payload not in self.payloads:
                self.changed.clear()
                await self.changed.wait()
