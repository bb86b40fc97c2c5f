"""Guards derived from the constraints' FHIRPath (conformance/validation/invariant_guards.py):
the keys an object needs for an invariant to be able to fail, and those with which it
cannot. Each guard below is the one the R4 base constraint gets."""

from __future__ import annotations

import pytest

from fhir_server.conformance.validation.definitions import Constraint
from fhir_server.conformance.validation.invariant_guards import NEVER, Guard, guard
from fhir_server.spec import load_table

TYPES = load_table("types")
CONSTRAINTS = load_table("elements")["_constraints"]


def _keys(type_name: str) -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    for key, facts in TYPES[type_name]["e"].items():
        if not key.endswith("[x]"):
            out.setdefault(facts.get("x") or key, []).extend((key, "_" + key))
    return {k: tuple(v) for k, v in out.items()}


def _guard(key: str, type_name: str, native_reads=None) -> Guard | None:
    facts = CONSTRAINTS[key]
    return guard(Constraint(key, facts["s"], facts["h"], facts["e"], None), type_name, _keys(type_name), native_reads)


def _set(*keys: str) -> frozenset[str]:
    return frozenset(k for key in keys for k in (key, "_" + key))


def test_or_needs_each_disjunct_that_holds_on_nothing():
    # per-1 start.hasValue().not() or end.hasValue().not() or (start <= end)
    assert _guard("per-1", "Period") == Guard((_set("start"), _set("end")), ())
    # prr-1 orderDetail.empty() or code.exists(): and a code makes it hold
    assert _guard("prr-1", "ServiceRequest") == Guard((_set("orderDetail"),), ((frozenset({"code"}),),))


def test_implies_needs_its_antecedent():
    # att-1 data.empty() or contentType.exists(); qty-3 code.empty() or system.exists()
    assert _guard("qty-3", "Quantity") == Guard((_set("code"),), ((frozenset({"system"}),),))
    # app-4 Appointment.cancelationReason.exists() implies (Appointment.status='no-show' or ...):
    # the type name that starts the paths is read through
    assert _guard("app-4", "Appointment") == Guard((_set("cancelationReason"),), ())


def test_a_negated_conjunction_needs_each_conjunct():
    # qrs-1 (answer.exists() and item.exists()).not()
    assert _guard("qrs-1", "QuestionnaireResponse.item") == Guard((_set("answer"), _set("item")), ())


def test_exists_disjuncts_exempt_the_objects_that_have_them():
    # pat-1 name.exists() or telecom.exists() or address.exists() or organization.exists()
    assert _guard("pat-1", "Patient.contact") == Guard((), tuple((frozenset({k}),) for k in
                                                                  ("name", "telecom", "address", "organization")))
    # app-3 (start.exists() and end.exists()) or (status in ('proposed' | 'cancelled' | 'waitlist'))
    assert ((frozenset({"start"}), frozenset({"end"})),) == _guard("app-3", "Appointment").exempt


@pytest.mark.parametrize("key, type_name", [
    ("org-1", "Organization"),            # (identifier.count() + name.count()) > 0: fails on nothing
    ("cpb-1", "CapabilityStatement"),     # rest.exists() or messaging.exists() or document.exists() (on {}: false)
    ("bdl-3", "Bundle"),                  # %resource
    ("que-2", "Questionnaire"),           # descendants() on the focus
    ("sdf-4", "StructureDefinition"),     # abstract = true or baseDefinition.exists() (on {}: empty)
])
def test_what_may_read_more_than_its_keys_is_evaluated_always(key, type_name):
    found = _guard(key, type_name)
    assert found is None or (not found.groups and found.exempt), found


def test_a_disjunct_that_reads_more_does_not_spoil_the_others():
    # eld-2 min.empty() or max.empty() or (max = '*') or iif(max != '*', min <= max.toInteger())
    assert _guard("eld-2", "ElementDefinition") == Guard((_set("min"), _set("max")), ())


def test_native_verdicts_say_what_they_read():
    assert _guard("dom-3", "Patient", native_reads=("contained",)) == Guard((_set("contained"),), ())


def test_a_constraint_without_expression_cannot_fail():
    assert guard(Constraint("x-1", "error", "x", None, None), "Period", _keys("Period")) is NEVER
