"""The CI fuzz run: 1,050 hypothesis cases against one live server with the test region.

Reproducible (``derandomize=True``: the seed comes from each test's name) and
without deadlines. The oracle (tests/fuzz/oracle.py): no 5xx, a 4xx is an
OperationOutcome, every 2xx write re-reads as valid (base validation and
``$validate``), a refused write changes nothing. The cases follow hypothesis' choices,
which also draw literals from fhir_server's source: the same tree gives the same
cases. The long run is ``benchmarks/fuzz.py`` (20,000 cases).
"""

from __future__ import annotations

import collections

import httpx
import pytest
from hypothesis import HealthCheck, given, settings

from tests.fuzz.cases import FHIR_JSON, Case, bundle_cases, url_cases, write_cases
from tests.fuzz.oracle import check
from tests.fuzz.seeds import REGION, load_seeds
from tests.support.live_server import LiveServer

FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    """A server of its own: the fuzzer rewrites the examples' ids, which other tests rely on."""
    db = tmp_path_factory.mktemp("fuzz") / "fuzz.db"
    with LiveServer(storage=f"sqlite://{db}", region_file=str(REGION)) as live:
        with httpx.Client(base_url=live.base_url, timeout=60, headers={"Accept": FHIR_JSON}) as http:
            http.headers["Content-Type"] = FHIR_JSON
            assert len(load_seeds(http)) >= 40
            del http.headers["Content-Type"]
            yield http


def _run(client: httpx.Client, case: Case, seen: collections.Counter) -> None:
    verdict = check(client, case)
    seen[verdict.status_class] += 1
    assert not verdict.problems, f"{case.describe()}\n" + "\n".join(verdict.problems)


def test_mutated_writes(client):
    seen: collections.Counter = collections.Counter()

    @settings(FUZZ, max_examples=450)
    @given(case=write_cases())
    def fuzz(case):
        _run(client, case, seen)

    fuzz()
    assert sum(seen.values()) >= 450
    assert seen["2xx"] >= 20 and seen["4xx"] >= 200, seen  # both the stored and the refused path ran


def test_mutated_bundles(client):
    seen: collections.Counter = collections.Counter()

    @settings(FUZZ, max_examples=150)
    @given(case=bundle_cases())
    def fuzz(case):
        _run(client, case, seen)

    fuzz()
    assert sum(seen.values()) >= 150
    assert seen["2xx"] and seen["4xx"], seen


def test_hostile_urls(client):
    seen: collections.Counter = collections.Counter()

    @settings(FUZZ, max_examples=450)
    @given(case=url_cases())
    def fuzz(case):
        _run(client, case, seen)

    fuzz()
    assert sum(seen.values()) >= 450
    assert seen["2xx"] >= 50 and seen["4xx"] >= 100, seen
