"""The HTTP access log names no query string (a personnummer in a search, say)."""

import logging

from fhir_server.api.access_log import QueryStringFilter, install_access_log_filter
from fhir_server.app import create_app
from fhir_server.settings import Settings


def _line(target: str) -> str:
    # what uvicorn's httptools/h11 protocols log for an answered request
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5000", "GET", target, "1.1", 200), None)
    QueryStringFilter().filter(record)
    return record.getMessage()


def test_the_query_string_is_left_out_and_the_path_kept():
    line = _line("/fhir/Patient?identifier=http://electronichealth.se/identifier/personnummer|191212121212")
    assert "191212121212" not in line and "identifier" not in line
    assert line == '127.0.0.1:5000 - "GET /fhir/Patient?… HTTP/1.1" 200'
    assert _line("/fhir/Patient/abc") == '127.0.0.1:5000 - "GET /fhir/Patient/abc HTTP/1.1" 200'


def test_the_app_installs_it_once():
    logger = logging.getLogger("uvicorn.access")
    app = create_app(Settings(storage="sqlite://:memory:"))
    try:
        install_access_log_filter()
    finally:
        app.state.workers.shutdown()
        app.state.runtime.store.close()
    assert sum(isinstance(f, QueryStringFilter) for f in logger.filters) == 1
