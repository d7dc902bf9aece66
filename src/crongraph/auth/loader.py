"""Import the project's `langgraph_sdk.Auth` instance named by langgraph.json's `auth.path`
("./auth.py:auth" relative to the project, or "package.module:auth"). Every problem is a ConfigError naming the
file and what is wrong, so the server refuses to start rather than serve open."""

from __future__ import annotations

from pathlib import Path

from langgraph_sdk import Auth

from crongraph.config import ConfigError
from crongraph.config.imports import import_location


def load_auth(spec: str, base_dir: Path, config_name: str) -> Auth:
    """The Auth instance at `spec`, with an `@auth.authenticate` handler. Raises ConfigError."""
    where = f'{config_name}: "auth.path" ({spec})'
    location, sep, variable = spec.rpartition(":")
    if not sep or not location or not variable:
        raise ConfigError(f"{where}: expected './path/to/file.py:name' or 'package.module:name'.")
    if location.endswith((".js", ".mjs", ".cjs", ".ts", ".mts", ".cts")):
        raise ConfigError(f"{where}: JavaScript auth is not supported by crongraph; write it in Python.")
    module = import_location(location, base_dir, where, "crongraph_user_auth_")
    auth = getattr(module, variable, None)
    if not isinstance(auth, Auth):
        found = "nothing" if auth is None else f"a {type(auth).__name__}"
        raise ConfigError(f"{where}: '{variable}' is {found}; expected a langgraph_sdk.Auth() instance.")
    if auth._authenticate_handler is None:
        raise ConfigError(
            f"{where}: the Auth object has no @auth.authenticate handler; without one no request can be authenticated."
        )
    return auth
