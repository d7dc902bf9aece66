"""The fuzzing gate: schemathesis generates requests for every operation of crongraph's own /openapi.json
(boundary values, random bodies, and stateful sequences that feed one answer's ids into the next request) against a
real server, and no answer may be a 5xx, nor may the server stop answering.

The amount of work is bounded by a number of examples per operation and a fixed seed, never by a timer, so a slow
machine takes longer but tests the same inputs, and a failure is reproducible with the seed it prints.
`make fuzz` runs a longer, randomly seeded pass on both backends; CRONGRAPH_FUZZ_EXAMPLES and
CRONGRAPH_FUZZ_SEED override both.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.support.server import ServerProcess

pytestmark = pytest.mark.slow

EXAMPLES = os.environ.get("CRONGRAPH_FUZZ_EXAMPLES", "5")
SEED = os.environ.get("CRONGRAPH_FUZZ_SEED", "20261130")
# Errors of schemathesis itself (a generator that could not build a value) are not the server's; these are.
SERVER_SIDE = ("connection", "timeout", "timed out", "remoteprotocolerror", "reset by peer", "server disconnected")


def test_no_generated_request_gets_a_5xx(
    server_factory: Callable[..., ServerProcess], tmp_path: Path, backend: str
) -> None:
    if backend == "postgres" and "CRONGRAPH_FUZZ_EXAMPLES" not in os.environ:
        # The gate's minutes count in every CI run: `make test` fuzzes on SQLite, `make fuzz` on both backends.
        pytest.skip("the fuzzing gate runs on SQLite in `make test`; `make fuzz` runs it on PostgreSQL")
    server = server_factory()
    junit = tmp_path / "fuzz.xml"
    args = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{server.url}/openapi.json",
        "--checks",
        "not_a_server_error",
        "--max-examples",
        EXAMPLES,
        "--seed",
        SEED,
        "--generation-database",
        "none",
        "--phases",
        "coverage,fuzzing,stateful",
        # The thread stream stays open as long as its client wants (by design): every case would only wait for
        # the request timeout (10 minutes of the gate's 11). Its bad inputs are in test_hostile_input.py.
        "--exclude-path-regex",
        r"^/threads/\{thread_id\}/stream$",
        "--workers",
        "2",
        "--request-timeout",
        "60",
        "--no-color",
        "--report",
        "junit",
        "--report-junit-path",
        str(junit),
    ]
    done = subprocess.run(args, capture_output=True, text=True, cwd=tmp_path, timeout=1800)
    output = done.stdout + done.stderr
    assert junit.exists(), f"schemathesis did not run:\n{output[-5000:]}"
    failures, server_errors = [], []
    for case in ET.parse(junit).getroot().iter("testcase"):
        for failure in case.findall("failure"):
            failures.append(f"{case.get('name')}: {failure.get('message') or ''} {(failure.text or '')[:800]}")
        for error in case.findall("error"):
            text = f"{error.get('message') or ''} {error.text or ''}"
            if any(marker in text.lower() for marker in SERVER_SIDE):
                server_errors.append(f"{case.get('name')}: {text[:800]}")
    assert not failures, "5xx answers (reproduce with the seed):\n" + "\n".join(failures) + "\n" + output[-3000:]
    assert not server_errors, "the server stopped answering:\n" + "\n".join(server_errors)
    assert httpx.get(f"{server.url}/ok", timeout=10).status_code == 200
    assert "unhandled error" not in server.log(), server.log()
