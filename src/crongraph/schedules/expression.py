"""Cron expressions: parse, validate, explain, and find occurrences in an IANA time zone.

Pure: only the standard library, and the clock is never read (`after`/`start` are arguments).

Invariants:
- A `CronExpression` that exists is valid and fires at least once in the Gregorian calendar: malformed or
  never-firing expressions raise `InvalidSchedule` (a `ValueError`) whose message names the field and value.
- Every occurrence is an aware UTC datetime at a whole second; `next_after` is strictly increasing.
- DST (docs/schedules.md): a *fixed-time* cron (no `*` or `/` in its minute and hour fields) fires once per
  matching wall time: at the first occurrence of a repeated time, and at the first instant after a gap for a
  skipped one. Any other cron fires at every real instant whose wall clock matches: twice in a repeated hour,
  never inside a gap.

Why no library: croniter 7.0.0 fires some fixed-time crons twice on fall-back days and costs ~185 us per call;
cronsim 2.8 follows Debian cron but puts seconds first, lacks macros, `W`, `L5` and wrap-around ranges, and
reports only "Bad minute". We match fields on *naive* wall-clock times ourselves (sorted tuples and bisect,
a few microseconds per call) and map wall times to UTC with our own gap/fold rules built only on PEP 495
`fold` semantics, so the DST behaviour cannot change under us with a library upgrade.
"""

from __future__ import annotations

import calendar
from bisect import bisect_left
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

_SECOND = timedelta(seconds=1)
# A feasible day pattern repeats every 400 years (the Gregorian cycle), so searching that far is exhaustive.
_HORIZON_YEARS = 401
# DST rules never put two offset changes within a day of each other, so a one-day look-ahead finds the
# one fall-back that can make an earlier wall time recur after `after`.
_PROBE = timedelta(days=1)
_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


_TZ_HINT = "Use IANA timezone format (e.g. 'America/New_York')."
# Longer schedules are refused before parsing: parsing is linear in the length and callers run it on an event
# loop (a 4 MB schedule took 2.7 s). A schedule with every list spelled out is a few hundred characters.
MAX_SCHEDULE_CHARS = 1024
# The longest IANA name is 32 characters ("America/Argentina/ComodRivadavia").
MAX_TIMEZONE_CHARS = 64


class InvalidSchedule(ValueError):
    """A schedule that is malformed or can never fire; the message is user-facing."""


class InvalidTimezone(ValueError):
    """A time zone that is not an IANA name known to this system."""


