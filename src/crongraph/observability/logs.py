"""Log setup, once per process: every record (crongraph's structlog events, the standard-library loggers of
crongraph, uvicorn and libraries) goes through one structlog formatter to stderr, rendered for a human (the
default) or as one JSON object per line (`--log-format json`, CRONGRAPH_LOG_FORMAT=json).

An expected cancellation at shutdown (uvicorn cutting an open stream after the grace period) is not an error:
its "Exception in ASGI application" traceback is dropped.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any, Literal

import structlog

LogFormat = Literal["console", "json"]
FORMATS: tuple[str, ...] = ("console", "json")


class _ShutdownCancellation(logging.Filter):
    """Drops uvicorn's report of a response task cancelled at shutdown: a stream cut after the grace period is
    the documented behaviour, not an application error."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("uvicorn"):
            return True
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, asyncio.CancelledError):
            return False
        message = record.getMessage()
        if message.startswith("Cancel ") and "timeout graceful shutdown exceeded" in message:
            # Cutting open streams after the grace period is the documented behaviour, not an error.
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg = "shutdown: open responses (streams, waits) cut after CRONGRAPH_SHUTDOWN_GRACE_SECONDS"
            record.args = ()
        return True


def configure(fmt: str = "console", level: str = "info") -> None:
    """Route all logging through structlog. `fmt`: "console" or "json"; `level`: a logging level name.
    Raises ValueError for an unknown format or level (Settings validates both first)."""
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    renderer: Any
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer(default=str)
        final: list[Any] = [structlog.processors.dict_tracebacks, renderer]
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
        final = [renderer]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *final],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    handler.addFilter(_ShutdownCancellation())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(numeric)
    # uvicorn's own handlers would print a second, differently formatted copy; its access log is replaced by
    # crongraph's (observability/http.py), which knows the route template.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    # Alembic narrates every migration step at INFO; a user only needs to hear about problems.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, numeric))
