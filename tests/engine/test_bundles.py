import pytest

@pytest.mark.parametrize("instant", ["2026-11-22T21:09:10.842356Z", "2024-02-29T00:00:00.000000Z", "1999-01-03T23:59:59.999999Z"])
def test_last_modified_is_the_rfc_7231_date_of_the_instant(instant):
    from datetime import datetime, timezone
    from email.utils import format_datetime

    from fhir_server.engine import http_date

    moment = datetime.strptime(instant, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    assert http_date(instant) == format_datetime(moment, usegmt=True)
