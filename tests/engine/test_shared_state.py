"""Two runtimes (two server processes) on one store behave as one server: search
snapshots and the SearchParameter registry live in the store (engine/paging.py,
Runtime.sync_registry), on every backend that can be shared."""

from __future__ import annotations

import pytest

from fhir_server.engine import RequestContext, Runtime, create, install_search_parameter_hook, page, plan_search, search
from fhir_server.errors import Gone
from fhir_server.search import SearchRegistry
from fhir_server.storage import open_store

BASE = "http://127.0.0.1:8080/fhir"
CTX = RequestContext(base_url=BASE)


@pytest.fixture(params=["sqlite-file", "mongomock"])
def two_runtimes(request, tmp_path):
    if request.param == "mongomock":
        from fhir_server.storage.mongo import MongoStore
        from tests.support.mongo_replica_set import ReplicaSet

        client = ReplicaSet()  # one server, two processes' stores
        stores = [MongoStore(client, "evi") for _ in range(2)]
    else:
        stores = [open_store(f"sqlite://{tmp_path / 'shared.db'}") for _ in range(2)]
    runtimes = [Runtime(store=s, registry=SearchRegistry.from_spec()) for s in stores]
    for runtime in runtimes:
        install_search_parameter_hook(runtime)
    yield runtimes
    for s in stores:
        s.close()


def _patients(runtime: Runtime, n: int) -> None:
    with runtime.work(CTX, write=True) as work:
        for i in range(n):
            create(work, "Patient", {"resourceType": "Patient", "name": [{"family": f"F{i:02d}"}]})


def test_a_snapshot_made_by_one_runtime_pages_on_the_other(two_runtimes):
    a, b = two_runtimes
    _patients(a, 25)
    params = [("_sort", "family"), ("_count", "10")]
    with a.work(CTX, write=False) as work:
        first = search(work, plan_search(work, "Patient", params), params)
    assert first.snapshot is not None and first.total == 25
    names = [p.id for p in first.matches]
    with b.work(CTX, write=False) as work:
        for offset in (10, 20):
            names += [p.id for p in page(work, first.snapshot.token, offset, 10).matches]
    with a.work(CTX, write=False) as work:
        everything = search(work, plan_search(work, "Patient", [("_sort", "family"), ("_count", "100")]), [])
    assert names == [p.id for p in everything.matches]
    with b.work(CTX, write=False) as work, pytest.raises(Gone):
        page(work, "f" * 32, 0, 10)


def test_a_search_parameter_stored_through_one_runtime_is_used_by_the_other(two_runtimes):
    a, b = two_runtimes
    parameter = {
        "resourceType": "SearchParameter", "url": "https://example.org/sp/nickname", "name": "nickname",
        "status": "active", "description": "x", "code": "nickname", "base": ["Patient"], "type": "string",
        "expression": "Patient.name.where(use = 'nickname').given",
    }
    with b.work(CTX, write=False) as work:  # b builds its registry before the parameter exists
        assert plan_search(work, "Patient", [("nickname", "Zed")]).unknown
    with a.work(CTX, write=True) as work:
        create(work, "SearchParameter", parameter)
    with b.work(CTX, write=True) as work:  # b indexes with it...
        create(work, "Patient", {"resourceType": "Patient", "name": [{"use": "nickname", "given": ["Zed"]}]})
    with b.work(CTX, write=False) as work:  # ...and searches with it
        plan = plan_search(work, "Patient", [("nickname", "Zed")])
        assert not plan.unknown
        assert search(work, plan, []).total == 1
