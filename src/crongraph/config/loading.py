"""Reading a project's langgraph.json into a `ProjectConfig`: validation errors become one sentence naming the
file and the key; unknown keys, keys crongraph does not honour, missing .env files and dependencies not installed
become warnings on the config (`config.warnings`, printed by the CLI's banner); build-only keys become one note.

Invariants: `load` never changes the process (no environment variable set, no sys.path entry): that is
`apply_environment`, called once the graphs are about to be imported. Existing environment variables always win
over the project's `env`.
"""

from __future__ import annotations

import difflib
import importlib.metadata
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from dotenv import dotenv_values
from pydantic import BaseModel, ValidationError

from crongraph.config.schema import (
    BUILD_ONLY_KEYS,
    AuthConfig,
    CheckpointerConfig,
    HttpConfig,
    LangGraphJson,
    Section,
    StoreConfig,
    WebhooksConfig,
)


class ConfigError(Exception):
    """A problem with langgraph.json or a graph it names; the message is meant for the user as is."""


@dataclass(frozen=True)
class GraphSpec:
    graph_id: str
    spec: str  # "path/to/file.py:var" or "package.module:var"
    description: str | None = None


@dataclass(frozen=True)
class ProjectConfig:
    """A loaded project: the validated file (`document`, None for the bundled example) and what was derived from
    it. `env` holds the resolved variables (from the object or the .env file), not yet applied."""

    path: Path | None  # None for the bundled example
    graphs: list[GraphSpec]
    dependencies: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    document: LangGraphJson | None = None
    webhooks: WebhooksConfig | None = None  # header templates rendered
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def base_dir(self) -> Path:
        return self.path.parent if self.path else Path(__file__).resolve().parent.parent / "examples"

    @property
    def http(self) -> HttpConfig:
        return (self.document.http if self.document else None) or HttpConfig()

    @property
    def store(self) -> StoreConfig | None:
        return self.document.store if self.document else None

    @property
    def checkpointer(self) -> CheckpointerConfig | None:
        return self.document.checkpointer if self.document else None

    @property
    def auth(self) -> AuthConfig | None:
        return self.document.auth if self.document else None


EXAMPLE = ProjectConfig(
    path=None,
    graphs=[GraphSpec("agent", "crongraph.examples.agent:graph", "Answers 'What time is it?' from the clock.")],
)


def load(path: Path) -> ProjectConfig:
    """Read and validate `path`. Raises ConfigError (one line) for a missing file, bad JSON or a malformed value."""
    try:
        raw = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found. Create it or pass --config PATH.") from None
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc}).") from None
    if not isinstance(raw, dict):
        raise ConfigError(f'{path}: expected a JSON object with a "graphs" key.')
    try:
        document = LangGraphJson.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {describe(exc, raw)}{_misspelled_required(exc, raw)}") from None
    warnings = unknown_keys(document)
    notes: list[str] = []
    env = _env_values(path.parent, document.env, warnings)
    warnings += _unhonoured(document)
    warnings += _missing_dependencies(path.parent, document.dependencies, notes)
    build_only = [key for key in BUILD_ONLY_KEYS if _given(document, key)]
    if build_only:
        notes.append(f"build-only keys, ignored by crongraph (it runs in its own environment): {', '.join(build_only)}")
    webhooks = document.webhooks
    if webhooks is not None and webhooks.headers:
        lookup = {**env, **os.environ}
        try:
            webhooks = webhooks.model_copy(update={"headers": render_webhook_headers(webhooks, lookup)})
        except ValueError as exc:
            raise ConfigError(f'{path}: "webhooks.headers": {exc}') from None
    graphs = [
        GraphSpec(graph_id, spec) if isinstance(spec, str) else GraphSpec(graph_id, spec.path, spec.description)
        for graph_id, spec in document.graphs.items()
    ]
    return ProjectConfig(
        path=path,
        graphs=graphs,
        dependencies=list(document.dependencies),
        env=env,
        document=document,
        webhooks=webhooks,
        warnings=warnings,
        notes=notes,
    )


def apply_environment(config: ProjectConfig) -> None:
    """Make the project's env and local dependencies visible to the graphs it loads: variables not already set are
    set; each local dependency folder (and its `src/`, for a src-layout package) goes first on sys.path."""
    for key, value in config.env.items():
        os.environ.setdefault(key, value)
    for dep in config.dependencies:
        candidate = (config.base_dir / dep).resolve()
        if not candidate.is_dir():
            continue
        for folder in (candidate / "src", candidate):
            if folder.is_dir() and str(folder) not in sys.path:
                sys.path.insert(0, str(folder))


# Errors


