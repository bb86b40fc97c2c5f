"""Who may run reports, and the key they need (reporting/access.py)."""

import pytest

from fhir_server.app import build_runtime
from fhir_server.engine import RequestContext
from fhir_server.errors import Forbidden
from fhir_server.reporting import evaluate_measure, skr_wait_times
from fhir_server.reporting.access import check_reporting, reporting_pseudonymizer
from fhir_server.security.caller import ROLES, Caller
from fhir_server.security.scopes import Scopes
from fhir_server.settings import Settings

KEY = "r" * 32


def _ctx(role: str | None) -> RequestContext:
    caller = None if role is None else Caller(role=role, scopes=Scopes.parse("system/*.rs"), client_id="c")
    return RequestContext(base_url="http://test/fhir", caller=caller)


@pytest.mark.parametrize("role", ROLES)
def test_reporting_evi_and_admin_may_run_reports_others_not(role):
    if role in ("reporting", "evi", "admin"):
        check_reporting(_ctx(role), "$skr-wait-times")
    else:
        with pytest.raises(Forbidden, match=role):
            check_reporting(_ctx(role), "$skr-wait-times")
    check_reporting(_ctx(None), "$skr-wait-times")  # auth off


@pytest.mark.parametrize("key", [None, "", "short", "x" * 31])
def test_reporting_refuses_without_a_key_of_32_bytes(key):
    with pytest.raises(Forbidden, match="EVI_PSEUDONYM_KEY"):
        reporting_pseudonymizer(key)
    assert reporting_pseudonymizer("x" * 32).pseudonym("1") == reporting_pseudonymizer("x" * 32).pseudonym("1")


@pytest.fixture(scope="module")
def runtime():
    rt = build_runtime(Settings(storage="sqlite://:memory:"))
    yield rt
    rt.store.close()


def test_the_operations_check_role_then_key(runtime):
    september = {"period_start": "2026-09-01", "period_end": "2026-09-30"}
    with pytest.raises(Forbidden, match="care-unit"):
        evaluate_measure(runtime, _ctx("care-unit"), "evi-contacts", key=KEY, **september)
    with pytest.raises(Forbidden, match="municipality"):
        skr_wait_times(runtime, _ctx("municipality"), "2026-09", key=KEY)
    with pytest.raises(Forbidden, match="EVI_PSEUDONYM_KEY"):
        evaluate_measure(runtime, _ctx("reporting"), "evi-contacts", key=None, **september)
    with pytest.raises(Forbidden, match="EVI_PSEUDONYM_KEY"):
        skr_wait_times(runtime, _ctx("admin"), "2026-09", key="too short")
    report = evaluate_measure(runtime, _ctx("reporting"), "evi-contacts", key=KEY, **september)
    assert report["group"][0]["population"][0]["count"] == 0
    assert skr_wait_times(runtime, _ctx("reporting"), "2026-09", key=KEY).cases == []
