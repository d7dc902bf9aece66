"""langgraph.json as crongraph reads it: every key of the reference's schema parsed into typed sections, unknown keys
warned about with a did-you-mean, malformed values refused in one sentence naming the file and the key, `.env`
files read by python-dotenv, a missing one warned about, and `configurable_headers` chosen as the reference does."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson
import pytest

from crongraph.config import ConfigError, ProjectConfig, apply_environment, load
from crongraph.config.schema import BUILD_ONLY_KEYS, LangGraphJson
from crongraph.http.headers import HeaderPolicy

EVERY_KEY: dict[str, Any] = {
    "graphs": {"agent": "./agent.py:graph", "other": {"path": "pkg.mod:make", "description": "Another."}},
    "env": {"PROJECT_CONFIG_TEST_A": "1", "PROJECT_CONFIG_TEST_B": True},
    "dependencies": [".", "./libs/tools"],
    "store": {
        "index": {"embed": "./embed.py:embed", "dims": 8, "fields": ["text"]},
        "ttl": {"refresh_on_read": False, "default_ttl": 60, "sweep_interval_minutes": 5},
    },
    "checkpointer": {"ttl": {"strategy": "keep_latest", "default_ttl": 1440, "sweep_interval_minutes": 10}},
    "auth": {
        "path": "./auth.py:auth",
        "disable_studio_auth": True,
        "openapi": {"security": [{"Bearer": []}]},
        "cache": {"cache_keys": ["authorization"], "ttl_seconds": 60},
    },
    "encryption": {"path": "./enc.py:encryption"},
    "priority": {"path": "./prio.py:priority"},
    "http": {
        "app": "./app.py:app",
        "cors": {"allow_origins": ["https://a.example"], "allow_origin_regex": r"^https://.*\.b\.example$"},
        "configurable_headers": {"includes": ["x-user-*"], "excludes": ["x-user-secret"]},
        "logging_headers": {"excludes": ["authorization"]},
        "disable_store": True,
        "disable_meta": False,
        "middleware_order": "middleware_first",
        "enable_custom_route_auth": False,
        "mount_prefix": "/api",
    },
    "webhooks": {
        "env_prefix": "PCT_HOOK_",
        "url": {"allowed_domains": ["*.hooks.example"], "allowed_ports": [443]},
        "headers": {"Authorization": "Bearer ${{ env.PCT_HOOK_TOKEN }}", "X-Static": "yes"},
        "allowed_fields": ["run_id", "status"],
    },
    "ui": {"agent": "./ui.tsx"},
    "python_version": "3.12",
    "node_version": "20",
    "base_image": "langchain/langgraph-api:3.12",
    "image_distro": "wolfi",
    "pip_config_file": "pip.conf",
    "pip_installer": "uv",
    "dockerfile_lines": ["RUN true"],
    "keep_pkg_tools": ["pip"],
}


def write(tmp_path: Path, document: dict[str, Any], name: str = "langgraph.json") -> Path:
    path = tmp_path / name
    path.write_bytes(orjson.dumps(document))
    return path


@pytest.fixture(autouse=True)
def _webhook_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PCT_HOOK_TOKEN", "s3cret")


def test_every_key_is_parsed_into_typed_sections(tmp_path: Path) -> None:
    config = load(write(tmp_path, EVERY_KEY))
    assert [(g.graph_id, g.spec, g.description) for g in config.graphs] == [
        ("agent", "./agent.py:graph", None),
        ("other", "pkg.mod:make", "Another."),
    ]
    assert config.env == {"PROJECT_CONFIG_TEST_A": "1", "PROJECT_CONFIG_TEST_B": "true"}
    assert config.dependencies == [".", "./libs/tools"]
    assert config.store is not None and config.store.index is not None and config.store.ttl is not None
    assert (config.store.index.embed, config.store.index.dims, config.store.index.fields) == (
        "./embed.py:embed",
        8,
        ["text"],
    )
    assert (
        config.store.ttl.refresh_on_read,
        config.store.ttl.default_ttl,
        config.store.ttl.sweep_interval_minutes,
    ) == (
        False,
        60,
        5,
    )
    assert config.checkpointer is not None and config.checkpointer.ttl is not None
    assert config.checkpointer.ttl.strategy == "keep_latest" and config.checkpointer.ttl.default_ttl == 1440
    http = config.http
    assert http.app == "./app.py:app" and http.disable_store and http.mount_prefix == "/api"
    assert http.cors is not None and http.cors.allow_origins == ["https://a.example"]
    assert http.cors.allow_methods == ["GET"] and http.cors.max_age == 600  # Starlette's defaults, as the reference
    assert http.configurable_headers is not None and http.configurable_headers.excludes == ["x-user-secret"]
    assert config.webhooks is not None and config.webhooks.url is not None
    assert config.webhooks.url.allowed_domains == ["*.hooks.example"]
    assert config.webhooks.url.require_https and config.webhooks.url.disable_loopback  # the reference's defaults
    assert config.webhooks.url.max_url_length == 2048
    # Header templates are rendered at startup from the environment, within env_prefix.
    assert config.webhooks.headers == {"Authorization": "Bearer s3cret", "X-Static": "yes"}
    assert config.webhooks.allowed_fields == {"run_id", "status"}
    assert config.auth is not None and config.auth.path == "./auth.py:auth"
    assert not [w for w in config.warnings if w.startswith("unknown key")]


def test_the_schema_knows_every_key_of_the_reference() -> None:
    reference = {
        "python_version", "node_version", "api_version", "_INTERNAL_docker_tag", "base_image", "image_distro",
        "pip_config_file", "pip_installer", "source", "dockerfile_lines", "dependencies", "graphs", "env", "store",
        "checkpointer", "auth", "encryption", "priority", "http", "webhooks", "ui", "keep_pkg_tools",
    }  # fmt: skip
    known = {info.alias or name for name, info in LangGraphJson.model_fields.items()}
    assert reference <= known


def test_unhonoured_keys_are_warned_about_by_name_and_auth_loudly(tmp_path: Path) -> None:
    config = load(write(tmp_path, EVERY_KEY))
    text = "\n".join(config.warnings)
    # auth.path is honoured (custom auth runs); of its sub-keys only `cache` is not.
    assert "This server is OPEN" not in text
    for key in ('"auth.cache"', '"encryption"', '"priority"', '"ui"'):
        assert key in text
    # An `auth` section without a path authenticates nothing, and says so loudly.
    pathless = load(write(tmp_path, {**EVERY_KEY, "auth": {"disable_studio_auth": True}}))
    assert any("This server is OPEN: every request is answered without authentication" in w for w in pathless.warnings)
    build_only = [note for note in config.notes if note.startswith("build-only")]
    assert len(build_only) == 1
    for key in ("python_version", "dockerfile_lines", "base_image", "image_distro", "pip_installer", "keep_pkg_tools"):
        assert key in build_only[0] and key in BUILD_ONLY_KEYS


def test_the_bundled_example_has_no_warnings_and_default_http() -> None:
    from crongraph.config import EXAMPLE

    assert EXAMPLE.warnings == [] and EXAMPLE.http.cors is None and not EXAMPLE.http.disable_runs


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"grafs": {}, "graphs": {"a": "./a.py:g"}}, 'unknown key "grafs" ignored (did you mean "graphs"?)'),
        (
            {"graphs": {"a": "./a.py:g"}, "http": {"corss": {}}},
            'unknown key "http.corss" ignored (did you mean "http.cors"?)',
        ),
        (
            {"graphs": {"a": {"path": "./a.py:g", "descripton": "x"}}},
            'unknown key "graphs.a.descripton" ignored (did you mean "graphs.a.description"?)',
        ),
        (
            {"graphs": {"a": "./a.py:g"}, "store": {"index": {"embed": "x:y", "dims": 2, "feilds": []}}},
            'unknown key "store.index.feilds" ignored (did you mean "store.index.fields"?)',
        ),
    ],
)
def test_unknown_keys_are_warned_about_with_a_did_you_mean(
    tmp_path: Path, document: dict[str, Any], expected: str
) -> None:
    assert expected in load(write(tmp_path, document)).warnings


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"graphs": {"a": "./a.py:g"}, "http": {"cors": {"max_age": "ten"}}}, '"http.cors.max_age": Input should be'),
        ({"graphs": {"a": 5}}, '"graphs.a": Input should be a valid string (got 5)'),
        ({"graphs": {"a": {"description": "x"}}}, '"graphs.a.path": Field required'),
        ({"graphs": {"a": "no-colon"}}, '"graphs": graph "a": expected "path/to/file.py:variable"'),
        ({"graphs": {"a": "./a.py:g"}, "dependencies": "."}, '"dependencies": Input should be a valid list'),
        ({"graphs": {"a": "./a.py:g"}, "http": {"mount_prefix": "api/"}}, '"http.mount_prefix": must start with'),
        (
            {"graphs": {"a": "./a.py:g"}, "checkpointer": {"ttl": {"strategy": "forever"}}},
            "\"checkpointer.ttl.strategy\": Input should be 'delete' or 'keep_latest'",
        ),
        (
            {"graphs": {"a": "./a.py:g"}, "webhooks": {"url": {"allowed_domains": ["a*.example"]}}},
            "\"webhooks.url.allowed_domains\": 'a*.example': a wildcard is allowed only as a prefix",
        ),
        (
            {"graphs": {"a": "./a.py:g"}, "webhooks": {"headers": {"X": "${{ env.OTHER_TOKEN }}"}}},
            "\"webhooks.headers\": environment variable 'OTHER_TOKEN' must start with the env_prefix 'LG_WEBHOOK_'",
        ),
        ({"graphs": {"a": "./a.ts:graph"}}, "is a JavaScript graph"),
        ({"graphs": {}}, '"graphs": must name at least one graph'),
        ({}, '"graphs": Field required'),
        ({"grafs": {"a": "./a.py:g"}}, '"graphs": Field required. The file has "grafs": did you mean "graphs"?'),
    ],
)
def test_a_malformed_value_is_one_sentence_naming_the_file_and_the_key(
    tmp_path: Path, document: dict[str, Any], expected: str
) -> None:
    path = write(tmp_path, document)
    with pytest.raises(ConfigError) as caught:
        load(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and expected in message
    assert "\n" not in message


def test_json_schema_keywords_are_known_and_internal_keys_are_never_suggested(tmp_path: Path) -> None:
    # The templates ship "$schema" for editors; a key list in a hint shows only what a user may write.
    config = load(write(tmp_path, {"$schema": "https://langgra.ph/schema.json", "graphs": {"a": "./a.py:g"}, "zz": 1}))
    assert [w for w in config.warnings if "unknown key" in w] == [w for w in config.warnings if '"zz"' in w]
    assert all("$schema" not in w and "_INTERNAL" not in w for w in config.warnings)


def test_not_json_and_missing_file_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "langgraph.json"
    bad.write_text("{graphs")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load(bad)
    with pytest.raises(ConfigError, match="file not found"):
        load(tmp_path / "nothing.json")


def test_env_file_is_read_by_dotenv_with_comments_quotes_and_expansion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PCT_FROM_PROCESS", "proc")
    (tmp_path / ".env").write_text(
        "# a comment line\n"
        "PCT_PLAIN=value # a trailing comment\n"
        'PCT_DOUBLE="two words # kept"\n'
        "PCT_SINGLE='kept ${PCT_PLAIN}'\n"
        'PCT_ESCAPED="line1\\nline2"\n'
        "export PCT_EXPORTED=yes\n"
        "PCT_EXPANDED=${PCT_PLAIN}-and-${PCT_FROM_PROCESS}\n"
        "PCT_EMPTY=\n"
    )
    config = load(write(tmp_path, {"graphs": {"a": "./a.py:g"}, "env": ".env"}))
    assert config.env["PCT_PLAIN"] == "value"
    assert config.env["PCT_DOUBLE"] == "two words # kept"
    assert config.env["PCT_SINGLE"] == "kept value"
    assert config.env["PCT_ESCAPED"] == "line1\nline2"
    assert config.env["PCT_EXPORTED"] == "yes"
    assert config.env["PCT_EXPANDED"] == "value-and-proc"
    assert config.env["PCT_EMPTY"] == ""
    assert config.warnings == []


def test_existing_environment_variables_win(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PCT_WINS", "from-process")
    monkeypatch.delenv("PCT_NEW", raising=False)
    (tmp_path / ".env").write_text("PCT_WINS=from-file\nPCT_NEW=from-file\n")
    config = load(write(tmp_path, {"graphs": {"a": "./a.py:g"}, "env": ".env"}))
    apply_environment(config)
    assert os.environ["PCT_WINS"] == "from-process" and os.environ["PCT_NEW"] == "from-file"


def test_a_missing_env_file_is_a_warning_naming_it_and_its_example(tmp_path: Path) -> None:
    (tmp_path / ".env.example").write_text("OPENAI_API_KEY=\n")
    config = load(write(tmp_path, {"graphs": {"a": "./a.py:g"}, "env": ".env"}))
    assert config.env == {}
    [warning] = config.warnings
    assert str(tmp_path / ".env") in warning and str(tmp_path / ".env.example") in warning


def test_dependencies_not_installed_are_named(tmp_path: Path) -> None:
    document = {"graphs": {"a": "./a.py:g"}, "dependencies": ["pydantic", "surely-not-installed-pkg>=1", "./missing"]}
    warnings = "\n".join(load(write(tmp_path, document)).warnings)
    assert "surely-not-installed-pkg" in warnings and "pip install" in warnings
    assert '"pydantic"' not in warnings
    assert "missing" in warnings and "does not exist" in warnings


def test_local_dependencies_and_their_src_go_on_sys_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    (tmp_path / "src").mkdir()
    monkeypatch.setattr(sys, "path", list(sys.path))
    config = ProjectConfig(path=tmp_path / "langgraph.json", graphs=[], dependencies=["."])
    apply_environment(config)
    assert sys.path[:2] == [str(tmp_path), str(tmp_path / "src")]


@pytest.mark.parametrize(
    ("patterns", "headers", "expected"),
    [
        # The reference's default (langgraph-api 0.16.7): nothing but tracing.
        (None, {"x-user-id": "u", "user-agent": "sdk", "langsmith-trace": "t"}, {"langsmith-trace": "t"}),
        (
            {"includes": ["x-user-*", "user-agent"], "excludes": ["x-user-secret"]},
            {"x-user-id": "u", "x-user-secret": "s", "x-other": "o", "user-agent": "sdk"},
            {"x-user-id": "u", "user-agent": "sdk"},
        ),
        # Never copied, whatever the patterns say.
        ({"includes": ["*"]}, {"authorization": "Bearer t", "x-api-key": "k", "x-a": "1"}, {"x-a": "1"}),
        ({"include": ["X-Caps-*"]}, {"x-caps-one": "1"}, {"x-caps-one": "1"}),  # the alias; case-insensitive
        (
            None,
            {"langsmith-trace": "t", "baggage": "langsmith-metadata=%7B%22a%22%3A1%7D,langsmith-tags=a%2Cb,other=x"},
            {"langsmith-trace": "t", "langsmith-metadata": {"a": 1}, "langsmith-tags": ["a", "b"]},
        ),
    ],
)
def test_configurable_headers_are_chosen_as_the_reference_does(
    patterns: dict[str, list[str]] | None, headers: dict[str, str], expected: dict[str, Any]
) -> None:
    from crongraph.config.schema import ConfigurableHeaders

    policy = HeaderPolicy(ConfigurableHeaders.model_validate(patterns) if patterns else None)
    raw = [(k.encode(), v.encode()) for k, v in headers.items()]
    assert policy.select(raw) == expected
