import httpx
import pytest
from fhirpy import SyncFHIRClient

from tests.support.evi import TEST_REGION, load_examples
from tests.support.live_server import LiveServer


@pytest.fixture(scope="module")
def evi_server(tmp_path_factory):
    """A server of the test region (tests/support/region-test.toml: the VGR example units)
    with examples/valid loaded; tests in a module share it and use fresh patients."""
    db = tmp_path_factory.mktemp("evi") / "evi.db"
    with LiveServer(storage=f"sqlite://{db}", region_file=str(TEST_REGION)) as live:
        with httpx.Client(base_url=live.base_url, timeout=30) as client:
            load_examples(client)
        yield live


@pytest.fixture
def evi(evi_server):
    with httpx.Client(base_url=evi_server.base_url, timeout=30, headers={"Accept": "application/fhir+json"}) as c:
        yield c


@pytest.fixture
def fhir(evi_server):
    return SyncFHIRClient(evi_server.base_url, extra_headers={"Accept": "application/fhir+json"})