def load_timezone(name: str | None) -> ZoneInfo:
    """The IANA zone `name`; None or "" means UTC."""
    if name is None or name == "":
        return ZoneInfo("UTC")
    if not isinstance(name, str):
        raise InvalidTimezone(f"Invalid timezone: {name!r}. {_TZ_HINT}")
    if len(name) > MAX_TIMEZONE_CHARS:
        raise InvalidTimezone(f"Invalid timezone: longer than {MAX_TIMEZONE_CHARS} characters. {_TZ_HINT}")
    # Only names of the IANA database: ZoneInfo would also open paths ("../", absolute, hundreds of parts that
    # make its resource loader recurse), and "localtime"-style files that are not zones.
    if name not in _zone_names():
        raise InvalidTimezone(f"Invalid timezone: '{name}'. {_TZ_HINT}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidTimezone(f"Invalid timezone: '{name}'. {_TZ_HINT}") from None


@lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    # Scanning the database costs ~50 ms; the set does not change while the process runs.
    return frozenset(available_timezones())


@dataclass(frozen=True)
class CronExpression:
    """A validated cron expression. Equality and hashing use `text` only."""

    text: str
    fields: tuple[str, ...] = field(init=False, repr=False, compare=False)  # sec min hour dom month dow
    seconds: tuple[int, ...] = field(init=False, repr=False, compare=False)
    minutes: tuple[int, ...] = field(init=False, repr=False, compare=False)
    hours: tuple[int, ...] = field(init=False, repr=False, compare=False)
    days: _Days = field(init=False, repr=False, compare=False)
    _month_cache: dict[tuple[int, int], tuple[int, ...]] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        text = self.text
        if not isinstance(text, str):
            raise InvalidSchedule(f"Invalid cron schedule {text!r}: the schedule must be a string.")
        if len(text) > MAX_SCHEDULE_CHARS:
            raise InvalidSchedule(
                f"Invalid cron schedule: {len(text)} characters long; the limit is {MAX_SCHEDULE_CHARS}."
            )
        expanded = text.strip()
        if not expanded:
            raise InvalidSchedule(
                f"Invalid cron schedule '{text}': the schedule is empty. Example: '*/5 * * * *' for every 5 minutes."
            )
        if expanded.startswith("@"):
            macro = expanded.lower()
            if macro == "@reboot":
                raise InvalidSchedule(f"Invalid cron schedule '{text}': '@reboot' is not a schedule.")
            if macro not in _MACROS:
                raise InvalidSchedule(
                    f"Invalid cron schedule '{text}': unknown macro '{expanded}'; use one of {', '.join(_MACROS)}."
                )
            expanded = _MACROS[macro]
        parts = expanded.split()
        if parts and parts[0].upper().startswith(("CRON_TZ=", "TZ=")):
            zone = parts[0].split("=", 1)[1]
            raise InvalidSchedule(
                f"Invalid cron schedule '{text}': '{parts[0]}' names a time zone, which belongs in the cron's "
                f"`timezone` field, not in the schedule: send timezone '{zone}' and schedule "
                f"'{' '.join(parts[1:])}'."
            )
        if len(parts) not in (5, 6):
            raise InvalidSchedule(
                f"Invalid cron schedule '{text}': expected 5 fields (minute hour day-of-month month "
                f"day-of-week), or 6 with seconds as the sixth; got {len(parts)}."
            )
        # The reference (croniter) reads a sixth field as seconds; store seconds first internally.
        ordered = (parts[5] if len(parts) == 6 else "0", *parts[:5])
        try:
            seconds, minutes, hours, days = _parse_fields(ordered)
        except _FieldError as exc:
            raise InvalidSchedule(f"Invalid cron schedule '{text}': {exc}.") from None
        set_ = object.__setattr__  # frozen dataclass: derived fields are computed once, here
        set_(self, "fields", ordered)
        set_(self, "seconds", seconds)
        set_(self, "minutes", minutes)
        set_(self, "hours", hours)
        set_(self, "days", days)
        if not any(self._shape_days(shape) for shape in days.shapes()):
            raise InvalidSchedule(
                f"Invalid cron schedule '{text}': it can never fire, because no date matches "
                f"day-of-month '{ordered[3]}', month '{ordered[4]}' and day-of-week '{ordered[5]}'."
            )

    @classmethod
    def parse(cls, text: str) -> CronExpression:
        """Validate `text`; raises InvalidSchedule. Equal texts share one (immutable) instance."""
        if cls is CronExpression and isinstance(text, str):
            return _parse_cached(text)
        return cls(text)

    @property
    def fixed_time(self) -> bool:
        """Neither the minute nor the hour field is a wildcard or step (selects the DST rule, see above)."""
        return not any(ch in self.fields[1] + self.fields[2] for ch in "*/?")

    # ---- occurrences -------------------------------------------------------------------------------------

    def next_after(self, after: datetime, tz: ZoneInfo) -> datetime | None:
        """The first occurrence strictly after `after` (aware, any zone), in UTC; None if none remains."""
        if after.tzinfo is None or after.utcoffset() is None:
            raise ValueError("next_after needs a timezone-aware datetime")
        try:
            return self._next_after(after.astimezone(UTC), tz)
        except OverflowError:  # within a day of year 9999
            return None

    def _next_after(self, a_utc: datetime, tz: ZoneInfo) -> datetime | None:
        local = a_utc.astimezone(tz)
        # Wall times are whole seconds, so the first candidate strictly after `after` is at or after this.
        start = local.replace(tzinfo=None, microsecond=0, fold=0) + _SECOND
        limit = min(start.year + _HORIZON_YEARS, 9999)
        if self.fixed_time:
            # Each wall time W fires at the first instant whose wall clock reads >= W (fold 0, or the end of
            # the gap). Walls up to wall(after) already fired; walls later than it may still map to <= after
            # when `after` is in the second copy of a repeated hour, hence the check.
            wall = self._next_wall(start, limit)
            while wall is not None:
                instants = _instants(wall, tz)
                t = instants[0] if instants else _gap_end(wall, tz)
                if t > a_utc:
                    return t
                wall = self._next_wall(wall + _SECOND, limit)
            return None
        offset = _offset_at(a_utc, tz)
        probe = a_utc + _PROBE
        if _offset_at(probe, tz) < offset:
            # A fall-back comes within a day: wall times before it belong to the current offset, and after it
            # the clock repeats, so continue from the wall time shown at the transition.
            transition = _transition(a_utc, probe, tz)
            wall = self._next_wall(start, limit)
            if wall is not None and (t := (wall - offset).replace(tzinfo=UTC)) < transition:
                return t
            wall = self._next_wall(transition.astimezone(tz).replace(tzinfo=None), limit)
            floor = transition - timedelta(microseconds=1)
        else:
            wall = self._next_wall(start, limit)
            floor = a_utc
        while wall is not None:
            for t in _instants(wall, tz):
                if t > floor:
                    return t
            wall = self._next_wall(wall + _SECOND, limit)  # inside a gap: no instant shows this wall time
        return None

    def upcoming(self, after: datetime, tz: ZoneInfo, count: int) -> list[datetime]:
        """The next `count` occurrences strictly after `after`, ascending (fewer if the schedule runs out)."""
        out: list[datetime] = []
        cursor: datetime | None = after
        while len(out) < count and cursor is not None and (cursor := self.next_after(cursor, tz)):
            out.append(cursor)
        return out

    def occurrences_between(self, start: datetime, end: datetime, tz: ZoneInfo, limit: int) -> list[datetime]:
        """Occurrences t with start < t <= end, ascending, at most `limit` (the earliest ones)."""
        out: list[datetime] = []
        cursor = self.next_after(start, tz)
        while cursor is not None and cursor <= end and len(out) < limit:
            out.append(cursor)
            cursor = self.next_after(cursor, tz)
        return out

    def approx_count_between(self, start: datetime, end: datetime, tz: ZoneInfo) -> int:
        """About how many occurrences fall in (start, end], in time proportional to the months spanned.

        Counts matching wall-clock times and ignores DST, so each transition in the span can make it off by
        the occurrences of one shifted hour. For bounded reporting (skipped counts), never for firing.
        """
        lo = start.astimezone(tz).replace(tzinfo=None, microsecond=0, fold=0)
        hi = end.astimezone(tz).replace(tzinfo=None, microsecond=0, fold=0)
        if hi <= lo:
            return 0
        per_day = len(self.seconds) * len(self.minutes) * len(self.hours)
        total, year, month = 0, lo.year, lo.month
        while (year, month) <= (hi.year, hi.month):
            days = self._month_days(year, month)
            if (year, month) not in ((lo.year, lo.month), (hi.year, hi.month)):
                total += len(days) * per_day
            else:
                for day in days:
                    first = (year, month, day) == (lo.year, lo.month, lo.day)
                    last = (year, month, day) == (hi.year, hi.month, hi.day)
                    if (year, month, day) < (lo.year, lo.month, lo.day) or (
                        (year, month, day) > (hi.year, hi.month, hi.day)
                    ):
                        continue
                    upper = self._tods_upto(_tod(hi)) if last else per_day
                    lower = self._tods_upto(_tod(lo)) if first else 0
                    total += upper - lower
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return total

    def describe(self, tz: ZoneInfo) -> str:
        """In English with the zone, e.g. "At 09:00, Monday through Friday (America/New_York)"."""
        return f"{_describe(self)} ({getattr(tz, 'key', None) or tz})"

    # ---- naive wall-clock matching -----------------------------------------------------------------------

    def _month_days(self, year: int, month: int) -> tuple[int, ...]:
        if month not in self.days.months:
            return ()
        return self._shape_days(calendar.monthrange(year, month))

    def _shape_days(self, shape: tuple[int, int]) -> tuple[int, ...]:
        # A month's matching days depend only on its (first weekday, length): at most 28 shapes, cached.
        cached = self._month_cache.get(shape)
        if cached is None:
            cached = self._month_cache[shape] = self.days.matching(*shape)
        return cached

    def _next_wall(self, at: datetime, limit_year: int) -> datetime | None:
        """The first matching naive wall time >= `at` (whole seconds), or None past `limit_year`."""
        year, month, day, tod = at.year, at.month, at.day, _tod(at)
        while year <= limit_year:
            days = self._month_days(year, month)
            for i in range(bisect_left(days, day), len(days)):
                if days[i] != day:
                    tod = 0
                found = self._next_tod(tod)
                if found is not None:
                    return datetime(year, month, days[i], found // 3600, found // 60 % 60, found % 60)
                tod = 0
            year, month, day, tod = (year + 1, 1, 1, 0) if month == 12 else (year, month + 1, 1, 0)
        return None

    def _next_tod(self, tod: int) -> int | None:
        """The first matching time of day (seconds since midnight) >= `tod`."""
        hour, rest = divmod(tod, 3600)
        minute, second = divmod(rest, 60)
        hours, minutes, seconds = self.hours, self.minutes, self.seconds
        ih = bisect_left(hours, hour)
        if ih < len(hours) and hours[ih] == hour:
            im = bisect_left(minutes, minute)
            if im < len(minutes) and minutes[im] == minute:
                isec = bisect_left(seconds, second)
                if isec < len(seconds):
                    return tod - second + seconds[isec]
                im += 1
            if im < len(minutes):
                return hour * 3600 + minutes[im] * 60 + seconds[0]
            ih += 1
        if ih < len(hours):
            return hours[ih] * 3600 + minutes[0] * 60 + seconds[0]
        return None

    def _tods_upto(self, tod: int) -> int:
        """How many matching times of day are <= `tod`."""
        hour, rest = divmod(tod, 3600)
        minute, second = divmod(rest, 60)
        n_m, n_s = len(self.minutes), len(self.seconds)
        count = bisect_left(self.hours, hour) * n_m * n_s
        if hour in self.hours:
            count += bisect_left(self.minutes, minute) * n_s
            if minute in self.minutes:
                count += bisect_left(self.seconds, second + 1)
        return count


@lru_cache(maxsize=4096)
def _parse_cached(text: str) -> CronExpression:
    # Many crons share a schedule; parsing (~30 us) costs more than finding the next date (~10 us).
    return CronExpression(text)


# ---- wall clock <-> UTC ----------------------------------------------------------------------------------


def _tod(wall: datetime) -> int:
    return wall.hour * 3600 + wall.minute * 60 + wall.second


def _offset_at(instant: datetime, tz: ZoneInfo) -> timedelta:
    offset = instant.astimezone(tz).utcoffset()
    assert offset is not None  # a ZoneInfo always knows its offset
    return offset


def _instants(wall: datetime, tz: ZoneInfo) -> tuple[datetime, ...]:
    """Every UTC instant whose wall clock in `tz` reads `wall`: none in a gap, two in a repeated hour.

    PEP 495: fold=0 takes the offset in force before a transition and fold=1 the one after, for both kinds.
    So the offsets agree for an ordinary time, fold 0's is larger in a repeat and smaller in a gap.
    """
    first, second = wall.replace(tzinfo=tz).utcoffset(), wall.replace(tzinfo=tz, fold=1).utcoffset()
    assert first is not None and second is not None
    if first == second:
        return ((wall - first).replace(tzinfo=UTC),)
    if first > second:
        return ((wall - first).replace(tzinfo=UTC), (wall - second).replace(tzinfo=UTC))
    return ()


def wall_to_utc(wall: datetime, tz: ZoneInfo) -> datetime:
    """The instant a fixed-time wall clock reading `wall` (naive) fires at in `tz`: its first occurrence when the
    hour repeats, the first instant after the gap when the clock skips it (the rules of docs/schedules.md §2)."""
    instants = _instants(wall.replace(tzinfo=None, fold=0), tz)
    return instants[0] if instants else _gap_end(wall.replace(tzinfo=None, fold=0), tz)


def _gap_end(wall: datetime, tz: ZoneInfo) -> datetime:
    """For a wall time skipped by a spring-forward, the transition: the first instant after the gap."""
    before, after = wall.replace(tzinfo=tz).utcoffset(), wall.replace(tzinfo=tz, fold=1).utcoffset()
    assert before is not None and after is not None
    return _transition((wall - after).replace(tzinfo=UTC), (wall - before).replace(tzinfo=UTC), tz)


def _transition(lo: datetime, hi: datetime, tz: ZoneInfo) -> datetime:
    """The first instant in (lo, hi] with `hi`'s offset, given `lo` has another. Transitions are on whole
    seconds in tzdata, so a binary search over seconds is exact."""
    target = _offset_at(hi, tz)
    base = lo.replace(microsecond=0)
    low, high = 0, int((hi - base).total_seconds()) + 1
    while high - low > 1:
        mid = (low + high) // 2
        if _offset_at(base + timedelta(seconds=mid), tz) == target:
            high = mid
        else:
            low = mid
    return base + timedelta(seconds=high)


# ---- field parsing ---------------------------------------------------------------------------------------

_MONTH_NAMES = (
    "",
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_SPECS = (
    ("second", 0, 59),
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day-of-month", 1, 31),
    ("month", 1, 12),
    ("day-of-week", 0, 7),
)
_DOM, _MONTH, _DOW = 3, 4, 5
_Ints = tuple[int, ...]
# Literal English names: calendar.month_abbr and month_name follow the process locale.
_MONTHS = {name[:3].upper(): i for i, name in enumerate(_MONTH_NAMES) if name}
_WEEKDAYS = {name: i for i, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))}


class _FieldError(Exception):
    """A bad field; str() is the user-facing detail after "Invalid cron schedule '...': "."""


class _TermError(Exception):
    def __init__(self, token: str, reason: str) -> None:
        super().__init__(reason)
        self.token, self.reason = token, reason


@dataclass(frozen=True)
class _Days:
    """Which days match: day-of-month and day-of-week items, and whether both fields must match.

    Debian cron: if either field starts with `*` (or `?`) a day must match both fields, otherwise either.
    Weekdays count from Sunday = 0.
    """

    months: frozenset[int]
    dom: frozenset[int]
    dom_last: bool  # L
    dom_last_weekday: bool  # LW
    dom_nearest: frozenset[int]  # 15W
    dow: frozenset[int]
    dow_last: frozenset[int]  # 5L
    dow_nth: frozenset[tuple[int, int]]  # 1#2 -> (1, 2)
    both: bool

    def shapes(self) -> set[tuple[int, int]]:
        """Every (first weekday, length) a month in `months` takes; all occur within a 400-year cycle."""
        lengths = {n for m in self.months for n in ((28, 29) if m == 2 else (calendar.monthrange(2001, m)[1],))}
        return {(weekday, n) for weekday in range(7) for n in lengths}

    def matching(self, first_weekday: int, length: int) -> tuple[int, ...]:
        """Matching days of a month whose day 1 has `first_weekday` (Monday = 0, as `calendar`)."""
        near = {_weekday_near(n, first_weekday, length) for n in self.dom_nearest if n <= length}
        if self.dom_last_weekday:
            near.add(_weekday_near(length, first_weekday, length))
        out = []
        for day in range(1, length + 1):
            weekday = (first_weekday + day) % 7  # to Sunday = 0
            dom_ok = day in self.dom or day in near or (self.dom_last and day == length)
            dow_ok = (
                weekday in self.dow
                or (weekday in self.dow_last and day + 7 > length)
                or (weekday, (day + 6) // 7) in self.dow_nth
            )
            if (dom_ok and dow_ok) if self.both else (dom_ok or dow_ok):
                out.append(day)
        return tuple(out)


def _weekday_near(day: int, first_weekday: int, length: int) -> int:
    """Quartz `W`: the weekday nearest `day`, never leaving the month."""
    weekday = (first_weekday + day - 1) % 7
    if weekday == 5:  # Saturday: Friday before, or Monday after when day 1 is a Saturday
        return day - 1 if day > 1 else day + 2
    if weekday == 6:  # Sunday: Monday after, or Friday before when the month ends on it
        return day + 1 if day < length else day - 2
    return day


@dataclass
class _Specials:
    """The non-numeric items met while parsing day-of-month and day-of-week."""

    last: bool = False
    last_weekday: bool = False
    nearest: set[int] = field(default_factory=set)
    dow_last: set[int] = field(default_factory=set)
    dow_nth: set[tuple[int, int]] = field(default_factory=set)


def _parse_fields(ordered: tuple[str, ...]) -> tuple[_Ints, _Ints, _Ints, _Days]:
    sp = _Specials()
    sets = [_parse_field(kind, raw, sp) for kind, raw in enumerate(ordered)]
    days = _Days(
        months=frozenset(sets[_MONTH]),
        dom=frozenset(sets[_DOM]),
        dom_last=sp.last,
        dom_last_weekday=sp.last_weekday,
        dom_nearest=frozenset(sp.nearest),
        dow=frozenset(v % 7 for v in sets[_DOW]),
        dow_last=frozenset(sp.dow_last),
        dow_nth=frozenset(sp.dow_nth),
        both=ordered[_DOM].startswith(("*", "?")) or ordered[_DOW].startswith(("*", "?")),
    )
    return tuple(sorted(sets[0])), tuple(sorted(sets[1])), tuple(sorted(sets[2])), days


def _parse_field(kind: int, raw: str, sp: _Specials) -> set[int]:
    name = _SPECS[kind][0]
    if not raw.isascii():
        raise _FieldError(f"{name} field '{raw}' contains characters that are not digits, names or , - / * ?")
    values: set[int] = set()
    for term in raw.split(","):
        if not term:
            raise _FieldError(f"{name} field '{raw}' has an empty list item")
        try:
            values |= _parse_term(kind, term, term.upper(), sp)
        except _TermError as exc:
            where = f"'{raw}'" if exc.token == raw else f"'{raw}': '{exc.token}'"
            raise _FieldError(f"{name} field {where} {exc.reason}") from None
    return values


def _parse_term(kind: int, term: str, up: str, sp: _Specials) -> set[int]:
    # `up` is only for recognising letters; values and messages use `term` as the user wrote it.
    if kind == _DOM and ("L" in up or "W" in up):
        if up == "L":
            sp.last = True
        elif up == "LW":
            sp.last_weekday = True
        elif up.endswith("-L"):  # '15-L': through the last day; days past a month's end never match anyway
            return _numeric_term(kind, term[:-1] + "31")
        elif (up.endswith("W") or up.startswith("W")) and _whole(up.strip("W")) is not None:
            sp.nearest.add(_value(kind, term.strip("Ww")))
        else:
            raise _TermError(term, "is not supported: use 'L', 'LW', '15W' or a range ending in L: '15-L'")
        return set()
    if kind == _DOW and "#" in up:
        day, _, nth = term.partition("#")
        week = _whole(nth)
        if week is None or not 1 <= week <= 5:
            raise _TermError(term, "needs a week number from 1 to 5 after '#', e.g. '1#2' (second Monday)")
        sp.dow_nth.add((_value(kind, day) % 7, week))
        return set()
    if kind == _DOW and "L" in up:  # no weekday name contains an L
        day = term[:-1] if up.endswith("L") else term[1:]
        if not day:
            raise _TermError(term, "needs a weekday with 'L', e.g. '5L' for the last Friday of the month")
        sp.dow_last.add(_value(kind, day) % 7)
        return set()
    return _numeric_term(kind, term)


def _numeric_term(kind: int, term: str) -> set[int]:
    _, low, high = _SPECS[kind]
    base, slash, step_text = term.partition("/")
    step = 1
    if slash:
        whole = _whole(step_text)
        if whole is None:
            raise _TermError(term, "has a step that is not a whole number")
        step = whole
        if step == 0:
            raise _TermError(term, "has a step of 0; steps start at 1")
    if base in ("*", "?"):
        if base == "?" and kind not in (_DOM, _DOW):
            raise _TermError(term, "uses '?', which only day-of-month and day-of-week allow")
        first, last = low, (6 if kind == _DOW else high)
    elif "-" in base:
        start, _, end = base.partition("-")
        if not start or not end:
            raise _TermError(term, "is not a valid range; write it as 'start-end'")
        first, last = _value(kind, start), _value(kind, end)
    else:
        first = _value(kind, base)
        last = high if slash else first  # '5/15' means from 5 to the end, every 15
    if first <= last:
        sequence = list(range(first, last + 1))
    else:  # wrap-around, as the reference accepts: '22-2' hours, 'FRI-MON'
        sequence = [*range(first, high + 1), *range(low, last + 1)]
    return set(sequence[::step])


def _value(kind: int, token: str) -> int:
    _, low, high = _SPECS[kind]
    names = _MONTHS if kind == _MONTH else _WEEKDAYS if kind == _DOW else {}
    if token.upper() in names:
        return names[token.upper()]
    value = _whole(token)
    if value is None:
        raise _TermError(token, "is not a number" + (" or a name" if names else ""))
    if not low <= value <= high:
        raise _TermError(token, f"is out of range {low}-{high}")
    return value


def _whole(text: str) -> int | None:
    """The whole number `text` spells in ASCII digits, else None (str.isdigit also accepts '²', which int()
    refuses). More than 18 significant digits read as 10**18: out of every field's range, and no schedule can
    reach Python's 4,300-digit int-from-str limit."""
    if not (text.isascii() and text.isdigit()):
        return None
    significant = text.lstrip("0") or "0"
    return int(significant) if len(significant) <= 18 else 10**18


# ---- describe --------------------------------------------------------------------------------------------

_DAY_NAMES = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_ORDINALS = ("", "first", "second", "third", "fourth", "fifth")


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def _step(values: tuple[int, ...], low: int, high: int) -> int | None:
    """n when `values` is every n-th value of the field from its start, n > 1."""
    if len(values) < 2 or values[0] != low:
        return None
    n = values[1] - values[0]
    return n if values == tuple(range(low, high + 1, n)) else None


def _runs(values: list[int], render: list[str] | tuple[str, ...] | None = None) -> str:
    """'1 through 5 and 10' style: runs of three or more consecutive values (in the order given) collapse."""

    def label(v: int) -> str:
        return render[v] if render else str(v)

    groups: list[list[int]] = []
    for v in values:
        if groups and v == groups[-1][-1] + 1:
            groups[-1].append(v)
        else:
            groups.append([v])
    words = []
    for g in groups:
        words += [f"{label(g[0])} through {label(g[-1])}"] if len(g) >= 3 else [label(v) for v in g]
    return _join(words)


def _describe(e: CronExpression) -> str:
    secs, mins, hours = e.seconds, e.minutes, e.hours
    if len(secs) == 1 and len(mins) * len(hours) <= 4:
        suffix = f":{secs[0]:02d}" if secs[0] else ""
        time, clock = "at " + _join([f"{h:02d}:{m:02d}{suffix}" for h in hours for m in mins]), True
    else:
        time, clock = _describe_time(secs, mins, hours), False
    d = e.days
    days, months = _describe_days(e), None
    if len(d.months) == 1 and len(d.dom) == 1 and days == f"on day {min(d.dom)} of the month":
        days = f"on {_MONTH_NAMES[min(d.months)]} {min(d.dom)}"  # "on January 1" rather than two phrases
    elif len(d.months) < 12:
        months = "in " + _runs(sorted(d.months), _MONTH_NAMES)
    pieces = [time, days or ("every day" if clock else "")]
    text = ", ".join(p for p in (*pieces, months) if p)
    return text[0].upper() + text[1:]


def _every(values: tuple[int, ...], high: int, unit: str) -> str:
    if len(values) == high + 1:
        return f"every {unit}"
    if step := _step(values, 0, high):
        return f"every {step} {unit}s"
    return f"at {unit}{'s' if len(values) > 1 else ''} {_runs(list(values))}"


def _describe_time(secs: tuple[int, ...], mins: tuple[int, ...], hours: tuple[int, ...]) -> str:
    every_hour, hour_step = len(hours) == 24, _step(hours, 0, 23)
    contiguous = hours == tuple(range(hours[0], hours[-1] + 1))
    if secs == (0,) and len(mins) == 1:
        if every_hour or hour_step:
            hourly = "every hour" if every_hour else f"every {hour_step} hours"
            return hourly if mins[0] == 0 else f"at minute {mins[0]} of {hourly}"
        if contiguous:
            return f"every hour from {hours[0]:02d}:{mins[0]:02d} through {hours[-1]:02d}:{mins[0]:02d}"
    parts = [_every(secs, 59, "second")] if secs != (0,) else []
    if secs == (0,) or len(mins) < 60:
        parts.append(_every(mins, 59, "minute") if secs == (0,) else f"during minutes {_runs(list(mins))}")
    if not every_hour:
        parts.append(
            f"between {hours[0]:02d}:00 and {hours[-1]:02d}:59" if contiguous else f"during hours {_runs(list(hours))}"
        )
    return ", ".join(parts)


def _describe_days(e: CronExpression) -> str | None:
    d = e.days
    dom_parts = []
    if len(d.dom) < 31:
        step = _step(tuple(sorted(d.dom)), 1, 31)
        if step:
            dom_parts.append(f"every {step}{'nd' if step == 2 else 'rd' if step == 3 else 'th'} day of the month")
        elif d.dom:
            dom_parts.append(f"day{'s' if len(d.dom) > 1 else ''} {_runs(sorted(d.dom))} of the month")
    dom_parts += [f"the weekday nearest day {n} of the month" for n in sorted(d.dom_nearest)]
    dom_parts += ["the last day of the month"] * d.dom_last
    dom_parts += ["the last weekday of the month"] * d.dom_last_weekday
    dow_parts = []
    if len(d.dow) < 7 and d.dow:
        monday_first = sorted(d.dow, key=lambda v: (v - 1) % 7)
        names = _runs([(v - 1) % 7 for v in monday_first], _DAY_NAMES[1:] + _DAY_NAMES[:1])
        dow_parts.append(names if " through " in names else f"on {names}")
    dow_parts += [f"on the {_ORDINALS[n]} {_DAY_NAMES[v]} of the month" for v, n in sorted(d.dow_nth)]
    dow_parts += [f"on the last {_DAY_NAMES[v]} of the month" for v in sorted(d.dow_last)]
    dom_text = f"on {_join(dom_parts)}" if dom_parts else None
    dow_text = _join(dow_parts) if dow_parts else None
    if dom_text and dow_text:
        return f"{dom_text}, but only {dow_text}" if d.both else f"{dom_text} or {dow_text}"
    return dom_text or dow_text
