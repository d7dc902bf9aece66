"""`crongraph crons list | show | next | pause | resume | delete`: see what crons exist, what they cost in runs, when
they fire next, and stop them, against a running server (through the official Python client).

The server is found without flags: `--url` (before or after the action), else $CRONGRAPH_URL, else the record a
running `crongraph dev` left in `.crongraph/server.json` (this folder or a parent; see crongraph/server_file.py),
else http://127.0.0.1:2024. Before anything else the server is asked `/ok` with a one-second connect timeout, so
"nothing there" and "something there that is not crongraph" are said at once, plainly.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx

from crongraph import server_file

DEFAULT_URL = "http://127.0.0.1:2024"
STATES = ("active", "paused", "finished")


class CliError(Exception):
    """A message for the user, printed as `crongraph: <message>` with exit code 1."""


def _url_option(parser: argparse.ArgumentParser, top: bool) -> None:
    parser.add_argument(
        "--url",
        # Given after the action it must not be reset by the action's own default: SUPPRESS leaves it unset.
        default=None if top else argparse.SUPPRESS,
        help="server URL (default: $CRONGRAPH_URL, else the `crongraph dev` recorded in .crongraph/server.json, "
        f"else {DEFAULT_URL})",
    )
    parser.add_argument(
        "--token",
        default=None if top else argparse.SUPPRESS,
        help="bearer token for a server with langgraph.json `auth`, sent as `Authorization: Bearer TOKEN` "
        "(default: $CRONGRAPH_TOKEN)",
    )


def _filters(parser: argparse.ArgumentParser, verb: str) -> None:
    parser.add_argument(
        "cron_ids",
        nargs="*",
        metavar="CRON_ID",
        help="crons by id, or by a unique beginning or end of an id (at least 4 characters)",
    )
    parser.add_argument("--assistant", help=f"{verb} the crons of this assistant (id or graph name)")
    parser.add_argument("--thread", help=f"{verb} the crons of this thread")
    parser.add_argument(
        "--metadata", action="append", default=[], metavar="KEY=VALUE", help=f"{verb} crons whose metadata match"
    )
    parser.add_argument("--state", choices=STATES, help=f"{verb} only crons in this state")
    parser.add_argument("--all", action="store_true", help=f"{verb} every cron (when no id or filter is given)")
    parser.add_argument("--dry-run", action="store_true", help="list what would be done and do nothing")


def add_parser(commands: Any) -> None:
    crons = commands.add_parser("crons", help="list, inspect, pause, resume and delete crons on a running server")
    _url_option(crons, top=True)
    actions = crons.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="every cron, with its next fire and its runs in the last 24 h")
    listing.add_argument("--thread", help="only the crons of this thread")
    listing.add_argument("--assistant", help="only the crons of this assistant (id or graph name)")
    listing.add_argument("--all", action="store_true", help="include paused and finished crons")
    listing.set_defaults(handler=_list)
    show = actions.add_parser("show", help="one cron in full, with its latest runs and how late each was")
    show.add_argument("cron_id", help="a cron id, or a unique beginning or end of one (at least 4 characters)")
    show.set_defaults(handler=_show)
    for name, handler, text in (
        ("pause", _pause, "stop crons from firing (enabled=false)"),
        ("resume", _resume, "let paused crons fire again, from their next occurrence after now"),
        ("delete", _delete, "delete crons (what happens to their runs is said for each)"),
    ):
        sub = actions.add_parser(name, help=text)
        _filters(sub, name)
        sub.set_defaults(handler=handler)
    nxt = actions.add_parser("next", help="the next occurrences of a cron, or of a schedule before you create it")
    nxt.add_argument("cron_id_or_schedule", help="a cron id, or a schedule such as '27 15 * * *'")
    nxt.add_argument("--timezone", help="IANA time zone for a schedule (default UTC)")
    nxt.add_argument("-n", "--count", type=int, default=5)
    nxt.set_defaults(handler=_next)
    for sub in (listing, show, nxt, *(actions.choices[n] for n in ("pause", "resume", "delete"))):
        _url_option(sub, top=False)
    # Every handler goes through _main: find the server, check it answers, then act.
    for sub in actions.choices.values():
        sub.set_defaults(run=sub.get_default("handler"), handler=_main)


# Finding and checking the server


def _resolve_url(args: argparse.Namespace) -> tuple[str, str]:
    """(url, where it came from)."""
    if getattr(args, "url", None):
        return args.url.rstrip("/"), "--url"
    if os.environ.get("CRONGRAPH_URL"):
        return os.environ["CRONGRAPH_URL"].rstrip("/"), "$CRONGRAPH_URL"
    found = server_file.find()
    if found is not None:
        return found[0].rstrip("/"), str(found[1])
    return DEFAULT_URL, "the default"


async def _check(url: str, source: str) -> None:
    """Raise CliError unless a crongraph server answers at `url`, within a second when nothing listens."""
    try:
        async with httpx.AsyncClient(timeout=httpx.Timeout(5.0, connect=1.0)) as http:
            response = await http.get(f"{url}/ok")
    except httpx.TransportError as exc:
        raise CliError(
            f"cannot reach a crongraph server at {url} ({source}): {type(exc).__name__}"
            f"{': ' + str(exc).rstrip('.') if str(exc) else ''}.\n"
            "  Start one with `crongraph dev`, or point at one with --url URL or CRONGRAPH_URL."
        ) from exc
    try:
        ok = response.status_code == 200 and response.json().get("ok") is True
    except (ValueError, AttributeError):
        ok = False
    if not ok:
        kind = response.headers.get("content-type", "no content type").split(";")[0]
        raise CliError(
            f"something answers at {url} ({source}), but it is not a crongraph server: GET /ok gave "
            f"{response.status_code} ({kind}).\n  Pass the crongraph server's address with --url URL."
        )


async def _main(args: argparse.Namespace) -> int:
    args.url, source = _resolve_url(args)
    try:
        await _check(args.url, source)
        code = int(await args.run(args))
        sys.stdout.flush()  # here, not at exit, so that a closed stdout is caught below
        return code
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, as a CLI killed by SIGPIPE would. Point stdout at
        # /dev/null so the interpreter's own flush at exit does not raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a command stopped by a closed pipe
    except CliError as exc:
        print(f"crongraph: {exc}", file=sys.stderr)
        return 1
    except httpx.HTTPStatusError as exc:
        print(f"crongraph: {_http_error(exc, bool(_token(args)))}", file=sys.stderr)
        return 1
    except httpx.TransportError as exc:
        print(f"crongraph: lost the server at {args.url}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


def _http_error(exc: httpx.HTTPStatusError, token_given: bool = False) -> str:
    try:
        detail = exc.response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    text = detail if isinstance(detail, str) and detail else exc.response.text.strip()[:200]
    hint = ""
    if exc.response.status_code == 401 and token_given:
        hint = " (the server refused the token given by --token or CRONGRAPH_TOKEN: check it)"
    elif exc.response.status_code == 401:
        hint = " (this server authenticates: pass --token TOKEN or set CRONGRAPH_TOKEN)"
    return f"{exc.response.status_code} from {exc.request.method} {exc.request.url.path}: {text or 'no detail'}{hint}"


def _token(args: argparse.Namespace) -> str | None:
    return getattr(args, "token", None) or os.environ.get("CRONGRAPH_TOKEN") or None


def _client(args: argparse.Namespace) -> Any:
    from langgraph_sdk import get_client

    token = _token(args)
    return get_client(url=args.url, headers={"Authorization": f"Bearer {token}"} if token else None)


# Showing times and ids


def _zone(name: str | None) -> ZoneInfo | None:
    if not name or name.upper() == "UTC":
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _as_datetime(value: Any) -> datetime | None:
    if not value:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value if isinstance(value, datetime) else None


def _when(value: Any, timezone: str | None = None) -> str:
    """`2026-12-01 06:27:00Z`, and with a zone other than UTC the same instant there: `(15:27:00 Asia/Seoul)`,
    with its date when that differs."""
    moment = _as_datetime(value)
    if moment is None:
        return "-"
    utc = moment.astimezone(UTC)
    text = f"{utc:%Y-%m-%d %H:%M:%S}Z"
    zone = _zone(timezone)
    if zone is not None:
        local = utc.astimezone(zone)
        shown = f"{local:%H:%M:%S}" if local.date() == utc.date() else f"{local:%Y-%m-%d %H:%M:%S}"
        text += f" ({shown} {timezone})"
    return text


def _short_ids(ids: list[str], minimum: int = 8) -> dict[str, str]:
    """Each id by its shortest end (at least `minimum` characters) that no other id shown shares. UUIDv7 ids made
    in the same minute share their beginning (a timestamp); their ends are random."""
    unique = set(ids)
    for length in range(minimum, 37):
        ends = [i[-length:] for i in unique]
        if len(set(ends)) == len(ends):
            return {i: ("…" + i[-length:] if length < len(i) else i) for i in unique}
    return {i: i for i in unique}


def _looks_like_id(text: str) -> bool:
    return len(text) == 36 and text.count("-") == 4


def _state(cron: dict[str, Any]) -> str:
    if cron.get("finished"):
        return "finished"
    return "active" if cron.get("enabled") else "paused"


# list and show


async def _all_crons(client: Any, **filters: Any) -> list[dict[str, Any]]:
    crons: list[dict[str, Any]] = []
    while True:
        page = await client.crons.search(
            **filters, limit=200, offset=len(crons), sort_by="next_run_date", sort_order="asc"
        )
        crons += page
        if len(page) < 200:
            return crons


async def _list(args: argparse.Namespace) -> int:
    crons = await _all_crons(_client(args), thread_id=args.thread, assistant_id=args.assistant)
    if not args.all:
        crons = [c for c in crons if _state(c) == "active"]
    if not crons:
        print("No crons." if args.all else "No active crons (use --all to include paused and finished ones).")
        return 0
    threads = _short_ids([c["thread_id"] for c in crons if c.get("thread_id")])
    header = ("CRON ID", "SCHEDULE", "NEXT RUN", "RUNS/24H", "RUNS", "STATE")
    rows: list[tuple[str, ...]] = []
    for c in crons:
        usage = c.get("usage") or {}
        target = f"thread {threads[c['thread_id']]}" if c.get("thread_id") else "new thread per run"
        nxt = _when(c.get("next_run_date"), c.get("timezone")) if _state(c) == "active" else "-"
        tokens = f", {usage['tokens_last_24h']} tokens/24h" if usage.get("tokens_last_24h") else ""
        why = " (by the server: see show)" if _state(c) == "paused" and c.get("paused_reason") else ""
        rows.append(
            (
                str(c["cron_id"]),
                str(c["schedule"]),
                nxt,
                str(usage.get("runs_last_24h", 0)),
                str(usage.get("runs", 0)),
                f"{_state(c)}{why}, {target}{tokens}",
            )
        )
    # Each column as wide as its widest cell: nothing is cut, and every row lines up with the header.
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header) - 1)]
    for row in (header, *rows):
        cells = [
            cell.rjust(width) if i in (3, 4) else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=False))
        ]
        print(f"{'  '.join(cells)}  {row[-1]}")
    print(f"\n{len(crons)} cron(s). Stop one with: crongraph crons pause CRON_ID  (or delete CRON_ID)")
    return 0


def _paused_line(cron: dict[str, Any]) -> str:
    reason = next((cron[k] for k in ("paused_reason", "pause_reason", "disabled_reason") if cron.get(k)), None)
    why = reason or "enabled set to false"
    return (
        f"paused since {_when(cron.get('updated_at'), cron.get('timezone'))}: {why}. "
        f"It fires nothing until `crongraph crons resume {cron['cron_id']}`"
    )


async def _run_error(client: Any, run: dict[str, Any]) -> str | None:
    """The error an errored run ended with (join answers {"__error__": {...}} for it), if still known."""
    try:
        result = await client.http.get(f"/threads/{run['thread_id']}/runs/{run['run_id']}/join")
    except httpx.HTTPError:
        return None
    error = result.get("__error__") if isinstance(result, dict) else None
    if not isinstance(error, dict):
        return None
    return f"{error.get('error') or 'Error'}: {error.get('message') or ''}".strip().rstrip(":")


async def _show(args: argparse.Namespace) -> int:
    client = _client(args)
    cron_id = await _resolve_id(client, args.cron_id)
    cron = await client.http.get(f"/runs/crons/{cron_id}")
    nxt = await client.http.get(f"/runs/crons/{cron_id}/next", params={"count": 3})
    runs = await client.http.get(f"/runs/crons/{cron_id}/runs", params={"limit": 5})
    fires = await client.http.get(f"/runs/crons/{cron_id}/fires", params={"limit": 20})
    not_fired = [f for f in fires if f.get("outcome") != "created"][:5]
    tz = cron.get("timezone")
    usage = cron.get("usage") or {}
    state = _state(cron)
    print(f"Cron {cron['cron_id']}")
    print(f"  Schedule:   {cron['schedule']}  —  {nxt['description']}")
    print(f"  Target:     {'thread ' + cron['thread_id'] if cron['thread_id'] else _stateless_target(cron)}")
    print(f"  Assistant:  {await _assistant_name(client, cron['assistant_id'], {})}")
    print(
        f"  State:      {state}   end_time: {_when(cron['end_time'], tz)}   "
        f"missed occurrences: {cron.get('missed_policy')}"
    )
    if state == "paused":
        print(f"  Paused:     {_paused_line(cron)}")
    elif state == "finished":
        print("  Next:       - (past its end_time: it fires no more)")
    else:
        print(f"  Next:       {', '.join(_when(d, tz) for d in nxt['next_run_dates']) or '-'}")
    errored = [r for r in runs if r.get("status") == "error"]
    ended_in_error = usage.get("failed_runs")
    if isinstance(ended_in_error, int):
        errors_text = f"{ended_in_error} ended in error"
    else:
        errors_text = f"{len(errored)} of the latest {len(runs)} ended in error"
    print(
        f"  Runs:       {usage.get('runs', 0)} created in total, {usage.get('runs_last_24h', 0)} in the last 24 h; "
        f"{errors_text}; occurrences not fired: {usage.get('skipped', 0)} skipped, "
        f"{usage.get('failed', 0)} failed to fire"
    )
    print(f"  Tokens:     {_tokens_line(cron)}")
    print(f"  Guards:     {_guards_line(cron)}")
    if runs:
        print("  Latest runs:")
        for run in runs:
            print(
                f"    {run['run_id']}  for {_when(run['scheduled_for'], tz)}  {run['status']:11} "
                f"created {run['delay_ms']:.1f} ms after its slot"
            )
            if run.get("status") == "error":
                print(f"      error: {await _run_error(client, run) or 'no longer known'}")
    elif not cron["thread_id"] and usage.get("runs"):
        print("  Latest runs: none to show: each ran on a temporary thread, deleted with it (on_run_completed=delete)")
    if not_fired:
        print("  Not fired:")
        for fire in not_fired:
            print(f"    {_when(fire['scheduled_for'], tz)}  {fire['outcome']:8} {fire.get('detail') or ''}")
    return 0


def _tokens_line(cron: dict[str, Any]) -> str:
    """Token usage of the cron's runs, against its daily budget when it has one."""
    usage = cron.get("usage") or {}
    text = f"{usage.get('tokens', 0)} in total, {usage.get('tokens_last_24h', 0)} in the last 24 h"
    if cron.get("max_tokens_per_day"):
        text += f" (budget: {cron['max_tokens_per_day']} per 24 h, then it pauses)"
    return text


