"""Routes of the dashboard: two page shells, their static files, and two computing endpoints.

- `GET /dashboard` (the crons list and the upcoming timeline) and `GET /dashboard/crons/{cron_id}` (one cron)
  render a Jinja2 shell in the reader's language (i18n.choose). The shells hold no cron data: the page's script
  reads it from the public API with the reader's token, so with auth configured a page shows what that caller
  may see and nothing more; without auth the dashboard is open like the API.
- `GET /dashboard/static/{name}`: the files in `static/`, from memory, named by a fixed list (no path is ever
  joined from the request).
- `POST /dashboard/api/describe` and `POST /dashboard/api/timeline`: schedule math over schedules the browser
  sends (timeline.py). They read no stored data, so they need no auth.

Every page carries a Content-Security-Policy allowing only this origin, so the browser itself refuses any
request to another host.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from crongraph import __version__
from crongraph.api import limits
from crongraph.api.deps import RuntimeDep
from crongraph.api.schemas import Schedule, Timezone
from crongraph.dashboard import i18n, timeline
from crongraph.errors import NotFound
from crongraph.ids import parse_uuid

router = APIRouter(include_in_schema=False)

_env = Environment(
    loader=PackageLoader("crongraph.dashboard", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)

_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml"}


def _load_static() -> dict[str, tuple[bytes, str]]:
    files: dict[str, tuple[bytes, str]] = {}
    for entry in resources.files("crongraph.dashboard").joinpath("static").iterdir():
        suffix = entry.name[entry.name.rfind(".") :]
        if entry.is_file() and suffix in _TYPES:
            files[entry.name] = (entry.read_bytes(), _TYPES[suffix])
    return files


_STATIC = _load_static()
# Asset URLs carry a digest of every static file, so a browser never mixes a cached script with a newer page.
_ASSET_VERSION = hashlib.sha256(b"".join(body for body, _ in _STATIC.values()) + __version__.encode()).hexdigest()[:12]

_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    lang = i18n.choose(request.cookies.get(i18n.COOKIE), request.headers.get("accept-language"))
    strings = i18n.STRINGS[lang]
    root = request.scope.get("root_path", "").rstrip("/")
    html = _env.get_template(template).render(
        lang=lang,
        t=strings,
        strings=strings,
        languages=i18n.NAMES,
        root=root,
        static=f"{root}/dashboard/static",
        version=_ASSET_VERSION,
        **context,
    )
    return HTMLResponse(html, status_code=status_code, headers=_SECURITY_HEADERS)


@router.get("/dashboard")
async def crons_page(request: Request) -> HTMLResponse:
    return _page(request, "list.html", page="list")


@router.get("/dashboard/")
async def crons_page_slash(request: Request) -> RedirectResponse:
    return RedirectResponse(f"{request.scope.get('root_path', '').rstrip('/')}/dashboard", status_code=308)


@router.get("/dashboard/crons/{cron_id}")
async def cron_page(request: Request, cron_id: str) -> HTMLResponse:
    parsed = parse_uuid(cron_id)
    if parsed is None:
        # A malformed id can name no cron: say so at once rather than serve a page that fails later.
        return _page(request, "cron.html", status_code=404, page="cron", cron_id="", missing=True)
    return _page(request, "cron.html", page="cron", cron_id=parsed, missing=False)


@router.get("/dashboard/static/{name}")
async def static_file(name: str) -> Response:
    found = _STATIC.get(name)
    if found is None:
        raise NotFound(f"Dashboard file '{name[:60]}' not found")
    body, media_type = found
    # The page links assets with ?v=<digest>, so they can be cached for long.
    return Response(
        body,
        media_type=media_type,
        headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"},
    )


class _Strict(BaseModel):
    # The dashboard's own endpoints refuse unknown fields by name rather than ignore them.
    model_config = ConfigDict(extra="forbid")


CronId = Annotated[str, StringConstraints(min_length=1, max_length=limits.MAX_ID_CHARS)]


class ScheduleRef(_Strict):
    schedule: Schedule
    timezone: Timezone | None = None


class DescribeRequest(_Strict):
    schedules: list[ScheduleRef] = Field(max_length=limits.MAX_LIMIT)


class TimelineCron(_Strict):
    cron_id: CronId
    schedule: Schedule
    timezone: Timezone | None = None
    end_time: datetime | None = None
    next_run_date: datetime | None = None


class TimelineRequest(_Strict):
    crons: list[TimelineCron] = Field(max_length=5 * limits.MAX_LIMIT)
    hours: int = Field(default=24, ge=1, le=168)
    bucket_minutes: int = Field(default=15, ge=5, le=240)

    @model_validator(mode="after")
    def _whole_buckets(self) -> TimelineRequest:
        if (self.hours * 60) % self.bucket_minutes:
            raise ValueError(f"bucket_minutes ({self.bucket_minutes}) must divide hours × 60 ({self.hours * 60})")
        return self


@router.post("/dashboard/api/describe")
async def describe(body: DescribeRequest) -> dict[str, Any]:
    """`{"schedules": [{schedule, timezone?}]}` → `{"items": [{description, error}]}`, in order; a schedule
    that does not parse gets its error, not a 422 for the whole list."""
    return {"items": timeline.describe_all([(s.schedule, s.timezone) for s in body.schedules])}


@router.post("/dashboard/api/timeline")
async def upcoming(body: TimelineRequest, rt: RuntimeDep) -> dict[str, object]:
    """Fires of the given crons in the next `hours` (UTC buckets of `bucket_minutes`); see timeline.timeline."""
    refs = [
        timeline.CronRef(
            c.cron_id,
            c.schedule,
            c.timezone,
            _aware(c.end_time),
            _aware(c.next_run_date),
        )
        for c in body.crons
    ]
    return await timeline.timeline(refs, rt.clock.now(), body.hours, body.bucket_minutes)


def _aware(value: datetime | None) -> datetime | None:
    # A naive date-time is UTC, as everywhere in the cron API.
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)
