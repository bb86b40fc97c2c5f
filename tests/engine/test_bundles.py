import pytest

@pytest.mark.parametrize("instant", ["2026-11-22T21:09:10.842356Z", "2024-02-29T00:00:00.000000Z", "1999-01-03T23:59:59.999999Z"])
def test_last_modified_is_the_rfc_7231_date_of_the_instant(instant):
    from datetime import datetime, timezone
    from email.utils import format_datetime

    from fhir_server.engine import http_date

    moment = datetime.strptime(instant, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    assert http_date(instant) == format_datetime(moment, usegmt=True)


@pytest.mark.parametrize("status, text", [
    (200, "200 OK"), (201, "201 Created"), (204, "204 No Content"), (400, "400 Bad Request"),
    (404, "404 Not Found"), (409, "409 Conflict"), (412, "412 Precondition Failed"), (599, "599"),
])
def test_one_status_text_table(status, text):
    from fhir_server.engine import status_text

    assert status_text(status) == text


def _version(vid: int = 2, deleted: bool = False):
    from fhir_server.storage.base import ResourceVersion

    body = None if deleted else b'{"resourceType":"Patient","id":"p","meta":{"versionId":"2"}}'
    return ResourceVersion("Patient", "p", vid, "2026-01-02T03:04:05.000000Z", deleted, "PUT", body)


def test_write_entry_follows_the_return_preference():
    import orjson

    from fhir_server.engine.bundles import write_entry
    from fhir_server.engine.write import WriteOutcome

    outcome = WriteOutcome(200, _version())
    full = orjson.loads(orjson.dumps(write_entry("http://x/fhir", outcome, "representation")))
    assert full == {
        "fullUrl": "http://x/fhir/Patient/p",
        "resource": {"resourceType": "Patient", "id": "p", "meta": {"versionId": "2"}},
        "response": {"status": "200 OK", "location": "Patient/p/_history/2", "etag": 'W/"2"',
                     "lastModified": "2026-01-02T03:04:05.000000Z"},
    }
    minimal = write_entry("http://x/fhir", outcome, "minimal")
    assert "resource" not in minimal and "outcome" not in minimal["response"]
    described = write_entry("http://x/fhir", outcome, "OperationOutcome")
    assert described["response"]["outcome"]["issue"] == [
        {"severity": "information", "code": "informational", "diagnostics": "Updated Patient/p version 2"}]


def test_write_entry_of_a_delete_and_an_error_entry():
    from fhir_server.engine.bundles import error_entry, write_entry
    from fhir_server.engine.write import WriteOutcome
    from fhir_server.errors import Conflict

    assert write_entry("http://x/fhir", WriteOutcome(204, _version(3, deleted=True)), "representation") == {
        "response": {"status": "204 No Content"}}
    entry = error_entry(Conflict("taken"))
    assert entry["response"]["status"] == "409 Conflict"
    assert entry["response"]["outcome"]["issue"][0] == {"severity": "error", "code": "conflict", "diagnostics": "taken"}
