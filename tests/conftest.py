import uuid
from pathlib import Path

import httpx
import pytest

from tests.support.live_server import LiveServer


TEST_REGION = Path(__file__).parent / "support" / "region-test.toml"


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """One server for the session, on a SQLite file (tests use unique identifiers)."""
    db = tmp_path_factory.mktemp("db") / "evi.db"
    with LiveServer(storage=f"sqlite://{db}", region_file=str(TEST_REGION)) as live:
        yield live


@pytest.fixture
def fresh_server(tmp_path):
    """A server of its own, for tests that look at the whole store (system history)."""
    with LiveServer(storage="sqlite://:memory:") as live:
        yield live


@pytest.fixture
def base(server) -> str:
    return server.base_url


@pytest.fixture
def http(server):
    with httpx.Client(base_url=server.base_url, timeout=30, headers={"Accept": "application/fhir+json"}) as client:
        yield client


@pytest.fixture
def uid() -> str:
    """A unique identifier value, so tests sharing the session server never see each other."""
    return uuid.uuid4().hex
