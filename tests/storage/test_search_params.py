"""The shared search suite, per parameter type: every backend runs these through ``store``.

Each case stores the dataset of ``helpers`` (Organizations, Patients,
ServiceRequests, Tasks, Observations, RiskAssessments, ValueSets; two deleted
resources), parses each query of a table with ``parse_search`` and checks the
exact ids, in order; a table runs on one store and reports every mismatching
row (opening a store costs more than all of its searches). Without ``_sort`` a
search comes back in (type, id) order: the stable tie-break every backend applies.
"""

from __future__ import annotations

import pytest

from fhir_server.engine.context import RequestContext
from fhir_server.engine.search import plan_search
from fhir_server.engine.work import Runtime
from fhir_server.errors import InvalidSearch
from tests.storage.helpers import BASE, CANONICAL, HSA, LOINC, PNR, UCUM, V2_0203, case, check_cases, registry, store_dataset


@pytest.fixture
def data(store):
    store_dataset(store)
    return store




# -- token ----------------------------------------------------------------------------------

TOKEN = [
    case("Patient", ("gender", "female"), ["pat-1", "pat-3"], "code"),
    case("Patient", ("gender", "female,male"), ["pat-1", "pat-2", "pat-3"], "or"),
    case("Patient", ("gender:not", "female"), ["pat-2", "pat-4"], "not-includes-missing"),
    case("Patient", ("gender:not", "female,male"), ["pat-4"], "not-several"),
    case("Patient", ("identifier", "201203042385"), ["pat-1"], "identifier-any-system"),
    case("Patient", ("identifier", f"{PNR}|201203042385"), ["pat-1"], "identifier-system-code"),
    case("Patient", ("identifier", f"{PNR}|"), ["pat-1", "pat-3"], "identifier-system-only"),
    case("Patient", ("identifier", "|201203042385"), [], "identifier-no-system"),
    case("Patient", ("identifier", "urn:other|201203042385"), [], "identifier-wrong-system"),
    case("Patient", ("identifier:of-type", f"{V2_0203}|NI|201203042385"), ["pat-1"], "of-type"),
    case("Patient", ("identifier:of-type", f"{V2_0203}|MR|191212121212"), ["pat-2"], "of-type-2"),
    case("Patient", ("identifier:of-type", f"{V2_0203}|MR|201203042385"), [], "of-type-wrong-type"),
    case("Patient", ("identifier:text", "personnum"), ["pat-1"], "text-identifier-type"),
    case("Patient", ("active", "true"), ["pat-1", "pat-3"], "boolean"),
    case("Patient", ("active:not", "true"), ["pat-2", "pat-4"], "boolean-not"),
    case("Patient", ("email", "asa@example.se"), ["pat-1"], "contactpoint"),
    case("Patient", ("telecom", "email|asa@example.se"), ["pat-1"], "contactpoint-system"),
    case("Patient", ("telecom", "phone|asa@example.se"), [], "contactpoint-wrong-system"),
    case("Patient", ("_id", "pat-1,pat-4,pat-del"), ["pat-1", "pat-4"], "_id"),
    case("Patient", ("_id:not", "pat-1"), ["pat-2", "pat-3", "pat-4"], "_id-not"),
    case("Observation", ("code", f"{LOINC}|29463-7"), ["obs-2", "obs-4", "obs-8"], "coding"),
    case("Observation", ("code", "29463-7"), ["obs-2", "obs-4", "obs-8"], "coding-any-system"),
    case("Observation", ("code", "http://snomed.info/sct|29463-7"), [], "coding-wrong-system"),
    case("Observation", ("code", f"{LOINC}|"), ["obs-1", "obs-2", "obs-3", "obs-4", "obs-5", "obs-6", "obs-7", "obs-8"], "coding-system-only"),
    case("Observation", ("code:text", "body"), ["obs-1", "obs-2", "obs-4", "obs-8"], "text-display"),
    case("Observation", ("code:text", "BODY W"), ["obs-2", "obs-4", "obs-8"], "text-case-insensitive"),
    case("Observation", ("code:not", "29463-7"), ["obs-1", "obs-3", "obs-5", "obs-6", "obs-7"], "not-code"),
    case("Observation", ("component-code", f"{LOINC}|8462-4"), ["obs-3"], "component-code"),
    case("Observation", ("combo-code", "8480-6,8302-2"), ["obs-1", "obs-3"], "combo-code"),
    case("Observation", ("status", "preliminary"), ["obs-6"], "code-primitive"),
    case("ServiceRequest", ("code:text", "neuro"), ["sr-2"], "text-concept-text"),
    case("ServiceRequest", ("code:text", "family th"), ["sr-3"], "text-only-concept"),
    case("ServiceRequest", ("code", "386053000"), ["sr-1", "sr-2"], "code-snomed"),
    case("ServiceRequest", ("status:not", "completed"), ["sr-1", "sr-3"], "status-not"),
    case("Organization", ("identifier", f"{HSA}|SE2321000016-2000"), ["org-b"], "org-identifier"),
    case("ValueSet", ("version", "1.0"), ["vs-1", "vs-2"], "version"),
    case("Patient", [("gender", "female"), ("active", "true")], ["pat-1", "pat-3"], "and"),
    case("Patient", [("gender", "female"), ("identifier", f"{PNR}|201506152386")], ["pat-3"], "and-narrows"),
]


