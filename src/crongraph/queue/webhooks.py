"""Webhooks: when a run with a `webhook` ends, POST the run to it.

The body is the wire Run object with the run's final `status`, its `values` (the output) and `error` (null or
`{error, message}`), plus `run_ended_at` and `webhook_sent_at`. Delivery is at least once while the process
lives: a transport error, a 429 or a 5xx is retried up to `attempts` times in all, with exponential backoff; any
other answer ends the delivery. Deliveries are held in memory, so a webhook still being retried when the process
stops is not sent (the run's outcome itself is durable; the webhook is a notification of it).

Targets are judged by `crongraph.webhook_policy` (langgraph.json's `webhooks.url` and
CRONGRAPH_WEBHOOK_ALLOW_PRIVATE): at run or cron creation for what the URL says, and at each delivery for every
address its host name resolves to. The host is resolved once per attempt, off the event loop, and the request
connects to an address that was checked (the Host header, TLS SNI and certificate verification keep the name), so
a name whose answer changes between the check and the connection cannot reach an address the policy refuses.
Proxies from the environment are not used (a proxy would resolve the name itself). Logs show the URL with its
userinfo and secret-looking query values redacted; the real URL is used for delivery.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable, Collection, Mapping
from datetime import datetime
from typing import Any

import httpx

from crongraph import serde
from crongraph.clock import Clock
from crongraph.storage.common import Record
from crongraph.webhook_policy import WebhookUrlPolicy, check_address, check_url, literal_address, redact_url

log = logging.getLogger("crongraph.webhooks")


class _RedactUrls(logging.Filter):
    """httpx logs each request's URL at INFO ("HTTP Request: POST http://user:password@..."): shown redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact_url(str(a)) if isinstance(a, httpx.URL) else a for a in record.args)
        return True


logging.getLogger("httpx").addFilter(_RedactUrls())

Render = Callable[[Record], dict[str, Any]]
# host, port -> the addresses (as strings) the host name resolves to, in the order to try them.
Resolve = Callable[[str, int], Awaitable[list[str]]]


async def resolve_host(host: str, port: int) -> list[str]:
    """getaddrinfo in the loop's executor (the C resolver blocks); addresses in its order, without repeats."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class Refused(httpx.TransportError):
    """The policy refuses an address the target's name resolves to; not retried."""


class PinnedTransport(httpx.AsyncBaseTransport):
    """Resolves each request's host once, refuses the request unless the policy allows every answer, and
    connects to the first answer that accepts a connection, keeping the name for Host, SNI and the certificate."""

    def __init__(self, policy: WebhookUrlPolicy, resolve: Resolve = resolve_host, **transport: Any) -> None:
        self._policy = policy
        self._resolve = resolve
        self._inner = httpx.AsyncHTTPTransport(**transport)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        port = request.url.port or (443 if request.url.scheme == "https" else 80)
        literal = literal_address(host)
        try:
            addresses = [str(literal)] if literal is not None else await self._resolve(host, port)
        except OSError as exc:
            raise httpx.ConnectError(f"cannot resolve {host}: {exc}", request=request) from exc
        if not addresses:
            raise httpx.ConnectError(f"{host} resolves to no address", request=request)
        for address in addresses:
            if reason := check_address(address, self._policy, shown=host):
                raise Refused(reason, request=request)
        extensions = dict(request.extensions)
        if request.url.scheme == "https" and literal is None:
            extensions["sni_hostname"] = host
        last: httpx.ConnectError | None = None
        for address in addresses:
            # The Host header was set from the original URL when the request was built, and stays.
            pinned = httpx.Request(
                request.method,
                request.url.copy_with(host=address),
                headers=request.headers,
                stream=request.stream,
                extensions=extensions,
            )
            try:
                return await self._inner.handle_async_request(pinned)
            except httpx.ConnectError as exc:
                last = exc
        assert last is not None
        raise last

    async def aclose(self) -> None:
        await self._inner.aclose()


class WebhookSender:
    """Delivers webhooks in background tasks; `on_run_finished` is an executor finished-hook.

    `policy` judges targets; `headers` (langgraph.json `webhooks.headers`, templates already rendered) go with
    every delivery; `allowed_fields`, when given, is the set of body fields sent (the reference's
    `webhooks.allowed_fields`); `resolve` replaces the resolver (tests)."""

    def __init__(
        self,
        render: Render,
        clock: Clock,
        *,
        attempts: int,
        backoff: float,
        timeout: float,
        policy: WebhookUrlPolicy,
        headers: Mapping[str, str] | None = None,
        allowed_fields: Collection[str] | None = None,
        resolve: Resolve = resolve_host,
        verify: Any = True,
    ) -> None:
        self._render = render
        self._clock = clock
        self._attempts = max(1, attempts)
        self._backoff = backoff
        self.policy = policy
        self._headers = {**(headers or {}), "content-type": "application/json"}
        self._allowed_fields = set(allowed_fields) if allowed_fields else None
        self._client = httpx.AsyncClient(
            timeout=timeout,
            follow_redirects=False,
            trust_env=False,
            transport=PinnedTransport(policy, resolve, verify=verify),
        )
        self._tasks: set[asyncio.Task[None]] = set()

    def on_run_finished(self, run: Record) -> None:
        url = (run.get("kwargs") or {}).get("webhook")
        if not url:
            return
        task = asyncio.create_task(self._deliver_quietly(url, run), name=f"webhook-{run['run_id']}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver_quietly(self, url: str, run: Record) -> None:
        await self.deliver(url, run)

    def body(self, run: Record) -> dict[str, Any]:
        ended: datetime | None = run.get("ended_at")
        body = {
            **self._render(run),
            "status": run["status"],
            "values": run.get("output"),
            "error": run.get("error"),
            "run_ended_at": ended,
            "webhook_sent_at": self._clock.now(),
        }
        if self._allowed_fields is not None:
            body = {k: v for k, v in body.items() if k in self._allowed_fields}
        return body

    async def deliver(self, url: str, run: Record) -> bool:
        """POST the run to `url`; True once the target accepted it."""
        run_id = run["run_id"]
        shown = redact_url(url)
        if reason := check_url(url, self.policy):
            log.warning("run %s: webhook not sent: %s", run_id, reason)
            return False
        for attempt in range(1, self._attempts + 1):
            try:
                response = await self._client.post(url, content=serde.dumps(self.body(run)), headers=self._headers)
                if response.status_code < 300:
                    log.info("run %s: webhook delivered to %s", run_id, shown)
                    return True
                retry = response.status_code == 429 or response.status_code >= 500
                problem = f"HTTP {response.status_code}"
            except Refused as exc:
                log.warning("run %s: webhook not sent: %s", run_id, exc)
                return False
            except (httpx.HTTPError, OSError) as exc:
                # httpx's messages may quote the URL; the class name and our own message are enough.
                retry, problem = True, type(exc).__name__
                if str(exc) and url not in str(exc):
                    problem += f": {exc}"
            if not retry or attempt == self._attempts:
                log.warning("run %s: webhook to %s failed after %d attempt(s): %s", run_id, shown, attempt, problem)
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
