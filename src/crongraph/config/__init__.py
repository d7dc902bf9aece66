"""The project's langgraph.json: `schema.py` is the file as one pydantic model (every key of the reference's
schema), `loading.py` reads it into a `ProjectConfig` with its warnings and applies its environment."""

from crongraph.config.loading import (
    EXAMPLE,
    ConfigError,
    GraphSpec,
    ProjectConfig,
    apply_environment,
    load,
    render_webhook_headers,
)

__all__ = [
    "EXAMPLE",
    "ConfigError",
    "GraphSpec",
    "ProjectConfig",
    "apply_environment",
    "load",
    "render_webhook_headers",
]
