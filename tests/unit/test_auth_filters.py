"""Auth filters become SQL (storage/filters.py `Match`), checked against an oracle written from the reference's
rules on a real SQLite database; the filter language's checks, the handler result kinds (auth/handlers.py) and
the user shapes @auth.authenticate may return (auth/users.py). PostgreSQL runs the same filters end to end in
tests/e2e/test_auth.py --backend=postgres."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from langgraph_sdk import Auth

from crongraph.auth.context import Caller
from crongraph.auth.handlers import Handlers, InvalidFilter, check_filter
from crongraph.auth.users import AuthUser, UserShapeError, normalize
from crongraph.errors import Denied
from crongraph.storage.filters import Match
from crongraph.storage.tables import metadata as schema
from crongraph.storage.tables import threads

DOCS: dict[str, dict[str, Any]] = {
    "1": {"owner": "alice", "tags": ["a", "b"], "n": 1},
    "2": {"owner": "bob", "tags": ["b"], "n": True},
    "3": {"owner": "alice", 'we"ird.key': "x", "n": 1.5, "none": None},
    "4": {},
    "5": {"owner": ["alice"], "tags": "a", "nested": {"owner": "alice"}},
}


def oracle(doc: dict[str, Any], spec: dict[str, Any]) -> bool:
    """The reference's matching rules, restricted to JSON values (types compared as JSON does)."""

    def same(a: Any, b: Any) -> bool:
        if isinstance(a, bool) or isinstance(b, bool):
            return a is b
        if isinstance(a, int | float) and isinstance(b, int | float):
            return bool(a == b)
        return type(a) is type(b) and bool(a == b)

    for key, value in spec.items():
        if key == "$or":
            if not any(oracle(doc, group) for group in value):
                return False
        elif key == "$and":
            if not all(oracle(doc, group) for group in value):
                return False
        elif isinstance(value, dict) and "$contains" in value:
            items = value["$contains"] if isinstance(value["$contains"], list) else [value["$contains"]]
            if not isinstance(doc.get(key), list) or not all(any(same(x, i) for x in doc[key]) for i in items):
                return False
        else:
            wanted = value["$eq"] if isinstance(value, dict) else value
            if key not in doc or not same(doc[key], wanted):
                return False
    return True


@pytest.fixture(scope="module")
def engine() -> sa.Engine:
    engine = sa.create_engine("sqlite://")
    schema.create_all(engine, tables=[threads])
    now = datetime.now(UTC)
    with engine.begin() as conn:
        for tid, doc in DOCS.items():
            conn.execute(
                threads.insert().values(
                    thread_id=tid, status="idle", metadata=doc, config={}, values=None, interrupts={},
                    created_at=now, updated_at=now, state_updated_at=now,
                )
            )  # fmt: skip
    return engine


SPECS: list[dict[str, Any]] = [
    {"owner": "alice"},
    {"owner": {"$eq": "bob"}},
    {"tags": {"$contains": "b"}},
    {"tags": {"$contains": ["a", "b"]}},
    {"tags": {"$contains": []}},
    {"n": 1},
    {"n": True},
    {"n": 1.5},
    {"none": None},
    {'we"ird.key': "x"},
    {"owner": "alice", "n": 1},
    {"$or": [{"owner": "bob"}, {"n": 1}]},
    {"$and": [{"owner": "alice"}, {"$or": [{"n": 1}, {"n": 1.5}]}]},
    {"missing": "x"},
    {},
]


@pytest.mark.parametrize("spec", SPECS, ids=[str(s) for s in SPECS])
def test_a_filter_selects_in_sql_exactly_what_the_rules_say(engine: sa.Engine, spec: dict[str, Any]) -> None:
    check_filter(spec)
    query = sa.select(threads.c.thread_id).where(Match(spec, "sqlite").on(threads.c.metadata))
    with engine.connect() as conn:
        found = sorted(conn.execute(query).scalars())
    assert found == sorted(tid for tid, doc in DOCS.items() if oracle(doc, spec))


def test_a_filter_also_guards_deletes(engine: sa.Engine) -> None:
    statement = sa.delete(threads).where(
        threads.c.thread_id == "2", Match({"owner": "alice"}, "sqlite").on(threads.c.metadata)
    )
    with engine.connect() as conn:
        assert conn.execute(statement).rowcount == 0
        conn.rollback()


def test_postgres_uses_jsonb_operators_with_bound_values() -> None:
    from sqlalchemy.dialects import postgresql

    spec = {"owner": "o'brien", "tags": {"$contains": ["a"]}}
    sql = str(
        sa.select(threads.c.thread_id)
        .where(Match(spec, "postgresql").on(threads.c.metadata))
        .compile(dialect=postgresql.dialect())
    )
    assert "->" in sql and "@>" in sql and "jsonb_typeof" in sql and "o'brien" not in sql


