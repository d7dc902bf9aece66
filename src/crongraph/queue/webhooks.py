"""Webhooks: when a run with a `webhook` ends, POST the run to it.

The body is the wire Run object with the run's final `status`, its `values` (the output) and `error` (null or
`{error, message}`), plus `run_ended_at` and `webhook_sent_at`. Delivery is at least once while the process
lives: a transport error, a 429 or a 5xx is retried up to `attempts` times in all, with exponential backoff; any
other answer ends the delivery. Deliveries are held in memory, so a webhook still being retried when the process
stops is not sent (the run's outcome itself is durable; the webhook is a notification of it).

Targets on loopback, private, link-local or otherwise non-public addresses are refused unless allowed
(`webhook_allow_private`): at run creation for what the URL says (a literal address, `localhost`), and again
before each delivery for what the host name resolves to, which closes the DNS route to internal services.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from crongraph import serde
from crongraph.clock import Clock
from crongraph.storage.common import Record

log = logging.getLogger("crongraph.webhooks")

Render = Callable[[Record], dict[str, Any]]


def _private(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def check_url(url: str, *, allow_private: bool) -> str | None:
    """Why `url` cannot be a webhook target, or None when it can (as far as can be told without DNS)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"Invalid webhook URL {url!r}: {exc}"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"Invalid webhook URL {url!r}: expected an absolute http:// or https:// URL"
    if port == 0:
        return f"Invalid webhook URL {url!r}: port 0"
    if allow_private:
        return None
    host = parts.hostname.rstrip(".").lower()
    try:
        private = _private(host)
    except ValueError:
        private = host == "localhost" or host.endswith(".localhost")
    if private:
        return (
            f"Webhook URL {url!r} points to a loopback or private address; "
            "set CRONGRAPH_WEBHOOK_ALLOW_PRIVATE=true to allow it"
        )
    return None


async def _resolves_privately(host: str, port: int) -> bool:
    try:
        return _private(host)
    except ValueError:
        pass  # a name, not an address
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return any(_private(str(info[4][0])) for info in infos)


class WebhookSender:
    """Delivers webhooks in background tasks; `on_run_finished` is an executor finished-hook."""

    def __init__(
        self,
        render: Render,
        clock: Clock,
        *,
        attempts: int,
        backoff: float,
        timeout: float,
        allow_private: bool,
    ) -> None:
        self._render = render
        self._clock = clock
        self._attempts = max(1, attempts)
        self._backoff = backoff
        self._allow_private = allow_private
        self._client = httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        self._tasks: set[asyncio.Task[None]] = set()

    def on_run_finished(self, run: Record) -> None:
        url = (run.get("kwargs") or {}).get("webhook")
        if not url:
            return
        task = asyncio.create_task(self.deliver(url, run), name=f"webhook-{run['run_id']}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def body(self, run: Record) -> dict[str, Any]:
        ended: datetime | None = run.get("ended_at")
        return {
            **self._render(run),
            "status": run["status"],
            "values": run.get("output"),
            "error": run.get("error"),
            "run_ended_at": ended,
            "webhook_sent_at": self._clock.now(),
        }

    async def deliver(self, url: str, run: Record) -> bool:
        """POST the run to `url`; True once the target accepted it."""
        run_id = run["run_id"]
        if reason := check_url(url, allow_private=self._allow_private):
            log.warning("run %s: webhook not sent: %s", run_id, reason)
            return False
        parts = urlsplit(url)
        for attempt in range(1, self._attempts + 1):
            try:
                if not self._allow_private and await _resolves_privately(
                    parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
                ):
                    log.warning("run %s: webhook not sent: %s resolves to a private address", run_id, parts.hostname)
                    return False
                response = await self._client.post(
                    url, content=serde.dumps(self.body(run)), headers={"content-type": "application/json"}
                )
                if response.status_code < 300:
                    return True
                retry = response.status_code == 429 or response.status_code >= 500
                problem = f"HTTP {response.status_code}"
            except (httpx.HTTPError, OSError) as exc:
                retry, problem = True, f"{type(exc).__name__}: {exc}"
            if not retry or attempt == self._attempts:
                log.warning("run %s: webhook to %s failed after %d attempt(s): %s", run_id, url, attempt, problem)
                return False
            await asyncio.sleep(self._backoff * 2 ** (attempt - 1))
        return False

    async def stop(self, grace: float = 2.0) -> None:
        """Give deliveries in flight a moment to finish, then drop the rest."""
        if self._tasks:
            _done, pending = await asyncio.wait(list(self._tasks), timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self._client.aclose()
