"""The registration floor's servers (`crons.py --floor`): the create-cron route answered with a fixed cron
object, by uvicorn configured as crongraph runs it (httptools, no access log) and either FastAPI (the request's
JSON body parsed, as any FastAPI route does) or a bare ASGI app (the body read, not parsed). Nothing is stored:
what a client loop reaches against these is what the HTTP stack and the client allow, whatever the server does.

    python benchmarks/floor.py fastapi|bare PORT
"""

from __future__ import annotations

import json
import sys
from typing import Any

import uvicorn

# A cron as crongraph answers its create (the official SDKs parse it; its size is that of a real answer).
CRON = {
    "cron_id": "1f0c7d2e-0000-6000-8000-000000000000",
    "assistant_id": "fe096781-5601-53d2-b2f6-0d3403f7e9ca",
    "thread_id": None,
    "on_run_completed": "delete",
    "end_time": None,
    "schedule": "0 0 1 1 *",
    "timezone": None,
    "created_at": "2026-12-01T06:00:00+00:00",
    "updated_at": "2026-12-01T06:00:00+00:00",
    "payload": {"assistant_id": "fe096781-5601-53d2-b2f6-0d3403f7e9ca", "input": {"value": 1}},
    "user_id": None,
    "next_run_date": "2027-01-01T00:00:00+00:00",
    "metadata": {},
    "enabled": True,
}
BODY = json.dumps(CRON).encode()
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


def fastapi_app() -> Any:
    from fastapi import FastAPI, Response

    app = FastAPI()

    @app.post("/runs/crons")
    async def create(body: dict[str, Any]) -> Response:
        return Response(BODY, media_type="application/json")

    @app.get("/ok")
    async def ok() -> dict[str, bool]:
        return {"ok": True}

    return app


async def bare_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["type"] != "http":
        return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


def main(argv: list[str]) -> None:
    kind, port = argv
    app = fastapi_app() if kind == "fastapi" else bare_app
    uvicorn.run(app, host="127.0.0.1", port=int(port), log_level="warning", access_log=False, http="httptools")


if __name__ == "__main__":
    main(sys.argv[1:])
