import httpx
import pytest

from tests.support.evi import TEST_REGION, load_examples
from tests.support.live_server import LiveServer


@pytest.fixture(scope="module")
def notify_server(tmp_path_factory):
    """A server of the test region with the example units, retrying failed deliveries fast
    (0.2 s, doubling up to 1 s): the tests share it and use fresh owners or patients."""
    db = tmp_path_factory.mktemp("notify") / "evi.db"
    with LiveServer(storage=f"sqlite://{db}", region_file=str(TEST_REGION),
                    notify_retry_first_seconds=0.2, notify_retry_max_seconds=1.0) as live:
        with httpx.Client(base_url=live.base_url, timeout=30) as client:
            load_examples(client)
        yield live


@pytest.fixture
def fhir_http(notify_server):
    with httpx.Client(base_url=notify_server.base_url, timeout=30,
                      headers={"Accept": "application/fhir+json"}) as client:
        yield client