def test_token(data):
    check_cases(data, TOKEN)


# -- string ---------------------------------------------------------------------------------

STRING = [
    case("Patient", ("family", "ober"), ["pat-1", "pat-2"], "starts-with-accent-insensitive"),
    case("Patient", ("family", "Öberg"), ["pat-1", "pat-2"], "accented-value"),
    case("Patient", ("family", "OBERG"), ["pat-1", "pat-2"], "case-insensitive"),
    case("Patient", ("family", "berg"), ["pat-4"], "starts-with-not-contains"),
    case("Patient", ("family", "bergman"), [], "longer-than-value"),
    case("Patient", ("family:exact", "Öberg"), ["pat-1"], "exact"),
    case("Patient", ("family:exact", "Oberg"), ["pat-2"], "exact-no-accent"),
    case("Patient", ("family:exact", "öberg"), [], "exact-case"),
    case("Patient", ("family:exact", "Öber"), [], "exact-whole-value"),
    case("Patient", ("family:contains", "ber"), ["pat-1", "pat-2", "pat-4"], "contains"),
    case("Patient", ("family:contains", "ERSS"), ["pat-3"], "contains-case-insensitive"),
    case("Patient", ("family:contains", "öb"), ["pat-1", "pat-2"], "contains-accent-insensitive"),
    case("Patient", ("given", "asa"), ["pat-1"], "given-unaccented"),
    case("Patient", ("given", "åsa"), ["pat-1"], "given-accented"),
    case("Patient", ("given", "mar"), ["pat-1"], "second-given"),
    case("Patient", ("name", "nils b"), ["pat-4"], "name-text"),
    case("Patient", ("name", "maria"), ["pat-1"], "name-given"),
    case("Patient", ("name", "andersson,berg"), ["pat-3", "pat-4"], "or"),
    case("Patient", [("family", "oberg"), ("given", "erik")], ["pat-2"], "and"),
    case("Patient", ("address-city", "stock"), ["pat-1"], "address-city"),
    case("Patient", ("address", "storgatan"), ["pat-1"], "address-line"),
    case("Patient", ("address", "111"), ["pat-1"], "address-postalcode"),
    case("Patient", ("address:contains", "HOLM"), ["pat-1"], "address-contains"),
    case("Organization", ("name", "angel"), ["org-b"], "org-name-accent"),
    case("Organization", ("name", "ängelholms v"), ["org-b"], "org-name-phrase"),
    case("Organization", ("name:contains", "psykiatri"), ["org-a"], "org-name-contains"),
    case("Organization", ("name:exact", "Ängelholms vårdcentral"), ["org-b"], "org-name-exact"),
    case("Organization", ("address-city", "ÄNGELHOLM"), ["org-b"], "org-city"),
    case("Observation", ("value-string", "trott"), ["obs-6"], "value-string"),
    case("Observation", ("value-string:contains", "nedstämd"), ["obs-6"], "value-string-contains"),
    case("Observation", ("value-string:exact", "Trött och nedstämd"), ["obs-6"], "value-string-exact"),
    case("Observation", ("value-string:exact", "trött och nedstämd"), [], "value-string-exact-case"),
]


