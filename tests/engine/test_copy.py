"""evi-fhir copy between stores: every version, resumable, verified. (SQLite -> SQLite here;
tests/storage/test_mongo_copy.py round-trips through MongoDB.)"""

import orjson

from fhir_server.app import build_runtime
from fhir_server.cli import main
from fhir_server.engine import RequestContext, create, delete, update
from fhir_server.engine.copy import copy_store
from fhir_server.conformance import ig_directory
from fhir_server.engine.guide import guide_content
from fhir_server.search import parse_search
from fhir_server.settings import Settings
from fhir_server.storage import open_store

BASE = "http://127.0.0.1:8080/fhir"
#: the implementation guide, stored by every runtime at start-up (engine/guide.py)
GUIDE = len(guide_content(ig_directory()).resources)


def _seed(url: str, n: int = 30) -> None:
    runtime = build_runtime(Settings(storage=url))
    ctx = RequestContext(base_url=BASE)
    with runtime.work(ctx, write=True) as work:
        for i in range(n):
            p = create(work, "Patient", {"resourceType": "Patient", "identifier": [{"system": "urn:t", "value": str(i)}]})
            if i % 3 == 0:
                body = orjson.loads(p.version.body)
                update(work, "Patient", p.version.id, {**body, "active": True})
            if i % 5 == 0:
                delete(work, "Patient", p.version.id)
    runtime.store.close()


def _dump(url: str):
    store = open_store(url)
    with store.unit_of_work(write=False) as uow:
        versions = [(v.resource_type, v.id, v.version_id, v.deleted, v.body) for _, v in uow.versions_since(None, 10_000)]
        registry = build_runtime(Settings(storage="sqlite://:memory:")).registry
        found = uow.search(parse_search("Patient", [("identifier", "urn:t|3"), ("active", "true")], registry), with_total=True)
    store.close()
    return sorted(versions), found.ids


def test_copy_round_trips_every_version_and_the_index(tmp_path):
    src, dst = f"sqlite://{tmp_path / 'a.db'}", f"sqlite://{tmp_path / 'b.db'}"
    _seed(src)
    source, target = build_runtime(Settings(storage=src)), open_store(dst)
    report = copy_store(source.store, target, source.registry, BASE, batch=7)
    assert report.verified and report.copied == 30 + 10 + 6 + GUIDE and report.skipped == 0
    source.store.close(), target.close()
    assert _dump(src) == _dump(dst)
    assert _dump(dst)[1]  # the search index was rebuilt on the target


def test_copy_resumes_and_skips_what_is_there(tmp_path, capsys):
    src, dst = f"sqlite://{tmp_path / 'a.db'}", f"sqlite://{tmp_path / 'b.db'}"
    _seed(src)
    state = tmp_path / "state.json"
    assert main(["copy", "--from", src, "--to", dst, "--batch", "10", "--state", str(state)]) == 0
    assert "verified: counts match" in capsys.readouterr().err
    state.unlink()  # lost state: everything is found present and skipped
    assert main(["copy", "--from", src, "--to", dst, "--batch", "10", "--state", str(state)]) == 0
    assert f"copied 0 versions, skipped {46 + GUIDE}" in capsys.readouterr().err
    assert _dump(src) == _dump(dst)
