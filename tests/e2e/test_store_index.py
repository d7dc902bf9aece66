"""langgraph.json's `store.index`, `store.ttl` and `checkpointer.ttl` on a real crongraph process, through the
official SDK (and raw HTTP where the SDK cannot say it): semantic search ranks by similarity with scores, from the
client and from inside a graph; `index=False` and field lists on put; item and thread time-to-live; a bad `embed`
stops the server with one line naming it. The embedding is the fixture's bag-of-words hash
(tests/fixtures/store_project/embed.py), so rankings are deterministic."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client

from tests.support.sdk import eventually
from tests.support.server import ROOT, ServerProcess

PROJECT = ROOT / "tests" / "fixtures" / "store_project"
CATS = "Cats purr when they are happy and sleep in the sun"
STOCKS = "Stock prices fell sharply on Monday as markets closed"
DOGS = "Dogs bark at the mailman every morning"


def space() -> str:
    return f"t{uuid.uuid4().hex}"


def project_file(folder: Path, extra: dict[str, Any]) -> Path:
    """A langgraph.json in `folder` serving the fixture's graph, with `extra` keys (paths made absolute by the
    caller) merged in."""
    doc = {"graphs": {"recall": f"{PROJECT}/graph.py:graph"}, **extra}
    path = folder / "langgraph.json"
    path.write_text(json.dumps(doc))
    return path


@pytest.fixture(scope="module")
def index_server(server_factory: Callable[..., ServerProcess]) -> ServerProcess:
    return server_factory(config=PROJECT / "langgraph.json")


@pytest.fixture
async def sdk(index_server: ServerProcess) -> AsyncIterator[Any]:
    client = get_client(url=index_server.url)
    yield client
    await client.http.client.aclose()


async def test_search_ranks_by_similarity_with_scores(sdk: Any) -> None:
    ns = [space(), "docs"]
    await sdk.store.put_item(ns, "stocks", {"text": STOCKS})
    await sdk.store.put_item(ns, "cats", {"text": CATS})
    await sdk.store.put_item(ns, "dogs", {"text": DOGS})

    found = (await sdk.store.search_items(ns, query="cats purr", limit=3))["items"]
    assert found[0]["key"] == "cats"
    scores = [item["score"] for item in found]
    assert all(isinstance(score, float) for score in scores), scores
    assert scores == sorted(scores, reverse=True), "ranked by similarity"
    by_key = {item["key"]: item["score"] for item in found}
    assert by_key["cats"] > 0.3 > by_key.get("stocks", 0.0)

    market = (await sdk.store.search_items(ns, query="stock markets", limit=1))["items"]
    assert [item["key"] for item in market] == ["stocks"]

    # Without a query the search is the plain listing: no scores.
    plain = (await sdk.store.search_items(ns, limit=10))["items"]
    assert sorted(item["key"] for item in plain) == ["cats", "dogs", "stocks"]
    assert all(item["score"] is None for item in plain)

    # Filters and paging still apply to a semantic search.
    await sdk.store.put_item(ns, "kitten", {"text": "A kitten: cats purr too", "young": True})
    young = (await sdk.store.search_items(ns, query="cats purr", filter={"young": True}))["items"]
    assert [item["key"] for item in young] == ["kitten"]
    second = (await sdk.store.search_items(ns, query="cats purr", limit=1, offset=1))["items"]
    assert len(second) == 1 and second[0]["key"] in ("cats", "kitten")


async def test_put_index_false_and_field_lists(sdk: Any) -> None:
    ns = [space(), "docs"]
    await sdk.store.put_item(ns, "stocks", {"text": STOCKS})
    # Not indexed: never ranked, whatever it says.
    await sdk.store.put_item(ns, "hidden", {"text": CATS}, index=False)
    # Indexed by another field than the configured "text".
    await sdk.store.put_item(ns, "titled", {"text": STOCKS, "title": "cats purr"}, index=["title"])
    assert (await sdk.store.get_item(ns, "hidden"))["value"] == {"text": CATS}

    found = (await sdk.store.search_items(ns, query="cats purr", limit=10))["items"]
    keys = [item["key"] for item in found]
    assert keys[0] == "titled" and found[0]["score"] > 0.9
    assert "hidden" not in keys

    # A re-put replaces the item's vectors: what it said before no longer ranks it.
    await sdk.store.put_item(ns, "titled", {"text": STOCKS, "title": "cats purr"}, index=False)
    again = (await sdk.store.search_items(ns, query="cats purr", limit=10))["items"]
    assert "titled" not in [item["key"] for item in again]
    await sdk.store.put_item(ns, "hidden", {"text": CATS})
    now_found = (await sdk.store.search_items(ns, query="cats purr", limit=10))["items"]
    assert now_found[0]["key"] == "hidden"

    # A deleted item is not found by meaning either.
    await sdk.store.delete_item(ns, "hidden")
    assert "hidden" not in [i["key"] for i in (await sdk.store.search_items(ns, query="cats purr"))["items"]]


async def test_a_graph_searches_and_writes_the_indexed_store(sdk: Any) -> None:
    await sdk.store.put_item(["docs"], "cats", {"text": CATS})
    await sdk.store.put_item(["docs"], "stocks", {"text": STOCKS})
    thread = await sdk.threads.create()
    result = await sdk.runs.wait(
        thread["thread_id"], "recall", input={"query": "happy cats", "remember": "the dog barked at noon"}
    )
    hits = result["hits"]
    assert hits[0]["key"] == "cats" and isinstance(hits[0]["score"], float)

    # What the graph put was indexed with the server's embeddings.
    notes = (await sdk.store.search_items(["notes"], query="dog barked", limit=1))["items"]
    assert notes[0]["key"] == "latest" and notes[0]["score"] > 0.5


async def test_store_and_thread_ttl(server_factory: Callable[..., ServerProcess], tmp_path: Path) -> None:
    config = project_file(
        tmp_path,
        {
            "store": {
                "index": {"embed": f"{PROJECT}/embed.py:aembed", "dims": 64},
                "ttl": {"default_ttl": 0.02, "refresh_on_read": False},
            },
            "checkpointer": {"ttl": {"strategy": "delete", "default_ttl": 0.02}},
        },
    )
    # Sweeps every 0.2 s (CRONGRAPH_TTL_SWEEP_SECONDS is the period when langgraph.json gives none).
    proc = server_factory(config=config, env={"CRONGRAPH_TTL_SWEEP_SECONDS": "0.2"})
    sdk: Any = get_client(url=proc.url)
    ns = [space()]
    try:
        await sdk.store.put_item(ns, "long", {"text": CATS}, ttl=600)
        async with httpx.AsyncClient(base_url=proc.url) as http:
            forever = await http.put(
                "/store/items", json={"namespace": ns, "key": "forever", "value": {"text": DOGS}, "ttl": None}
            )
            assert forever.status_code == 204, forever.text
        await sdk.store.put_item(ns, "default", {"text": STOCKS})  # the SDK sends no ttl: store.ttl.default_ttl
        assert (await sdk.store.search_items(ns, query="stock prices", limit=1))["items"][0]["key"] == "default"

        default_thread = await sdk.threads.create()
        assert default_thread["ttl"] == {"ttl": 0.02, "strategy": "delete"}
        kept_thread = await sdk.threads.create(ttl=600)

        async def default_item_gone() -> bool:
            return await sdk.store.get_item(ns, "default") is None

        async def default_thread_gone() -> bool:
            try:
                await sdk.threads.get(default_thread["thread_id"])
            except httpx.HTTPStatusError as exc:
                return exc.response.status_code == 404
            return False

        await eventually(default_item_gone, within=60, what="the item with the default ttl to be swept")
        await eventually(default_thread_gone, within=60, what="the thread with the default ttl to be deleted")
        # Swept after they expired, so the others would be gone too were their ttls ignored.
        assert (await sdk.store.get_item(ns, "long"))["value"] == {"text": CATS}
        assert (await sdk.store.get_item(ns, "forever"))["value"] == {"text": DOGS}
        assert (await sdk.threads.get(kept_thread["thread_id"]))["thread_id"] == kept_thread["thread_id"]
    finally:
        await sdk.http.client.aclose()
        proc.stop()


async def test_thread_ttl_keep_latest_prunes_old_checkpoints(
    server_factory: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    config = project_file(tmp_path, {"checkpointer": {"ttl": {"strategy": "keep_latest", "default_ttl": 0.02}}})
    proc = server_factory(config=config, env={"CRONGRAPH_TTL_SWEEP_SECONDS": "0.2"})
    sdk: Any = get_client(url=proc.url)
    try:
        thread = await sdk.threads.create()
        assert thread["ttl"] == {"ttl": 0.02, "strategy": "keep_latest"}
        for query in ("cats", "dogs"):
            await sdk.runs.wait(thread["thread_id"], "recall", input={"query": query})
        assert len(await sdk.threads.get_history(thread["thread_id"], limit=100)) > 1

        async def pruned() -> bool:
            return len(await sdk.threads.get_history(thread["thread_id"], limit=100)) == 1

        await eventually(pruned, within=60, what="the thread's older checkpoints to be pruned")
        state = await sdk.threads.get_state(thread["thread_id"])
        assert state["values"]["query"] == "dogs", "the latest state is kept"
        assert (await sdk.threads.get(thread["thread_id"]))["thread_id"] == thread["thread_id"]
    finally:
        await sdk.http.client.aclose()
        proc.stop()


@pytest.mark.parametrize(
    ("embed", "message"),
    [
        (f"{PROJECT}/embed.py:missing", "'missing' not found"),
        ("./nowhere.py:embed", "nowhere.py not found"),
        (f"{PROJECT}/embed.py:NOT_A_FUNCTION", "expected an Embeddings object or a function"),
        ("no_such_module_x:embed", "no module named 'no_such_module_x'"),
        ("openai", "must be 'provider:model'"),
    ],
)
def test_a_bad_embed_is_a_one_line_startup_error(embed: str, message: str, tmp_path: Path) -> None:
    config = project_file(tmp_path, {"store": {"index": {"embed": embed, "dims": 64}}})
    done = subprocess.run(
        [sys.executable, "-m", "crongraph", "serve", "--port", "0", "--config", str(config), "--db", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "store.index.embed" in lines[0] and message in lines[0] and str(config) in lines[0], lines[0]
