import pytest

from fhir_server.errors import InvalidSearch
from fhir_server.search.params import date
from fhir_server.search.params.date import MAX_INSTANT, MIN_INSTANT, DateValue, matches, parse_value, to_range


@pytest.mark.parametrize(
    "text, low, high",
    [
        ("2026", "2026-01-01T00:00:00.000000Z", "2026-12-31T23:59:59.999999Z"),
        ("2024-02", "2024-02-01T00:00:00.000000Z", "2024-02-29T23:59:59.999999Z"),
        ("2026-03-18", "2026-03-18T00:00:00.000000Z", "2026-03-18T23:59:59.999999Z"),
        ("2026-03-18T10:15", "2026-03-18T10:15:00.000000Z", "2026-03-18T10:15:59.999999Z"),
        ("2026-03-18T10:15:30Z", "2026-03-18T10:15:30.000000Z", "2026-03-18T10:15:30.999999Z"),
        ("2026-03-18T10:15:30.5Z", "2026-03-18T10:15:30.500000Z", "2026-03-18T10:15:30.599999Z"),
        ("2026-03-18T10:15:30.123456Z", "2026-03-18T10:15:30.123456Z", "2026-03-18T10:15:30.123456Z"),
        ("2026-03-18T12:00:00+02:00", "2026-03-18T10:00:00.000000Z", "2026-03-18T10:00:00.999999Z"),
    ],
)
def test_to_range_covers_the_precision_given(text, low, high):
    assert to_range(text) == (low, high)


@pytest.mark.parametrize("text", ["", "26", "2026-13", "2026-02-30", "2026-03-18T25:00", "yesterday", "2026-03-18T10:15:30+2"])
def test_to_range_rejects_non_dates(text):
    assert to_range(text) is None


@pytest.mark.parametrize(
    "text", ["2020-01-01T00:00:00+99:00", "2020-01-01T00:00:00+14:01", "2020-01-01T00:00:00-15:00",
             "2020-01-01T00:00:00+05:60", "2020-01-01T00:00:00+24:00", "2020-01-01\n", "２０２０", "2020-01-01T00:00+1:00"],
)
def test_zone_offsets_are_those_of_the_fhir_regex(text):
    # R4 datatypes.html#dateTime: Z or (+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)
    assert to_range(text) is None
    with pytest.raises(InvalidSearch):
        parse_value(text, None)


@pytest.mark.parametrize(
    "text, low",
    [
        ("2020-01-01T14:00:00+14:00", "2020-01-01T00:00:00.000000Z"),
        ("2020-01-01T00:00:00-14:00", "2020-01-01T14:00:00.000000Z"),
        ("2020-01-01T13:59:00+13:59", "2020-01-01T00:00:00.000000Z"),
    ],
)
def test_the_widest_zone_offsets_are_read(text, low):
    assert to_range(text)[0] == low


def test_ranges_past_year_one_or_9999_in_utc_are_clamped():
    assert to_range("0001-01-01T00:00:00+01:00")[0] == MIN_INSTANT
    assert to_range("9999-12-31T23:59:59-01:00")[1] == MAX_INSTANT


def test_parse_value_reads_prefixes_and_rejects_garbage():
    assert parse_value("ge2026-03", None) == DateValue("ge", "2026-03-01T00:00:00.000000Z", "2026-03-31T23:59:59.999999Z")
    assert parse_value("2026", None).prefix == "eq"
    with pytest.raises(InvalidSearch):
        parse_value("gtnot-a-date", None)


def test_extract_periods_have_open_ends():
    [p] = date.extract("period", [{"start": "2026-01-01"}])
    assert (p.low, p.high) == ("2026-01-01T00:00:00.000000Z", MAX_INSTANT)
    [q] = date.extract("period", [{"end": "2026-01-01"}])
    assert (q.low, q.high) == (MIN_INSTANT, "2026-01-01T23:59:59.999999Z")


# (resource value, search value, should match): instants, dates, periods, partial dates
CASES = [
    # eq: the search range contains the resource range
    ("2026-03-18T10:00:00Z", "eq2026-03-18", True),
    ("2026-03-19T00:00:00Z", "eq2026-03-18", False),
    ("2026-03", "eq2026", True),
    ("2026-03", "eq2026-03-18", False),  # the month is wider than the day
    # ne
    ("2026-03-19", "ne2026-03-18", True),
    ("2026-03-18", "ne2026-03-18", False),
    # gt / lt: the resource range reaches beyond the search range
    ("2026-03-19", "gt2026-03-18", True),
    ("2026-03-18T23:00:00Z", "gt2026-03-18", False),
    ("2026-03-17", "lt2026-03-18", True),
    ("2026-03-18T00:00:00Z", "lt2026-03-18", False),
    # ge / le include the equal range
    ("2026-03-18T08:00:00Z", "ge2026-03-18", True),
    ("2026-03-17T23:59:59Z", "ge2026-03-18", False),
    ("2026-03-18T08:00:00Z", "le2026-03-18", True),
    ("2026-03-19T00:00:00Z", "le2026-03-18", False),
    # sa / eb: strictly after / before, no overlap
    ("2026-03-19", "sa2026-03-18", True),
    ("2026-03-18T12:00:00Z", "sa2026-03-18", False),
    ("2026-03-17", "eb2026-03-18", True),
    ("2026-03-18T12:00:00Z", "eb2026-03-18", False),
    # ap: within 10% of the distance from now
    ("2026-03-18", "ap2026-03-18", True),
    ("1990-01-01", "ap2026-03-18", False),
]


@pytest.mark.parametrize("resource_value, search, expected", CASES)
def test_prefix_semantics(resource_value, search, expected):
    low, high = to_range(resource_value)
    assert matches(parse_value(search, None), low, high) is expected


@pytest.mark.parametrize(
    "period, search, expected",
    [
        ({"start": "2026-03-01", "end": "2026-03-31"}, "eq2026-03", True),
        ({"start": "2026-03-01", "end": "2026-04-02"}, "eq2026-03", False),
        ({"start": "2026-03-01"}, "gt2030", True),  # open end reaches past any date
        ({"start": "2026-03-01"}, "lt2026", False),
        ({"end": "2026-03-01"}, "lt2000", True),  # open start
        ({"start": "2026-03-01", "end": "2026-03-31"}, "sa2026-02", True),
        ({"start": "2026-03-01", "end": "2026-03-31"}, "eb2026-04", True),
        ({"start": "2026-03-01", "end": "2026-03-31"}, "eb2026-03-15", False),
    ],
)
def test_prefix_semantics_on_periods(period, search, expected):
    [entry] = date.extract("p", [period])
    assert matches(parse_value(search, None), entry.low, entry.high) is expected
