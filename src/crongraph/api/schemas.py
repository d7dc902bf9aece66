"""THE wire contract's request bodies, as pydantic models (responses are built in views.py).

Models reject wrong types and values with 422 and a message naming the field (api/errors.py formats it). Bodies
that the reference stores whole (run and cron creation) allow extra keys, as its schemas do. Every bound comes
from api/limits.py (with its reason) and is checked here, before anything is written; nesting depth and NUL
characters are checked while the body is parsed (serde.loads_request).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from pydantic_core import PydanticCustomError

from crongraph.api import limits

MultitaskStrategy = Literal["reject", "rollback", "interrupt", "enqueue"]
StreamMode = Literal[
    "values", "messages", "messages-tuple", "tasks", "checkpoints", "updates", "events", "debug", "custom"
]
Durability = Literal["sync", "async", "exit"]
SortOrder = Literal["asc", "desc"]
Json = dict[str, Any]
MAX_OFFSET = limits.MAX_OFFSET
MAX_TTL_MINUTES = limits.MAX_TTL_MINUTES

Id = Annotated[str, StringConstraints(max_length=limits.MAX_ID_CHARS)]
Name = Annotated[str, StringConstraints(max_length=limits.MAX_NAME_CHARS)]
Text = Annotated[str, StringConstraints(max_length=limits.MAX_TEXT_CHARS)]
Url = Annotated[str, StringConstraints(min_length=1, max_length=limits.MAX_URL_CHARS)]
MetadataKey = Annotated[str, StringConstraints(max_length=limits.MAX_METADATA_KEY_CHARS)]
# Metadata objects (stored, or a containment filter): their top-level keys are bounded.
Metadata = dict[MetadataKey, Any]
Schedule = Annotated[str, StringConstraints(max_length=limits.MAX_SCHEDULE_CHARS)]
Timezone = Annotated[str, StringConstraints(max_length=limits.MAX_TIMEZONE_CHARS)]
StoreKey = Annotated[str, StringConstraints(max_length=limits.MAX_KEY_CHARS)]
Limit = Annotated[int, Field(ge=1, le=limits.MAX_LIMIT)]
Offset = Annotated[int, Field(ge=0, le=limits.MAX_OFFSET)]


def _label(value: str) -> str:
    if "." in value:
        raise PydanticCustomError(
            "namespace_label", "Invalid namespace label '{label}': labels must contain no '.'", {"label": value}
        )
    return value


# A store namespace label: LangGraph's store joins labels with "." and cannot store an empty one.
NamespaceLabel = Annotated[
    str, StringConstraints(min_length=1, max_length=limits.MAX_LABEL_CHARS), AfterValidator(_label)
]
Namespace = Annotated[list[NamespaceLabel], Field(max_length=limits.MAX_NAMESPACE_LABELS)]


def _in_utc(value: datetime) -> datetime:
    """Naive means UTC; an offset that pushes the instant out of years 1..9999 is refused here, before anything
    is written (the services and the database keep UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise PydanticCustomError(
            "datetime_range", "date-time out of range: in UTC it falls outside the years 1 to 9999"
        ) from None


UtcDatetime = Annotated[datetime, AfterValidator(_in_utc)]


class Body(BaseModel):
    model_config = ConfigDict(extra="ignore")

    def given(self) -> dict[str, Any]:
        """The fields the client sent, as JSON values."""
        return self.model_dump(mode="json", exclude_unset=True)


class Page(Body):
    limit: Limit = 10
    # Bounded so that no offset a client sends overflows the database's 64-bit integers.
    offset: Offset = 0

    def given(self) -> dict[str, Any]:
        return {**super().given(), "limit": self.limit, "offset": self.offset}


# Assistants


class AssistantCreate(Body):
    graph_id: Id
    assistant_id: Id | None = None
    config: Json | None = None
    context: Json | None = None
    metadata: Metadata | None = None
    if_exists: Literal["raise", "do_nothing"] = "raise"
    name: Name | None = None
    description: Text | None = None


class AssistantPatch(Body):
    graph_id: Id | None = None
    config: Json | None = None
    context: Json | None = None
    metadata: Metadata | None = None
    name: Name | None = None
    description: Text | None = None


class AssistantSearch(Page):
    metadata: Metadata | None = None
    graph_id: Id | None = None
    name: Name | None = None
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
    metadata: Metadata | None = None
    graph_id: Id | None = None
    name: Name | None = None


class VersionsSearch(Page):
    metadata: Metadata | None = None


class SetLatest(Body):
    version: int = Field(ge=1, le=2**31)


# Threads


class Ttl(Body):
    # Minutes, as the reference counts them.
    ttl: float = Field(gt=0, le=MAX_TTL_MINUTES, allow_inf_nan=False)
    strategy: Literal["delete"] = "delete"


class SuperstepUpdate(Body):
    values: Any = None
    as_node: Id | None = None
    command: Json | None = None


class Superstep(Body):
    updates: list[SuperstepUpdate]


class ThreadCreate(Body):
    thread_id: Id | None = None
    metadata: Metadata | None = None
    if_exists: Literal["raise", "do_nothing"] = "raise"
    supersteps: list[Superstep] | None = None
    graph_id: Id | None = None
    ttl: Ttl | None = None


class ThreadPatch(Body):
    metadata: Metadata | None = None
    ttl: Ttl | None = None


class ThreadSearch(Page):
    metadata: Metadata | None = None
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
    metadata: Metadata | None = None
    values: Json | None = None
    status: Literal["idle", "busy", "interrupted", "error"] | None = None


class ThreadPrune(Body):
    thread_ids: list[str]
    strategy: Literal["delete", "keep_latest"] = "delete"


class Checkpoint(Body):
    model_config = ConfigDict(extra="allow")
    thread_id: Id | None = None
    checkpoint_ns: Id | None = None
    checkpoint_id: Id | None = None
    checkpoint_map: Json | None = None


class StateUpdate(Body):
    values: Any = None
    as_node: Id | None = None
    checkpoint: Checkpoint | None = None
    checkpoint_id: Id | None = None


class StateAtCheckpoint(Body):
    checkpoint: Checkpoint
    subgraphs: bool = False
    # ThreadState keys, or values.<key> for one state key (checked where the state is built).
    select: list[str] | None = None


class HistoryQuery(Body):
    limit: Limit = 10
    before: Id | Checkpoint | None = None
    metadata: Metadata | None = None
    checkpoint: Checkpoint | None = None
    select: list[str] | None = None


# Runs


class RunConfig(BaseModel):
    model_config = ConfigDict(extra="allow")
    tags: list[str] | None = None
    recursion_limit: int | None = Field(default=None, ge=1, le=limits.MAX_COUNTER)
    configurable: Json | None = None


class RunCommand(Body):
    resume: Any = None
    update: Any = None
    goto: Any = None


class RunCreate(Body):
    model_config = ConfigDict(extra="allow")
    assistant_id: Id
    input: Json | list[Any] | str | int | float | bool | None = None
    command: RunCommand | None = None
    metadata: Metadata | None = None
    config: RunConfig | None = None
    context: Json | None = None
    checkpoint: Checkpoint | None = None
    checkpoint_id: Id | None = None
    checkpoint_during: bool | None = None
    interrupt_before: Literal["*"] | list[str] | None = None
    interrupt_after: Literal["*"] | list[str] | None = None
    webhook: Url | None = None
    feedback_keys: list[str] | None = None
    multitask_strategy: MultitaskStrategy | None = None
    if_not_exists: Literal["create", "reject"] | None = None
    on_completion: Literal["delete", "keep"] | None = None
    on_disconnect: Literal["cancel", "continue"] | None = None
    # Bounded (a century) so that now + after_seconds is always a date the database can hold.
    after_seconds: float | None = Field(default=None, ge=0, le=limits.MAX_DELAY_SECONDS, allow_inf_nan=False)
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
    thread_id: Id | None = None
    run_ids: list[str] | None = None
    status: Literal["pending", "running", "all"] | None = None


# Crons

OverlapPolicy = Literal["allow", "skip", "buffer_one", "cancel_previous"]
MaxRuns = Annotated[int, Field(ge=1, le=2**31 - 1)]
PauseAfter = Annotated[int, Field(ge=1, le=1_000_000)]
TokenBudget = Annotated[int, Field(ge=1, le=2**62)]
# A day at most: the delay is counted from the slot, and a longer one would pass the next occurrences.
JitterSeconds = Annotated[int, Field(ge=0, le=86_400)]


class CronCreate(Body):
    model_config = ConfigDict(extra="allow")
    schedule: Schedule
    assistant_id: Id
    timezone: Timezone | None = None
    end_time: UtcDatetime | None = None
    input: Json | list[Any] | None = None
    metadata: Metadata | None = None
    config: RunConfig | None = None
    context: Json | None = None
    webhook: Url | None = None
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
    # Extensions: cost guards (docs/crons.md).
    max_runs: MaxRuns | None = None
    start_time: UtcDatetime | None = None
    overlap_policy: OverlapPolicy | None = None
    pause_after_failures: PauseAfter | None = None
    max_tokens_per_day: TokenBudget | None = None
    jitter_seconds: JitterSeconds | None = None


class CronPatch(Body):
    model_config = ConfigDict(extra="allow")
    schedule: Schedule | None = None
    timezone: Timezone | None = None
    end_time: UtcDatetime | None = None
    input: Json | list[Any] | None = None
    metadata: Metadata | None = None
    config: RunConfig | None = None
    context: Json | None = None
    webhook: Url | None = None
    interrupt_before: Literal["*"] | list[str] | None = None
    interrupt_after: Literal["*"] | list[str] | None = None
    on_run_completed: Literal["delete", "keep"] | None = None
    enabled: bool | None = None
    stream_mode: StreamMode | list[StreamMode] | None = None
    stream_subgraphs: bool | None = None
    stream_resumable: bool | None = None
    durability: Durability | None = None
    missed_policy: Literal["skip", "latest", "all"] | None = None
    max_runs: MaxRuns | None = None
    start_time: UtcDatetime | None = None
    overlap_policy: OverlapPolicy | None = None
    pause_after_failures: PauseAfter | None = None
    max_tokens_per_day: TokenBudget | None = None
    jitter_seconds: JitterSeconds | None = None


class CronBackfill(Body):
    # Extension: POST /runs/crons/{cron_id}/backfill; [start, end), naive means UTC.
    start: UtcDatetime
    end: UtcDatetime


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
    # Extensions (docs/crons.md).
    "missed_policy",
    "finished",
    "start_time",
    "max_runs",
    "remaining_runs",
    "overlap_policy",
    "jitter_seconds",
    "pause_after_failures",
    "consecutive_failures",
    "max_tokens_per_day",
    "paused_reason",
    "usage",
    "last_run",
]


