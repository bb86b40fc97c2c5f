import pytest

from fhir_server.api.prefer import Preference, parse_prefer


@pytest.mark.parametrize(
    "header, expected",
    [
        (None, Preference("representation", False)),
        ("return=minimal", Preference("minimal", False)),
        ("return=OperationOutcome", Preference("OperationOutcome", False)),
        ('return="representation"', Preference("representation", False)),
        ("handling=strict", Preference("representation", True)),
        ("return=minimal, handling=strict", Preference("minimal", True)),
        ("handling=lenient; return=bogus", Preference("representation", False, lenient=True)),
        ("respond-async", Preference(respond_async=True)),
        ("respond-async, handling=lenient", Preference(lenient=True, respond_async=True)),
        ("Respond-Async; return=minimal", Preference("minimal", respond_async=True)),
        ("respond-asynchronously", Preference()),
    ],
)
def test_parse_prefer(header, expected):
    assert parse_prefer(header) == expected

