"""The `crongraph` command.

crongraph dev      the server for development: ./langgraph.json or the bundled example, SQLite in ./.crongraph
crongraph serve    the same server for deployments: configuration from CRONGRAPH_* variables and flags
crongraph crons …  see and stop what your crons do, against a running server (crongraph/cli_crons.py)
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import sys
from pathlib import Path

from crongraph import __version__
from crongraph.graphs.config import EXAMPLE, ConfigError, ProjectConfig
from crongraph.graphs.config import load as load_config
from crongraph.settings import Settings


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _project(settings: Settings, explicit: bool, dev: bool) -> ProjectConfig:
    if settings.config.exists() or explicit or not dev:
        return load_config(settings.config)
    return EXAMPLE


def _server_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default 2024)")
    parser.add_argument("--config", type=Path, help="langgraph.json (default ./langgraph.json)")
    parser.add_argument("--db", type=Path, dest="data_dir", help="folder for the SQLite files (default ./.crongraph)")
    parser.add_argument("--database-url", help="postgresql://… to use PostgreSQL instead of SQLite")
    parser.add_argument("--workers", type=int, help="runs executing at once (default 8)")
    parser.add_argument("--no-scheduler", action="store_true", help="do not fire crons in this process")


def _serve(args: argparse.Namespace, dev: bool) -> int:
    overrides = {
        k: v
        for k, v in {
            "host": args.host,
            "port": args.port,
            "config": args.config,
            "data_dir": args.data_dir,
            "database_url": args.database_url,
            "workers": args.workers,
        }.items()
        if v is not None
    }
    if args.no_scheduler:
        overrides["scheduler"] = False
    settings = Settings(**overrides)
    from crongraph.app import create_app
    from crongraph.runtime import Runtime

    try:
        project = _project(settings, args.config is not None, dev)
        from crongraph.graphs.registry import GraphRegistry

        graphs = GraphRegistry.load(project)
        # Imports the project's http.app, after the graphs so that it sees the project's env and sys.path.
        app = create_app(Runtime(settings, graphs, project=project), project, private_network=dev)
    except ConfigError as exc:
        print(f"crongraph: {exc}", file=sys.stderr)
        return 2
    if settings.port == 0:
        settings.port = _free_port(settings.host)  # so that the banner can say where it listens
    if not _port_free(settings.host, settings.port):
        if not dev:
            print(
                f"crongraph: port {settings.port} on {settings.host} is already in use. "
                "Stop what is using it or pass --port.",
                file=sys.stderr,
            )
            return 2
        taken = settings.port
        settings.port = _free_port(settings.host)
        print(f"Port {taken} is in use; using {settings.port} instead (pass --port to choose).")
    import uvicorn

    url = f"http://{settings.host}:{settings.port}{project.http.mount_prefix or ''}"
    data = settings.resolved_database_url if settings.is_postgres else f"{settings.data_dir.resolve()}/"
    source = str(project.path) if project.path else "bundled example (no langgraph.json here)"
    print(f"crongraph {__version__} {'dev' if dev else 'serve'}")
    print(f"  API:     {url}      docs: {url}/docs")
    print(f"  Graphs:  {', '.join(graphs.ids)}   from {source}")
    print(f"  Data:    {_redact(data)}")
    example = '{"assistant_id": "agent", "input": {"messages": [{"role": "user", "content": "What time is it?"}]}}'
    print(f"  Try:     curl -s {url}/runs/wait -H 'content-type: application/json' -d '{example}'")
    for note in project.notes:
        print(f"  Note:    {note}")
    for warning in project.warnings:
        print(f"  WARNING: {warning}")
    sys.stdout.flush()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Alembic narrates every migration step at INFO; a user only needs to hear about problems.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.getLogger().level))
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        access_log=False,
        http="httptools",
        # Without a limit, one open thread stream would hold the server up forever.
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,
    )
    uvicorn.Server(config).run()
    return 0


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="crongraph", description="LangGraph Platform API server with exactly-once crons."
    )
    parser.add_argument("--version", action="version", version=f"crongraph {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    _server_args(commands.add_parser("dev", help="start the development server"))
    _server_args(commands.add_parser("serve", help="start the server for deployments"))
    from crongraph.cli_crons import add_parser as add_crons

    add_crons(commands)
    args = parser.parse_args(argv)
    if args.command in ("dev", "serve"):
        try:
            sys.exit(_serve(args, dev=args.command == "dev"))
        except KeyboardInterrupt:
            sys.exit(0)
    sys.exit(asyncio.run(args.handler(args)))
