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
            lines = [proc.stdout.readline() for _ in range(6)]
            banner = "".join(lines)
            assert f"Port {port} is in use" in banner
            assert "bundled example" in banner and "agent" in banner
            url = next(w for line in lines for w in line.split() if w.startswith("http://") and "docs" not in w)
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{url}/ok", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, banner
                time.sleep(0.1)
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
    assert cron["cron_id"] not in crongraph(*url, "list").stdout
    assert cron["cron_id"] in crongraph(*url, "list", "--all").stdout
    resumed = crongraph(*url, "resume", cron["cron_id"])
    assert resumed.returncode == 0 and "Resumed" in resumed.stdout
    deleted = crongraph(*url, "delete", cron["cron_id"])
    assert deleted.returncode == 0
    assert httpx.get(f"{server.url}/runs/crons/{cron['cron_id']}").status_code == 404
    bad = crongraph(*url, "next", "61 * * * *")
    assert bad.returncode == 1 and "minute" in bad.stderr


def test_crons_commands_say_what_to_do_when_no_server_answers() -> None:
    result = crongraph("crons", "--url", f"http://127.0.0.1:{free_port()}", "list")
    assert result.returncode == 1
    assert "cannot reach a crongraph server" in result.stderr and "crongraph dev" in result.stderr
