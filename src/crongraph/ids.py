"""Identifiers: uuid7 for everything the server creates (time-ordered, so ordering by id is creation order), and
the reference's deterministic uuid5 for each graph's system assistant."""

from functools import lru_cache
from uuid import UUID, uuid5

import uuid_utils

# The namespace the reference uses for system assistants, so that `agent` maps to the same id everywhere.
_ASSISTANT_NAMESPACE = UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8")


def new_id() -> str:
    return str(uuid_utils.uuid7())


@lru_cache(maxsize=1024)  # asked on every request that names a graph
def system_assistant_id(graph_id: str) -> str:
    return str(uuid5(_ASSISTANT_NAMESPACE, graph_id))


def parse_uuid(value: object) -> str | None:
    """The canonical form of a UUID string, or None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        return str(UUID(value))
    except ValueError:
        return None
