"""Wiring langgraph.json's `auth` into the app: load the Auth object, build the middleware for the global stack,
and describe the security schemes in /openapi.json (`auth.openapi`, as the reference: `securitySchemes`,
a default `security`, and per-path `paths.{path}.{method}` overrides of the built-in routes).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.middleware import Middleware

from crongraph.auth.authenticate import Authenticator, wanted_parameters
from crongraph.auth.handlers import Handlers
from crongraph.auth.loader import load_auth
from crongraph.auth.middleware import AuthMiddleware
from crongraph.config import ConfigError, ProjectConfig
from crongraph.config.schema import SecurityConfig

log = logging.getLogger("crongraph.auth")


def auth_middleware(project: ProjectConfig, api: FastAPI, user_app: Starlette | None) -> list[Middleware]:
    """The middleware authenticating requests (empty without `auth.path`). Raises ConfigError for an auth file
    that cannot be used, so the server never starts open by mistake."""
    config = project.auth
    if config is None or not config.path:
        return []
    name = str(project.path) if project.path else "bundled example"
    auth = load_auth(config.path, project.base_dir, name)
    try:
        assert auth._authenticate_handler is not None
        wanted_parameters(auth._authenticate_handler)
    except ValueError as exc:
        raise ConfigError(f'{name}: "auth.path" ({config.path}): {exc}.') from None
    handlers = Handlers(auth)
    uncovered = handlers.uncovered()
    if uncovered:
        log.warning(
            "auth: no @auth.on handler covers %s; those requests are allowed unfiltered once authenticated. "
            "Add a global @auth.on handler (deny by default) to close them.",
            ", ".join(uncovered),
        )
    if handlers.store_without_its_own_handler():
        log.warning(
            "auth: the store has no @auth.on.store handler; a filter your other handlers return cannot separate "
            "users' store items (get, put and delete reach any namespace). Scope namespaces per user in an "
            "@auth.on.store handler (docs/auth.md, The store)."
        )
    if config.openapi is not None and api.openapi_url:
        _describe_security(api, config.openapi)
    http = project.http
    return [
        Middleware(
            AuthMiddleware,
            authenticator=Authenticator(auth),
            handlers=handlers,
            mount_prefix=http.mount_prefix,
            custom_routes=list(user_app.router.routes) if user_app is not None else [],
            custom_route_auth=http.enable_custom_route_auth,
        )
    ]


def _describe_security(api: FastAPI, security: SecurityConfig) -> None:
    build = api.openapi

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is not None:
            return api.openapi_schema
        spec = build()
        if security.securitySchemes:
            spec.setdefault("components", {})["securitySchemes"] = security.securitySchemes
        if security.security is not None:
            spec["security"] = security.security
        for path, methods in (security.paths or {}).items():
            operations = spec.get("paths", {}).get(path)
            if operations is None:
                continue
            for method, requirement in methods.items():
                if method.lower() in operations:
                    operations[method.lower()]["security"] = requirement
        api.openapi_schema = spec
        return spec

    api.openapi = openapi  # type: ignore[method-assign]