def test_string(data):
    check_cases(data, STRING)


# -- number (RiskAssessment.prediction.probability: 0.8, Range 0.2-0.4, 0.25) --------------

NUMBER = [
    case("RiskAssessment", ("probability", "0.8"), ["ra-1"], "eq"),
    case("RiskAssessment", ("probability", "0.80"), ["ra-1"], "eq-more-precise"),
    case("RiskAssessment", ("probability", "8e-1"), ["ra-1"], "exponent"),
    case("RiskAssessment", ("probability", "2.5e-1"), ["ra-3"], "exponent-precision"),
    case("RiskAssessment", ("probability", "0.25"), ["ra-3"], "eq-decimal"),
    case("RiskAssessment", ("probability", "0.2"), [], "precision-excludes"),
    case("RiskAssessment", ("probability", "0.3"), ["ra-3"], "precision-includes-low-bound"),
    case("RiskAssessment", ("probability", "0.30"), [], "eq-does-not-contain-range"),
    case("RiskAssessment", ("probability", "0.8,0.25"), ["ra-1", "ra-3"], "or"),
    case("RiskAssessment", ("probability", "gt0.3"), ["ra-1", "ra-2"], "gt-range-overlaps"),
    case("RiskAssessment", ("probability", "lt0.3"), ["ra-2", "ra-3"], "lt"),
    case("RiskAssessment", ("probability", "ge0.8"), ["ra-1"], "ge"),
    case("RiskAssessment", ("probability", "le0.25"), ["ra-2", "ra-3"], "le"),
    case("RiskAssessment", ("probability", "ne0.8"), ["ra-2", "ra-3"], "ne"),
    case("RiskAssessment", ("probability", "sa0.3"), ["ra-1"], "sa"),
    case("RiskAssessment", ("probability", "eb0.3"), ["ra-3"], "eb"),
    case("RiskAssessment", ("probability", "ap0.75"), ["ra-1"], "ap"),
    case("RiskAssessment", [("probability", "gt0.1"), ("probability", "lt0.5")], ["ra-2", "ra-3"], "and"),
]


def test_number(data):
    check_cases(data, NUMBER)


# -- quantity (152 cm, 42.5 kg, 5000 g, 90 min, 7 points without a system, 30 kg) -----------

