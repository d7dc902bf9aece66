"""The dashboard's words in English and Korean, and which language a request gets.

Invariants: every key exists in every language (tests/e2e/test_dashboard.py and `check()` below hold it), and the
choice is made on the server from the `crongraph_lang` cookie (set by the page's language switch) or else the
browser's Accept-Language, so the first paint is already in the reader's language. Placeholders are `{name}`,
filled by the page's JavaScript.
"""

from __future__ import annotations

LANGUAGES = ("en", "ko")
DEFAULT = "en"
COOKIE = "crongraph_lang"

EN: dict[str, str] = {
    "app": "crongraph",
    "crons": "Crons",
    "language": "Language",
    "token": "API token",
    "token_save": "Use token",
    "token_forget": "Forget token",
    "token_needed": "This server asks for a token: paste a bearer token to see your crons.",
    "token_refused": "The server refused the token ({status}).",
    "loading": "Loading…",
    "updated": "Updated {time}",
    "live": "Live: refreshes every few seconds",
    "failed": "Request failed: {detail}",
    "upcoming": "Upcoming 24 hours",
    "upcoming_help": "Fires per 15 minutes across all active crons, in your browser's time zone ({tz}).",
    "upcoming_none": "No fires in the next 24 hours.",
    "upcoming_bucket": "{time}: {fires} fires from {crons} crons",
    "upcoming_frequent": "{n} crons fire more often than every few minutes; their fires are estimated.",
    "upcoming_capped": "The timeline covers the first {n} active crons.",
    "filters": "Filters",
    "assistant": "Assistant",
    "all": "All",
    "state": "State",
    "active": "Active",
    "paused": "Paused",
    "finished": "Finished",
    "metadata": "Metadata",
    "metadata_help": 'JSON object the cron\'s metadata must contain, e.g. {"team": "ops"}',
    "apply": "Apply",
    "sort": "Sort by next fire",
    "soonest": "Soonest first",
    "latest": "Latest first",
    "schedule": "Schedule",
    "timezone": "Timezone",
    "next_fire": "Next fire",
    "target": "Runs on",
    "thread": "Thread {id}",
    "stateless": "Stateless",
    "runs_24h": "Runs 24 h",
    "failed_24h": "Failed 24 h",
    "tokens_24h": "Tokens 24 h",
    "last_run": "Last run",
    "no_crons": "No crons match.",
    "previous": "Previous",
    "next": "Next",
    "showing": "Crons {from}–{to}",
    "create_cron": "Create cron",
    "create_title": "Create a cron",
    "end_time": "End time (UTC, optional)",
    "ends": "Ends",
    "thread_id": "Thread ID (empty: a new thread per run)",
    "input": "Input (JSON)",
    "metadata_json": "Metadata (JSON)",
    "cancel": "Cancel",
    "preview": "Next fires",
    "preview_empty": "Type a schedule to see its next fires.",
    "created": "Cron created.",
    "bad_json": "{field} is not a JSON object.",
    "back": "All crons",
    "pause": "Pause",
    "resume": "Resume",
    "delete": "Delete",
    "run_now": "Run now",
    "edit": "Edit schedule",
    "save": "Save",
    "confirm_delete": "Delete this cron? It stops firing; its past runs are kept.",
    "deleted": "Cron deleted.",
    "triggered": "Run started.",
    "paused_ok": "Cron paused.",
    "resumed_ok": "Cron resumed.",
    "saved": "Schedule saved.",
    "not_found": "Cron not found.",
    "paused_reason": "Paused: {reason}",
    "next_occurrences": "Next occurrences",
    "fire_log": "Fire log",
    "runs": "Runs",
    "chart": "Runs and tokens per day",
    "chart_source": "From the latest {n} fires.",
    "chart_runs": "runs",
    "chart_tokens": "tokens",
    "scheduled_for": "Scheduled for",
    "fired_at": "Fired at",
    "outcome": "Outcome",
    "detail": "Detail",
    "status": "Status",
    "delay": "Delay",
    "duration": "Duration",
    "tokens": "Tokens",
    "error": "Error",
    "none": "None yet.",
    "details": "Details",
    "assistant_id": "Assistant",
    "missed_policy": "Missed occurrences",
    "max_runs": "Runs left",
    "overlap_policy": "Overlap",
    "pause_after_failures": "Pause after failures",
    "jitter_seconds": "Jitter (s)",
    "created_at": "Created",
    "usage_total": "Runs in total",
    "in_total": "In total (this server does not count the last 24 h apart)",
    "outcome_created": "created",
    "outcome_skipped": "skipped",
    "outcome_failed": "failed",
    "status_pending": "pending",
    "status_running": "running",
    "status_success": "success",
    "status_error": "error",
    "status_interrupted": "interrupted",
    "status_timeout": "timeout",
}

