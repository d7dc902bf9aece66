"""Webhook targets: what check_url refuses without DNS, and the delivery-time check of what a name resolves to."""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime
from typing import Any

import pytest

from crongraph.clock import SystemClock
from crongraph.queue.webhooks import WebhookSender, check_url


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x",
        "http://127.8.9.10:8080/x",
        "http://localhost:3000/x",
        "http://LOCALHOST./x",
        "http://a.b.localhost/x",
        "http://10.0.0.1/x",
        "http://172.16.5.4/x",
        "http://192.168.1.1/x",
        "http://100.64.0.1/x",
        "http://169.254.169.254/x",
        "http://[::1]/x",
        "http://[fe80::1]/x",
        "http://[fd00::1]/x",
        "http://[::ffff:10.0.0.1]/x",
        "http://0.0.0.0/x",
        "http://224.0.0.1/x",
    ],
)
def test_private_targets(url: str) -> None:
    assert "loopback or private" in (check_url(url, allow_private=False) or "")
    assert check_url(url, allow_private=True) is None


@pytest.mark.parametrize(
    "url", ["https://hooks.example.com/x", "http://93.184.216.34:8080/run", "http://[2606:4700::1]/"]
)
def test_public_targets(url: str) -> None:
    assert check_url(url, allow_private=False) is None


@pytest.mark.parametrize(
    "url", ["ftp://example.com/", "example.com/hook", "http://", "https://h:99999/", "http://h:0/"]
)
def test_malformed_targets(url: str) -> None:
    assert "Invalid webhook URL" in (check_url(url, allow_private=True) or "")


async def test_a_name_resolving_to_a_private_address_is_not_called(monkeypatch: pytest.MonkeyPatch) -> None:
    async def resolve(host: str, port: int, **_kw: Any) -> list[Any]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.5", port))]

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", resolve)
    sender = WebhookSender(lambda run: dict(run), SystemClock(), attempts=3, backoff=0, timeout=1, allow_private=False)
    posted: list[str] = []

    async def post(url: str, **_kw: Any) -> Any:
        posted.append(url)
        raise AssertionError("must not be called")

    monkeypatch.setattr(sender._client, "post", post)
    run = {"run_id": "r", "status": "success", "kwargs": {}, "ended_at": datetime.now(UTC)}
    try:
        assert await sender.deliver("http://internal.example/hook", run) is False
        assert posted == []
    finally:
        await sender.stop()