QUANTITY = [
    case("Observation", ("value-quantity", "152"), ["obs-1"], "number-only"),
    case("Observation", ("value-quantity", f"152|{UCUM}|cm"), ["obs-1"], "ucum"),
    case("Observation", ("value-quantity", "152||cm"), ["obs-1"], "code-any-system"),
    case("Observation", ("value-quantity", f"152|{UCUM}|mm"), [], "ucum-other-unit-not-equal"),
    case("Observation", ("value-quantity", f"1520|{UCUM}|mm"), ["obs-1"], "ucum-conversion-mm"),
    case("Observation", ("value-quantity", f"1.52|{UCUM}|m"), ["obs-1"], "ucum-conversion-m"),
    case("Observation", ("value-quantity", f"5|{UCUM}|kg"), ["obs-4"], "ucum-conversion-g-as-kg"),
    case("Observation", ("value-quantity", f"gt4|{UCUM}|kg"), ["obs-2", "obs-4", "obs-8"], "ucum-gt"),
    case("Observation", ("value-quantity", f"lt5000|{UCUM}|g"), [], "ucum-lt-boundary"),
    case("Observation", ("value-quantity", f"le5000|{UCUM}|g"), ["obs-4"], "ucum-le-boundary"),
    case("Observation", ("value-quantity", f"42.5|{UCUM}|kg"), ["obs-2"], "eq-decimal"),
    case("Observation", ("value-quantity", f"42|{UCUM}|kg"), [], "precision-excludes"),
    case("Observation", ("value-quantity", "42.50||kg"), ["obs-2"], "precision-more-digits"),
    case("Observation", ("value-quantity", f"ap40|{UCUM}|kg"), ["obs-2"], "ap"),
    case("Observation", ("value-quantity", f"1.5|{UCUM}|h"), ["obs-5"], "ucum-time-h"),
    case("Observation", ("value-quantity", f"5400|{UCUM}|s"), ["obs-5"], "ucum-time-s"),
    case("Observation", ("value-quantity", "90||min"), ["obs-5"], "code-as-written"),
    case("Observation", ("value-quantity", "7||points"), ["obs-7"], "unit-text"),
    case("Observation", ("value-quantity", "7"), ["obs-7"], "unit-text-number-only"),
    case("Observation", ("value-quantity", f"7|{UCUM}|points"), [], "unit-text-not-ucum"),
    case("Observation", ("value-quantity", f"ne152|{UCUM}|cm"), [], "ne-with-unit"),
    # a number without units is compared with the value as recorded, not with a converted one
    case("Observation", ("value-quantity", "1.52"), [], "no-unit-ignores-canonical-form"),
    case("Observation", ("value-quantity", "ne152"), ["obs-2", "obs-4", "obs-5", "obs-7", "obs-8"], "ne-no-unit"),
    case("Observation", ("component-value-quantity", "gt100"), ["obs-3"], "component"),
    case("Observation", ("component-value-quantity", f"80|{UCUM}|mm[Hg]"), ["obs-3"], "component-bracket-unit"),
    case("Observation", ("combo-value-quantity", f"42.5|{UCUM}|kg,120|{UCUM}|mm[Hg]"), ["obs-2", "obs-3"], "combo-or"),
]


def test_quantity(data):
    check_cases(data, QUANTITY)


# -- date -----------------------------------------------------------------------------------
# Patient.birthDate: pat-1 2012-03-04, pat-2 2010, pat-3 2015-06, pat-4 2011-12-31
# ServiceRequest.authoredOn: sr-1 2026-03-01T09:30:00+01:00 (08:30Z), sr-2 2026-02-15, sr-3 none
# ServiceRequest.occurrence: sr-1 Period 2026-03-10..2026-03-20, sr-2 2026-02-20T14:00:00Z,
#   sr-3 Timing events 2026-04-01T10:00Z and 2026-04-08T10:00Z
# Task.executionPeriod: task-1 from 2026-03-02 (open end), task-2 2026-02-16..2026-02-20, task-3 none
# Observation.effective: obs-1 2026-03-05T10:00:00Z, obs-2 2026-03-05, obs-3 Period
#   2026-01-10T08:00Z..08:30Z, obs-4 2025-12-24, obs-5 2026-02-01T07:00:00+01:00, others none

