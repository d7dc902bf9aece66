"""The README's seed example as a script: a run on a thread, a daily cron on that thread, an hourly stateless cron,
then both crons deleted again. Only the official `langgraph_sdk` client is used.

    python -m crongraph.examples.seed                         # http://127.0.0.1:2024
    python -m crongraph.examples.seed --url http://127.0.0.1:2025
    LANGGRAPH_URL=http://127.0.0.1:2025 python -m crongraph.examples.seed

The server is `--url`, else `LANGGRAPH_URL`, else `http://127.0.0.1:2024` (where `crongraph dev` listens unless
that port was taken: its banner says where it went). Exit code 0 on success; 1 with one line when the server
cannot be reached.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

import httpx
from langgraph_sdk import get_client

DEFAULT_URL = "http://127.0.0.1:2024"
URL_ENV = "LANGGRAPH_URL"
QUESTION: dict[str, Any] = {"messages": [{"role": "user", "content": "What time is it?"}]}


async def seed(url: str, assistant: str = "agent") -> None:
    # Any: the SDK types a cron as a Run and `input` as a mapping it cannot check; the wire objects are plain JSON.
    client: Any = get_client(url=url)
    thread = await client.threads.create()
    result = await client.runs.wait(thread["thread_id"], assistant, input=QUESTION)
    print(result["messages"][-1]["content"])  # It is 15:27:03 UTC.

    # Run it every day at 15:27 Seoul time, on this thread:
    cron = await client.crons.create_for_thread(
        thread["thread_id"], assistant, schedule="27 15 * * *", timezone="Asia/Seoul", input=QUESTION
    )
    print(cron["next_run_date"])  # always UTC

    # Or statelessly, on a fresh thread each time (deleted after the run unless on_run_completed="keep"):
    hourly = await client.crons.create(assistant, schedule="0 * * * *", input=QUESTION)

    # A forgotten cron costs money: delete what you do not need.
    await client.crons.delete(cron["cron_id"])
    await client.crons.delete(hourly["cron_id"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m crongraph.examples.seed", description=__doc__.splitlines()[0])
    parser.add_argument("--url", help=f"the server (default: ${URL_ENV}, else {DEFAULT_URL})")
    parser.add_argument("--assistant", default="agent", help="graph or assistant id (default: agent)")
    args = parser.parse_args(argv)
    url = args.url or os.environ.get(URL_ENV) or DEFAULT_URL
    try:
        asyncio.run(seed(url, args.assistant))
    except httpx.ConnectError:
        print(f"cannot reach a server at {url}: start `crongraph dev`, or pass --url (or {URL_ENV})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