@pytest.mark.parametrize(
    "spec",
    [
        [],
        {"$or": [{"a": 1}]},
        {"$and": "x"},
        {"$not": {"a": 1}},
        {"a": {"$gt": 1}},
        {"a": {"$eq": 1, "$contains": 2}},
        {"a": {"$eq": [1]}},
        {"a": {"$contains": [{"x": 1}]}},
        {"a": [1, 2]},
        {"a": 2**70},
        {"$or": [{"$or": [{"$or": [{"a": 1}, {"a": 2}]}, {"a": 3}]}, {"a": 4}]},
    ],
)
def test_a_filter_outside_the_language_is_refused(spec: Any) -> None:
    with pytest.raises(InvalidFilter):
        check_filter(spec)


def _caller(auth: Auth, user: str = "alice", permissions: tuple[str, ...] = ()) -> Caller:
    return Caller(AuthUser({"identity": user}), permissions, Handlers(auth))


async def test_each_kind_of_handler_result() -> None:
    auth = Auth()

    @auth.on.threads.read
    async def read(ctx: Auth.types.AuthContext, value: Any) -> Any:
        return {"owner": ctx.user.identity}

    @auth.on.threads.search
    async def search(ctx: Auth.types.AuthContext, value: Any) -> Any:
        return True

    @auth.on.threads.update
    async def update(ctx: Auth.types.AuthContext, value: Any) -> Any:
        value["metadata"]["owner"] = ctx.user.identity  # changing the value, returning None

    @auth.on.threads.delete
    async def delete(ctx: Auth.types.AuthContext, value: Any) -> Any:
        return False

    @auth.on.threads.create
    async def create(ctx: Auth.types.AuthContext, value: Any) -> Any:
        raise Auth.exceptions.HTTPException(status_code=409, detail="nope", headers={"x-why": "test"})

    @auth.on.assistants
    async def assistants(ctx: Auth.types.AuthContext, value: Any) -> Any:
        assert ctx.action == "read", "assistants are read-only"
        return "a string"

    @auth.on
    async def fallback(ctx: Auth.types.AuthContext, value: Any) -> Any:
        return {"tags": {"$contains": ctx.resource}}

    caller = _caller(auth)
    handlers = caller.handlers
    assert await handlers.authorize(caller, "threads", "read", {}) == {"owner": "alice"}
    assert await handlers.authorize(caller, "threads", "search", {}) is None
    value: dict[str, Any] = {"metadata": {}}
    assert await handlers.authorize(caller, "threads", "update", value) is None
    assert value["metadata"] == {"owner": "alice"}
    with pytest.raises(Denied) as denied:
        await handlers.authorize(caller, "threads", "delete", {})
    assert denied.value.status == 403
    with pytest.raises(Denied) as refused:
        await handlers.authorize(caller, "threads", "create", {})
    assert (refused.value.status, refused.value.detail, refused.value.headers) == (409, "nope", {"x-why": "test"})
    with pytest.raises(Denied, match="read-only"):
        await handlers.authorize(caller, "assistants", "delete", {})
    with pytest.raises(InvalidFilter):
        await handlers.authorize(caller, "assistants", "read", {})
    assert await handlers.authorize(caller, "crons", "read", {}) == {"tags": {"$contains": "crons"}}
    assert await Handlers(Auth()).authorize(caller, "crons", "read", {}) is None  # no handler: allowed


class Member:
    def __init__(self) -> None:
        self.identity = "bob"
        self.permissions = ["p"]
        self.team = "blue"


@pytest.mark.parametrize(
    ("result", "identity", "permissions"),
    [
        ("carol", "carol", ()),
        ({"identity": "alice", "permissions": ["x"], "plan": "pro"}, "alice", ("x",)),
        (Member(), "bob", ("p",)),
        ((["admin"], "root"), "root", ("admin",)),
        ((["admin"], {"identity": "root"}), "root", ("admin",)),
    ],
)
def test_every_user_shape_authenticate_may_return(result: Any, identity: str, permissions: tuple[str, ...]) -> None:
    user, perms = normalize(result)
    assert user.identity == identity and user["identity"] == identity and perms == permissions
    assert user.is_authenticated and user.display_name == identity
    stored = user.stored()
    again = AuthUser.from_stored(stored)
    assert again is not None and again.identity == identity and list(again.permissions) == list(permissions)
    if isinstance(result, Member):
        assert user.team == "blue"  # the user's own attributes stay reachable


@pytest.mark.parametrize("result", [42, {"name": "x"}, ("a", "b", "c"), {"identity": "x", "permissions": "p"}])
def test_what_is_not_a_user_is_refused(result: Any) -> None:
    with pytest.raises(UserShapeError):
        normalize(result)