KO: dict[str, str] = {
    "app": "crongraph",
    "crons": "크론",
    "language": "언어",
    "token": "API 토큰",
    "token_save": "토큰 사용",
    "token_forget": "토큰 지우기",
    "token_needed": "이 서버는 토큰이 필요합니다. 크론을 보려면 Bearer 토큰을 붙여 넣으세요.",
    "token_refused": "서버가 토큰을 거부했습니다 ({status}).",
    "loading": "불러오는 중…",
    "updated": "{time}에 갱신됨",
    "live": "실시간: 몇 초마다 새로 고칩니다",
    "failed": "요청 실패: {detail}",
    "upcoming": "앞으로 24시간",
    "upcoming_help": "활성 크론 전체의 15분당 실행 횟수 (브라우저 시간대 {tz} 기준).",
    "upcoming_none": "앞으로 24시간 동안 예정된 실행이 없습니다.",
    "upcoming_bucket": "{time}: 크론 {crons}개, 실행 {fires}회",
    "upcoming_frequent": "크론 {n}개는 몇 분보다 자주 실행되어 횟수를 추정했습니다.",
    "upcoming_capped": "타임라인은 활성 크론 중 처음 {n}개를 보여 줍니다.",
    "filters": "필터",
    "assistant": "어시스턴트",
    "all": "전체",
    "state": "상태",
    "active": "활성",
    "paused": "일시 정지됨",
    "finished": "종료됨",
    "metadata": "메타데이터",
    "metadata_help": '크론 메타데이터에 포함되어야 하는 JSON 객체, 예: {"team": "ops"}',
    "apply": "적용",
    "sort": "다음 실행 순 정렬",
    "soonest": "가까운 순",
    "latest": "먼 순",
    "schedule": "일정",
    "timezone": "시간대",
    "next_fire": "다음 실행",
    "target": "실행 위치",
    "thread": "스레드 {id}",
    "stateless": "상태 없음",
    "runs_24h": "24시간 실행",
    "failed_24h": "24시간 실패",
    "tokens_24h": "24시간 토큰",
    "last_run": "마지막 실행",
    "no_crons": "조건에 맞는 크론이 없습니다.",
    "previous": "이전",
    "next": "다음",
    "showing": "크론 {from}–{to}",
    "create_cron": "크론 만들기",
    "create_title": "새 크론",
    "end_time": "종료 시각 (UTC, 선택)",
    "ends": "종료",
    "thread_id": "스레드 ID (비우면 실행마다 새 스레드)",
    "input": "입력 (JSON)",
    "metadata_json": "메타데이터 (JSON)",
    "cancel": "취소",
    "preview": "다음 실행 시각",
    "preview_empty": "일정을 입력하면 다음 실행 시각을 보여 줍니다.",
    "created": "크론을 만들었습니다.",
    "bad_json": "{field} 값이 JSON 객체가 아닙니다.",
    "back": "크론 목록",
    "pause": "일시 정지",
    "resume": "재개",
    "delete": "삭제",
    "run_now": "지금 실행",
    "edit": "일정 수정",
    "save": "저장",
    "confirm_delete": "이 크론을 삭제할까요? 더 이상 실행되지 않으며 지난 실행 기록은 남습니다.",
    "deleted": "크론을 삭제했습니다.",
    "triggered": "실행을 시작했습니다.",
    "paused_ok": "크론을 일시 정지했습니다.",
    "resumed_ok": "크론을 재개했습니다.",
    "saved": "일정을 저장했습니다.",
    "not_found": "크론을 찾을 수 없습니다.",
    "paused_reason": "일시 정지됨: {reason}",
    "next_occurrences": "다음 실행 예정",
    "fire_log": "실행 기록",
    "runs": "실행",
    "chart": "일별 실행과 토큰",
    "chart_source": "최근 {n}건의 실행 기록 기준.",
    "chart_runs": "실행",
    "chart_tokens": "토큰",
    "scheduled_for": "예정 시각",
    "fired_at": "실행 시각",
    "outcome": "결과",
    "detail": "상세",
    "status": "상태",
    "delay": "지연",
    "duration": "소요 시간",
    "tokens": "토큰",
    "error": "오류",
    "none": "아직 없습니다.",
    "details": "정보",
    "assistant_id": "어시스턴트",
    "missed_policy": "놓친 실행",
    "max_runs": "남은 실행 횟수",
    "overlap_policy": "중복 실행",
    "pause_after_failures": "연속 실패 시 일시 정지",
    "jitter_seconds": "지터 (초)",
    "created_at": "생성",
    "usage_total": "전체 실행",
    "in_total": "전체 기간 합계 (이 서버는 최근 24시간을 따로 세지 않습니다)",
    "outcome_created": "생성됨",
    "outcome_skipped": "건너뜀",
    "outcome_failed": "실패",
    "status_pending": "대기",
    "status_running": "실행 중",
    "status_success": "성공",
    "status_error": "오류",
    "status_interrupted": "중단됨",
    "status_timeout": "시간 초과",
}

STRINGS: dict[str, dict[str, str]] = {"en": EN, "ko": KO}
NAMES = {"en": "English", "ko": "한국어"}


def check() -> None:
    """Raise if a language lacks a key another has (called at import: a missing word is a bug, not a blank)."""
    keys = set(EN)
    for lang, table in STRINGS.items():
        if set(table) != keys:
            raise RuntimeError(f"dashboard i18n: {lang} differs in keys {sorted(keys ^ set(table))}")


check()


def choose(cookie: str | None, accept_language: str | None) -> str:
    """The page's language: the switch's cookie when it names a known language, else the first known language
    of Accept-Language by quality (`ko-KR,ko;q=0.9,en;q=0.8` → "ko"), else English."""
    if cookie in STRINGS:
        return cookie
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in STRINGS and quality > 0:
            ranked.append((-quality, index, primary))
    return min(ranked)[2] if ranked else DEFAULT
