"""An engine runtime with no rules installed (plain R4), on an in-memory SQLite store."""

import pytest

from fhir_server.engine import RequestContext, Runtime
from fhir_server.search import SearchRegistry
from fhir_server.storage import open_store

BASE = "http://127.0.0.1:8080/fhir"
CTX = RequestContext(base_url=BASE)


@pytest.fixture
def runtime():
    rt = Runtime(store=open_store("sqlite://:memory:"), registry=SearchRegistry.from_spec())
    yield rt
    rt.store.close()
