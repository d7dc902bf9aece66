"""A throwaway PostgreSQL server for tests and benchmarks: initdb into a temporary folder, started on a free
loopback port with durability turned off (fsync, synchronous_commit: the data dies with the test anyway), and
stopped and deleted at the end.

PostgreSQL refuses to run as root, and CI runs as root: then the server runs as an unprivileged system user
(`postgres` or `nobody` when they exist, else one created with useradd) that owns the temporary folder. Each
server_factory server gets its own database from `create_database()`, so tests never see each other's rows.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from tests.support.server import free_port

SEARCH = ("/usr/local/bin", "/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/17/bin")
SERVICE_USERS = ("postgres", "nobody")
FALLBACK_USER = "crongraph-pg"


def find_binary(name: str) -> str:
    for folder in SEARCH:
        candidate = Path(folder) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"PostgreSQL's `{name}` was not found in {', '.join(SEARCH)} or on PATH")
    return found


def _unprivileged_user() -> pwd.struct_passwd | None:
    """None when we are not root (then the server simply runs as us)."""
    if os.geteuid() != 0:
        return None
    for name in SERVICE_USERS:
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    with contextlib.suppress(KeyError):
        return pwd.getpwnam(FALLBACK_USER)
    subprocess.run(["useradd", "--system", "--no-create-home", FALLBACK_USER], check=True)
    return pwd.getpwnam(FALLBACK_USER)


@dataclass
class PostgresServer:
    port: int = 0
    root: Path | None = None
    process: subprocess.Popen[bytes] | None = None
    # More server settings (`-c key=value`), e.g. the benchmarks' shared_preload_libraries.
    options: dict[str, str] = field(default_factory=dict)
    _counter: int = 0
    _databases: list[str] = field(default_factory=list)

    @property
    def admin_url(self) -> str:
        return self.url("postgres")

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self, timeout: float = 60.0) -> PostgresServer:
        user = _unprivileged_user()
        self.root = Path(tempfile.mkdtemp(prefix="crongraph-pg-"))
        data = self.root / "data"
        data.mkdir()
        run_as: dict[str, object] = {}
        if user is not None:
            for path in (self.root, data):
                os.chown(path, user.pw_uid, user.pw_gid)
            run_as = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
        env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
        if user is not None:
            env.update(HOME=str(self.root), USER=user.pw_name)
        subprocess.run(
            [find_binary("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"],
            check=True,
            capture_output=True,
            env=env,
            cwd=self.root,
            **run_as,  # type: ignore[arg-type]
        )
        self.port = free_port()
        log = open(self.root / "postgres.log", "ab")  # noqa: SIM115
        options = {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.root),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            # Three replicas each hold pools for crongraph, the savers and the listener.
            "max_connections": "400",
            "shared_buffers": "64MB",
            **self.options,
        }
        args = [find_binary("postgres"), "-D", str(data), "-p", str(self.port)]
        for key, value in options.items():
            args += ["-c", f"{key}={value}"]
        self.process = subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=self.root,
            **run_as,  # type: ignore[arg-type]
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"postgres exited with {self.process.returncode}:\n{self.log()}")
            try:
                with psycopg.connect(self.admin_url, connect_timeout=2):
                    return self
            except psycopg.OperationalError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"postgres did not accept connections within {timeout}s:\n{self.log()}")

    def log(self) -> str:
        if self.root is None:
            return ""
        try:
            return (self.root / "postgres.log").read_text()[-5000:]
        except OSError:
            return ""

    def create_database(self, prefix: str = "test") -> str:
        """A new, empty database; returns its URL."""
        self._counter += 1
        name = f"{prefix}_{os.getpid()}_{self._counter}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self._databases.append(name)
        return self.url(name)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            # SIGINT is PostgreSQL's "fast" shutdown: clients are disconnected, nothing is waited for.
            self.process.send_signal(2)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None