DATE = [
    case("Patient", ("birthdate", "2012-03-04"), ["pat-1"], "day"),
    case("Patient", ("birthdate", "2012"), ["pat-1"], "year-contains-day"),
    case("Patient", ("birthdate", "2012-03"), ["pat-1"], "month-contains-day"),
    case("Patient", ("birthdate", "2010"), ["pat-2"], "partial-equals-partial"),
    case("Patient", ("birthdate", "2010-05"), [], "partial-not-contained"),
    case("Patient", ("birthdate", "2015-06-15"), [], "day-inside-stored-month"),
    case("Patient", ("birthdate", "2015"), ["pat-3"], "year-contains-month"),
    case("Patient", ("birthdate", "gt2011"), ["pat-1", "pat-3"], "gt"),
    case("Patient", ("birthdate", "ge2011-12-31"), ["pat-1", "pat-3", "pat-4"], "ge"),
    case("Patient", ("birthdate", "lt2011"), ["pat-2"], "lt"),
    case("Patient", ("birthdate", "le2011-12-31"), ["pat-2", "pat-4"], "le"),
    case("Patient", ("birthdate", "lt2010-06-01"), ["pat-2"], "lt-partial-overlaps"),
    case("Patient", ("birthdate", "gt2010-06-01"), ["pat-1", "pat-2", "pat-3", "pat-4"], "gt-partial-overlaps"),
    case("Patient", ("birthdate", "sa2011"), ["pat-1", "pat-3"], "sa"),
    case("Patient", ("birthdate", "eb2012"), ["pat-2", "pat-4"], "eb"),
    case("Patient", ("birthdate", "ne2012-03-04"), ["pat-2", "pat-3", "pat-4"], "ne"),
    case("Patient", ("birthdate", "ap2015-06-15"), ["pat-3"], "ap"),
    case("Patient", ("birthdate", "2010,2015"), ["pat-2", "pat-3"], "or"),
    case("Patient", [("birthdate", "ge2010-06-01"), ("birthdate", "le2012-12-31")], ["pat-1", "pat-2", "pat-4"], "and-range"),
    case("ServiceRequest", ("authored", "2026-03-01"), ["sr-1"], "instant-in-day"),
    case("ServiceRequest", ("authored", "2026-03-01T09:30:00+01:00"), ["sr-1"], "instant-same-zone"),
    case("ServiceRequest", ("authored", "2026-03-01T08:30:00Z"), ["sr-1"], "instant-utc"),
    case("ServiceRequest", ("authored", "2026-03-01T10:30+02:00"), ["sr-1"], "minute-precision-other-zone"),
    case("ServiceRequest", ("authored", "2026-03-01T09:30:00Z"), [], "zone-matters"),
    case("ServiceRequest", ("authored", "gt2026-03-01T08:00:00Z"), ["sr-1"], "gt-instant"),
    case("ServiceRequest", ("authored", "lt2026-03-01"), ["sr-2"], "lt-day"),
    case("ServiceRequest", ("authored", "2026-02"), ["sr-2"], "month"),
    case("ServiceRequest", ("authored", "ge2026-02-15"), ["sr-1", "sr-2"], "ge-day"),
    case("ServiceRequest", ("occurrence", "2026-03"), ["sr-1"], "period-in-month"),
    case("ServiceRequest", ("occurrence", "2026-03-15"), [], "period-not-in-day"),
    case("ServiceRequest", ("occurrence", "ge2026-03-15"), ["sr-1", "sr-3"], "ge-period-overlaps"),
    case("ServiceRequest", ("occurrence", "lt2026-03-15"), ["sr-1", "sr-2"], "lt-period-overlaps"),
    case("ServiceRequest", ("occurrence", "sa2026-03-09"), ["sr-1", "sr-3"], "sa-period"),
    case("ServiceRequest", ("occurrence", "sa2026-03-10"), ["sr-3"], "sa-period-boundary"),
    case("ServiceRequest", ("occurrence", "eb2026-03-01"), ["sr-2"], "eb"),
    case("ServiceRequest", ("occurrence", "2026-04"), ["sr-3"], "timing-in-month"),
    case("ServiceRequest", ("occurrence", "2026-04-05"), [], "timing-not-in-day"),
    case("ServiceRequest", ("occurrence", "le2026-04-05"), ["sr-1", "sr-2", "sr-3"], "le-timing"),
    case("ServiceRequest", ("occurrence", "2026"), ["sr-1", "sr-2", "sr-3"], "year"),
    case("Task", ("period", "gt2027"), ["task-1"], "open-ended-period"),
    case("Task", ("period", "2026-02"), ["task-2"], "closed-period"),
    case("Task", ("period", "lt2026-03-01"), ["task-2"], "lt-period"),
    case("Task", ("period", "ge2026-03-01"), ["task-1"], "ge-period"),
    case("Task", ("authored-on", "2026-03-02T08:00:00Z"), ["task-1", "task-3"], "task-authored"),
    case("Observation", ("date", "2026-03-05"), ["obs-1", "obs-2"], "obs-day"),
    case("Observation", ("date", "2026-01-10"), ["obs-3"], "obs-period-in-day"),
    case("Observation", ("date", "2026-01-10T08:15:00Z"), [], "obs-period-not-in-second"),
    case("Observation", ("date", "2026-02-01T06:00:00Z"), ["obs-5"], "obs-offset-normalised"),
    case("Observation", ("date", "2026-01-31"), [], "obs-offset-other-day"),
    case("Observation", ("date", "lt2026-01-01"), ["obs-4"], "obs-lt"),
    case("Observation", ("date", "sa2026-03-05T09:00:00Z"), ["obs-1"], "obs-sa-instant"),
    case("Patient", ("_lastUpdated", "lt2026-01-01T00:00:05Z"), ["pat-1", "pat-2"], "lastupdated-lt"),
    case("Patient", ("_lastUpdated", "ge2026-01-01T00:00:05Z"), ["pat-3", "pat-4"], "lastupdated-ge"),
    case("Patient", ("_lastUpdated", "2026-01-01"), ["pat-1", "pat-2", "pat-3", "pat-4"], "lastupdated-day"),
]