def _guards_line(cron: dict[str, Any]) -> str:
    """The cost guards a cron has (docs/crons.md), in one line."""
    parts = [f"overlap {cron.get('overlap_policy') or 'allow'}"]
    if cron.get("max_runs") is not None:
        parts.append(f"max_runs {cron['max_runs']} ({cron.get('remaining_runs')} left)")
    if cron.get("start_time"):
        parts.append(f"from {_when(cron['start_time'], cron.get('timezone'))}")
    if cron.get("jitter_seconds"):
        parts.append(f"jitter up to {cron['jitter_seconds']} s")
    if cron.get("pause_after_failures"):
        parts.append(
            f"pauses after {cron['pause_after_failures']} failed runs in a row "
            f"({cron.get('consecutive_failures', 0)} so far)"
        )
    return ", ".join(parts)


def _stateless_target(cron: dict[str, Any]) -> str:
    if (cron.get("on_run_completed") or "delete") == "keep":
        return "a new thread per run, kept after the run (on_run_completed=keep)"
    return "a new thread per run, deleted with its run when it ends (on_run_completed=delete)"


# pause, resume, delete: by id or in bulk by filter


async def _resolve_id(client: Any, given: str) -> str:
    """A full cron id, or the one cron whose id begins or ends with `given`. Raises CliError when none or several
    do (naming up to three of them). UUIDv7 ids made in the same minute share their beginning: give an end then."""
    if _looks_like_id(given):
        return given
    text = given.lstrip("…").lower()
    if len(text) < 4:
        raise CliError(f"{given!r} is too short to name a cron: give its id, or at least its last 8 characters")
    ids = [str(c["cron_id"]) for c in await _all_crons(client)]
    matches = [i for i in ids if i.endswith(text) or i.startswith(text)]
    if not matches:
        raise CliError(f"no cron id begins or ends with {given!r}")
    if len(matches) > 1:
        more = "…" if len(matches) > 3 else ""
        raise CliError(
            f"{given!r} names {len(matches)} crons ({', '.join(matches[:3])}{more}): give more of the id "
            "(ids made in the same minute share their beginning; their ends differ)"
        )
    return matches[0]


