"""The `crongraph` command as a user meets it: the dev banner, a taken port, a broken langgraph.json, and the
`crongraph crons` commands against a running server."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support.server import free_port


def crongraph(*args: str, cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crongraph", *args], capture_output=True, text=True, cwd=cwd, timeout=timeout
    )


def test_dev_serves_the_bundled_example_and_moves_off_a_taken_port(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.Popen(
            [sys.executable, "-m", "crongraph", "dev", "--port", str(port)],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            assert proc.stdout is not None
            lines: list[str] = []
            # Log lines may come first (stderr is merged here); the banner ends with its "Try:" line.
            while not lines or "Try:" not in lines[-1]:
                line = proc.stdout.readline()
                assert line, "".join(lines)
                lines.append(line)
            banner = "".join(lines)
            assert f"Port {port} is in use" in banner
            assert "bundled example" in banner and "agent" in banner
            url = next(w for line in lines for w in line.split() if w.startswith("http://") and "docs" not in w)
            # The banner is printed once the server is ready: it answers at once.
            assert httpx.get(f"{url}/ok", timeout=5).status_code == 200
            thread = httpx.post(f"{url}/threads", json={}).json()
            answer = httpx.post(
                f"{url}/threads/{thread['thread_id']}/runs/wait",
                json={
                    "assistant_id": "agent",
                    "input": {"messages": [{"role": "user", "content": "What time is it?"}]},
                },
            ).json()
            assert answer["messages"][-1]["content"].startswith("It is ")
            assert (tmp_path / ".crongraph" / "crongraph.db").exists()
        finally:
            proc.terminate()
            proc.wait(timeout=20)


def test_serve_refuses_a_taken_port_plainly(tmp_path: Path) -> None:
    (tmp_path / "langgraph.json").write_text(json.dumps({"graphs": {"agent": "crongraph.examples.agent:graph"}}))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = crongraph("serve", "--port", str(taken.getsockname()[1]), cwd=tmp_path)
    assert result.returncode == 2
    assert "already in use" in result.stderr and "--port" in result.stderr
    assert "Traceback" not in result.stderr


def test_broken_graph_file_names_the_file_the_graph_and_the_cause(tmp_path: Path) -> None:
    (tmp_path / "agent.py").write_text("import nonexistent_module_xyz\n")
    (tmp_path / "langgraph.json").write_text(json.dumps({"graphs": {"mine": "./agent.py:graph"}}))
    result = crongraph("dev", "--port", str(free_port()), cwd=tmp_path)
    assert result.returncode == 2
    assert 'graph "mine"' in result.stderr and "nonexistent_module_xyz" in result.stderr
    assert "langgraph.json" in result.stderr and "Traceback" not in result.stderr
    (tmp_path / "langgraph.json").write_text("{not json")
    result = crongraph("dev", "--port", str(free_port()), cwd=tmp_path)
    assert result.returncode == 2 and "not valid JSON" in result.stderr


def test_crons_commands_against_a_running_server(server: Any, client: Any) -> None:
    thread = httpx.post(f"{server.url}/threads", json={}).json()
    cron = httpx.post(
        f"{server.url}/threads/{thread['thread_id']}/runs/crons",
        json={"assistant_id": "agent", "schedule": "27 15 * * *", "timezone": "Asia/Seoul"},
    ).json()
    url = ["crons", "--url", server.url]
    listed = crongraph(*url, "list")
    assert listed.returncode == 0 and cron["cron_id"] in listed.stdout and "27 15 * * *" in listed.stdout
    shown = crongraph(*url, "show", cron["cron_id"])
    assert shown.returncode == 0 and "At 15:27, every day (Asia/Seoul)" in shown.stdout
    nxt = crongraph(*url, "next", "*/15 * * * *", "-n", "3")
    assert nxt.returncode == 0 and len([line for line in nxt.stdout.splitlines() if line.startswith("  ")]) == 3
    paused = crongraph(*url, "pause", cron["cron_id"])
    assert paused.returncode == 0 and "Paused" in paused.stdout
    assert httpx.get(f"{server.url}/runs/crons/{cron['cron_id']}").json()["enabled"] is False
    # --url after the action too; a paused cron has no "Next", it says it is paused and why.
    shown = crongraph("crons", "show", cron["cron_id"], "--url", server.url)
    assert shown.returncode == 0 and "Next:" not in shown.stdout
    assert "paused since" in shown.stdout and "enabled set to false" in shown.stdout
    assert cron["cron_id"] not in crongraph(*url, "list").stdout
    assert cron["cron_id"] in crongraph(*url, "list", "--all").stdout
    resumed = crongraph(*url, "resume", cron["cron_id"])
    assert resumed.returncode == 0 and "Resumed" in resumed.stdout
    deleted = crongraph(*url, "delete", cron["cron_id"])
    assert deleted.returncode == 0 and f"kept on thread {thread['thread_id']}" in deleted.stdout
    assert httpx.get(f"{server.url}/runs/crons/{cron['cron_id']}").status_code == 404
    bad = crongraph(*url, "next", "61 * * * *")
    assert bad.returncode == 1 and "minute" in bad.stderr


def test_crons_commands_say_what_to_do_when_no_server_answers() -> None:
    result = crongraph("crons", "--url", f"http://127.0.0.1:{free_port()}", "list")
    assert result.returncode == 1
    assert "cannot reach a crongraph server" in result.stderr and "crongraph dev" in result.stderr


def _cron(server: Any, path: str, **body: Any) -> dict[str, Any]:
    response = httpx.post(f"{server.url}{path}", json=body)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_show_gives_a_failed_runs_error_and_times_in_the_crons_zone(server: Any) -> None:
    thread = httpx.post(f"{server.url}/threads", json={}).json()["thread_id"]
    cron = _cron(server, f"/threads/{thread}/runs/crons", assistant_id="fails", schedule="* * * * * *",
                 timezone="Asia/Kathmandu", input={"messages": []})  # fmt: skip
    try:
        runs_url = f"{server.url}/runs/crons/{cron['cron_id']}/runs"
        deadline = time.monotonic() + 30
        while not any(r["status"] == "error" for r in httpx.get(runs_url).json()):
            assert time.monotonic() < deadline, "the cron's first run to fail"
            time.sleep(0.1)
        shown = crongraph("crons", "--url", server.url, "show", cron["cron_id"])
    finally:
        httpx.delete(f"{server.url}/runs/crons/{cron['cron_id']}")
    assert shown.returncode == 0, shown.stderr
    assert "error: ValueError: kaboom" in shown.stdout
    assert "0 ended in error" not in shown.stdout and "ended in error" in shown.stdout
    assert "Asia/Kathmandu)" in shown.stdout  # UTC, and beside it the same instant in the cron's zone


def test_bulk_pause_and_delete_by_filter_with_a_dry_run(server: Any) -> None:
    mark = {"team": f"ops-{free_port()}"}
    crons = [_cron(server, "/runs/crons", assistant_id="agent", schedule=f"{m} 9 * * *", metadata=mark) for m in (1, 2)]
    other = _cron(server, "/runs/crons", assistant_id="agent", schedule="3 9 * * *")
    url = ["crons", "--url", server.url]
    try:
        refused = crongraph(*url, "delete")
        assert refused.returncode == 1 and "--metadata" in refused.stderr and "--all" in refused.stderr
        dry = crongraph(*url, "pause", "--metadata", f"team={mark['team']}", "--dry-run")
        assert dry.returncode == 0 and "Would pause 2 cron(s)" in dry.stdout
        assert all(c["cron_id"] in dry.stdout for c in crons) and other["cron_id"] not in dry.stdout
        assert all(httpx.get(f"{server.url}/runs/crons/{c['cron_id']}").json()["enabled"] for c in crons)
        paused = crongraph(*url, "pause", "--metadata", f"team={mark['team']}")
        assert paused.returncode == 0 and "Paused 2 crons" in paused.stdout
        deleted = crongraph(*url, "delete", "--metadata", f"team={mark['team']}", "--state", "paused")
        assert deleted.returncode == 0 and "Deleted 2 crons" in deleted.stdout
        assert "temporary threads, deleted with them" in deleted.stdout  # what became of a stateless cron's runs
        assert all(httpx.get(f"{server.url}/runs/crons/{c['cron_id']}").status_code == 404 for c in crons)
        assert httpx.get(f"{server.url}/runs/crons/{other['cron_id']}").status_code == 200
    finally:
        for c in [*crons, other]:
            httpx.delete(f"{server.url}/runs/crons/{c['cron_id']}")


def test_list_shows_thread_ids_that_are_unique_as_shown(server: Any) -> None:
    # UUIDv7 ids made in the same minute share their first characters; what list shows must still tell them apart.
    threads = [httpx.post(f"{server.url}/threads", json={}).json()["thread_id"] for _ in range(3)]
    crons = [_cron(server, f"/threads/{t}/runs/crons", assistant_id="agent", schedule="0 9 * * *") for t in threads]
    try:
        listed = crongraph("crons", "--url", server.url, "list")
    finally:
        for c in crons:
            httpx.delete(f"{server.url}/runs/crons/{c['cron_id']}")
    assert listed.returncode == 0
    shown = {line.split("thread ")[1].strip() for line in listed.stdout.splitlines() if "thread " in line}
    assert len(shown) >= 3
    for thread in threads:
        assert sum(1 for s in shown if thread.endswith(s.lstrip("…"))) == 1