def test_date(data):
    check_cases(data, DATE)


# -- uri (ValueSet.url) ---------------------------------------------------------------------

VS = "http://evi.example/fhir/ValueSet"

URI = [
    case("ValueSet", ("url", f"{VS}/referral-reasons"), ["vs-1"], "exact"),
    case("ValueSet", ("url", f"{VS}/referral"), [], "exact-not-prefix"),
    case("ValueSet", ("url", f"{VS}/REFERRAL-REASONS"), [], "case-sensitive"),
    case("ValueSet", ("url", f"{VS}/referral-reasons,{VS}/anthropometry"), ["vs-1", "vs-4"], "or"),
    case("ValueSet", ("url:below", f"{VS}/referral-reasons"), ["vs-1", "vs-2"], "below"),
    case("ValueSet", ("url:below", "http://evi.example/fhir"), ["vs-1", "vs-2", "vs-4"], "below-base"),
    case("ValueSet", ("url:above", f"{VS}/referral-reasons/child/v2"), ["vs-1", "vs-2"], "above"),
    case("ValueSet", ("url:above", f"{VS}/referral-reasons"), ["vs-1"], "above-self"),
    case("ValueSet", ("url:above", "http://hl7.org/fhir/ValueSet/administrative-gender"), ["vs-3"], "above-other"),
    case("ValueSet", ("url:above", "http://evi.example/fhir"), [], "above-shorter"),
]


def test_uri(data):
    check_cases(data, URI)


# -- reference ------------------------------------------------------------------------------

