"""How many bytes a thread's checkpoints occupy in LangGraph's savers, as stored (`GET /threads/{id}/storage`).

The answer has the reference's shape: checkpoints (rows: the serialized checkpoint and its metadata), channel values
per channel, and pending writes, with `total_bytes` their sum. The savers lay values out differently, so each
backend reads its own tables:

- SQLite (`checkpoints`, `writes`): a channel's value is stored inside every checkpoint row that holds it. Its
  bytes are cut out of the row exactly (the row is msgpack, and a msgpack value packs alone to the bytes it has
  inside its parent), so `checkpoints.bytes` is the rows' bytes less the values inside them, `channel_values.bytes`
  counts each stored copy, and `versions` the distinct versions of the channel. `total_bytes` is exactly the
  bytes of the thread's rows.
- PostgreSQL (`checkpoints`, `checkpoint_blobs`, `checkpoint_writes`): one blob row per channel version, as the
  reference describes it; sizes are `pg_column_size` (what the column occupies, after any compression); simple
  values the saver keeps inline in the checkpoint's JSON count as checkpoint bytes.

Reads only; every namespace of the thread (subgraphs) is included.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypedDict

import ormsgpack
from langgraph.checkpoint.base import BaseCheckpointSaver

from crongraph.graphs.sqlite_saver import InlineSqliteSaver


class Section(TypedDict):
    count: int
    bytes: int


class ChannelUsage(TypedDict):
    versions: int
    bytes: int


class ChannelSection(TypedDict):
    count: int
    bytes: int
    by_channel: dict[str, ChannelUsage]


class ThreadStorage(TypedDict):
    total_bytes: int
    checkpoints: Section
    channel_values: ChannelSection
    pending_writes: Section


class StorageNotReported(Exception):
    """The thread's checkpointer is not one whose tables crongraph knows (the reference answers 501)."""


async def thread_storage(saver: BaseCheckpointSaver[Any], thread_id: str) -> ThreadStorage:
    """The bytes `thread_id`'s checkpoints occupy in `saver`. A thread with no checkpoint yet is all zeros.
    Raises StorageNotReported for a saver other than crongraph's SQLite or PostgreSQL one."""
    if isinstance(saver, InlineSqliteSaver):
        return _sqlite(saver, thread_id)
    from crongraph.graphs.postgres_saver import PostgresSaver

    if isinstance(saver, PostgresSaver):
        return await _postgres(saver, thread_id)
    raise StorageNotReported(type(saver).__name__)


def _report(
    checkpoints: Section, by_channel: dict[str, ChannelUsage], distinct: dict[str, int], writes: Section
) -> ThreadStorage:
    for channel, versions in distinct.items():
        by_channel[channel]["versions"] = versions
    channel_bytes = sum(c["bytes"] for c in by_channel.values())
    return {
        "total_bytes": checkpoints["bytes"] + channel_bytes + writes["bytes"],
        "checkpoints": checkpoints,
        "channel_values": {
            "count": sum(c["versions"] for c in by_channel.values()),
            "bytes": channel_bytes,
            "by_channel": dict(sorted(by_channel.items())),
        },
        "pending_writes": writes,
    }


# SQLite


def _keep_ext(code: int, data: bytes) -> ormsgpack.Ext:
    # Leave LangGraph's extension types packed: only sizes are wanted, and re-packing an Ext gives its bytes back.
    return ormsgpack.Ext(code, data)


def _embedded_sizes(kind: str | None, blob: bytes) -> tuple[dict[str, int], dict[str, Any]]:
    """The bytes of each channel value inside one serialized checkpoint, and its channel versions. A checkpoint
    serialized otherwise than as msgpack (an old saver's JSON or pickle) counts whole as checkpoint bytes."""
    if kind != "msgpack" or not blob:
        return {}, {}
    try:
        checkpoint = ormsgpack.unpackb(blob, ext_hook=_keep_ext)
    except ormsgpack.MsgpackDecodeError:
        return {}, {}
    values = checkpoint.get("channel_values") if isinstance(checkpoint, dict) else None
    versions = checkpoint.get("channel_versions") if isinstance(checkpoint, dict) else None
    if not isinstance(values, dict):
        return {}, {}
    sizes = {str(channel): len(ormsgpack.packb(value)) for channel, value in values.items()}
    return sizes, versions if isinstance(versions, dict) else {}


def _sqlite(saver: InlineSqliteSaver, thread_id: str) -> ThreadStorage:
    # The saver's connection is served inline on the event loop (graphs/sqlite_saver.py); reads take its lock,
    # after the writes it recorded for the end of the loop iteration are committed (so they are counted).
    saver.commit_pending()
    with saver.lock:
        rows: Iterable[tuple[str, str | None, bytes | None, bytes | None]] = saver.conn.execute(
            "SELECT checkpoint_ns, type, checkpoint, metadata FROM checkpoints WHERE thread_id = ?", (thread_id,)
        ).fetchall()
        write_count, write_bytes = saver.conn.execute(
            "SELECT count(*), coalesce(sum(length(value)), 0) FROM writes WHERE thread_id = ?", (thread_id,)
        ).fetchone()
    count = row_bytes = 0
    by_channel: dict[str, ChannelUsage] = {}
    seen: set[tuple[str, str, str]] = set()
    for ns, kind, checkpoint, metadata in rows:
        count += 1
        row_bytes += len(checkpoint or b"") + len(metadata or b"")
        sizes, versions = _embedded_sizes(kind, checkpoint or b"")
        for channel, size in sizes.items():
            usage = by_channel.setdefault(channel, {"versions": 0, "bytes": 0})
            usage["bytes"] += size
            seen.add((ns, channel, str(versions.get(channel))))
    distinct: dict[str, int] = {}
    for _ns, channel, _version in seen:
        distinct[channel] = distinct.get(channel, 0) + 1
    embedded = sum(c["bytes"] for c in by_channel.values())
    return _report(
        {"count": count, "bytes": row_bytes - embedded},
        by_channel,
        distinct,
        {"count": int(write_count), "bytes": int(write_bytes)},
    )


# PostgreSQL

_PG_CHECKPOINTS = """
SELECT count(*) AS n, coalesce(sum(pg_column_size(checkpoint) + pg_column_size(metadata)), 0) AS size
FROM checkpoints WHERE thread_id = %s"""
_PG_BLOBS = """
SELECT channel, count(*) AS n, coalesce(sum(pg_column_size(blob)), 0) AS size
FROM checkpoint_blobs WHERE thread_id = %s GROUP BY channel"""
_PG_WRITES = """
SELECT count(*) AS n, coalesce(sum(pg_column_size(blob)), 0) AS size
FROM checkpoint_writes WHERE thread_id = %s"""


async def _postgres(saver: Any, thread_id: str) -> ThreadStorage:
    async with saver._cursor() as cur:  # the saver's pool and row factory (dict rows)
        await cur.execute(_PG_CHECKPOINTS, (thread_id,))
        checkpoints = await cur.fetchone()
        await cur.execute(_PG_BLOBS, (thread_id,))
        blobs = await cur.fetchall()
        await cur.execute(_PG_WRITES, (thread_id,))
        writes = await cur.fetchone()
    by_channel: dict[str, ChannelUsage] = {
        str(row["channel"]): {"versions": int(row["n"]), "bytes": int(row["size"])} for row in blobs
    }
    return _report(
        {"count": int(checkpoints["n"]), "bytes": int(checkpoints["size"])},
        by_channel,
        {},
        {"count": int(writes["n"]), "bytes": int(writes["size"])},
    )
