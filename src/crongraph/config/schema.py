"""langgraph.json as one pydantic model: every key of LangGraph Platform's schema (langgraph-cli 0.4 and the
server's own `langgraph_api.config.schemas`), with the reference's names, types and defaults.

Invariants: a value of the wrong type is a ValidationError (turned into a one-line sentence by `loading.py`);
an unknown key is *kept* (`extra="allow"`) so that the loader can warn about it with a did-you-mean instead of
refusing a file the reference would accept. Whether crongraph honours a key is decided in `loading.py`, not here.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# The fields of a run that the reference lets `webhooks.allowed_fields` keep in a webhook's payload.
WEBHOOK_PAYLOAD_FIELDS = frozenset(
    {
        "run_id",
        "thread_id",
        "assistant_id",
        "created_at",
        "updated_at",
        "metadata",
        "kwargs",
        "multitask_strategy",
        "status",
        "run_started_at",
        "run_ended_at",
        "webhook_sent_at",
        "values",
        "error",
    }
)
JS_SUFFIXES = (".ts", ".mts", ".cts", ".js", ".mjs", ".cjs", ".tsx", ".jsx")


class Section(BaseModel):
    """A JSON object of langgraph.json. Unknown keys are kept in `model_extra` for the did-you-mean warning."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)


# graphs


class GraphDef(Section):
    path: str
    description: str | None = None


# store


class IndexConfig(Section):
    """Semantic search of the store: `embed` is "provider:model" or "./file.py:function"; vectors of `dims`."""

    dims: int = Field(gt=0)
    embed: str
    # JSON paths embedded per item; None means the reference's default ["$"] (the whole value).
    fields: list[str] | None = None


class StoreTTLConfig(Section):
    """Store item expiry; minutes."""

    refresh_on_read: bool = True
    default_ttl: float | None = Field(default=None, gt=0)
    sweep_interval_minutes: int | None = Field(default=None, gt=0)


class StoreConfig(Section):
    path: str | None = None  # a custom BaseStore; crongraph keeps its own
    index: IndexConfig | None = None
    ttl: StoreTTLConfig | None = None


# checkpointer


class ThreadTTLConfig(Section):
    """Thread expiry; minutes. `strategy` "delete" removes the thread, "keep_latest" prunes old checkpoints."""

    strategy: Literal["delete", "keep_latest"] = "delete"
    default_ttl: float | None = Field(default=None, gt=0)
    sweep_interval_minutes: int | None = Field(default=None, gt=0)
    sweep_limit: int | None = Field(default=None, gt=0)


class SerdeConfig(Section):
    allowed_json_modules: list[list[str]] | bool | None = None
    allowed_msgpack_modules: list[list[str]] | bool | None = None
    pickle_fallback: bool | None = None


class CheckpointerConfig(Section):
    backend: Literal["default", "custom", "mongo"] | None = None
    path: str | None = None  # a custom BaseCheckpointSaver factory
    uri: str | None = None  # the mongo backend's
    ttl: ThreadTTLConfig | None = None
    serde: SerdeConfig | None = None


# auth, encryption, priority


class SecurityConfig(Section):
    securitySchemes: dict[str, dict[str, Any]] | None = None  # the OpenAPI name
    security: list[dict[str, list[str]]] | None = None
    paths: dict[str, dict[str, list[Any]]] | None = None


class CacheConfig(Section):
    cache_keys: list[str] | None = None
    ttl_seconds: int | None = None
    max_size: int | None = None


class AuthConfig(Section):
    path: str | None = None
    disable_studio_auth: bool = False
    allow_langsmith_api_keys: bool = False
    openapi: SecurityConfig | None = None
    cache: CacheConfig | None = None


class PathConfig(Section):
    """`encryption` and `priority`: the path of the user's Encryption() / Priority() instance."""

    path: str


# http


class CorsConfig(Section):
    """Starlette's CORSMiddleware options under the reference's names; the defaults are Starlette's (which the
    reference inherits when `cors` is given)."""

    allow_origins: list[str] = []
    allow_methods: list[str] = ["GET"]
    allow_headers: list[str] = []
    allow_credentials: bool = False
    allow_origin_regex: str | None = None
    expose_headers: list[str] = []
    max_age: int = Field(default=600, ge=0)

    @field_validator("allow_origin_regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression ({exc})") from None
        return value


class ConfigurableHeaders(Section):
    """Header name patterns ("*" is the only wildcard), matched against lower-cased names; excludes win."""

    includes: list[str] | None = None
    excludes: list[str] | None = None
    include: list[str] | None = None  # alias of includes, as the reference accepts
    exclude: list[str] | None = None  # alias of excludes