REFERENCE = [
    case("ServiceRequest", ("subject", "Patient/pat-1"), ["sr-1"], "type-id"),
    case("ServiceRequest", ("subject", "pat-1"), ["sr-1"], "bare-id"),
    case("ServiceRequest", ("subject:Patient", "pat-1"), ["sr-1"], "type-modifier"),
    case("ServiceRequest", ("subject:Group", "pat-1"), [], "type-modifier-other"),
    case("ServiceRequest", ("subject", "Group/pat-1"), [], "other-type"),
    case("ServiceRequest", ("subject", f"{BASE}/Patient/pat-1"), ["sr-1"], "own-base-url"),
    case("ServiceRequest", ("subject", "http://other.example/fhir/Patient/pat-1"), [], "other-server-url"),
    case("ServiceRequest", ("subject", "Patient/pat-1,Patient/pat-3"), ["sr-1", "sr-3"], "or"),
    case("ServiceRequest", ("patient", "pat-2"), ["sr-2"], "patient"),
    case("ServiceRequest", ("requester", "Organization/org-b"), ["sr-1"], "requester"),
    case("ServiceRequest", ("requester:identifier", f"{HSA}|SE2321000016-1000"), ["sr-2"], "identifier"),
    case("ServiceRequest", ("requester:identifier", "SE2321000016-1000"), ["sr-2"], "identifier-any-system"),
    case("ServiceRequest", ("requester:identifier", f"{HSA}|SE2321000016-2000"), [], "identifier-other"),
    case("ServiceRequest", ("performer", "Organization/org-a"), ["sr-1"], "performer"),
    case("ServiceRequest", ("performer", "p1"), [], "contained-not-indexed"),
    case("ServiceRequest", ("instantiates-canonical", CANONICAL), ["sr-1"], "canonical-without-version"),
    case("ServiceRequest", ("instantiates-canonical", f"{CANONICAL}|1.0"), ["sr-1"], "canonical-with-version"),
    case("ServiceRequest", ("instantiates-canonical", f"{CANONICAL}|2.0"), [], "canonical-other-version"),
    case("ServiceRequest", ("instantiates-canonical", f"{BASE}/PlanDefinition/local-intake|2.0"), ["sr-3"], "canonical-own-base-with-version"),
    case("ServiceRequest", ("instantiates-canonical", f"{BASE}/PlanDefinition/local-intake"), ["sr-3"], "canonical-own-base"),
    case("ServiceRequest", ("based-on", "sr-1"), ["sr-3"], "based-on"),
    case("Patient", ("organization", "Organization/org-a"), ["pat-1"], "not-other-server-not-deleted"),
    case("Patient", ("organization", "org-b"), ["pat-2"], "stored-as-own-base-url"),
    case("Patient", ("organization", f"{BASE}/Organization/org-b"), ["pat-2"], "own-base-both-sides"),
    case("Patient", ("organization", "http://other.example/fhir/Organization/org-a"), ["pat-4"], "other-server-exact"),
    case("Observation", ("subject", "Patient/pat-1"), ["obs-1", "obs-2", "obs-6"], "versioned-reference"),
    case("Observation", ("patient", "pat-1"), ["obs-1", "obs-2", "obs-6"], "resolve-is-patient"),
    case("Task", ("focus", "ServiceRequest/sr-1"), ["task-1"], "focus-any"),
    case("Task", ("focus:ServiceRequest", "sr-2"), ["task-2"], "focus-type-modifier"),
    case("Task", ("owner", "org-a"), ["task-1"], "owner"),
    case("Task", ("part-of", "task-1"), ["task-3"], "part-of"),
    case("Task", ("patient", "Patient/pat-3"), ["task-3"], "task-patient"),
]


def test_reference(data):
    check_cases(data, REFERENCE)


# -- composite ------------------------------------------------------------------------------

COMPOSITE = [
    case("Observation", ("code-value-quantity", f"{LOINC}|29463-7$gt40|{UCUM}|kg"), ["obs-2"], "code-and-value"),
    case("Observation", ("code-value-quantity", f"29463-7$lt10|{UCUM}|kg"), ["obs-4"], "converted-value"),
    case("Observation", ("code-value-quantity", f"{LOINC}|8302-2$152|{UCUM}|cm"), ["obs-1"], "as-recorded"),
    case("Observation", ("code-value-quantity", f"{LOINC}|8302-2$42.5"), [], "pair-must-agree"),
    case("Observation", ("code-value-quantity", f"{LOINC}|8302-2$152,{LOINC}|29463-7$5000"), ["obs-1", "obs-4"], "or"),
    case("Observation", ("code-value-string", f"{LOINC}|72166-2$trott"), ["obs-6"], "string-component"),
    case("Observation", ("component-code-value-quantity", f"{LOINC}|8480-6$gt100"), ["obs-3"], "component"),
    case("Observation", ("component-code-value-quantity", f"{LOINC}|8462-4$gt100"), [], "same-component"),
    case("Observation", ("component-code-value-quantity", f"{LOINC}|8462-4$80|{UCUM}|mm[Hg]"), ["obs-3"], "component-unit"),
]


