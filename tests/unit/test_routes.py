"""app.py includes the routers busiest first, which is only safe while no route of one router also matches a path
of another (the first router's route would answer it): this holds that."""

from __future__ import annotations

import re

from starlette.routing import compile_path

from crongraph.api import assistants, crons, meta, runs, store, thread_stream, threads

ROUTERS = (assistants, crons, meta, runs, store, thread_stream, threads)


def _methods(route: object) -> set[str]:
    return set(getattr(route, "methods", None) or {"WEBSOCKET"})


def test_no_route_answers_another_routers_path() -> None:
    routes = [(module.__name__, route) for module in ROUTERS for route in module.router.routes]
    overlaps = []
    for owner, route in routes:
        pattern = compile_path(route.path)[0]  # type: ignore[attr-defined]
        for other_owner, other in routes:
            # Any value in the other route's parameters: the path a client could send to it.
            path = re.sub(r"\{[^}]+\}", "x", other.path)  # type: ignore[attr-defined]
            if owner != other_owner and pattern.match(path) and _methods(route) & _methods(other):
                overlaps.append(f"{owner} {route.path} answers {other_owner} {other.path}")  # type: ignore[attr-defined]
    assert overlaps == []
