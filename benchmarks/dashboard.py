"""The cron dashboard's load time with many crons and many runs, in a real browser, for any server URL.

    python benchmarks/dashboard.py                      # starts a crongraph (SQLite), seeds it, measures
    python benchmarks/dashboard.py --crons 1000 --runs 10000 --repeat 5

Seeds through the official SDK: `--crons` crons with a mix of schedules and time zones, and one more stateless
cron (runs kept) given `--runs` runs by backfilling its past occurrences (POST /runs/crons/{id}/backfill, 100 per
request), waited for until the queue is empty. Then Debian's Chromium, driven by Playwright (never a downloaded
browser), opens each page `--repeat` times in a fresh browser context (nothing cached) and prints, from
navigation start (the page's own `performance.now()`):

- the list: first rows of crons shown (the page is usable: filters, links and actions work from then on), and
  the next-24-hours timeline drawn;
- the page of the cron with `--runs` runs: its runs table filled, and its per-day chart drawn.

It also prints the server-side time of the requests behind them (one list poll: search with usage; the timeline;
one runs page), measured with httpx outside the browser.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from common import backend, parser, pct, server
from langgraph_sdk import get_client
from playwright.sync_api import Page, sync_playwright
from tests.support.browser import CHROMIUM, launch_chromium

ZONES = ["UTC", "Asia/Seoul", "America/New_York", "Europe/Berlin", "Asia/Kolkata", "America/Los_Angeles"]
BACKFILL_BATCH = 100  # the server's limit per backfill request


def schedules(n: int) -> list[tuple[str, str]]:
    """A realistic mix: many daily crons at a few popular times (bursts), hourly and every-N-minutes ones."""
    rng = random.Random(7)
    out = []
    for i in range(n):
        kind = i % 10
        if kind < 5:
            expr = f"{rng.choice([0, 0, 0, 30, 15])} {rng.choice([9, 9, 9, 0, 3, 12, 18])} * * *"
        elif kind < 7:
            expr = f"{rng.randrange(60)} * * * *"
        elif kind < 9:
            expr = f"*/{rng.choice([5, 10, 15, 30])} * * * *"
        else:
            expr = f"{rng.randrange(60)} {rng.randrange(24)} * * 1-5"
        out.append((expr, rng.choice(ZONES)))
    return out


async def seed(url: str, assistant: str, crons: int, runs: int) -> str:
    client = get_client(url=url)
    sem = asyncio.Semaphore(16)

    async def make(expr: str, zone: str) -> None:
        async with sem:
            await client.crons.create(assistant, schedule=expr, timezone=zone, input={"value": 1})

    t0 = time.perf_counter()
    await asyncio.gather(*(make(e, z) for e, z in schedules(crons)))
    print(f"seeded {crons} crons in {time.perf_counter() - t0:.1f} s")

    big: dict[str, Any] = await client.crons.create(  # type: ignore[assignment]
        assistant, schedule="* * * * *", input={"value": 1}, on_run_completed="keep", metadata={"bench": "big"}
    )
    # Past minutes, newest window first, BACKFILL_BATCH occurrences a request.
    end = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)
    t0 = time.perf_counter()
    made = 0
    while made < runs:
        take = min(BACKFILL_BATCH, runs - made)
        start = end - timedelta(minutes=take)
        result = await client.http.post(
            f"/runs/crons/{big['cron_id']}/backfill", json={"start": start.isoformat(), "end": end.isoformat()}
        )
        made += result["created"]
        end = start
    while True:
        queued = (await client.http.get("/metrics", params={"format": "json"}))["runs"]
        if queued["pending"] + queued["running"] == 0:
            break
        await asyncio.sleep(0.5)
    print(f"gave one cron {made} runs (backfill) and ran them in {time.perf_counter() - t0:.1f} s")
    await client.http.client.aclose()
    return str(big["cron_id"])


def until(page: Page, script: str) -> float:
    """Milliseconds from navigation start until `script` is first true (checked every animation frame)."""
    handle = page.wait_for_function(f"() => ({script}) && performance.now()", polling="raf", timeout=60_000)
    return float(handle.json_value())


def breakdown(page: Page) -> str:
    """When the HTML arrived and when each request of the page started and ended (ms from navigation start)."""
    entries = page.evaluate(
        """() => [performance.getEntriesByType("navigation")[0], ...performance.getEntriesByType("resource")]
            .map(e => [e.name.replace(location.origin, ""), Math.round(e.startTime), Math.round(e.responseEnd)])"""
    )
    return "  ".join(f"{name.split('?')[0]} {start}-{end}" for name, start, end in entries)


def measure(url: str, big: str, repeat: int, chromium: str, verbose: bool = False) -> dict[str, list[float]]:
    figures: dict[str, list[float]] = {k: [] for k in ("list rows", "timeline", "cron runs", "cron chart")}
    with sync_playwright() as p:
        browser = launch_chromium(p, chromium)
        for _ in range(repeat):
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            page = context.new_page()
            page.goto(f"{url}/dashboard", wait_until="commit")
            figures["list rows"].append(until(page, "document.querySelectorAll('#crons-body tr[data-cron-id]').length"))
            if verbose:
                print("  list page:", breakdown(page))
            figures["timeline"].append(until(page, "document.querySelector('#timeline svg')"))
            page.goto(f"{url}/dashboard/crons/{big}", wait_until="commit")
            figures["cron runs"].append(until(page, "document.querySelectorAll('#runs-body tr[data-run-id]').length"))
            if verbose:
                print("  cron page:", breakdown(page))
            figures["cron chart"].append(until(page, "document.querySelector('#chart svg')"))
            context.close()
        browser.close()
    return figures


def server_side(url: str, big: str) -> None:
    with httpx.Client(base_url=url, timeout=60) as http:

        def timed(method: str, path: str, body: Any = None, n: int = 10) -> list[float]:
            out = []
            for _ in range(n):
                t0 = time.perf_counter()
                http.request(method, path, json=body).raise_for_status()
                out.append((time.perf_counter() - t0) * 1000)
            return out

        poll = timed("POST", "/runs/crons/search", {"limit": 101, "sort_by": "next_run_date", "sort_order": "asc"})
        crons = http.post("/runs/crons/search", json={"limit": 1000, "enabled": True}).json()
        refs = [{k: c[k] for k in ("cron_id", "schedule", "timezone", "end_time", "next_run_date")} for c in crons]
        line = timed("POST", "/dashboard/api/timeline", {"crons": refs, "hours": 24, "bucket_minutes": 15}, n=5)
        runs = timed("GET", f"/runs/crons/{big}/runs?limit=26&offset=0")
        fires = timed("GET", f"/runs/crons/{big}/fires?limit=1000&offset=0", n=5)
    for name, ms in [
        ("list poll (search 100 + usage)", poll),
        (f"timeline ({len(refs)} crons)", line),
        ("runs page (25)", runs),
        ("fire log page (1,000, for the chart)", fires),
    ]:
        print(f"  {name:38} median {statistics.median(ms):7.1f} ms   max {max(ms):7.1f} ms")


def main() -> None:
    p = parser(__doc__ or "")
    p.add_argument("--crons", type=int, default=1000)
    p.add_argument("--runs", type=int, default=10000)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--chromium", default=CHROMIUM or "/usr/bin/chromium", help="the Chromium executable")
    p.add_argument("-v", "--verbose", action="store_true", help="print each page's request timings")
    args = p.parse_args()
    with server(args.url, **backend(args)) as url:
        big = asyncio.run(seed(url, args.assistant, args.crons, args.runs))
        figures = measure(url, big, args.repeat, args.chromium, args.verbose)
        print(f"browser, from navigation start ({args.repeat} fresh contexts; target: usable within 1,000 ms):")
        for name, ms in figures.items():
            med, p90 = statistics.median(ms), pct(ms, 0.9)
            print(f"  {name:38} median {med:7.0f} ms   p90 {p90:7.0f} ms   max {max(ms):7.0f} ms")
        print("server side of the requests behind them (httpx, sequential):")
        server_side(url, big)


if __name__ == "__main__":
    main()