def test_composite(data):
    check_cases(data, COMPOSITE)


# -- :missing -------------------------------------------------------------------------------

MISSING = [
    case("Patient", ("gender:missing", "true"), ["pat-4"], "token-true"),
    case("Patient", ("gender:missing", "false"), ["pat-1", "pat-2", "pat-3"], "token-false"),
    case("Patient", ("family:missing", "false"), ["pat-1", "pat-2", "pat-3", "pat-4"], "string-false"),
    case("Patient", ("organization:missing", "true"), ["pat-3"], "reference-true"),
    case("Patient", ("_id:missing", "true"), [], "id-never-missing"),
    case("Organization", ("active:missing", "true"), ["org-region"], "token-boolean"),
    case("Organization", ("partof:missing", "true"), ["org-region"], "reference-partof"),
    case("ServiceRequest", ("authored:missing", "true"), ["sr-3"], "date-true"),
    # a Reference that holds only an identifier still gives the parameter a value
    case("ServiceRequest", ("requester:missing", "false"), ["sr-1", "sr-2"], "identifier-only-is-present"),
    case("Task", ("period:missing", "true"), ["task-3"], "period-true"),
    case("Observation", ("value-quantity:missing", "true"), ["obs-3", "obs-6"], "quantity-true"),
    case("Observation", ("value-quantity:missing", "false"), ["obs-1", "obs-2", "obs-4", "obs-5", "obs-7", "obs-8"], "quantity-false"),
    # obs-3 has no value, obs-6 a string: neither has a code+quantity pair
    case("Observation", ("code-value-quantity:missing", "true"), ["obs-3", "obs-6"], "composite-true"),
    case("RiskAssessment", ("probability:missing", "false"), ["ra-1", "ra-2", "ra-3"], "number-false"),
    case("ValueSet", ("url:missing", "true"), [], "uri-true"),
    case("Patient", [("gender:missing", "false"), ("organization:missing", "false")], ["pat-1", "pat-2"], "and"),
]


def test_missing(data):
    check_cases(data, MISSING)


# -- :in / :not-in: the engine expands a ValueSet held by the server -------------------------


def _engine_ids(store, rtype, params):
    runtime = Runtime(store, registry())
    with runtime.work(RequestContext(BASE), write=False) as work:
        plan = plan_search(work, rtype, params)
        return work.uow.search(plan, with_total=False).ids


def test_in_and_not_in_expand_a_local_value_set(data):
    url = f"{VS}/anthropometry"
    assert _engine_ids(data, "Observation", [("code:in", url)]) == ["obs-1", "obs-2", "obs-4", "obs-8"]
    assert _engine_ids(data, "Observation", [("code:not-in", url)]) == ["obs-3", "obs-5", "obs-6", "obs-7"]
    assert _engine_ids(data, "Observation", [("subject:Patient.gender", "female"), ("code:in", url)]) == ["obs-1", "obs-2", "obs-4"]
    # expanded inside _has and chains too
    assert _engine_ids(data, "Patient", [("_has:Observation:subject:code:in", url)]) == ["pat-1", "pat-3"]
    assert _engine_ids(data, "ServiceRequest", [("code:in", url)]) == []
    with pytest.raises(InvalidSearch):
        _engine_ids(data, "Observation", [("code:in", f"{VS}/unknown")])