def describe(exc: ValidationError, raw: Any) -> str:
    """A ValidationError as one sentence: `"http.cors.max_age": Input should be a valid integer (got 'ten').`
    Union members' tags (pydantic's `str`, `GraphDef`…) are left out of the location; one error per key."""
    seen: dict[str, str] = {}
    for error in exc.errors(include_url=False):
        location = _location(error["loc"], raw, missing=error["type"] == "missing")
        if location in seen:
            continue
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] != "missing":
            message += f" (got {_short(error.get('input'))})"
        seen[location] = f'"{location}": {message}' if location else message
    # A union (`"agent": "./a.py:g"` or `{"path": …}`) fails once per member: the deepest location is the useful one.
    parts = [text for loc, text in seen.items() if not any(o.startswith(loc + ".") for o in seen if loc)]
    more = f" (and {len(parts) - 3} more)" if len(parts) > 3 else ""
    return "; ".join(parts[:3]) + more + "."


def _location(loc: tuple[int | str, ...], raw: Any, *, missing: bool) -> str:
    parts: list[str] = []
    node = raw
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(node, dict) and part in node:
            parts.append(str(part))
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            parts[-1] = f"{parts[-1]}[{part}]" if parts else f"[{part}]"
            node = node[part]
        elif missing and last:
            parts.append(str(part))
        # else: a union member's tag, not a key of the file
    return ".".join(parts)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# Warnings


def _misspelled_required(exc: ValidationError, raw: dict[str, Any]) -> str:
    """For a required top-level key that is missing, the key of the file that looks like a misspelling of it
    (`grafs` for `graphs`), since the unknown-key warning never comes when the file is refused."""
    for error in exc.errors():
        loc = error.get("loc", ())
        if error.get("type") == "missing" and len(loc) == 1 and isinstance(loc[0], str):
            close = difflib.get_close_matches(loc[0], [k for k in raw if isinstance(k, str)], n=1, cutoff=0.6)
            if close:
                return f' The file has "{close[0]}": did you mean "{loc[0]}"?'
    return ""


# JSON Schema's own keys, which editors use to validate the file (the templates ship "$schema").
_SCHEMA_KEYWORDS = frozenset({"$schema", "$id", "$comment"})


def unknown_keys(model: BaseModel, prefix: str = "") -> list[str]:
    """A warning per key the schema does not know, anywhere in the file, with the closest known key."""
    found = []
    known = [info.alias or name for name, info in type(model).model_fields.items()]
    known = [key for key in known if not key.startswith("_")]
    for key in model.model_extra or {}:
        if key in _SCHEMA_KEYWORDS:
            continue
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
        hint = f' (did you mean "{prefix}{close[0]}"?)' if close else f" (known keys: {', '.join(sorted(known))})"
        found.append(f'unknown key "{prefix}{key}" ignored{hint}')
    for name in type(model).model_fields:
        value = getattr(model, name)
        values = value.items() if isinstance(value, dict) else [(None, value)]
        for sub, item in values:
            if isinstance(item, Section):
                where = f"{prefix}{name}." if sub is None else f"{prefix}{name}.{sub}."
                found += unknown_keys(item, where)
    return found


def _given(model: BaseModel, key: str) -> bool:
    name = next((n for n, i in type(model).model_fields.items() if (i.alias or n) == key), key)
    return name in model.model_fields_set


def _unhonoured(doc: LangGraphJson) -> list[str]:
    """Keys given whose behaviour crongraph does not have yet, each with what crongraph does instead."""
    out = []
    out += _auth_unhonoured(doc)
    if doc.encryption is not None:
        out.append(f'"encryption" ({doc.encryption.path}): not supported; data is stored unencrypted.')
    if doc.priority is not None:
        out.append(f'"priority" ({doc.priority.path}): not supported; client runs go before cron runs, in order.')
    if doc.ui is not None or doc.ui_config is not None:
        out.append('"ui": generative UI bundles are not built or served (no /ui routes); the graphs run as usual.')
    if doc.store is not None and doc.store.path is not None:
        out.append(f'"store.path" ({doc.store.path}): custom stores are not loaded; crongraph\'s own store is used.')
    cp = doc.checkpointer
    if cp is not None:
        if cp.path is not None or cp.backend in ("custom", "mongo") or cp.uri is not None:
            out.append(
                '"checkpointer.path"/"backend": custom checkpointers are not loaded; crongraph keeps thread state in '
                "its own database (SQLite, or PostgreSQL with CRONGRAPH_DATABASE_URL)."
            )
        if cp.serde is not None:
            out.append('"checkpointer.serde": not supported; LangGraph\'s default serializer is used.')
    http = doc.http
    if http is not None:
        authenticating = doc.auth is not None and bool(doc.auth.path)
        if http.enable_custom_route_auth and not authenticating:
            out.append('"http.enable_custom_route_auth": no "auth.path" is configured; custom routes are open.')
        if http.middleware_order == "auth_first" and not authenticating:
            out.append(
                '"http.middleware_order": "auth_first" has nothing to order against (no authentication yet); '
                "the custom app's middleware runs on every route, inside CORS."
            )
    return out


