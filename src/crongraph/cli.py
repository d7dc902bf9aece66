"""The `crongraph` command.

crongraph dev      the server for development: ./langgraph.json or the bundled example, SQLite in ./.crongraph
crongraph serve    the same server for deployments: configuration from CRONGRAPH_* variables and flags
crongraph crons …  see and stop what your crons do, against a running server (crongraph/cli_crons.py)

Startup is ordered so that every failure is one or two lines naming the cause and the fix (exit code 2 for a bad
setting, project or taken port, 1 for a database that cannot be used), and the banner appears only once the server
answers: settings → langgraph.json and graphs → port → runtime (database, migrations, services) → listening →
banner and `.crongraph/server.json` (where `crongraph crons` finds it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crongraph import __version__, server_file

if TYPE_CHECKING:
    # Imported where used: `crongraph crons …` must start fast, without the server's modules.
    from pydantic import ValidationError

    from crongraph.graphs.config import ProjectConfig
    from crongraph.settings import Settings

log = logging.getLogger("crongraph")

# With 2024 taken, `dev` tries the next few ports before a random one, so a restart usually lands where it was.
FALLBACK_PORTS = 10

# CLI flag for each setting it overrides: a bad value is reported under the name the user typed.
_FLAGS = {
    "host": "--host",
    "port": "--port",
    "config": "--config",
    "data_dir": "--db",
    "database_url": "--database-url",
    "workers": "--workers",
    "exec_workers": "--exec-workers",
    "log_format": "--log-format",
    "access_log": "--access-log",
}


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _fallback_port(host: str, taken: int) -> int:
    for port in range(taken + 1, min(taken + 1 + FALLBACK_PORTS, 65536)):
        if _port_free(host, port):
            return port
    return _free_port(host)


def _project(settings: Settings, explicit: bool, dev: bool) -> ProjectConfig:
    from crongraph.graphs.config import EXAMPLE
    from crongraph.graphs.config import load as load_config

    if settings.config.exists() or explicit or not dev:
        return load_config(settings.config)
    return EXAMPLE


def _server_args(parser: argparse.ArgumentParser, dev: bool) -> None:
    parser.add_argument("--host", help="interface to listen on (default 127.0.0.1)")
    # Numbers are parsed by Settings, not argparse: a bad value is then one line naming it and the allowed range,
    # as for the CRONGRAPH_ variable, instead of argparse's usage text.
    parser.add_argument("--port", help="port to listen on (default 2024)")
    parser.add_argument("--config", type=Path, help="langgraph.json (default ./langgraph.json)")
    parser.add_argument("--db", type=Path, dest="data_dir", help="folder for the SQLite files (default ./.crongraph)")
    parser.add_argument("--database-url", help="postgresql://… to use PostgreSQL instead of SQLite")
    parser.add_argument("--workers", help="runs executing at once (default 8)")
    parser.add_argument(
        "--exec-workers",
        help="child processes executing runs beside the server, each with --workers slots (default 0; SQLite only)",
    )
    parser.add_argument("--no-scheduler", action="store_true", help="do not fire crons in this process")
    parser.add_argument(
        "--log-format", choices=("console", "json"), help="log lines for a human (default) or one JSON object each"
    )
    parser.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=f"one log event per HTTP request (default: {'off' if dev else 'on'}; CRONGRAPH_ACCESS_LOG)",
    )
    if dev:
        parser.add_argument(
            "--reload", action="store_true", help="restart when the graphs, langgraph.json or .env change"
        )
    # Internal: a reload child listens on the port its supervisor chose, never on a fallback.
    parser.add_argument("--strict-port", action="store_true", help=argparse.SUPPRESS)


def _settings(args: argparse.Namespace, dev: bool) -> Settings:
    overrides: dict[str, Any] = {
        k: v
        for k, v in {
            "host": args.host,
            "port": args.port,
            "config": args.config,
            "data_dir": args.data_dir,
            "database_url": args.database_url,
            "workers": args.workers,
            "exec_workers": args.exec_workers,
            "log_format": args.log_format,
            "access_log": args.access_log,
        }.items()
        if v is not None
    }
    if args.no_scheduler:
        overrides["scheduler"] = False
    from crongraph.settings import Settings

    settings = Settings(**overrides)
    if settings.access_log is None:
        settings.access_log = not dev
    return settings


def _setting_errors(exc: ValidationError, args: argparse.Namespace) -> list[str]:
    """One line per bad setting, under the name the user gave it (flag or CRONGRAPH_ variable), with the values
    a number may take."""
    lines = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else "?"
        flag = _FLAGS.get(field)
        name = flag if flag and getattr(args, field, None) is not None else f"CRONGRAPH_{field.upper()}"
        allowed = _allowed(field)
        lines.append(
            f"crongraph: {name}={error.get('input')!s}: {error['msg']}" + (f"; allowed: {allowed}" if allowed else "")
        )
    return lines


def _allowed(field: str) -> str:
    """What a numeric setting accepts, from its declared bounds: "an integer from 0 to 64", "a number > 0";
    empty for other settings."""
    from crongraph.settings import Settings

    info = Settings.model_fields.get(field)
    if info is None:
        return ""
    if info.annotation is int:
        kind = "an integer"
    elif info.annotation is float:
        kind = "a number"
    else:
        return ""
    bounds = {k: getattr(m, k) for m in info.metadata for k in ("ge", "gt", "le", "lt") if hasattr(m, k)}
    if "ge" in bounds and "le" in bounds:
        return f"{kind} from {bounds['ge']} to {bounds['le']}"
    parts = [
        f"{symbol} {bounds[k]}" for k, symbol in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")) if k in bounds
    ]
    return f"{kind} {' and '.join(parts)}" if parts else kind


def _startup_failure(exc: BaseException, settings: Settings) -> str:
    """The one or two lines that say why the runtime could not start and what to do."""
    from crongraph.graphs.config import ConfigError

    where = _redact(settings.resolved_database_url) if settings.is_postgres else f"{settings.data_dir.resolve()}/"
    cause = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    first = cause[0] if cause else type(exc).__name__
    if isinstance(exc, ConfigError):
        return str(exc)
    text = f"{type(exc).__name__}: {exc}"
    if "Can't locate revision" in text or "No such revision" in text:
        return f"the database {where} was migrated by a newer crongraph ({first}).\n" + (
            "  Upgrade crongraph, or point CRONGRAPH_DATABASE_URL (--database-url) at another database."
            if settings.is_postgres
            else "  Upgrade crongraph, or use another data folder (--db or CRONGRAPH_DATA_DIR)."
        )
    if settings.is_postgres and ("OperationalError" in text or isinstance(exc, OSError)):
        return (
            f"cannot connect to the database {where}: {first}\n"
            "  Check CRONGRAPH_DATABASE_URL (--database-url) and that PostgreSQL is running and reachable."
        )
    if not settings.is_postgres and ("OperationalError" in text or isinstance(exc, OSError)):
        return (
            f"cannot open the SQLite database in {where}: {first}\n"
            "  Check that the folder is writable and not on a network file system, or choose another with --db."
        )
    return f"could not start: {type(exc).__name__}: {first}\n  Run with CRONGRAPH_LOG_LEVEL=debug for the traceback."


def _banner(
    settings: Settings, project: ProjectConfig, graph_ids: list[str], dev: bool, exec_pids: list[int] | None = None
) -> list[str]:
    url = f"http://{settings.host}:{settings.port}{project.http.mount_prefix or ''}"
    data = settings.resolved_database_url if settings.is_postgres else f"{settings.data_dir.resolve()}/"
    source = str(project.path) if project.path else "bundled example (no langgraph.json here)"
    authenticating = bool(project.auth and project.auth.path)
    if project.path is None:
        # The bundled example's own question; a project's graphs take inputs only the project knows.
        example = '{"assistant_id": "agent", "input": {"messages": [{"role": "user", "content": "What time is it?"}]}}'
    else:
        example = f'{{"assistant_id": "{graph_ids[0]}", "input": {{}}}}' if graph_ids else ""
    token = " -H 'Authorization: Bearer YOUR_TOKEN'" if authenticating else ""
    lines = [
        f"crongraph {__version__} {'dev' if dev else 'serve'}",
        f"  API:     {url}      docs: {url}/docs",
        *([] if project.http.disable_runs else [f"  Crons:   {url}/dashboard   (the cron dashboard, in your browser)"]),
        f"  Graphs:  {', '.join(graph_ids)}   from {source}",
        f"  Data:    {_redact(data)}",
        *([_workers_line(settings, exec_pids)] if settings.exec_workers else []),
        *(
            [f"  Auth:    {project.auth.path} (every API request needs credentials; /ok and /docs stay public)"]
            if authenticating and project.auth
            else []
        ),
        *(
            [f"  Try:     curl -s {url}/runs/wait -H 'content-type: application/json'{token} -d '{example}'"]
            if example
            else []
        ),
    ]
    lines += [f"  Note:    {note}" for note in project.notes]
    lines += [f"  WARNING: {warning}" for warning in project.warnings]
    return lines


def _workers_line(settings: Settings, pids: list[int] | None) -> str:
    """The banner's line on execution workers: how many, their pids, and the slots they add."""
    count = settings.exec_workers
    alive = sorted(pids or [])
    started = f"pid{'s' if len(alive) != 1 else ''} {', '.join(map(str, alive))}" if alive else "none started"
    if alive and len(alive) < count:
        started += f"; {count - len(alive)} not running"
    return (
        f"  Workers: {count} execution worker process{'es' if count != 1 else ''} ({started}), "
        f"{settings.workers} run slots each beside the server's {settings.workers}"
    )


