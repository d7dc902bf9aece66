"""The custom auth `benchmarks/runs.py --auth` measures: a trivial bearer-token authenticate and the templates'
owner handler (stamp the owner on what is created, filter everything by it)."""

from __future__ import annotations

from typing import Any

from langgraph_sdk import Auth

auth = Auth()


@auth.authenticate
async def authenticate(authorization: str | None) -> str:
    if not authorization or not authorization.startswith("Bearer "):
        raise Auth.exceptions.HTTPException(status_code=401, detail="Missing bearer token")
    return authorization[len("Bearer ") :]


@auth.on
async def owner(ctx: Auth.types.AuthContext, value: dict[str, Any]) -> dict[str, str]:
    metadata = value.get("metadata")
    if isinstance(metadata, dict):
        metadata["owner"] = ctx.user.identity
    return {"owner": ctx.user.identity}
