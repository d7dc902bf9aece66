"""The README's seed example as a script (`python -m crongraph.examples.seed`): it finds the server from `--url`,
else `LANGGRAPH_URL`, else the default, and runs against a real server through the official SDK."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx

from tests.support.server import ServerProcess, free_port


def seed(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k != "LANGGRAPH_URL"}
    return subprocess.run(
        [sys.executable, "-m", "crongraph.examples.seed", *args],
        capture_output=True,
        text=True,
        env={**clean, **(env or {})},
        timeout=120,
    )


def crons_of(server: ServerProcess) -> int:
    found = httpx.post(f"{server.url}/runs/crons/search", json={"limit": 1000}, timeout=30).json()
    return len(found)


def test_seed_takes_the_url_from_the_flag_and_the_environment(server: ServerProcess) -> None:
    before = crons_of(server)
    by_flag = seed("--url", server.url)
    assert by_flag.returncode == 0, by_flag.stderr
    # The fixture's `agent` echoes; then the daily cron's next run date (UTC).
    answer, next_run = by_flag.stdout.splitlines()
    assert answer == "echo: What time is it?" and next_run.endswith("+00:00"), by_flag.stdout

    by_env = seed(env={"LANGGRAPH_URL": server.url})
    assert by_env.returncode == 0 and by_env.stdout.startswith("echo: What time is it?"), by_env.stderr
    # The flag wins over the environment.
    both = seed("--url", server.url, env={"LANGGRAPH_URL": f"http://127.0.0.1:{free_port()}"})
    assert both.returncode == 0, both.stderr
    assert crons_of(server) == before, "the example deletes the crons it created"


def test_seed_names_an_unreachable_server() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    failed = seed(env={"LANGGRAPH_URL": url})
    assert failed.returncode == 1
    assert failed.stderr.strip().splitlines() == [
        f"cannot reach a server at {url}: start `crongraph dev`, or pass --url (or LANGGRAPH_URL)"
    ]