def _serve(args: argparse.Namespace, dev: bool) -> int:
    from pydantic import ValidationError

    from crongraph.graphs.config import ConfigError

    try:
        settings = _settings(args, dev)
    except ValidationError as exc:
        print("\n".join(_setting_errors(exc, args)), file=sys.stderr)
        return 2
    if settings.exec_workers and settings.is_postgres:
        name = "--exec-workers" if args.exec_workers is not None else "CRONGRAPH_EXEC_WORKERS"
        print(
            f"crongraph: {name}={settings.exec_workers}: execution workers serve SQLite only; on PostgreSQL run more "
            "`crongraph serve` replicas against the same database instead.",
            file=sys.stderr,
        )
        return 2
    from crongraph.observability import logs

    logs.configure(settings.log_format, settings.log_level)
    from crongraph.app import create_app
    from crongraph.runtime import Runtime

    try:
        project = _project(settings, args.config is not None, dev)
        if dev and getattr(args, "reload", False):
            return _reload(args, settings, project)
        from crongraph.graphs.registry import GraphRegistry

        graphs = GraphRegistry.load(project)
        runtime = Runtime(settings, graphs, project=project)
        # Imports the project's http.app, after the graphs so that it sees the project's env and sys.path.
        app = create_app(runtime, project, private_network=dev)
    except ConfigError as exc:
        print(f"crongraph: {exc}", file=sys.stderr)
        return 2
    if settings.port == 0:
        settings.port = _free_port(settings.host)  # so that the banner can say where it listens
    if not _port_free(settings.host, settings.port):
        if not dev or args.strict_port:
            print(
                f"crongraph: port {settings.port} on {settings.host} is already in use.\n"
                "  Stop what is using it, or choose another with --port (or CRONGRAPH_PORT).",
                file=sys.stderr,
            )
            return 2
        taken = settings.port
        settings.port = _fallback_port(settings.host, taken)
        print(f"Port {taken} is in use; using {settings.port} instead (pass --port to choose).", flush=True)
    return _run(settings, project, graphs.ids, runtime, app, dev)


