"""The `crongraph` command as a user meets it: the dev banner, a taken port, a broken langgraph.json, and the
`crongraph crons` commands against a running server."""

from __future__ import annotations

import json
import os
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


def test_list_columns_fit_their_content_and_show_names_the_assistant(server: Any) -> None:
    at = _cron(server, "/runs/crons", assistant_id="agent", schedule="@at 2099-11-30T18:40:00", timezone="Asia/Seoul")
    plain = _cron(server, "/runs/crons", assistant_id="agent", schedule="5 4 * * *")
    url = ["crons", "--url", server.url]
    try:
        listed = crongraph(*url, "list")
        shown = crongraph(*url, "show", at["cron_id"])
        dry = crongraph(*url, "delete", at["cron_id"], plain["cron_id"], "--dry-run")
    finally:
        for c in (at, plain):
            httpx.delete(f"{server.url}/runs/crons/{c['cron_id']}")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    header = lines[0]
    mine = [line for line in lines if line.startswith((at["cron_id"], plain["cron_id"]))]
    assert len(mine) == 2 and "@at 2099-11-30T18:40:00" in listed.stdout  # not cut
    # Every column starts where its header does, with or without a zone beside the time.
    for line in mine:
        for column in ("SCHEDULE", "NEXT RUN"):
            start = header.index(column)
            assert line[start - 2 : start] == "  " and line[start] != " ", (column, header, line)
        assert line[: header.index("RUNS/24H") + len("RUNS/24H")].endswith("0")
    assert shown.returncode == 0 and "Assistant:  agent" in shown.stdout, shown.stdout
    assert "Assistant:  " + at["assistant_id"] not in shown.stdout
    assert dry.returncode == 0 and dry.stdout.count(" agent  new thread per run") == 2, dry.stdout


def test_ids_by_a_unique_prefix_or_suffix_and_ambiguity_lists_the_candidates(server: Any) -> None:
    crons = [_cron(server, "/runs/crons", assistant_id="agent", schedule="0 9 * * *") for _ in range(2)]
    ids = [c["cron_id"] for c in crons]
    url = ["crons", "--url", server.url]
    try:
        prefix = next(n for n in range(36, 3, -1) if ids[0][:n] == ids[1][:n])  # same minute: shared beginning
        both = crongraph(*url, "show", ids[0][:prefix])
        by_end = crongraph(*url, "show", ids[0][-8:])
        by_start = crongraph(*url, "show", ids[0][: prefix + 1] if ids[0][prefix] != ids[1][prefix] else ids[0])
        helped = crongraph(*url, "pause", "--help")
    finally:
        for c in crons:
            httpx.delete(f"{server.url}/runs/crons/{c['cron_id']}")
    assert both.returncode == 1 and all(i in both.stderr for i in ids), both.stderr
    assert by_end.returncode == 0 and f"Cron {ids[0]}" in by_end.stdout, by_end.stderr
    assert by_start.returncode == 0 and f"Cron {ids[0]}" in by_start.stdout, by_start.stderr
    assert "unique beginning or end" in " ".join(helped.stdout.split())


def test_a_refused_token_is_said_to_be_refused(server_factory: Any) -> None:
    project = Path(__file__).resolve().parents[1] / "fixtures" / "auth_project" / "langgraph.json"
    secured = server_factory(config=project)
    none = crongraph("crons", "--url", secured.url, "list")
    assert none.returncode == 1 and "pass --token TOKEN" in none.stderr
    wrong = crongraph("crons", "--url", secured.url, "list", "--token", "wrong")
    assert wrong.returncode == 1 and "refused the token" in wrong.stderr and "pass --token" not in wrong.stderr
    assert crongraph("crons", "--url", secured.url, "list", "--token", "alice-token").returncode == 0


def test_a_closed_stdout_ends_the_command_quietly(server: Any) -> None:
    cron = _cron(server, "/runs/crons", assistant_id="agent", schedule="0 9 * * *")
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line is written: every write meets a closed pipe
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "crongraph", "crons", "--url", server.url, "show", cron["cron_id"]],
            stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=60,
        )  # fmt: skip
    finally:
        os.close(write_end)
        httpx.delete(f"{server.url}/runs/crons/{cron['cron_id']}")
    assert proc.stderr == "" and proc.returncode == 141, proc.stderr
