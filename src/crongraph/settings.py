"""All configuration in one place. Every field can be set from the environment as CRONGRAPH_<NAME>;
the CLI flags override the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CRONGRAPH_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 2024
    # langgraph.json; when it does not exist in dev mode the bundled example graph is served.
    config: Path = Path("langgraph.json")
    # Where the embedded SQLite files live when no database URL is given.
    data_dir: Path = Path(".crongraph")
    database_url: str | None = None

    # Runs executing at once in this process.
    workers: int = Field(default=8, ge=1, le=1024)
    # Child processes executing runs beside the serving one (queue/workers/), each with `workers` slots; 0: runs
    # execute in the serving process only. SQLite only: on PostgreSQL, run more replicas.
    exec_workers: int = Field(default=0, ge=0, le=64)
    # A claimed run belongs to its worker for this long unless renewed; a dead worker's runs are reaped after it.
    lease_seconds: float = Field(default=30.0, gt=0)
    # On shutdown, how long open responses (waits, run and thread streams, which may never end on their own) may go
    # on before they are cut; clients reconnect to the Location they were given.
    shutdown_grace_seconds: float = Field(default=3.0, ge=0)
    # Keep-alive interval for wait, join and SSE streams.
    keepalive_seconds: float = Field(default=5.0, gt=0)
    max_body_bytes: int = 16 * 1024 * 1024
    # Run events stay in memory this long after a run ends, for late joiners.
    stream_retention_seconds: float = 300.0
    # The thread stream's event log keeps each thread's most recent runs (docs/thread-stream.md, Retention).
    thread_events_keep_runs: int = Field(default=20, ge=1)

    # Webhooks to loopback and private addresses are refused unless allowed (the reference's disable_loopback).
    webhook_allow_private: bool = False
    # Deliveries per webhook in all (the first and the retries), the wait before the first retry (doubling after
    # each), and the time one attempt may take.
    webhook_attempts: int = Field(default=3, ge=1, le=20)
    webhook_backoff_seconds: float = Field(default=1.0, ge=0)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)

    # How often threads whose ttl ran out are looked for and deleted.
    ttl_sweep_seconds: float = Field(default=60.0, gt=0)

    # Start the cron scheduler in this process (queue-only replicas may turn it off).
    scheduler: bool = True
    # Cron cost guards (docs/crons.md): the most active (enabled, unfinished) crons one owner may have, the
    # shortest interval a cron's schedule may fire at, and the pause_after_failures of crons created without one.
    # None: no limit / no default.
    max_crons_per_owner: int | None = Field(default=None, ge=1)
    min_cron_interval_seconds: float | None = Field(default=None, ge=0)
    pause_after_failures: int | None = Field(default=None, ge=1)
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    # "console" (for a human) or "json" (one object per line, for a log pipeline); `--log-format`.
    log_format: Literal["console", "json"] = "console"
    # One log event per HTTP request. None: on for `serve`, off for `dev`; `--access-log` / `--no-access-log`.
    access_log: bool | None = None

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "crongraph.db"

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.sqlite_path}"

    @property
    def is_postgres(self) -> bool:
        return self.resolved_database_url.startswith(("postgresql", "postgres"))
