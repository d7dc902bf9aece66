"""`crongraph dev --reload`: a supervisor that runs the server as a child process and restarts it whenever a
watched file changes (watchfiles' `run_process`).

Watched: the project's folder (that of langgraph.json, or the current folder for the bundled example) and its
local `dependencies`, for Python files, `langgraph.json` (whatever its name) and `.env*` files; the data folder,
virtualenvs and caches are ignored. The port is chosen once, here, so every restart listens where the first did.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from watchfiles import Change, DefaultFilter, run_process


class ProjectFilter(DefaultFilter):
    """Python sources, the config file and .env files, outside the data folder."""

    def __init__(self, config_name: str, data_dir: Path) -> None:
        super().__init__()
        self._config_name = config_name
        self._data_dir = str(data_dir.resolve())

    def __call__(self, change: Change, path: str) -> bool:
        name = Path(path).name
        wanted = name.endswith(".py") or name == self._config_name or name.startswith(".env")
        return wanted and not path.startswith(self._data_dir) and super().__call__(change, path)


def supervise(child_args: Sequence[str], watch: Sequence[Path], config_name: str, data_dir: Path) -> int:
    """Run `python -m crongraph <child_args>` and restart it on changes until interrupted. Returns the number of
    reloads."""
    command = shlex.join([sys.executable, "-m", "crongraph", *child_args])
    folders = sorted({str(p.resolve()) for p in watch if p.exists()})
    print(f"Reload: watching {', '.join(folders)} (*.py, {config_name}, .env)", flush=True)

    def changed(changes: set[tuple[Change, str]]) -> None:
        names = sorted({Path(path).name for _, path in changes})
        print(f"Reload: {', '.join(names[:5])}{' …' if len(names) > 5 else ''} changed; restarting", flush=True)

    return run_process(
        *folders,
        target=command,
        target_type="command",
        callback=changed,
        watch_filter=ProjectFilter(config_name, data_dir),
        debounce=300,
        sigint_timeout=10,
    )
