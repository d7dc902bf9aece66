"""What every service needs, built once by runtime.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from crongraph.clock import Clock
from crongraph.graphs.persistence import Persistence
from crongraph.graphs.registry import GraphRegistry
from crongraph.notify import Notifier
from crongraph.settings import Settings
from crongraph.storage.database import Database
from crongraph.streams.broker import StreamBroker
from crongraph.webhook_policy import WebhookUrlPolicy


@dataclass
class ServiceContext:
    settings: Settings
    db: Database
    graphs: GraphRegistry
    persistence: Persistence
    notifier: Notifier
    broker: StreamBroker
    clock: Clock
    # langgraph.json's checkpointer.ttl: {"ttl": minutes, "strategy": ...} for threads created without one.
    default_thread_ttl: dict[str, Any] | None = None
    # Which webhook URLs runs and crons may name (langgraph.json webhooks.url, CRONGRAPH_WEBHOOK_ALLOW_PRIVATE).
    webhook_policy: WebhookUrlPolicy = field(default_factory=WebhookUrlPolicy)

    @property
    def dialect(self) -> str:
        return self.db.dialect
