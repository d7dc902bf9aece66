"""`store.index.embed` resolution (crongraph.graphs.embeddings): every form the reference accepts, and a one-line
error naming the key for every way it can be wrong."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from langchain_core.embeddings import Embeddings

from crongraph.config import ConfigError
from crongraph.graphs.embeddings import EmbeddingDimsError, EmbeddingsError, resolve_embeddings
from crongraph.graphs.persistence import store_options

PROJECT = Path(__file__).resolve().parents[1] / "fixtures" / "store_project"


class Constant(Embeddings):
    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [[1.0, 0.0, 0.0] for _ in texts]

    def embed_query(self, text: str) -> list[float]:
        return [1.0, 0.0, 0.0]


def test_a_relative_file_path_starts_in_the_projects_folder() -> None:
    embeddings = resolve_embeddings("./embed.py:embed", 64, PROJECT)
    vector = embeddings.embed_query("cats purr")
    assert len(vector) == 64 and sum(vector) == 2.0


async def test_an_async_function_serves_the_async_api() -> None:
    embeddings = resolve_embeddings("./embed.py:aembed", 64, PROJECT)
    assert len((await embeddings.aembed_documents(["a", "b c"]))[1]) == 64


def test_a_module_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(PROJECT))
    monkeypatch.delitem(sys.modules, "embed", raising=False)
    embeddings = resolve_embeddings("embed:embed", 64)
    assert len(embeddings.embed_documents(["x"])[0]) == 64


def test_objects_and_functions_given_directly() -> None:
    assert resolve_embeddings(Constant(), 3).embed_query("x") == [1.0, 0.0, 0.0]
    assert resolve_embeddings(lambda texts: [[0.5, 0.5] for _ in texts], 2).embed_query("x") == [0.5, 0.5]


def test_a_provider_goes_to_langchains_loader() -> None:
    # langchain-openai is not installed here: the error says what to install, naming the key.
    expected = r"^store\.index\.embed 'openai:text-embedding-3-small': .*langchain-openai"
    with pytest.raises(EmbeddingsError, match=expected):
        resolve_embeddings("openai:text-embedding-3-small", 1536)


def test_wrong_dims_are_refused_when_vectors_come_back() -> None:
    embeddings = resolve_embeddings("./embed.py:embed_wrong_dims", 64, PROJECT)
    with pytest.raises(EmbeddingDimsError, match=r"vector of 8 floats but store\.index\.dims is 64"):
        embeddings.embed_documents(["cats"])


@pytest.mark.parametrize(
    ("embed", "dims", "message"),
    [
        ("./embed.py:missing", 64, "'missing' not found"),
        ("./nowhere.py:embed", 64, "nowhere.py not found"),
        ("./embed.py:NOT_A_FUNCTION", 64, "is a int: expected an Embeddings object or a function"),
        ("no_such_module_x:embed", 64, "no module named 'no_such_module_x'"),
        ("not a module!:embed", 64, "neither a LangChain provider"),
        ("openai", 64, "must be 'provider:model'"),
        (":embed", 64, "must be 'provider:model'"),
        (42, 64, "must be a string"),
        ("./embed.py:embed", 0, "store.index.dims must be a positive integer"),
        ("./embed.py:embed", True, "store.index.dims must be a positive integer"),
    ],
)
def test_bad_values_are_one_line_config_errors(embed: object, dims: int, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_embeddings(embed, dims, PROJECT)
    text = str(caught.value)
    assert "\n" not in text and text.startswith("store.index.") and message in text, text


def test_a_file_that_fails_to_import_says_why(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("raise RuntimeError('no API key')\n")
    with pytest.raises(EmbeddingsError, match=r"importing .*broken\.py failed: no API key"):
        resolve_embeddings("./broken.py:embed", 4, tmp_path)


def test_store_options_take_the_references_names_and_defaults() -> None:
    config = PROJECT / "langgraph.json"
    options = store_options(
        {"index": {"embed": "./embed.py:embed", "dims": 64}, "ttl": {"default_ttl": 5}}, config, sweep_minutes=2
    )
    assert options.index is not None and options.index["fields"] == ["$"] and options.index["dims"] == 64
    assert options.ttl == {"refresh_on_read": True, "default_ttl": 5, "sweep_interval_minutes": 2.0}
    plain = store_options(None)
    assert plain.index is None and plain.ttl is not None and plain.ttl["default_ttl"] is None
    with pytest.raises(EmbeddingsError, match=rf"^{config}: store\.index\.embed"):
        store_options({"index": {"embed": "./embed.py:nope", "dims": 64}}, config)


def test_a_provider_without_credentials_starts_and_says_why_when_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """memory-agent ships `openai:text-embedding-3-small` and a .env with the key commented out: the server starts
    (LangChain's OpenAI client refuses to be built without a key), and each use names the key and the cause."""
    from langchain.embeddings import base

    def no_key(model: str, **_: object) -> Embeddings:
        raise ValueError("Missing credentials. Please set the OPENAI_API_KEY environment variable.")

    monkeypatch.setattr(base, "init_embeddings", no_key)
    monkeypatch.setattr("langchain.embeddings.init_embeddings", no_key)
    embeddings = resolve_embeddings("openai:text-embedding-3-small", 1536)
    from crongraph.errors import Unavailable

    with pytest.raises(Unavailable, match=r"store\.index\.embed 'openai:text-embedding-3-small'.*OPENAI_API_KEY"):
        embeddings.embed_query("cats")
    with pytest.raises(Unavailable, match="OPENAI_API_KEY"):
        embeddings.embed_documents(["cats"])
