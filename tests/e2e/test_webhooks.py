"""Webhooks: a run with `webhook` POSTs the run to it when it ends, with retries on failure; loopback and private
targets are refused at run creation unless the server allows them (CRONGRAPH_WEBHOOK_ALLOW_PRIVATE). The target
here is a tiny HTTP receiver on loopback, so the server under test allows private targets."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client, get_sync_client
from langgraph_sdk.errors import UnprocessableEntityError

from tests.support.runs import said, wait_for_status
from tests.support.server import ServerProcess


class Receiver:
    """Records every POST; answers with the queued statuses first, then 200."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                with receiver._lock:
                    receiver.received.append(
                        {
                            "path": self.path,
                            "headers": {k.lower(): v for k, v in self.headers.items()},
                            "body": json.loads(body),
                        }
                    )
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def reset(self, statuses: list[int] | None = None) -> None:
        with self._lock:
            self.received.clear()
            self.statuses = list(statuses or [])

    def for_path(self, path: str) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.received if r["path"] == path]

    async def wait_for(self, path: str, count: int, within: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + within
        while len(self.for_path(path)) < count:
            assert time.monotonic() < deadline, f"{path}: {len(self.for_path(path))} of {count} deliveries"
            await asyncio.sleep(0.02)
        return self.for_path(path)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(scope="module")
def hook_server(server_factory: Callable[..., ServerProcess]) -> Iterator[ServerProcess]:
    server = server_factory(
        env={"CRONGRAPH_WEBHOOK_ALLOW_PRIVATE": "true", "CRONGRAPH_WEBHOOK_BACKOFF_SECONDS": "0.05"}
    )
    yield server
    server.stop()


@pytest.fixture
async def hook_client(hook_server: ServerProcess) -> Any:
    client = get_client(url=hook_server.url)
    yield client
    await client.http.client.aclose()


async def test_private_targets_are_refused_by_default(client: Any) -> None:
    thread = await client.threads.create()
    for url in (
        "http://127.0.0.1:9/hook",
        "http://localhost/hook",
        "http://api.localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://[::1]:8080/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[::127.0.0.1]/hook",
        "http://[64:ff9b::a00:1]/hook",
        "http://[2002:c0a8:101::1]/hook",
        "http://2130706433/hook",
        "http://0x7f.1/hook",
    ):
        with pytest.raises(UnprocessableEntityError, match="loopback or private"):
            await client.runs.create(thread["thread_id"], "agent", input=said("x"), webhook=url)
    # The cloud metadata address in every spelling, and other reserved addresses: never targets.
    for url in (
        "http://169.254.169.254/latest/meta-data",
        "http://[64:ff9b::a9fe:a9fe]/",
        "http://[::ffff:a9fe:a9fe]/",
        "http://[2001:0:4136:e378:8000:63bf:5601:5601]/",
        "http://2852039166/",
        "http://0xa9fea9fe/",
        "http://0251.0376.0251.0376/",
        "http://0.0.0.0/hook",
        "http://metadata.google.internal/",
    ):
        with pytest.raises(UnprocessableEntityError, match="never webhook targets"):
            await client.runs.create(thread["thread_id"], "agent", input=said("x"), webhook=url)
        with pytest.raises(UnprocessableEntityError, match="never webhook targets"):
            await client.crons.create("agent", schedule="0 0 * * *", webhook=url)
    for url in ("ftp://example.com/hook", "not a url", "http:///path-only"):
        with pytest.raises(UnprocessableEntityError, match="Invalid webhook URL"):
            await client.runs.create(thread["thread_id"], "agent", input=said("x"), webhook=url)
    with pytest.raises(httpx.HTTPStatusError, match="422"):  # the SDK's wait raises httpx's own error
        await client.runs.wait(None, "agent", input=said("x"), webhook="http://127.0.0.1/hook")
    # A public name is accepted (the run is cancelled before it could call it).
    run = await client.runs.create(
        thread["thread_id"], "agent", input=said("x"), webhook="https://hooks.example.com/run", after_seconds=60
    )
    assert run["kwargs"]["webhook"] == "https://hooks.example.com/run"
    await client.runs.cancel(thread["thread_id"], run["run_id"])
    assert len(await client.runs.list(thread["thread_id"])) == 1


async def test_successful_run_posts_the_run(hook_client: Any, receiver: Receiver) -> None:
    receiver.reset()
    thread = await hook_client.threads.create()
    tid = thread["thread_id"]
    run = await hook_client.runs.create(
        tid, "agent", input=said("hello"), metadata={"tag": "w1"}, webhook=f"{receiver.url}/ok"
    )
    await hook_client.runs.join(tid, run["run_id"])
    [delivery] = await receiver.wait_for("/ok", 1)
    assert delivery["headers"]["content-type"] == "application/json"
    body = delivery["body"]
    assert body["run_id"] == run["run_id"]
    assert body["thread_id"] == tid
    assert body["assistant_id"] == run["assistant_id"]
    assert body["metadata"] == {"tag": "w1"}
    assert body["status"] == "success"
    assert body["error"] is None
    assert body["values"]["messages"][-1]["content"] == "echo: hello"
    assert body["kwargs"]["webhook"] == f"{receiver.url}/ok"
    assert body["run_ended_at"] and body["webhook_sent_at"] and body["created_at"]


async def test_failed_and_cancelled_runs_post_their_status(hook_client: Any, receiver: Receiver) -> None:
    receiver.reset()
    thread = await hook_client.threads.create()
    tid = thread["thread_id"]
    await hook_client.runs.wait(tid, "fails", input={}, webhook=f"{receiver.url}/fail", raise_error=False)
    [failed] = await receiver.wait_for("/fail", 1)
    assert failed["body"]["status"] == "error"
    assert failed["body"]["error"] == {"error": "ValueError", "message": "kaboom"}

    run = await hook_client.runs.create(tid, "slow", input=said("slow", 5), webhook=f"{receiver.url}/cancel")
    await wait_for_status(hook_client, tid, run["run_id"], "running")
    await hook_client.runs.cancel(tid, run["run_id"])
    [cancelled] = await receiver.wait_for("/cancel", 1)
    assert cancelled["body"]["status"] == "interrupted"
    assert cancelled["body"]["run_id"] == run["run_id"]


async def test_stateless_run_posts_before_its_thread_is_gone(hook_client: Any, receiver: Receiver) -> None:
    receiver.reset()
    result = await hook_client.runs.wait(None, "agent", input=said("bye"), webhook=f"{receiver.url}/stateless")
    assert result["messages"][-1]["content"] == "echo: bye"
    [delivery] = await receiver.wait_for("/stateless", 1)
    assert delivery["body"]["values"]["messages"][-1]["content"] == "echo: bye"
    assert delivery["body"]["kwargs"]["temporary"] is True


async def test_failed_deliveries_are_retried(hook_client: Any, receiver: Receiver) -> None:
    receiver.reset(statuses=[500, 503])
    thread = await hook_client.threads.create()
    await hook_client.runs.wait(thread["thread_id"], "agent", input=said("retry"), webhook=f"{receiver.url}/retry")
    deliveries = await receiver.wait_for("/retry", 3)
    assert len({d["body"]["run_id"] for d in deliveries}) == 1
    await asyncio.sleep(0.5)
    assert len(receiver.for_path("/retry")) == 3  # delivered on the third attempt: no more


async def test_retries_stop_after_the_configured_attempts(hook_client: Any, receiver: Receiver) -> None:
    receiver.reset(statuses=[500] * 10)
    thread = await hook_client.threads.create()
    await hook_client.runs.wait(thread["thread_id"], "agent", input=said("down"), webhook=f"{receiver.url}/down")
    await receiver.wait_for("/down", 3)
    await asyncio.sleep(0.6)  # the backoff would have sent a fourth by now
    assert len(receiver.for_path("/down")) == 3


async def test_client_errors_are_not_retried(hook_client: Any, receiver: Receiver) -> None:
    receiver.reset(statuses=[404])
    thread = await hook_client.threads.create()
    await hook_client.runs.wait(thread["thread_id"], "agent", input=said("gone"), webhook=f"{receiver.url}/gone")
    await receiver.wait_for("/gone", 1)
    await asyncio.sleep(0.3)
    assert len(receiver.for_path("/gone")) == 1


def test_sync_client_webhook(hook_server: ServerProcess, receiver: Receiver) -> None:
    receiver.reset()
    client = get_sync_client(url=hook_server.url)
    try:
        run = client.runs.create(None, "agent", input=said("sync"), webhook=f"{receiver.url}/sync")
        client.runs.join(run["thread_id"], run["run_id"])
        deadline = time.monotonic() + 10
        while not receiver.for_path("/sync"):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert receiver.for_path("/sync")[0]["body"]["status"] == "success"
    finally:
        client.http.client.close()


async def test_run_lost_with_its_worker_posts_an_error(
    server_factory: Callable[..., ServerProcess], receiver: Receiver
) -> None:
    receiver.reset()
    server = server_factory(env={"CRONGRAPH_WEBHOOK_ALLOW_PRIVATE": "true", "CRONGRAPH_LEASE_SECONDS": "2"})
    try:
        client = get_client(url=server.url)
        thread = await client.threads.create()
        run = await client.runs.create(
            thread["thread_id"], "slow", input=said("doomed", 60), webhook=f"{receiver.url}/lost"
        )
        await wait_for_status(client, thread["thread_id"], run["run_id"], "running")
        await client.http.client.aclose()
        server.kill()
        server.start()
        [delivery] = await receiver.wait_for("/lost", 1)
        assert delivery["body"]["run_id"] == run["run_id"]
        assert delivery["body"]["status"] == "error"
        assert delivery["body"]["error"]["error"] == "WorkerLost"
    finally:
        server.stop()


async def test_secrets_in_a_webhook_url_are_never_shown(
    server_factory: Callable[..., ServerProcess], receiver: Receiver
) -> None:
    receiver.reset()
    server = server_factory(env={"CRONGRAPH_WEBHOOK_ALLOW_PRIVATE": "true", "CRONGRAPH_LOG_LEVEL": "debug"})
    client = get_client(url=server.url)
    try:
        port = receiver.url.rsplit(":", 1)[1]
        url = f"http://admin:hunter2@127.0.0.1:{port}/secret?token=s3cret&run=1"
        shown = f"http://***@127.0.0.1:{port}/secret?token=***&run=1"
        thread = await client.threads.create()
        run = await client.runs.create(thread["thread_id"], "agent", input=said("psst"), webhook=url)
        assert run["kwargs"]["webhook"] == shown
        await client.runs.join(thread["thread_id"], run["run_id"])
        assert (await client.runs.get(thread["thread_id"], run["run_id"]))["kwargs"]["webhook"] == shown
        assert [r["kwargs"]["webhook"] for r in await client.runs.list(thread["thread_id"])] == [shown]
        # The real URL is used for delivery: path, query and credentials reach the target.
        [delivery] = await receiver.wait_for("/secret?token=s3cret&run=1", 1)
        assert delivery["headers"]["authorization"] == "Basic YWRtaW46aHVudGVyMg=="
        assert delivery["body"]["kwargs"]["webhook"] == shown
        cron = await client.crons.create("agent", schedule="0 0 * * *", webhook=url)
        assert cron["payload"]["webhook"] == shown
        assert (await client.crons.search())[0]["payload"]["webhook"] == shown
        await client.crons.delete(cron["cron_id"])
        server.stop()  # flushes its output
        output = server.log_path.read_text()
        assert "webhook delivered to " + shown in output
        assert "hunter2" not in output and "s3cret" not in output
    finally:
        await client.http.client.aclose()
        server.stop()


def test_disable_webhooks_refuses_a_webhook_by_name(
    server_factory: Callable[..., ServerProcess], tmp_path: Any
) -> None:
    """langgraph.json `http.disable_webhooks`: nothing would be sent, so a run or cron naming a webhook is refused
    (the reference accepts it and sends nothing, which a caller cannot tell from a lost delivery)."""
    from tests.support.server import FIXTURE_CONFIG

    config = json.loads(FIXTURE_CONFIG.read_text())
    config["dependencies"] = [str(FIXTURE_CONFIG.parent)]
    config["graphs"] = {"agent": f"{FIXTURE_CONFIG.parent}/graphs.py:echo"}
    config["http"] = {"disable_webhooks": True}
    path = tmp_path / "langgraph.json"
    path.write_text(json.dumps(config))
    server = server_factory(config=path)
    client = get_sync_client(url=server.url)
    with pytest.raises(httpx.HTTPStatusError, match="disable_webhooks"):  # the SDK's wait raises httpx's own error
        client.runs.wait(None, "agent", input={"messages": []}, webhook="https://example.com/hook")
    with pytest.raises(UnprocessableEntityError, match="disable_webhooks"):
        client.crons.create("agent", schedule="0 * * * *", webhook="https://example.com/hook")
    assert client.crons.search() == []
    assert '"http.disable_webhooks"' not in server.log()  # honoured, so no startup warning names it
