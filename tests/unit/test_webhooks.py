"""The webhook sender: it resolves a target's name once per attempt, refuses it unless the policy allows every
answer, and connects to an answer it checked (with the name kept for Host); logs never show the URL's secrets."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from crongraph.clock import SystemClock
from crongraph.queue.webhooks import WebhookSender
from crongraph.webhook_policy import WebhookUrlPolicy

# Loopback allowed (the receiver below), private not: a name that first answers loopback and then a private
# address shows whether the sender connects to what it checked.
POLICY = WebhookUrlPolicy(disable_loopback=False, disable_private_ips=True)


class Receiver:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["content-length"]))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers.items())})
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


class ChangingResolver:
    """Answers `answers[i]` to the i-th lookup (the last one from then on), counting lookups."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        return self.answers[min(len(self.calls), len(self.answers)) - 1]


def sender(resolve: ChangingResolver, **kw: Any) -> WebhookSender:
    return WebhookSender(
        lambda run: dict(run), SystemClock(), attempts=1, backoff=0, timeout=5, policy=POLICY, resolve=resolve, **kw
    )


RUN = {"run_id": "r1", "status": "success", "kwargs": {}, "ended_at": datetime.now(UTC)}


async def test_connects_to_the_address_it_checked(receiver: Receiver) -> None:
    resolve = ChangingResolver(["127.0.0.1"], ["10.255.255.1"])  # a rebinding name: loopback, then private
    s = sender(resolve, headers={"x-hook-token": "abc"})
    try:
        assert await s.deliver(f"http://hook.test:{receiver.port}/a", RUN) is True
    finally:
        await s.stop()
    assert resolve.calls == [("hook.test", receiver.port)]  # once: no second lookup to connect
    [request] = receiver.requests
    assert request["path"] == "/a"
    assert request["headers"]["Host"] == f"hook.test:{receiver.port}"
    assert request["headers"]["x-hook-token"] == "abc"


async def test_refused_when_any_answer_is_refused(receiver: Receiver, caplog: pytest.LogCaptureFixture) -> None:
    for answers in (["10.0.0.5"], ["127.0.0.1", "10.0.0.5"], ["::ffff:169.254.169.254"], ["64:ff9b::a00:5"]):
        resolve = ChangingResolver(answers, ["127.0.0.1"])  # the second answer would have passed
        s = sender(resolve)
        try:
            with caplog.at_level(logging.WARNING, logger="crongraph.webhooks"):
                assert await s.deliver(f"http://hook.test:{receiver.port}/b", RUN) is False
        finally:
            await s.stop()
        assert len(resolve.calls) == 1
    assert receiver.requests == []
    assert "hook.test is 10.0.0.5, a private address" in caplog.text


async def test_a_failing_answer_falls_back_to_the_next_checked_one(receiver: Receiver) -> None:
    # The receiver listens on 127.0.0.1 only: the first answer refuses the connection, the second takes it.
    resolve = ChangingResolver(["127.0.0.2", "127.0.0.1"])
    s = sender(resolve)
    try:
        assert await s.deliver(f"http://hook.test:{receiver.port}/c", RUN) is True
    finally:
        await s.stop()
    assert [r["path"] for r in receiver.requests] == ["/c"]


async def test_logs_never_show_secrets(receiver: Receiver, caplog: pytest.LogCaptureFixture) -> None:
    resolve = ChangingResolver(["127.0.0.1"])
    s = WebhookSender(
        lambda run: dict(run), SystemClock(), attempts=2, backoff=0, timeout=1, policy=POLICY, resolve=resolve
    )
    try:
        with caplog.at_level(logging.DEBUG):
            # Nothing listens on port 9 (discard): two failed attempts, then a warning naming the target.
            assert await s.deliver("http://admin:hunter2@hook.test:9/x?token=s3cret&run=1", RUN) is False
            url = f"http://admin:hunter2@hook.test:{receiver.port}/y?token=s3cret"
            assert await s.deliver(url, RUN) is True
    finally:
        await s.stop()
    assert "failed after 2 attempt(s)" in caplog.text
    assert "http://***@hook.test:9/x?token=***&run=1" in caplog.text
    assert f"delivered to http://***@hook.test:{receiver.port}/y?token=***" in caplog.text
    assert receiver.requests[0]["path"] == "/y?token=s3cret"  # the real URL was used
    assert receiver.requests[0]["headers"]["Authorization"] == "Basic YWRtaW46aHVudGVyMg=="
    assert "hunter2" not in caplog.text and "s3cret" not in caplog.text