def _run(settings: Settings, project: ProjectConfig, graph_ids: list[str], runtime: Any, app: Any, dev: bool) -> int:
    import uvicorn
    from uvicorn._compat import asyncio_run

    record = dev or not settings.is_postgres
    url = f"http://{settings.host}:{settings.port}{project.http.mount_prefix or ''}"

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started:
                exec_workers = getattr(runtime, "exec_workers", None)
                pids = exec_workers.pids if exec_workers is not None else None
                print("\n".join(_banner(settings, project, graph_ids, dev, pids)), flush=True)
                if record:
                    server_file.record(settings.data_dir, url)

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            # Here, not after serve(): uvicorn re-raises SIGTERM/SIGINT once serving ends, which ends the process.
            if record:
                server_file.remove(settings.data_dir)
            await super().shutdown(sockets)

    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,  # logging is crongraph's (observability/logs.py)
        log_level="warning",
        access_log=False,  # crongraph's own access log knows the route template
        http="httptools",
        # Without a limit, one open thread stream would hold the server up forever.
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,  # type: ignore[arg-type]  # a float works
    )
    server = Server(config)

    async def main() -> int:
        try:
            await runtime.start()
        except Exception as exc:
            log.debug("startup failed", exc_info=exc)
            print(f"crongraph: {_startup_failure(exc, settings)}", file=sys.stderr)
            # Close what the half-started runtime opened, so that no connection is garbage-collected noisily
            # after the loop closed (a stray "Exception ignored" under the one-line message).
            db = getattr(runtime, "db", None)
            if db is not None:
                with contextlib.suppress(Exception):
                    await db.dispose()
            return 1
        # What startup loaded (graphs, LangGraph, SQLAlchemy's caches) lives as long as the process: frozen, the
        # collector no longer scans it, and with young collections rarer a run costs ~0.2 ms less CPU in GC.
        gc.freeze()
        gc.set_threshold(20_000, 20, 20)
        try:
            await server.serve()
        finally:
            await runtime.stop()  # normally already stopped by the app's lifespan; idempotent
        return 0

    try:
        return asyncio_run(main(), loop_factory=config.get_loop_factory())
    finally:
        if record:
            server_file.remove(settings.data_dir)  # also when startup failed half way