def _auth_unhonoured(doc: LangGraphJson) -> list[str]:
    """The `auth` sub-keys crongraph does not honour (docs/auth.md)."""
    auth = doc.auth
    if auth is None:
        return []
    out = []
    if not auth.path:
        out.append(
            '"auth" has no "path": no custom authentication runs. This server is OPEN: every request is answered '
            "without authentication. Do not expose it beyond a trusted network."
        )
    if auth.allow_langsmith_api_keys:
        out.append(
            '"auth.allow_langsmith_api_keys": LangSmith API keys are not accepted; every request goes through '
            "your @auth.authenticate."
        )
    if "disable_studio_auth" in auth.model_fields_set and not auth.disable_studio_auth:
        out.append(
            '"auth.disable_studio_auth": false has no effect: crongraph has no LangSmith Studio sign-in, so '
            "Studio's requests go through your @auth.authenticate like any other."
        )
    if auth.cache is not None:
        out.append(
            '"auth.cache": not supported (the reference uses it for JavaScript auth only); @auth.authenticate '
            "runs on every request."
        )
    return out


_REQUIREMENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _missing_dependencies(base_dir: Path, dependencies: list[str], notes: list[str]) -> list[str]:
    """crongraph installs nothing: local folders go on sys.path (apply_environment); a package requirement is
    checked against the environment crongraph runs in, and named when it is not installed."""
    out = []
    for dep in dependencies:
        if dep.startswith((".", "/", "~")) or (base_dir / dep).is_dir():
            if not (base_dir / dep).expanduser().is_dir():
                out.append(f'dependency "{dep}": folder {(base_dir / dep).resolve()} does not exist.')
            continue
        match = _REQUIREMENT_NAME.match(dep)
        if "://" in dep.split("@")[0] or match is None:
            notes.append(f'dependency "{dep}" is not installed by crongraph; install it into its environment.')
            continue
        try:
            importlib.metadata.distribution(match.group(0))
        except importlib.metadata.PackageNotFoundError:
            out.append(
                f'dependency "{dep}" is not installed in crongraph\'s environment ({sys.prefix}); crongraph installs '
                f"nothing: run `pip install '{dep}'` there (or `pip install -e .` in the project)."
            )
    return out


# .env


def _env_values(base_dir: Path, value: Any, warnings: list[str]) -> dict[str, str]:
    if value is None:
        return {}
    if isinstance(value, dict):
        return {str(k): (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in value.items()}
    env_file = (base_dir / value).resolve()
    if not env_file.is_file():
        example = env_file.with_name(env_file.name + ".example")
        hint = f" ({example} exists: copy it to {env_file.name} and fill it in)" if example.is_file() else ""
        warnings.append(f'"env": {env_file} does not exist; starting without it{hint}.')
        return {}
    # python-dotenv: comments, quotes, escapes, `export`, and ${VAR} expansion (from the file, then the process).
    return {k: v for k, v in dotenv_values(env_file).items() if v is not None}


# webhooks.headers

_TEMPLATE = re.compile(r"\$\{\{\s*([^}]+?)\s*\}\}")


def render_webhook_headers(webhooks: WebhooksConfig, environ: dict[str, str]) -> dict[str, str]:
    """Header values with each "${{ env.VAR }}" replaced by VAR's value. VAR must start with `env_prefix` (the
    reference's boundary against leaking arbitrary variables) and be set. Raises ValueError naming the problem."""
    prefix = webhooks.env_prefix

    def replace(match: re.Match[str]) -> str:
        expr = match.group(1).strip()
        if not expr.startswith("env."):
            raise ValueError(f"only env.VAR references are allowed, e.g. ${{{{ env.{prefix}TOKEN }}}}, got {expr!r}")
        var = expr[len("env.") :]
        if not var or "." in var:
            raise ValueError(f"invalid env reference {var!r}; use env.VAR with no dots")
        if prefix and not var.startswith(prefix):
            raise ValueError(f"environment variable {var!r} must start with the env_prefix {prefix!r}")
        if var not in environ:
            raise ValueError(f"environment variable {var!r} is not set")
        return environ[var]

    return {name: _TEMPLATE.sub(replace, value) for name, value in (webhooks.headers or {}).items()}
