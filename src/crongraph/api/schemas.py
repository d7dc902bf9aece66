"""THE wire contract's request bodies, as pydantic models (responses are built in views.py).

Models reject wrong types and values with 422 and a message naming the field (api/errors.py formats it). Bodies
that the reference stores whole (run and cron creation) allow extra keys, as its schemas do.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MultitaskStrategy = Literal["reject", "rollback", "interrupt", "enqueue"]
StreamMode = Literal[
    "values", "messages", "messages-tuple", "tasks", "checkpoints", "updates", "events", "debug", "custom"
]
Durability = Literal["sync", "async", "exit"]
SortOrder = Literal["asc", "desc"]
Json = dict[str, Any]
MAX_OFFSET = 2**53
# A hundred years, in minutes: longer time-to-lives overflow date arithmetic and mean "forever" anyway.
MAX_TTL_MINUTES = 100 * 366 * 24 * 60


class Body(BaseModel):
    model_config = ConfigDict(extra="ignore")

    def given(self) -> dict[str, Any]:
        """The fields the client sent, as JSON values."""
        return self.model_dump(mode="json", exclude_unset=True)


class Page(Body):
    limit: int = Field(default=10, ge=1, le=1000)
    # Bounded so that no offset a client sends overflows the database's 64-bit integers.
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET)

    def given(self) -> dict[str, Any]:
        return {**super().given(), "limit": self.limit, "offset": self.offset}


# Assistants


class AssistantCreate(Body):
    graph_id: str
    assistant_id: str | None = None
    config: Json | None = None
    context: Json | None = None
    metadata: Json | None = None
    if_exists: Literal["raise", "do_nothing"] = "raise"
    name: str | None = None
    description: str | None = None


class AssistantPatch(Body):
    graph_id: str | None = None
    config: Json | None = None
    context: Json | None = None
    metadata: Json | None = None
    name: str | None = None
    description: str | None = None


class AssistantSearch(Page):
    metadata: Json | None = None
    graph_id: str | None = None
    name: str | None = None
    sort_by: Literal["assistant_id", "graph_id", "name", "created_at", "updated_at"] | None = None
    sort_order: SortOrder | None = None
    select: (
        list[
            Literal[
                "assistant_id",
                "graph_id",
                "name",
                "description",
                "config",
                "context",
                "created_at",
                "updated_at",
                "metadata",
                "version",
            ]
        ]
        | None
    ) = None


class AssistantCount(Body):
    metadata: Json | None = None
    graph_id: str | None = None
    name: str | None = None


class VersionsSearch(Page):
    metadata: Json | None = None


class SetLatest(Body):
    version: int = Field(ge=1, le=2**31)


# Threads


class Ttl(Body):
    # Minutes, as the reference counts them.
    ttl: float = Field(gt=0, le=MAX_TTL_MINUTES, allow_inf_nan=False)
    strategy: Literal["delete"] = "delete"


class SuperstepUpdate(Body):
    values: Any = None
    as_node: str | None = None
    command: Json | None = None


class Superstep(Body):
    updates: list[SuperstepUpdate]


class ThreadCreate(Body):
    thread_id: str | None = None
    metadata: Json | None = None
    if_exists: Literal["raise", "do_nothing"] = "raise"
    supersteps: list[Superstep] | None = None
    graph_id: str | None = None
    ttl: Ttl | None = None


class ThreadPatch(Body):
    metadata: Json | None = None
    ttl: Ttl | None = None


class ThreadSearch(Page):
    metadata: Json | None = None
    values: Json | None = None
    ids: list[str] | None = None
    status: Literal["idle", "busy", "interrupted", "error"] | None = None
    sort_by: Literal["thread_id", "status", "created_at", "updated_at", "state_updated_at"] | None = None
    sort_order: SortOrder | None = None
    select: (
        list[
            Literal[
                "thread_id",
                "created_at",
                "updated_at",
                "state_updated_at",
                "metadata",
                "config",
                "status",
                "values",
                "interrupts",
                # The Python SDK offers it too; a thread has no `context`, so selecting it adds nothing.
                "context",
            ]
        ]
        | None
    ) = None
    # alias -> path into the thread ("values.messages[-1]"), returned under `extracted`.
    extract: dict[str, str] | None = Field(default=None, max_length=10)


class ThreadCount(Body):
    metadata: Json | None = None
    values: Json | None = None
    status: Literal["idle", "busy", "interrupted", "error"] | None = None


class ThreadPrune(Body):
    thread_ids: list[str]
    strategy: Literal["delete", "keep_latest"] = "delete"


class Checkpoint(Body):
    model_config = ConfigDict(extra="allow")
    thread_id: str | None = None
    checkpoint_ns: str | None = None
    checkpoint_id: str | None = None
    checkpoint_map: Json | None = None


class StateUpdate(Body):
    values: Any = None
    as_node: str | None = None
    checkpoint: Checkpoint | None = None
    checkpoint_id: str | None = None


class StateAtCheckpoint(Body):
    checkpoint: Checkpoint
    subgraphs: bool = False
    # ThreadState keys, or values.<key> for one state key (checked where the state is built).
    select: list[str] | None = None


class HistoryQuery(Body):
    limit: int = Field(default=10, ge=1, le=1000)
    before: str | Checkpoint | None = None
    metadata: Json | None = None
    checkpoint: Checkpoint | None = None
    select: list[str] | None = None


# Runs


class RunConfig(BaseModel):
    model_config = ConfigDict(extra="allow")
    tags: list[str] | None = None
    recursion_limit: int | None = Field(default=None, ge=1)
    configurable: Json | None = None


class RunCommand(Body):
    resume: Any = None
    update: Any = None
    goto: Any = None


class RunCreate(Body):
    model_config = ConfigDict(extra="allow")
    assistant_id: str
    input: Json | list[Any] | str | int | float | bool | None = None
    command: RunCommand | None = None
    metadata: Json | None = None
    config: RunConfig | None = None
    context: Json | None = None
    checkpoint: Checkpoint | None = None
    checkpoint_id: str | None = None
    checkpoint_during: bool | None = None
    interrupt_before: Literal["*"] | list[str] | None = None
    interrupt_after: Literal["*"] | list[str] | None = None
    webhook: str | None = Field(default=None, min_length=1, max_length=65536)
    feedback_keys: list[str] | None = None
    multitask_strategy: MultitaskStrategy | None = None
    if_not_exists: Literal["create", "reject"] | None = None
    on_completion: Literal["delete", "keep"] | None = None
    on_disconnect: Literal["cancel", "continue"] | None = None
    # Bounded (a century) so that now + after_seconds is always a date the database can hold.
    after_seconds: float | None = Field(default=None, ge=0, le=100 * 365 * 86400, allow_inf_nan=False)
    durability: Durability | None = None
    stream_mode: StreamMode | list[StreamMode] | None = None
    stream_subgraphs: bool | None = None
    stream_resumable: bool | None = None
    langsmith_tracer: Json | None = None
    strict_resume: bool | None = None


RunStatus = Literal["pending", "running", "error", "success", "timeout", "interrupted"]
RunSelectField = Literal[
    "run_id",
    "thread_id",
    "assistant_id",
    "metadata",
    "status",
    "kwargs",
    "multitask_strategy",
    "created_at",
    "updated_at",
]


class CancelMany(Body):
    thread_id: str | None = None
    run_ids: list[str] | None = None
    status: Literal["pending", "running", "all"] | None = None


# Crons


class CronCreate(Body):
    model_config = ConfigDict(extra="allow")
    schedule: str
    assistant_id: str
    timezone: str | None = None
    end_time: datetime | None = None
    input: Json | list[Any] | None = None
    metadata: Json | None = None
    config: RunConfig | None = None
    context: Json | None = None
    webhook: str | None = Field(default=None, min_length=1, max_length=65536)
    interrupt_before: Literal["*"] | list[str] | None = None
    interrupt_after: Literal["*"] | list[str] | None = None
    on_run_completed: Literal["delete", "keep"] | None = None
    enabled: bool | None = None
    stream_mode: StreamMode | list[StreamMode] | None = None
    stream_subgraphs: bool | None = None
    stream_resumable: bool | None = None
    durability: Durability | None = None
    multitask_strategy: MultitaskStrategy | None = None
    # Extension: what to do with occurrences missed while the server was down (scheduling.md §4).
    missed_policy: Literal["skip", "latest", "all"] | None = None


class CronPatch(Body):
    model_config = ConfigDict(extra="allow")
    schedule: str | None = None
    timezone: str | None = None
    end_time: datetime | None = None
    input: Json | list[Any] | None = None
    metadata: Json | None = None
    config: RunConfig | None = None
    context: Json | None = None
    webhook: str | None = Field(default=None, min_length=1, max_length=65536)
    interrupt_before: Literal["*"] | list[str] | None = None
    interrupt_after: Literal["*"] | list[str] | None = None
    on_run_completed: Literal["delete", "keep"] | None = None
    enabled: bool | None = None
    stream_mode: StreamMode | list[StreamMode] | None = None
    stream_subgraphs: bool | None = None
    stream_resumable: bool | None = None
    durability: Durability | None = None
    missed_policy: Literal["skip", "latest", "all"] | None = None


CronField = Literal[
    "cron_id",
    "assistant_id",
    "thread_id",
    "on_run_completed",
    "end_time",
    "schedule",
    "timezone",
    "created_at",
    "updated_at",
    "user_id",
    "payload",
    "next_run_date",
    "metadata",
    "enabled",
]


class CronSearch(Page):
    assistant_id: str | None = None
    thread_id: str | None = None
    enabled: bool | None = None
    metadata: Json | None = None
    sort_by: (
        Literal["cron_id", "assistant_id", "thread_id", "next_run_date", "end_time", "created_at", "updated_at"] | None
    ) = None
    sort_order: SortOrder | None = None
    select: list[CronField] | None = None


class CronCount(Body):
    assistant_id: str | None = None
    thread_id: str | None = None
    metadata: Json | None = None


# Store


class StorePut(Body):
    namespace: list[str]
    key: str
    value: Json
    index: Literal[False] | list[str] | None = None
    # Minutes until the item expires; None keeps it forever.
    ttl: float | None = Field(default=None, gt=0, le=MAX_TTL_MINUTES, allow_inf_nan=False)


class StoreDelete(Body):
    namespace: list[str] | None = None
    key: str


class StoreSearch(Body):
    namespace_prefix: list[str] | None = None
    filter: Json | None = None
    limit: int = Field(default=10, ge=1, le=1000)
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET)
    query: str | None = None
    refresh_ttl: bool | None = None


class StoreNamespaces(Body):
    prefix: list[str] | None = None
    suffix: list[str] | None = None
    max_depth: int | None = Field(default=None, ge=1)
    limit: int = Field(default=100, ge=1, le=1000)
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET)