class HttpConfig(Section):
    app: str | None = None
    disable_assistants: bool = False
    disable_threads: bool = False
    disable_runs: bool = False
    disable_store: bool = False
    disable_meta: bool = False
    disable_webhooks: bool = False
    disable_ui: bool = False
    disable_mcp: bool = False
    disable_a2a: bool = False
    disable_event_streaming: bool = False
    cors: CorsConfig | None = None
    configurable_headers: ConfigurableHeaders | None = None
    logging_headers: ConfigurableHeaders | None = None
    middleware_order: Literal["auth_first", "middleware_first"] | None = None
    enable_custom_route_auth: bool = False
    mount_prefix: str | None = None

    @field_validator("app")
    @classmethod
    def _app_spec(cls, value: str | None) -> str | None:
        if value is not None and ":" not in value:
            raise ValueError('must be "./path/to/file.py:app" or "package.module:app"')
        return value

    @field_validator("mount_prefix")
    @classmethod
    def _prefix(cls, value: str | None) -> str | None:
        if value is not None and (not value.startswith("/") or value.endswith("/") or len(value) < 2):
            raise ValueError("must start with '/' and must not end with '/', e.g. '/api' or '/v1/agents'")
        return value


# webhooks


class WebhookUrlPolicy(Section):
    """Which webhook URLs runs and crons may name. The defaults apply when a `url` block is given."""

    require_https: bool = True
    allowed_domains: list[str] = []
    allowed_ports: list[int] = []
    max_url_length: int = Field(default=2048, gt=0)
    disable_loopback: bool = True
    disable_private_ips: bool = False

    @field_validator("allowed_domains")
    @classmethod
    def _wildcards(cls, value: list[str]) -> list[str]:
        for domain in value:
            if not domain:
                raise ValueError("entries must be non-empty host names")
            if "*" in domain and not (domain.startswith("*.") and "*" not in domain[2:]):
                raise ValueError(f"'{domain}': a wildcard is allowed only as a prefix, in the form '*.domain'")
        return value


class WebhooksConfig(Section):
    env_prefix: str = "LG_WEBHOOK_"
    url: WebhookUrlPolicy | None = None
    # Header values may hold "${{ env.VAR }}" templates; `loading.py` renders them at startup.
    headers: dict[str, str] | None = None
    allowed_fields: set[str] | None = None

    @field_validator("allowed_fields")
    @classmethod
    def _known_fields(cls, value: set[str] | None) -> set[str] | None:
        unknown = sorted((value or set()) - WEBHOOK_PAYLOAD_FIELDS)
        if unknown:
            raise ValueError(f"unknown field(s) {unknown}; valid: {sorted(WEBHOOK_PAYLOAD_FIELDS)}")
        return value


# build-only


class UvSource(Section):
    kind: Literal["uv"]
    root: str | None = None
    package: str | None = None


class LangGraphJson(Section):
    """The whole file. Field order follows the reference's `Config`."""

    graphs: dict[str, str | GraphDef]
    env: dict[str, str | int | float | bool] | str | None = None
    dependencies: list[str] = []
    store: StoreConfig | None = None
    checkpointer: CheckpointerConfig | None = None
    auth: AuthConfig | None = None
    encryption: PathConfig | None = None
    priority: PathConfig | None = None
    http: HttpConfig | None = None
    webhooks: WebhooksConfig | None = None
    ui: dict[str, str] | None = None
    ui_config: dict[str, Any] | None = None
    # Build-only: they shape the reference's Docker image; crongraph runs in the environment it is started in.
    python_version: str | None = None
    node_version: str | int | None = None
    api_version: str | None = None
    internal_docker_tag: str | None = Field(default=None, alias="_INTERNAL_docker_tag")
    base_image: str | None = None
    image_distro: Literal["debian", "wolfi", "bookworm"] | None = None
    pip_config_file: str | None = None
    pip_installer: Literal["auto", "pip", "uv"] | None = None
    source: UvSource | None = None
    dockerfile_lines: list[str] = []
    keep_pkg_tools: bool | list[Literal["pip", "setuptools", "wheel"]] | None = None
    project_root: str | None = None  # legacy uv layout keys
    package: str | None = None

    @field_validator("graphs")
    @classmethod
    def _graph_specs(cls, value: dict[str, str | GraphDef]) -> dict[str, str | GraphDef]:
        if not value:
            raise ValueError('must name at least one graph, e.g. {"agent": "./agent.py:graph"}')
        for graph_id, spec in value.items():
            path = spec if isinstance(spec, str) else spec.path
            if ":" not in path:
                raise ValueError(f'graph "{graph_id}": expected "path/to/file.py:variable" or "module:variable"')
            if path.rpartition(":")[0].endswith(JS_SUFFIXES):
                raise ValueError(f'graph "{graph_id}" is a JavaScript graph ({path}); crongraph runs Python graphs')
        return value

    @field_validator("python_version")
    @classmethod
    def _python_version(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"\d+\.\d+(-\w+)?", value):
            raise ValueError(f"'{value}' is not in 'major.minor' form, e.g. '3.11'")
        return value


BUILD_ONLY_KEYS = (
    "python_version",
    "node_version",
    "api_version",
    "_INTERNAL_docker_tag",
    "base_image",
    "image_distro",
    "pip_config_file",
    "pip_installer",
    "source",
    "dockerfile_lines",
    "keep_pkg_tools",
    "project_root",
    "package",
)
