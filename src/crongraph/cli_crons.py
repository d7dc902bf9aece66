"""`crongraph crons list | show | next | pause | resume | delete`: see what crons exist, what they cost in runs, when
they fire next, and stop them, against a running server (through the official Python client)."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import datetime
from typing import Any


def add_parser(commands: Any) -> None:
    crons = commands.add_parser("crons", help="list, inspect, pause, resume and delete crons on a running server")
    crons.add_argument(
        "--url",
        default=os.environ.get("CRONGRAPH_URL", "http://127.0.0.1:2024"),
        help="server URL (default $CRONGRAPH_URL or http://127.0.0.1:2024)",
    )
    actions = crons.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="every cron, with its next fire and its runs in the last 24 h")
    listing.add_argument("--thread", help="only the crons of this thread")
    listing.add_argument("--all", action="store_true", help="include paused and finished crons")
    listing.set_defaults(handler=_list)
    for name, handler, text in (
        ("show", _show, "one cron in full, with its latest runs and how late each was"),
        ("pause", _pause, "stop a cron from firing (enabled=false)"),
        ("resume", _resume, "let a paused cron fire again, from its next occurrence after now"),
        ("delete", _delete, "delete a cron (its past runs are kept)"),
    ):
        sub = actions.add_parser(name, help=text)
        sub.add_argument("cron_id")
        sub.set_defaults(handler=handler)
    nxt = actions.add_parser("next", help="the next occurrences of a cron, or of a schedule before you create it")
    nxt.add_argument("cron_id_or_schedule", help="a cron id, or a schedule such as '27 15 * * *'")
    nxt.add_argument("--timezone", help="IANA time zone for a schedule (default UTC)")
    nxt.add_argument("-n", "--count", type=int, default=5)
    nxt.set_defaults(handler=_next)


def _client(args: argparse.Namespace) -> Any:
    from langgraph_sdk import get_client

    return get_client(url=args.url)


def _when(value: Any) -> str:
    if not value:
        return "-"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return f"{value:%Y-%m-%d %H:%M:%S}Z"


def _fail(exc: Exception, args: argparse.Namespace) -> int:
    message = str(exc)
    if "ConnectError" in type(exc).__name__ or "connect" in message.lower():
        message = f"cannot reach a crongraph server at {args.url}. Start one with `crongraph dev` or pass --url."
    print(f"crongraph: {message}", file=sys.stderr)
    return 1


async def _list(args: argparse.Namespace) -> int:
    client = _client(args)
    try:
        crons: list[dict[str, Any]] = []
        while True:
            page = await client.crons.search(
                thread_id=args.thread, limit=200, offset=len(crons), sort_by="next_run_date", sort_order="asc"
            )
            crons += page
            if len(page) < 200:
                break
    except Exception as exc:
        return _fail(exc, args)
    if not args.all:
        crons = [c for c in crons if c["enabled"] and c.get("next_run_date")]
    if not crons:
        print("No crons." if args.all else "No active crons (use --all to include paused and finished ones).")
        return 0
    header = f"{'CRON ID':36}  {'SCHEDULE':16} {'TIMEZONE':16} {'NEXT RUN (UTC)':21} {'RUNS/24H':>8} {'RUNS':>6}  STATE"
    print(header)
    for c in crons:
        usage = c.get("usage") or {}
        state = "finished" if c.get("finished") else ("active" if c["enabled"] else "paused")
        target = f"thread {c['thread_id'][:8]}" if c["thread_id"] else "stateless"
        print(
            f"{c['cron_id']:36}  {c['schedule'][:16]:16} {(c['timezone'] or 'UTC')[:16]:16} "
            f"{_when(c.get('next_run_date')):21} {usage.get('runs_last_24h', 0):>8} {usage.get('runs', 0):>6}  "
            f"{state}, {target}"
        )
    print(f"\n{len(crons)} cron(s). Stop one with: crongraph crons pause CRON_ID  (or delete CRON_ID)")
    return 0


async def _get(args: argparse.Namespace, cron_id: str) -> dict[str, Any]:
    client = _client(args)
    return await client.http.get(f"/runs/crons/{cron_id}")  # type: ignore[no-any-return]


async def _show(args: argparse.Namespace) -> int:
    try:
        cron = await _get(args, args.cron_id)
        nxt = await _client(args).http.get(f"/runs/crons/{args.cron_id}/next", params={"count": 3})
        runs = await _client(args).http.get(f"/runs/crons/{args.cron_id}/runs", params={"limit": 5})
    except Exception as exc:
        return _fail(exc, args)
    usage = cron.get("usage") or {}
    print(f"Cron {cron['cron_id']}")
    print(f"  Schedule:   {cron['schedule']}  —  {nxt['description']}")
    print(f"  Target:     {'thread ' + cron['thread_id'] if cron['thread_id'] else 'a new thread per run'}")
    print(f"  Assistant:  {cron['assistant_id']}")
    print(
        f"  State:      {'finished' if cron.get('finished') else ('enabled' if cron['enabled'] else 'paused')}"
        f"   end_time: {_when(cron['end_time'])}   missed occurrences: {cron.get('missed_policy')}"
    )
    print(f"  Next:       {', '.join(_when(d) for d in nxt['next_run_dates']) or '-'}")
    print(
        f"  Runs:       {usage.get('runs', 0)} in total, {usage.get('runs_last_24h', 0)} in the last 24 h, "
        f"{usage.get('skipped', 0)} skipped, {usage.get('failed', 0)} failed"
    )
    if runs:
        print("  Latest runs:")
        for run in runs:
            print(
                f"    {run['run_id']}  for {_when(run['scheduled_for'])}  {run['status']:11} "
                f"created {run['delay_ms']:.1f} ms after its slot"
            )
    return 0


async def _set_enabled(args: argparse.Namespace, enabled: bool) -> int:
    try:
        cron = await _client(args).crons.update(args.cron_id, enabled=enabled)
    except Exception as exc:
        return _fail(exc, args)
    if enabled:
        print(f"Resumed {args.cron_id}; next run {_when(cron.get('next_run_date'))}.")
    else:
        print(f"Paused {args.cron_id}; it fires nothing until `crongraph crons resume {args.cron_id}`.")
    return 0


async def _pause(args: argparse.Namespace) -> int:
    return await _set_enabled(args, False)


async def _resume(args: argparse.Namespace) -> int:
    return await _set_enabled(args, True)


async def _delete(args: argparse.Namespace) -> int:
    try:
        await _client(args).crons.delete(args.cron_id)
    except Exception as exc:
        return _fail(exc, args)
    print(f"Deleted {args.cron_id}. Runs it already created are kept.")
    return 0


async def _next(args: argparse.Namespace) -> int:
    target = args.cron_id_or_schedule
    http = _client(args).http
    try:
        if len(target) == 36 and target.count("-") == 4:
            result = await http.get(f"/runs/crons/{target}/next", params={"count": args.count})
        else:
            result = await http.post(
                "/runs/crons/preview",
                json={"schedule": target, "timezone": args.timezone, "count": args.count},
            )
    except Exception as exc:
        return _fail(exc, args)
    print(result["description"])
    for when in result["next_run_dates"]:
        print(f"  {_when(when)}")
    return 0
