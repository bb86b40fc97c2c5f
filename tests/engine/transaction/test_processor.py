"""engine/transaction/processor.py: the entry limit, checked before anything runs, and
response entries built from what the unit of work committed."""

import pytest

from fhir_server.engine import HookPoint, process_bundle
from fhir_server.errors import PayloadTooLarge
from tests.engine.conftest import CTX


def post(n: int) -> list[dict]:
    return [{"resource": {"resourceType": "Patient", "active": True}, "request": {"method": "POST", "url": "Patient"}}
            for _ in range(n)]


@pytest.mark.parametrize("kind", ["transaction", "batch"])
def test_more_entries_than_the_limit_is_413_and_nothing_runs(runtime, kind):
    runtime.max_bundle_entries = 3
    touched = []
    runtime.hooks.register(HookPoint.BEFORE_VALIDATION, lambda e: touched.append(e))
    bundle = {"resourceType": "Bundle", "type": kind, "entry": post(4)}
    with pytest.raises(PayloadTooLarge) as raised:
        process_bundle(runtime, CTX, bundle)
    assert raised.value.status == 413 and raised.value.code == "too-costly"
    assert "at most 3" in raised.value.message
    assert touched == []
    with runtime.work(CTX, write=False) as work:
        assert work.uow.statistics().get("Patient", (0, 0)) == (0, 0)


def test_the_limit_itself_is_allowed(runtime):
    runtime.max_bundle_entries = 3
    result = process_bundle(runtime, CTX, {"resourceType": "Bundle", "type": "transaction", "entry": post(3)})
    assert [e["response"]["status"] for e in result["entry"]] == ["201 Created"] * 3


def test_the_limit_comes_from_the_settings(monkeypatch):
    from fhir_server.app import build_runtime
    from fhir_server.settings import Settings

    monkeypatch.setenv("EVI_MAX_BUNDLE_ENTRIES", "7")
    settings = Settings(storage="sqlite://:memory:")
    assert settings.max_bundle_entries == 7
    runtime = build_runtime(settings)
    try:
        assert runtime.max_bundle_entries == 7
    finally:
        runtime.store.close()
    assert Settings(storage="sqlite://:memory:", max_bundle_entries=1000).max_bundle_entries == 1000
