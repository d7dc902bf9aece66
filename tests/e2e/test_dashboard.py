"""The cron dashboard (/dashboard) in a real browser: Debian's Chromium driven by Playwright for Python, against a
real crongraph process whose crons are created through the official SDK.

Every page a test opens is watched (fixture `page`): a request to any host but the server is refused and fails
the test, and so does a console error or an uncaught exception. Screenshots of each page are saved under the
test run's base temporary directory (`dashboard-screenshots/`). Waits are Playwright's auto-waiting assertions
(on what the page shows) and polls of the API, never fixed sleeps.

Chromium comes from `apt-get install -y chromium`; Playwright never downloads a browser here. Where Chromium is
absent these tests skip, saying so.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest
from langgraph_sdk.errors import NotFoundError, UnprocessableEntityError
from playwright.sync_api import Browser, Locator, Page, Playwright, Route, expect, sync_playwright

from tests.support.browser import CHROMIUM, launch_chromium
from tests.support.sdk import eventually_sync, sync_sdk_client
from tests.support.server import ServerProcess

MESSAGE = {"messages": [{"role": "user", "content": "What time is it?"}]}
# A loaded machine: give the page time, the assertions still end as soon as they hold.
expect.set_options(timeout=30_000)

pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Chromium is not installed: the dashboard's browser tests need Debian's `apt-get install -y chromium`",
)


@pytest.fixture(scope="module")
def dash(server_factory: Callable[..., ServerProcess]) -> ServerProcess:
    """A server of our own, so that the list shows only the crons these tests create."""
    return server_factory()


@pytest.fixture(scope="module")
def sdk(dash: ServerProcess) -> Iterator[Any]:
    with sync_sdk_client(dash.url) as client:
        yield client


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    chromium = launch_chromium(playwright)
    yield chromium
    chromium.close()


@pytest.fixture(scope="session")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.getbasetemp() / "dashboard-screenshots"
    folder.mkdir(exist_ok=True)
    return folder


class Watched:
    """Pages opened in one browser context, with every foreign request and console error they caused."""

    def __init__(self, browser: Browser, origin: str) -> None:
        self.browser = browser
        self.origin = origin
        self.foreign: list[str] = []
        self.errors: list[str] = []
        self.contexts: list[Any] = []
        # Chromium logs every 4xx answer to fetch() as a console error; a test that provokes one on purpose says
        # which statuses it expects, and every other console error still fails it.
        self.allowed_statuses: set[int] = set()

    def allow_status(self, *statuses: int) -> None:
        self.allowed_statuses.update(statuses)

    def _console_error(self, text: str) -> None:
        found = re.match(r"Failed to load resource: the server responded with a status of (\d+)", text)
        if not (found and int(found.group(1)) in self.allowed_statuses):
            self.errors.append(f"console error: {text}")

    def open(self, locale: str = "en-US") -> Page:
        context = self.browser.new_context(
            locale=locale, timezone_id="Europe/London", viewport={"width": 1400, "height": 900}
        )
        self.contexts.append(context)

        def guard(route: Route) -> None:
            parts = urlsplit(route.request.url)
            if f"{parts.scheme}://{parts.netloc}" != self.origin:
                self.foreign.append(route.request.url)
                route.abort()
            else:
                route.continue_()

        context.route("**/*", guard)
        page = context.new_page()
        page.on("console", lambda m: self._console_error(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        return page

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture
def watched(browser: Browser, dash: ServerProcess) -> Iterator[Watched]:
    w = Watched(browser, dash.url)
    yield w
    w.close()
    assert w.foreign == [], f"the dashboard asked other hosts: {w.foreign}"
    assert w.errors == [], f"the dashboard logged errors: {w.errors}"


@pytest.fixture
def page(watched: Watched) -> Page:
    return watched.open()


def api_get(sdk: Any, path: str) -> Any:
    return sdk.http.get(path)


def wall(iso: str, zone: str) -> str:
    return f"{datetime.fromisoformat(iso).astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M:%S}"


def row_of(page: Page, cron_id: str) -> Locator:
    return page.locator(f'#crons-body tr[data-cron-id="{cron_id}"]')


# ---- the list ---------------------------------------------------------------------------------------------------


def test_list_shows_schedules_in_words_and_each_zones_local_time(
    page: Page, sdk: Any, dash: ServerProcess, shots: Path
) -> None:
    thread = sdk.threads.create()
    seoul = sdk.crons.create_for_thread(
        thread["thread_id"], "agent", schedule="27 15 * * *", timezone="Asia/Seoul", input=MESSAGE
    )
    team = f"ops-{uuid.uuid4().hex[:8]}"
    ny = sdk.crons.create(
        "echo", schedule="0 9 * * 1-5", timezone="America/New_York", input=MESSAGE, metadata={"team": team}
    )

    response = page.goto(f"{dash.url}/dashboard")
    assert response is not None and "default-src 'none'" in response.headers["content-security-policy"]
    row = row_of(page, seoul["cron_id"])
    expect(row).to_contain_text("27 15 * * *")
    expect(row).to_contain_text("At 15:27, every day (Asia/Seoul)")
    # The next fire in the cron's own zone, and in UTC: 15:27 in Seoul is 06:27 UTC.
    local = wall(seoul["next_run_date"], "Asia/Seoul")
    assert local.endswith("15:27:00")
    expect(row.locator(".next .local")).to_have_text(f"{local} Asia/Seoul")
    expect(row.locator(".next .utc")).to_contain_text(f"{wall(seoul['next_run_date'], 'UTC')} UTC")
    assert wall(seoul["next_run_date"], "UTC").endswith("06:27:00")
    expect(row).to_contain_text("Active")
    expect(row).to_contain_text(f"Thread {thread['thread_id'][:8]}")
    expect(row).to_contain_text("agent")  # the graph's name, not the assistant's UUID

    other = row_of(page, ny["cron_id"])
    expect(other).to_contain_text("At 09:00, Monday through Friday (America/New_York)")
    expect(other).to_contain_text("Stateless")
    expect(other).to_contain_text("echo")
    expect(other.locator(".next .local")).to_have_text(
        f"{wall(ny['next_run_date'], 'America/New_York')} America/New_York"
    )
    expect(page.locator("#timeline svg")).to_be_visible()
    page.screenshot(path=shots / "list.png", full_page=True)

    # Sorted by next fire, soonest first.
    order = page.locator("#crons-body tr").evaluate_all("rows => rows.map(r => r.dataset.cronId)")
    expected = sorted([seoul, ny], key=lambda c: c["next_run_date"])
    assert [i for i in order if i in (seoul["cron_id"], ny["cron_id"])] == [c["cron_id"] for c in expected]

    # Filter by metadata.
    filters = page.get_by_role("form", name="Filters")
    filters.get_by_label("Metadata", exact=True).fill(json.dumps({"team": team}))
    filters.get_by_role("button", name="Apply").click()
    expect(page.locator("#crons-body tr")).to_have_count(1)
    expect(row_of(page, ny["cron_id"])).to_be_visible()

    # Filter by assistant.
    filters.get_by_label("Metadata", exact=True).fill("")
    filters.get_by_label("Assistant", exact=True).select_option(label="agent")
    filters.get_by_role("button", name="Apply").click()
    expect(row_of(page, ny["cron_id"])).to_have_count(0)
    expect(row_of(page, seoul["cron_id"])).to_be_visible()

    # Filter by state: a cron paused through the API shows under "Paused" only.
    sdk.crons.update(ny["cron_id"], enabled=False)
    filters.get_by_label("Assistant", exact=True).select_option(label="All")
    filters.get_by_label("State", exact=True).select_option(label="Paused")
    filters.get_by_role("button", name="Apply").click()
    expect(row_of(page, ny["cron_id"])).to_contain_text("Paused")
    expect(row_of(page, seoul["cron_id"])).to_have_count(0)
    sdk.crons.delete(seoul["cron_id"])
    sdk.crons.delete(ny["cron_id"])


def test_upcoming_timeline_shows_a_burst(page: Page, sdk: Any, dash: ServerProcess, shots: Path) -> None:
    # Five crons at one minute a few hours ahead, which no other test's cron shares.
    at = (datetime.now(UTC) + timedelta(hours=3)).replace(minute=7, second=0, microsecond=0)
    crons = [
        sdk.crons.create("echo", schedule=f"{at.minute} {at.hour} * * *", timezone="UTC", input=MESSAGE)
        for _ in range(5)
    ]
    page.goto(f"{dash.url}/dashboard")
    label = f"{at.astimezone(ZoneInfo('Europe/London')):%H}:00: "  # the 15-minute bucket 07 falls in, browser zone
    titles = page.locator("#timeline svg g title")
    expect(titles.filter(has_text=re.compile(rf"^{re.escape(label)}5 fires from 5 crons"))).to_have_count(1)
    page.locator("#timeline svg g", has=page.locator("title", has_text=label)).click()
    expect(page.locator("#timeline-detail")).to_contain_text("5 fires from 5 crons")
    page.screenshot(path=shots / "upcoming.png")
    for cron in crons:
        sdk.crons.delete(cron["cron_id"])


def test_list_updates_live_after_a_fire(page: Page, sdk: Any, dash: ServerProcess) -> None:
    thread = sdk.threads.create()
    cron = sdk.crons.create_for_thread(thread["thread_id"], "echo", schedule="* * * * * */2", input=MESSAGE)
    try:
        page.goto(f"{dash.url}/dashboard")
        runs_cell = row_of(page, cron["cron_id"]).locator("td").nth(6)
        expect(runs_cell).to_have_text(re.compile(r"^\d+$"))
        before = int(runs_cell.inner_text())
        # No reload: the page polls, and the count grows as the cron fires.
        expect(runs_cell).to_have_text(re.compile(r"^\d+$"))
        expect(runs_cell).not_to_have_text(str(before))
        assert int(runs_cell.inner_text()) > before
        expect(row_of(page, cron["cron_id"])).to_contain_text("success")
    finally:
        sdk.crons.delete(cron["cron_id"])


# ---- a cron's page ----------------------------------------------------------------------------------------------


def test_cron_page_shows_a_failed_runs_error_and_the_fire_log(
    page: Page, sdk: Any, dash: ServerProcess, shots: Path
) -> None:
    thread = sdk.threads.create()
    cron = sdk.crons.create_for_thread(thread["thread_id"], "fails", schedule="* * * * * */2", input=MESSAGE)
    try:
        page.goto(f"{dash.url}/dashboard/crons/{cron['cron_id']}")
        expect(page).to_have_url(re.compile(cron["cron_id"]))
        expect(page.locator("#cron-schedule")).to_have_text("* * * * * */2")
        expect(page.locator("#cron-words")).to_have_text("Every 2 seconds (UTC)")
        expect(page.locator("#next-list li")).to_have_count(10)
        first = page.locator("#runs-body tr").first
        expect(first).to_contain_text("error")
        expect(first.locator("td").nth(5)).to_have_text("ValueError: kaboom")
        expect(first.locator("td").nth(2)).to_have_text(re.compile(r"\d ms$|\d s$"))  # delay_ms shown
        expect(page.locator("#fires-body tr").first).to_contain_text("created")
        expect(page.locator("#chart svg")).to_be_visible()
        page.screenshot(path=shots / "cron-failed.png", full_page=True)
    finally:
        sdk.crons.delete(cron["cron_id"])


def test_every_action_is_reflected_in_the_api(watched: Watched, sdk: Any, dash: ServerProcess, shots: Path) -> None:
    page = watched.open()
    thread = sdk.threads.create()
    cron = sdk.crons.create_for_thread(
        thread["thread_id"], "metered", schedule="0 3 * * *", timezone="UTC", input={"messages": [], "tokens": 120}
    )
    path = f"/runs/crons/{cron['cron_id']}"
    page.goto(f"{dash.url}/dashboard/crons/{cron['cron_id']}")

    page.get_by_role("button", name="Pause", exact=True).click()
    expect(page.get_by_role("button", name="Resume", exact=True)).to_be_visible()
    assert api_get(sdk, path)["enabled"] is False
    expect(page.locator("#cron-state")).to_contain_text("Paused")

    page.get_by_role("button", name="Resume", exact=True).click()
    expect(page.get_by_role("button", name="Pause", exact=True)).to_be_visible()
    assert api_get(sdk, path)["enabled"] is True

    page.get_by_role("button", name="Run now").click()
    expect(page.locator("#flash")).to_have_text("Run started.")
    runs = eventually_sync(lambda: [r for r in api_get(sdk, f"{path}/runs") if r["status"] == "success"])
    assert len(runs) == 1
    tokens = (runs[0].get("usage") or {}).get("total_tokens")
    row = page.locator(f'#runs-body tr[data-run-id="{runs[0]["run_id"]}"]')
    expect(row).to_contain_text("success")
    expect(row).to_have_attribute("data-kind", "manual")  # a run from "Run now" is marked as such
    expect(row.locator("td").nth(1)).to_contain_text("manual")
    expect(page.locator("#fires-body tr").first.locator("td").nth(2)).to_have_text("manual")  # the fire log's kind
    # A cron in UTC gives its next fire once, not "… UTC · … UTC".
    expect(page.locator("#cron-state")).to_contain_text("Next fire:")
    assert page.locator("#cron-state").inner_text().count(" UTC") == 1
    if tokens is not None:
        expect(row.locator("td").nth(4)).to_have_text(str(tokens))

    page.get_by_role("button", name="Edit schedule").click()
    page.get_by_label("Schedule", exact=True).fill("30 8 * * *")
    page.get_by_label("Timezone", exact=True).fill("Europe/Paris")
    page.get_by_label("End time (UTC, optional)").fill("2040-01-01T00:00:00")
    expect(page.locator("#e-words")).to_have_text("At 08:30, every day (Europe/Paris)")
    expect(page.locator("#e-preview li")).to_have_count(5)
    expect(page.locator("#e-preview li").first).to_contain_text("08:30:00 (Europe/Paris)")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#flash")).to_have_text("Schedule saved.")
    saved = api_get(sdk, path)
    assert (saved["schedule"], saved["timezone"]) == ("30 8 * * *", "Europe/Paris")
    assert datetime.fromisoformat(saved["end_time"]) == datetime(2040, 1, 1, tzinfo=UTC)
    expect(page.locator("#cron-schedule")).to_have_text("30 8 * * *")
    page.screenshot(path=shots / "cron.png", full_page=True)

    # Delete asks first; Cancel keeps the cron.
    page.get_by_role("button", name="Delete").click()
    confirm = page.locator("#delete-dialog")
    expect(confirm).to_contain_text("Delete this cron?")
    page.screenshot(path=shots / "cron-delete-confirm.png")
    confirm.get_by_role("button", name="Cancel").click()
    expect(confirm).to_be_hidden()
    assert api_get(sdk, path)["cron_id"] == cron["cron_id"]
    page.get_by_role("button", name="Delete").click()
    confirm.get_by_role("button", name="Delete").click()
    expect(page).to_have_url(f"{dash.url}/dashboard")
    expect(page.locator("#flash")).to_have_text("Cron deleted.")
    with pytest.raises(NotFoundError):
        api_get(sdk, path)


def test_the_create_button_stays_put_while_the_timeline_loads(watched: Watched, sdk: Any, dash: ServerProcess) -> None:
    # The timeline is drawn above the "Create cron" button once its data arrives: if that moved the button, a click
    # aimed at it while the page loads would land on something else (a click lost under load).
    cron = sdk.crons.create("echo", schedule="*/30 * * * *", input=MESSAGE)
    page = watched.open()
    held: list[Route] = []  # the timeline's data, answered only when the test says so
    page.context.route("**/dashboard/api/timeline", lambda route: held.append(route))
    page.goto(f"{dash.url}/dashboard")
    # Playwright's sync API runs the route handler while it talks to the browser: each evaluate lets it.
    eventually_sync(lambda: page.evaluate("1") and len(held) == 1, what="the page asking for its timeline")
    before = page.locator("#create-open").bounding_box()
    held[0].continue_()
    expect(page.locator("#timeline svg")).to_be_visible()
    assert page.locator("#create-open").bounding_box() == before
    sdk.crons.delete(cron["cron_id"])


def test_create_form_previews_the_schedule(watched: Watched, sdk: Any, dash: ServerProcess, shots: Path) -> None:
    watched.allow_status(422)  # the preview of the invalid schedule typed first
    page = watched.open()
    page.goto(f"{dash.url}/dashboard")
    page.get_by_role("button", name="Create cron").click()
    dialog = page.locator("#create-dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Assistant", exact=True).select_option(label="echo")
    dialog.get_by_label("Schedule", exact=True).fill("61 * * * *")
    expect(dialog.get_by_role("alert")).to_contain_text("61")  # the server's 422 detail, shown as typed
    dialog.get_by_label("Schedule", exact=True).fill("0 7 * * *")
    dialog.get_by_label("Timezone", exact=True).fill("Asia/Seoul")
    expect(dialog.locator("#c-words")).to_have_text("At 07:00, every day (Asia/Seoul)")
    expect(dialog.locator("#c-preview li")).to_have_count(5)
    expected = sdk.http.post("/runs/crons/preview", json={"schedule": "0 7 * * *", "timezone": "Asia/Seoul"})
    first = expected["next_run_dates"][0]
    expect(dialog.locator("#c-preview li").first).to_contain_text(f"{wall(first, 'Asia/Seoul')} (Asia/Seoul)")
    expect(dialog.get_by_role("alert")).to_have_text("")
    marker = uuid.uuid4().hex
    dialog.get_by_label("Metadata (JSON)").fill(json.dumps({"made_by": marker}))
    page.screenshot(path=shots / "create.png")
    dialog.get_by_role("button", name="Create cron").click()
    expect(page.locator("#flash")).to_contain_text("Cron created.")
    made = sdk.crons.search(metadata={"made_by": marker})
    assert len(made) == 1
    assert (made[0]["schedule"], made[0]["timezone"], made[0]["thread_id"]) == ("0 7 * * *", "Asia/Seoul", None)
    assistant = sdk.assistants.get(made[0]["assistant_id"])
    assert assistant["graph_id"] == "echo"
    expect(row_of(page, made[0]["cron_id"])).to_contain_text("At 07:00, every day (Asia/Seoul)")
    sdk.crons.delete(made[0]["cron_id"])


# ---- languages, tokens ------------------------------------------------------------------------------------------


def test_korean_browser_gets_korean_with_a_switch(watched: Watched, sdk: Any, dash: ServerProcess, shots: Path) -> None:
    cron = sdk.crons.create("echo", schedule="*/30 * * * *", input=MESSAGE)
    page = watched.open(locale="ko-KR")
    page.goto(f"{dash.url}/dashboard")
    expect(page.locator("html")).to_have_attribute("lang", "ko")
    expect(page.get_by_role("heading", name="크론", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="크론 만들기")).to_be_visible()
    expect(page.get_by_role("columnheader", name="다음 실행")).to_be_visible()
    row = row_of(page, cron["cron_id"])
    expect(row).to_contain_text("활성")
    expect(row).to_contain_text("상태 없음")
    expect(row.locator(".next .utc")).to_contain_text("후")  # "in 12 minutes" in Korean: "12분 후"
    page.screenshot(path=shots / "list-ko.png", full_page=True)
    page.get_by_label("언어").select_option("en")
    expect(page.get_by_role("heading", name="Crons", exact=True)).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    sdk.crons.delete(cron["cron_id"])


def test_a_pasted_token_is_sent_as_bearer(page: Page, dash: ServerProcess) -> None:
    page.goto(f"{dash.url}/dashboard")
    page.get_by_role("button", name="API token").click()
    page.get_by_label("API token", exact=True).fill("s3cret-token")
    with page.expect_request(lambda r: r.url.endswith("/runs/crons/search")) as seen:
        page.get_by_role("button", name="Use token").click()
    assert seen.value.headers.get("authorization") == "Bearer s3cret-token"
    # Kept for the session only.
    assert page.evaluate("sessionStorage.getItem('crongraph.token')") == "s3cret-token"
    assert page.evaluate("localStorage.length") == 0


def test_unknown_cron_and_bad_requests(watched: Watched, sdk: Any, dash: ServerProcess) -> None:
    watched.allow_status(404)  # the page of a cron that does not exist, and its API answer
    page = watched.open()
    missing = uuid.uuid4()
    page.goto(f"{dash.url}/dashboard/crons/{missing}")
    expect(page.locator("#cron-schedule")).to_have_text("Cron not found.")
    response = page.goto(f"{dash.url}/dashboard/crons/not-a-uuid")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", name="Cron not found.")).to_be_visible()
    # The dashboard's own endpoints refuse bad input with a 4xx naming it.
    for path, body, named in [
        ("/dashboard/api/timeline", {"crons": [], "hours": 24, "bucket_minutes": 7}, "bucket_minutes"),
        ("/dashboard/api/timeline", {"crons": [{"cron_id": "x", "schedule": 5}]}, "schedule"),
        ("/dashboard/api/describe", {"schedules": [], "extra": 1}, "extra"),
    ]:
        answer = httpx.post(f"{dash.url}{path}", json=body)
        assert answer.status_code == 422 and named in answer.json()["detail"], answer.text
    with pytest.raises(UnprocessableEntityError):
        sdk.http.post("/dashboard/api/describe", json={"schedules": [{"schedule": "x" * 5000}]})


def test_with_auth_the_dashboard_asks_for_a_token_and_shows_only_that_users_crons(
    watched: Watched, server_factory: Callable[..., ServerProcess], shots: Path
) -> None:
    project = Path(__file__).resolve().parents[1] / "fixtures" / "auth_project" / "langgraph.json"
    secured = server_factory(config=project)
    watched.origin = secured.url
    watched.allow_status(401)  # the API's answer before the token is given
    made: dict[str, Any] = {}
    for user in ("alice", "bob"):
        with sync_sdk_client(secured.url, headers={"Authorization": f"Bearer {user}-token"}) as client:
            thread = client.threads.create()
            made[user] = client.crons.create_for_thread(thread["thread_id"], "whoami", schedule="0 9 * * *", input={})

    page = watched.open()
    response = page.goto(f"{secured.url}/dashboard")
    assert response is not None and response.status == 200  # the shell loads without a token...
    expect(page.locator("#token-message")).to_have_text(  # ...and its first API call asks for one
        "This server asks for a token: paste a bearer token to see your crons."
    )
    # Nothing keeps saying "Loading…": the header and the table wait for the reader's token, and say so.
    expect(page.locator("#updated")).to_have_text("Paste an API token to continue.")
    expect(page.locator("#crons-body")).to_have_text("Paste an API token to continue.")
    expect(page.locator("#upcoming-help")).to_have_text("Paste an API token to continue.")
    page.get_by_label("API token", exact=True).fill("Bearer alice-token")  # copied with its scheme: accepted
    page.get_by_role("button", name="Use token").click()
    expect(row_of(page, made["alice"]["cron_id"])).to_be_visible()
    expect(page.locator("#crons-body tr")).to_have_count(1)  # bob's cron is not hers to see
    expect(page.locator("#token-form")).to_be_hidden()
    page.screenshot(path=shots / "list-auth.png")
    page.goto(f"{secured.url}/dashboard/crons/{made['alice']['cron_id']}")
    expect(page.locator("#cron-schedule")).to_have_text("0 9 * * *")
    watched.allow_status(404)
    page.goto(f"{secured.url}/dashboard/crons/{made['bob']['cron_id']}")
    expect(page.locator("#cron-schedule")).to_have_text("Cron not found.")
