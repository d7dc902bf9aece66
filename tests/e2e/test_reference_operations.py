"""crongraph's /openapi.json offers every operation the reference's offers (tests/fixtures/reference_operations.txt:
the reference's (method, path) pairs, copied from its /openapi.json). Path parameters are compared by position, so
`/threads/{thread_id}` matches whatever crongraph names the parameter."""

from __future__ import annotations

import re

import httpx

from tests.support.server import ROOT, ServerProcess

REFERENCE = ROOT / "tests" / "fixtures" / "reference_operations.txt"


def _shape(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


def reference_operations() -> set[tuple[str, str]]:
    pairs = set()
    for line in REFERENCE.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            method, path = line.split()
            pairs.add((method.upper(), _shape(path)))
    return pairs


def test_the_fixture_lists_the_reference_operations() -> None:
    operations = reference_operations()
    assert len(operations) >= 60
    assert {("POST", "/a2a/{}"), ("POST", "/mcp/"), ("GET", "/threads/{}/storage")} <= operations


def test_crongraph_offers_every_operation_of_the_reference(server: ServerProcess) -> None:
    paths = httpx.get(f"{server.url}/openapi.json", timeout=30).json()["paths"]
    ours = {(method.upper(), _shape(path)) for path, item in paths.items() for method in item}
    missing = reference_operations() - ours
    # The reference lists its docs page in its schema; FastAPI serves /docs without listing it. It must answer.
    assert httpx.get(f"{server.url}/docs", timeout=30).status_code == 200
    missing.discard(("GET", "/docs"))
    assert not missing, f"operations of the reference that crongraph's /openapi.json lacks: {sorted(missing)}"