class CronSearch(Page):
    assistant_id: Id | None = None
    thread_id: Id | None = None
    enabled: bool | None = None
    metadata: Metadata | None = None
    sort_by: (
        Literal["cron_id", "assistant_id", "thread_id", "next_run_date", "end_time", "created_at", "updated_at"] | None
    ) = None
    sort_order: SortOrder | None = None
    select: list[CronField] | None = None


class CronCount(Body):
    assistant_id: Id | None = None
    thread_id: Id | None = None
    metadata: Metadata | None = None


# Store


class StorePut(Body):
    namespace: Namespace
    key: StoreKey
    value: Json
    index: Literal[False] | list[str] | None = None
    # Minutes until the item expires; None keeps it forever.
    ttl: float | None = Field(default=None, gt=0, le=MAX_TTL_MINUTES, allow_inf_nan=False)


class StoreDelete(Body):
    namespace: Namespace | None = None
    key: StoreKey


class StoreSearch(Body):
    namespace_prefix: Namespace | None = None
    filter: Metadata | None = None
    limit: Limit = 10
    offset: Offset = 0
    query: Text | None = None
    refresh_ttl: bool | None = None


class StoreNamespaces(Body):
    # Labels, or "*" matching any one label.
    prefix: Namespace | None = None
    suffix: Namespace | None = None
    max_depth: int | None = Field(default=None, ge=1, le=limits.MAX_NAMESPACE_LABELS)
    limit: Limit = 100
    offset: Offset = 0