def _metadata(pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CliError(f"--metadata takes KEY=VALUE, not {pair!r}")
        try:
            out[key] = json.loads(value)  # numbers, booleans, quoted strings
        except ValueError:
            out[key] = value
    return out


async def _select(args: argparse.Namespace, client: Any) -> list[dict[str, Any]]:
    filtered = bool(args.assistant or args.thread or args.metadata or args.state)
    if not (args.cron_ids or filtered or args.all):
        raise CliError(
            f"name the crons to {args.action}: by id, or by --assistant, --thread, --metadata KEY=VALUE, --state "
            "(or --all for every cron); add --dry-run to see the list first"
        )
    if args.cron_ids:
        crons = [await client.http.get(f"/runs/crons/{await _resolve_id(client, i)}") for i in args.cron_ids]
    else:
        crons = await _all_crons(
            client,
            assistant_id=args.assistant,
            thread_id=args.thread,
            metadata=_metadata(args.metadata) or None,
        )
    if args.cron_ids and (args.assistant or args.thread or args.metadata):
        raise CliError("give crons by id or by filter, not both (--state may narrow ids)")
    if args.state:
        crons = [c for c in crons if _state(c) == args.state]
    return crons


async def _assistant_name(client: Any, assistant_id: str, seen: dict[str, str]) -> str:
    """How a person knows the assistant: its graph, and its name when that differs (`agent`, `nightly (graph
    agent)`); its id when it cannot be fetched. `seen` caches one fetch per assistant."""
    if assistant_id not in seen:
        try:
            assistant = await client.assistants.get(assistant_id)
        except httpx.HTTPError:
            seen[assistant_id] = assistant_id
        else:
            graph, name = assistant.get("graph_id"), assistant.get("name")
            if name and graph and name != graph:
                seen[assistant_id] = f"{name} (graph {graph})"
            else:
                seen[assistant_id] = str(name or graph or assistant_id)
    return seen[assistant_id]


def _describe(cron: dict[str, Any], assistant: str) -> str:
    target = f"thread {cron['thread_id']}" if cron.get("thread_id") else "new thread per run"
    return f"{cron['cron_id']}  {cron['schedule']:16} {_state(cron):8} {assistant}  {target}"


async def _bulk(args: argparse.Namespace, act: Any, verb: str) -> int:
    client = _client(args)
    crons = await _select(args, client)
    if not crons:
        print(f"No cron matches: nothing to {args.action}.")
        return 0
    if args.dry_run:
        print(f"Would {args.action} {len(crons)} cron(s):")
        names: dict[str, str] = {}
        for cron in crons:
            print(f"  {_describe(cron, await _assistant_name(client, cron['assistant_id'], names))}")
        return 0
    for cron in crons:
        print(await act(client, cron))
    if len(crons) > 1:
        print(f"{verb} {len(crons)} crons.")
    return 0


async def _pause(args: argparse.Namespace) -> int:
    async def pause(client: Any, cron: dict[str, Any]) -> str:
        await client.crons.update(cron["cron_id"], enabled=False)
        return f"Paused {cron['cron_id']}; it fires nothing until `crongraph crons resume {cron['cron_id']}`."

    return await _bulk(args, pause, "Paused")


async def _resume(args: argparse.Namespace) -> int:
    async def resume(client: Any, cron: dict[str, Any]) -> str:
        updated = await client.crons.update(cron["cron_id"], enabled=True)
        return f"Resumed {cron['cron_id']}; next run {_when(updated.get('next_run_date'), updated.get('timezone'))}."

    return await _bulk(args, resume, "Resumed")


async def _delete(args: argparse.Namespace) -> int:
    async def delete(client: Any, cron: dict[str, Any]) -> str:
        await client.crons.delete(cron["cron_id"])
        runs = (cron.get("usage") or {}).get("runs", 0)
        if cron.get("thread_id"):
            fate = f"the runs it created are kept on thread {cron['thread_id']}"
        elif (cron.get("on_run_completed") or "delete") == "keep":
            fate = f"its {runs} run(s) are kept, each on its own thread (on_run_completed=keep)"
        else:
            fate = "its runs ran on temporary threads, deleted with them when each ended (on_run_completed=delete)"
        return f"Deleted {cron['cron_id']}; {fate}."

    return await _bulk(args, delete, "Deleted")


async def _next(args: argparse.Namespace) -> int:
    target = args.cron_id_or_schedule
    http = _client(args).http
    if _looks_like_id(target):
        result = await http.get(f"/runs/crons/{target}/next", params={"count": args.count})
        cron = await http.get(f"/runs/crons/{target}")
        timezone = cron.get("timezone")
    else:
        result = await http.post(
            "/runs/crons/preview", json={"schedule": target, "timezone": args.timezone, "count": args.count}
        )
        timezone = args.timezone
    print(result["description"])
    for when in result["next_run_dates"]:
        print(f"  {_when(when, timezone)}")
    return 0