def _reload(args: argparse.Namespace, settings: Settings, project: ProjectConfig) -> int:
    from crongraph.cli_reload import supervise

    port = settings.port or _free_port(settings.host)
    if not _port_free(settings.host, port):
        taken, port = port, _fallback_port(settings.host, port)
        print(f"Port {taken} is in use; using {port} instead (pass --port to choose).", flush=True)
    child = [a for a in (args.argv or []) if a != "--reload"]
    child = [*_without_option(child, "--port"), "--port", str(port), "--strict-port"]
    base = project.base_dir if project.path else Path.cwd()
    # Local dependencies ("." or "./libs/tools") hold code the graphs import; package names are not folders.
    watch = [base, *(base / d for d in project.dependencies if (base / d).is_dir())]
    config_name = project.path.name if project.path else "langgraph.json"
    supervise(child, watch, config_name, settings.data_dir)
    return 0


def _without_option(argv: list[str], option: str) -> list[str]:
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == option:
            skip = True
        elif not arg.startswith(option + "="):
            out.append(arg)
    return out


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["exec-worker"]:
        # Internal, not in the help: an execution worker started by `serve --exec-workers N` (queue/workers/),
        # given its end of the pipe to the server as a file descriptor.
        from crongraph.queue.workers.worker import main as worker_main

        sys.exit(worker_main(argv[1:]))
    parser = argparse.ArgumentParser(
        prog="crongraph", description="LangGraph Platform API server with exactly-once crons."
    )
    parser.add_argument("--version", action="version", version=f"crongraph {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    _server_args(commands.add_parser("dev", help="start the development server"), dev=True)
    _server_args(commands.add_parser("serve", help="start the server for deployments"), dev=False)
    from crongraph.cli_crons import add_parser as add_crons

    add_crons(commands)
    args = parser.parse_args(argv)
    args.argv = argv
    if args.command in ("dev", "serve"):
        try:
            sys.exit(_serve(args, dev=args.command == "dev"))
        except KeyboardInterrupt:
            sys.exit(0)
    sys.exit(asyncio.run(args.handler(args)))
