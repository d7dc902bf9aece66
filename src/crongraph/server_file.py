"""Where a running server listens, recorded in its data folder (`.crongraph/server.json`) so that
`crongraph crons …` finds a `crongraph dev` without flags, even on a fallback port.

Shape: {"url": "http://127.0.0.1:2025", "pid": 1234, "version": "0.1.0", "started_at": "<ISO 8601 UTC>"}.
A record is trusted only while its process is alive (a kill -9 leaves a stale file behind: it is ignored), and
a server removes only its own record when it stops.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

from crongraph import __version__

NAME = "server.json"
DEFAULT_DATA_DIR = ".crongraph"


def record(data_dir: Path, url: str) -> Path | None:
    """Write this process's record; None (and nothing written) if the folder is not writable."""
    path = data_dir / NAME
    body = {"url": url, "pid": os.getpid(), "version": __version__, "started_at": datetime.now(UTC).isoformat()}
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(body) + "\n")
        tmp.replace(path)  # readers never see half a file
    except OSError:
        return None
    return path


def remove(data_dir: Path) -> None:
    """Remove the record if it is this process's own."""
    path = data_dir / NAME
    try:
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError, AttributeError):
        pass


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, another user's
    return True


def read(data_dir: Path) -> str | None:
    """The URL recorded in `data_dir`, if its server process is alive."""
    try:
        body = json.loads((data_dir / NAME).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(body, dict) or not isinstance(body.get("url"), str) or not _alive(body.get("pid")):
        return None
    return str(body["url"])


def find(start: Path | None = None) -> tuple[str, Path] | None:
    """The URL of a live server recorded in `$CRONGRAPH_DATA_DIR`, or in `.crongraph/` of `start` (default: the
    current folder) or one of its parents, with the record's path."""
    env = os.environ.get("CRONGRAPH_DATA_DIR")
    folders = [Path(env)] if env else []
    here = (start or Path.cwd()).resolve()
    folders += [folder / DEFAULT_DATA_DIR for folder in (here, *here.parents)]
    for folder in folders:
        url = read(folder)
        if url is not None:
            return url, folder / NAME
    return None
