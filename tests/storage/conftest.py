"""The shared storage suite: every backend runs the same tests through ``store``."""

import pytest

from fhir_server.storage import open_store

BACKENDS = ["sqlite-memory", "sqlite-file"]


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path):
    url = {"sqlite-memory": "sqlite://:memory:", "sqlite-file": f"sqlite://{tmp_path / 'evi.db'}"}[request.param]
    s = open_store(url)
    yield s
    s.close()
