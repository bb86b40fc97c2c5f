"""The period a report covers, as calendar days in the region's time zone (domain.md §8).

``periodStart`` and ``periodEnd`` are dates (``YYYY-MM-DD``, both days included); an
SKR month is ``YYYY-MM``. Searches get the first moment of the first day and of the day
after the last one, with the zone's offset, so "received in the period" means received
on one of its days as the region's clocks show them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from fhir_server.errors import BadRequest

__all__ = ["Period", "local_day", "month_period", "parse_period"]

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
#: a report covers at most this many days (a guard against a runaway request)
MAX_DAYS = 366 * 5
#: the years a report may name (beyond them time zones and date arithmetic give out)
YEARS = (1900, 9998)


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # included
    zone: ZoneInfo

    def moment(self, day: date) -> str:
        """The first moment of ``day`` in the zone, as a search value (with its offset)."""
        return datetime.combine(day, time(), self.zone).isoformat()

    @property
    def lower(self) -> str:
        return self.moment(self.start)

    @property
    def upper(self) -> str:
        """The first moment after the period."""
        return self.moment(self.end + timedelta(days=1))

    def criteria(self, param: str) -> list[tuple[str, str]]:
        """Search criteria: ``param`` lies in the period."""
        return [(param, f"ge{self.lower}"), (param, f"lt{self.upper}")]

    def day(self, instant: str | None) -> date | None:
        return local_day(instant, self.zone)

    def contains(self, day: date | None) -> bool:
        return day is not None and self.start <= day <= self.end


def local_day(instant: str | None, zone: ZoneInfo) -> date | None:
    """The calendar day (in ``zone``) of a stored UTC instant (``...Z``), None for None."""
    if not instant:
        return None
    moment = datetime.fromisoformat(instant.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(zone).date()


def _date(name: str, raw: str | None) -> date:
    if raw is None:
        raise BadRequest(f"Parameter '{name}' is required (a date, YYYY-MM-DD)", expression=name)
    if not _DATE.match(raw):
        raise BadRequest(f"Parameter '{name}' must be a date YYYY-MM-DD, got {raw!r}", expression=name)
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"Parameter '{name}' is not a calendar date: {raw!r}", expression=name) from None
    _check_year(name, day.year)
    return day


def _check_year(name: str, year: int) -> None:
    if not YEARS[0] <= year <= YEARS[1]:
        raise BadRequest(f"Parameter '{name}' must lie in the years {YEARS[0]}-{YEARS[1]}", expression=name)


def parse_period(start: str | None, end: str | None, zone: ZoneInfo) -> Period:
    first, last = _date("periodStart", start), _date("periodEnd", end)
    if last < first:
        raise BadRequest(f"periodEnd {end} lies before periodStart {start}", expression="periodEnd")
    if (last - first).days > MAX_DAYS:
        raise BadRequest(f"A period may cover at most {MAX_DAYS} days", expression="periodEnd")
    return Period(first, last, zone)


def month_period(raw: str | None, zone: ZoneInfo) -> Period:
    """``YYYY-MM`` -> the period of that calendar month."""
    match = _MONTH.match(raw or "")
    if not match or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 1:
        raise BadRequest(f"Parameter 'month' must be a month YYYY-MM, got {raw!r}", expression="month")
    year, month = int(match.group(1)), int(match.group(2))
    _check_year("month", year)
    following = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
    return Period(date(year, month, 1), following - timedelta(days=1), zone)
