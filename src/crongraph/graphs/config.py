"""langgraph.json, read the way LangGraph Platform reads it. Only the runtime keys matter here (graphs,
dependencies, env); build-only keys are accepted and ignored. Every error names the file and what to fix."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson


class ConfigError(Exception):
    """A problem with langgraph.json or a graph it names; the message is meant for the user as is."""


@dataclass(frozen=True)
class GraphSpec:
    graph_id: str
    spec: str  # "path/to/file.py:var" or "package.module:var"
    description: str | None = None


@dataclass(frozen=True)
class ProjectConfig:
    path: Path | None  # None for the bundled example
    graphs: list[GraphSpec]
    dependencies: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    @property
    def base_dir(self) -> Path:
        return self.path.parent if self.path else Path(__file__).resolve().parent.parent / "examples"


EXAMPLE = ProjectConfig(
    path=None,
    graphs=[GraphSpec("agent", "crongraph.examples.agent:graph", "Answers 'What time is it?' from the clock.")],
)


def load(path: Path) -> ProjectConfig:
    try:
        raw = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found. Create it or pass --config PATH.") from None
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc}).") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a JSON object with a 'graphs' key.")
    graphs_raw = raw.get("graphs")
    if not isinstance(graphs_raw, dict) or not graphs_raw:
        raise ConfigError(f'{path}: "graphs" must be an object such as {{"agent": "./agent.py:graph"}}.')
    graphs = []
    for graph_id, value in graphs_raw.items():
        description = None
        if isinstance(value, dict):
            description = value.get("description")
            value = value.get("path")
        if not isinstance(value, str) or ":" not in value:
            raise ConfigError(
                f'{path}: graph "{graph_id}" must be "path/to/file.py:variable" or "module:variable", got {value!r}.'
            )
        graphs.append(GraphSpec(graph_id, value, description))
    dependencies = raw.get("dependencies", [])
    if not isinstance(dependencies, list) or not all(isinstance(d, str) for d in dependencies):
        raise ConfigError(f'{path}: "dependencies" must be a list of strings.')
    return ProjectConfig(path=path, graphs=graphs, dependencies=dependencies, env=_env(path, raw.get("env")))


def _env(path: Path, value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    if isinstance(value, str):
        env_file = (path.parent / value).resolve()
        if not env_file.exists():
            raise ConfigError(f'{path}: "env" names {env_file}, which does not exist.')
        result: dict[str, str] = {}
        for line in env_file.read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                key, _, val = line.removeprefix("export ").partition("=")
                result[key.strip()] = val.strip().strip("'\"")
        return result
    raise ConfigError(f'{path}: "env" must be an object or the path of a .env file.')


def apply_environment(config: ProjectConfig) -> None:
    """Make the project's env and local dependencies visible to the graphs it loads."""
    import sys

    for key, value in config.env.items():
        os.environ.setdefault(key, value)
    for dep in config.dependencies:
        candidate = (config.base_dir / dep).resolve()
        if candidate.is_dir() and str(candidate) not in sys.path:
            sys.path.insert(0, str(candidate))
