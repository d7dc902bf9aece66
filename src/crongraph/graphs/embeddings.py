"""Turns langgraph.json's `store.index.embed` into a LangChain `Embeddings` object, once, at startup.

Accepted, as LangGraph Platform accepts them:
- `"provider:model"` (e.g. `"openai:text-embedding-3-small"`) through LangChain's `init_embeddings`;
- `"./path/file.py:name"` (relative to langgraph.json's folder) or `"package.module:name"`, where `name` is an
  `Embeddings` object or a function, sync or async, taking `list[str]` and returning `list[list[float]]`;
- an `Embeddings` object or such a function given directly (from Python).

Every failure is an `EmbeddingsError` whose message starts with `store.index.embed` and says what to do. The object
returned checks each vector's length against `store.index.dims`, so a wrong `dims` is a clear error where it
happens instead of a failed SQL statement or a silently wrong ranking.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import re
import sys
import warnings
from pathlib import Path
from typing import Any

from langchain_core.embeddings import Embeddings
from langgraph.store.base import ensure_embeddings

from crongraph.config import ConfigError
from crongraph.errors import Unavailable

log = logging.getLogger("crongraph")

KEY = "store.index.embed"

# LangChain's own list is private (`langchain.embeddings.base._BUILTIN_PROVIDERS`); this copy is the fallback if it
# moves, and only decides whether "a:b" names a provider or a module, never which providers work.
_KNOWN_PROVIDERS = frozenset(
    {
        "azure_ai",
        "azure_openai",
        "bedrock",
        "cohere",
        "google_genai",
        "google_vertexai",
        "huggingface",
        "mistralai",
        "ollama",
        "openai",
    }
)
_DOTTED_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


class EmbeddingsError(ConfigError):
    """`store.index.embed` (or `dims`) cannot be used; the message is one line meant for the user as is."""


class EmbeddingDimsError(Unavailable):
    """The embedding function returned vectors whose length is not `store.index.dims`: the server's configuration
    is wrong, not the request that met it."""


def resolve_embeddings(embed: object, dims: int, base_dir: Path | None = None) -> Embeddings:
    """The embeddings `embed` names, checked to return vectors of `dims` floats.

    `base_dir` is where relative file paths start (langgraph.json's folder; the working directory if None).
    Raises EmbeddingsError naming `store.index.embed`.
    """
    if isinstance(dims, bool) or not isinstance(dims, int) or dims <= 0:
        raise EmbeddingsError(f"store.index.dims must be a positive integer, got {dims!r}")
    if isinstance(embed, CheckedEmbeddings) and embed.dims == dims:
        return embed
    return CheckedEmbeddings(_resolve(embed, base_dir or Path.cwd()), dims)


def _resolve(embed: object, base_dir: Path) -> Embeddings:
    if isinstance(embed, Embeddings):
        return embed
    if callable(embed):
        return ensure_embeddings(embed)
    if not isinstance(embed, str):
        raise EmbeddingsError(f"{KEY} must be a string such as 'openai:text-embedding-3-small', got {embed!r}")
    target, sep, name = embed.rpartition(":")
    if not sep or not target or not name:
        raise EmbeddingsError(
            f"{KEY} '{embed}' must be 'provider:model' (e.g. 'openai:text-embedding-3-small'), "
            "'./file.py:function' or 'module:function'"
        )
    if target.endswith(".py") or "/" in target or "\\" in target:
        return _from_object(embed, _attribute(embed, _load_file(embed, base_dir / target), name))
    if target in _providers():
        return _from_langchain(embed)
    return _from_module(embed, target, name)


def _providers() -> frozenset[str]:
    try:
        from langchain.embeddings import base
    except ImportError:
        return _KNOWN_PROVIDERS
    found = getattr(base, "_BUILTIN_PROVIDERS", None)
    return frozenset(found) if isinstance(found, dict) else _KNOWN_PROVIDERS


def _from_langchain(embed: str) -> Embeddings:
    try:
        from langchain.embeddings import init_embeddings
    except ImportError:
        raise EmbeddingsError(
            f"{KEY} '{embed}' is loaded by LangChain's embeddings loader, which needs the langchain package: "
            "pip install langchain"
        ) from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # init_embeddings announces itself as beta
            loaded = init_embeddings(embed)
    except ImportError as exc:
        raise EmbeddingsError(f"{KEY} '{embed}': {_one_line(exc)}") from None
    except Exception as exc:
        # Provider clients check their credentials when built (e.g. OPENAI_API_KEY missing). A template ships its
        # .env with the keys commented out: the server still starts, and what needs the embeddings says why not.
        problem = f"{KEY} '{embed}' could not be loaded: {_one_line(exc)}"
        log.warning("%s; semantic search and indexed puts will fail until this is fixed (then restart)", problem)
        return _Unavailable(problem)
    if not isinstance(loaded, Embeddings):
        raise EmbeddingsError(f"{KEY} '{embed}': LangChain returned {type(loaded).__name__}, not Embeddings")
    return loaded


class _Unavailable(Embeddings):
    """Embeddings that could not be built at startup: every use raises the reason, naming the key."""

    def __init__(self, problem: str) -> None:
        self.problem = problem

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        raise EmbeddingsUnavailable(self.problem)

    def embed_query(self, text: str) -> list[float]:
        raise EmbeddingsUnavailable(self.problem)


class EmbeddingsUnavailable(Unavailable):
    """The configured embeddings could not be built at startup (see the message); the server's configuration is
    at fault, not the request that needed them."""


def _load_file(embed: str, path: Path) -> Any:
    path = path.resolve()
    if not path.is_file():
        raise EmbeddingsError(f"{KEY} '{embed}': file {path} not found")
    # One module per file, named after its path, so that loading it twice gives the same module.
    module_name = "crongraph_embed_" + re.sub(r"\W", "_", str(path))
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise EmbeddingsError(f"{KEY} '{embed}': {path} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[module_name]
        raise EmbeddingsError(f"{KEY} '{embed}': importing {path} failed: {_one_line(exc)}") from None
    return module


def _from_module(embed: str, target: str, name: str) -> Embeddings:
    if not _DOTTED_NAME.match(target):
        raise EmbeddingsError(
            f"{KEY} '{embed}': '{target}' is neither a LangChain provider ({', '.join(sorted(_providers()))}) "
            "nor a Python module name"
        )
    try:
        module = importlib.import_module(target)
    except ModuleNotFoundError as exc:
        if exc.name is not None and target.startswith(exc.name):
            raise EmbeddingsError(
                f"{KEY} '{embed}': no module named '{exc.name}', and '{target}' is not a LangChain provider "
                f"({', '.join(sorted(_providers()))})"
            ) from None
        raise EmbeddingsError(f"{KEY} '{embed}': importing {target} failed: {_one_line(exc)}") from None
    except Exception as exc:
        raise EmbeddingsError(f"{KEY} '{embed}': importing {target} failed: {_one_line(exc)}") from None
    return _from_object(embed, _attribute(embed, module, name))


def _attribute(embed: str, module: Any, name: str) -> Any:
    value = module
    for part in name.split("."):
        if not hasattr(value, part):
            raise EmbeddingsError(f"{KEY} '{embed}': '{name}' not found in {getattr(module, '__file__', module)}")
        value = getattr(value, part)
    return value


def _from_object(embed: str, value: Any) -> Embeddings:
    if isinstance(value, Embeddings):
        return value
    if callable(value):
        return ensure_embeddings(value)
    raise EmbeddingsError(
        f"{KEY} '{embed}' is a {type(value).__name__}: expected an Embeddings object or a function "
        "list[str] -> list[list[float]]"
    )


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


class CheckedEmbeddings(Embeddings):
    """Delegates to the user's embeddings and refuses vectors whose length is not `dims` (EmbeddingDimsError naming
    both settings): the SQLite store would store them and rank garbage, PostgreSQL would fail with a type error."""

    def __init__(self, inner: Embeddings, dims: int) -> None:
        self.inner = inner
        self.dims = dims

    def _check(self, vectors: list[list[float]], count: int) -> list[list[float]]:
        if len(vectors) != count:
            raise EmbeddingDimsError(f"{KEY} returned {len(vectors)} vectors for {count} texts")
        for vector in vectors:
            if len(vector) != self.dims:
                raise EmbeddingDimsError(
                    f"{KEY} returned a vector of {len(vector)} floats but store.index.dims is {self.dims}: "
                    "make them agree in langgraph.json"
                )
        return vectors

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._check(self.inner.embed_documents(texts), len(texts))

    def embed_query(self, text: str) -> list[float]:
        return self._check([self.inner.embed_query(text)], 1)[0]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._check(await self.inner.aembed_documents(texts), len(texts))

    async def aembed_query(self, text: str) -> list[float]:
        return self._check([await self.inner.aembed_query(text)], 1)[0]
