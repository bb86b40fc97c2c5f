"""date parameters (R4 search.html#date and #prefix) against dates, partial dates,
instants with time zones and Periods (closed and open-ended).

Every value is a range [low, high]: a day is the whole day, ``1980-05`` the whole
month, an instant its precision, a Period start..end (an open end is unbounded).
eq: the search range contains the value range; ne: not eq;
gt: value high > search high; lt: value low < search low; ge: gt or eq;
le: lt or eq; sa: value low > search high; eb: value high < search low;
ap: overlaps the search range widened by 10% of its distance from now.
Times without a zone are UTC on this server.
"""

from __future__ import annotations

import pytest

from tests.integration.search.conftest import patient, service_request


def _sr(rid, authored=None, occurrence=None):
    extra = {}
    if authored:
        extra["authoredOn"] = authored
    if isinstance(occurrence, dict):
        extra["occurrencePeriod"] = occurrence
    elif occurrence:
        extra["occurrenceDateTime"] = occurrence
    return service_request(rid, "Patient/bd-full", **extra)


@pytest.fixture(scope="module")
def fhir(own_server):
    own_server.seed(
        # birthDate: full and partial dates
        patient("bd-full", birth="1980-05-15"),
        patient("bd-month", birth="1980-05"),
        patient("bd-year", birth="1980"),
        patient("bd-other", birth="1985-12-31"),
        patient("bd-none"),
        # authoredOn: instants in several zones
        _sr("sr-a", authored="2024-03-10T08:00:00+01:00"),  # 07:00Z on the 10th
        _sr("sr-b", authored="2024-03-10T23:30:00-02:00"),  # 01:30Z on the 11th
        _sr("sr-c", authored="2024-03-09T23:59:59Z"),
        _sr("sr-d", authored="2024-04-01T12:00:00.250Z"),
        _sr("sr-e", authored="2020-01-01T00:00:00Z"),
        # occurrence[x]: Periods, open-ended Periods and a dateTime
        _sr("per-closed", occurrence={"start": "2024-06-01", "end": "2024-06-30"}),
        _sr("per-open-end", occurrence={"start": "2024-06-15T10:00:00+02:00"}),
        _sr("per-open-start", occurrence={"end": "2024-05-31"}),
        _sr("per-july", occurrence={"start": "2024-07-01T09:00:00+02:00", "end": "2024-07-01T10:00:00+02:00"}),
        _sr("occ-dt", occurrence="2024-08-20T13:15:00+02:00"),
        # Appointment.start, Slot.start, Task.executionPeriod, EpisodeOfCare.period
        {"resourceType": "Appointment", "id": "appt-morning", "status": "booked",
         "start": "2024-09-02T08:00:00+02:00", "end": "2024-09-02T08:30:00+02:00",
         "participant": [{"actor": {"reference": "Patient/bd-full"}, "status": "accepted"}]},
        {"resourceType": "Appointment", "id": "appt-evening", "status": "booked",
         "start": "2024-09-02T23:30:00+02:00", "end": "2024-09-03T00:15:00+02:00",
         "participant": [{"actor": {"reference": "Patient/bd-full"}, "status": "accepted"}]},
        {"resourceType": "Slot", "id": "slot-1", "schedule": {"reference": "Schedule/sched-1"}, "status": "free",
         "start": "2024-09-02T08:00:00+02:00", "end": "2024-09-02T08:30:00+02:00"},
        {"resourceType": "Slot", "id": "slot-2", "schedule": {"reference": "Schedule/sched-1"}, "status": "busy",
         "start": "2024-09-02T08:30:00+02:00", "end": "2024-09-02T09:00:00+02:00"},
        {"resourceType": "Task", "id": "task-running", "status": "in-progress", "intent": "order",
         "executionPeriod": {"start": "2024-10-01T08:00:00Z"}},
        {"resourceType": "Task", "id": "task-done", "status": "completed", "intent": "order",
         "executionPeriod": {"start": "2024-09-01T08:00:00Z", "end": "2024-09-05T16:00:00Z"}},
        {"resourceType": "EpisodeOfCare", "id": "eoc-open", "status": "active",
         "patient": {"reference": "Patient/bd-full"}, "period": {"start": "2023-01-15"}},
        {"resourceType": "EpisodeOfCare", "id": "eoc-closed", "status": "finished",
         "patient": {"reference": "Patient/bd-full"}, "period": {"start": "2022-02-01", "end": "2022-11-30"}},
    )
    return own_server


BD_1980 = {"bd-full", "bd-month", "bd-year"}
BD_ALL = BD_1980 | {"bd-other"}
SR_ALL = {"sr-a", "sr-b", "sr-c", "sr-d", "sr-e"}
PER_ALL = {"per-closed", "per-open-end", "per-open-start", "per-july", "occ-dt"}

CASES = [
    # --- birthDate: eq against full and partial values
    ("Patient?birthdate=1980-05-15", {"bd-full"}),
    ("Patient?birthdate=eq1980-05-15", {"bd-full"}),
    ("Patient?birthdate=1980-05", {"bd-full", "bd-month"}),
    ("Patient?birthdate=1980", BD_1980),
    ("Patient?birthdate=1980-05-16", set()),
    ("Patient?birthdate=1981", set()),
    ("Patient?birthdate=1980-05-15T12:00:00Z", set()),  # an instant cannot contain a whole day
    ("Patient?birthdate=1980-05-15,1985-12-31", {"bd-full", "bd-other"}),
    # ne
    ("Patient?birthdate=ne1980-05", {"bd-year", "bd-other"}),
    ("Patient?birthdate=ne1980", {"bd-other"}),
    ("Patient?birthdate=ne1985-12-31", BD_1980),
    # gt: the value's end is after the search range's end
    ("Patient?birthdate=gt1980-05-15", {"bd-month", "bd-year", "bd-other"}),
    ("Patient?birthdate=gt1980-05", {"bd-year", "bd-other"}),
    ("Patient?birthdate=gt1980", {"bd-other"}),
    ("Patient?birthdate=gt1985-12-31", set()),
    # lt: the value's start is before the search range's start
    ("Patient?birthdate=lt1980-05-15", {"bd-month", "bd-year"}),
    ("Patient?birthdate=lt1980-05", {"bd-year"}),
    ("Patient?birthdate=lt1980", set()),
    ("Patient?birthdate=lt1985-12-31", BD_1980),
    # ge / le: gt or eq, lt or eq
    ("Patient?birthdate=ge1980-05", BD_ALL),
    ("Patient?birthdate=ge1980-05-16", {"bd-month", "bd-year", "bd-other"}),
    ("Patient?birthdate=ge1986", set()),
    ("Patient?birthdate=le1980-05", BD_1980),
    ("Patient?birthdate=le1980-05-14", {"bd-month", "bd-year"}),
    ("Patient?birthdate=le1979", set()),
    ("Patient?birthdate=le1985-12-31", BD_ALL),
    # sa / eb: entirely after / before
    ("Patient?birthdate=sa1980-05-15", {"bd-other"}),
    ("Patient?birthdate=sa1980", {"bd-other"}),
    ("Patient?birthdate=sa1985-12-31", set()),
    ("Patient?birthdate=eb1985", BD_1980),
    ("Patient?birthdate=eb1980-05-15", set()),
    ("Patient?birthdate=eb1980-06", {"bd-full", "bd-month"}),
    # ap: about 10% of the distance from now either side (decades here)
    ("Patient?birthdate=ap1980-05-15", BD_1980),
    ("Patient?birthdate=ap1985-12-31", {"bd-other"}),
    ("Patient?birthdate=ap1950", set()),
    # AND makes a range
    ("Patient?birthdate=ge1980&birthdate=le1980", BD_1980),
    ("Patient?birthdate=gt1980-05-15&birthdate=lt1981", {"bd-month", "bd-year"}),
    # --- authoredOn: instants with zones
    ("ServiceRequest?authored=2024-03-10", {"sr-a"}),  # sr-b is on the 11th in UTC
    ("ServiceRequest?authored=2024-03-11", {"sr-b"}),
    ("ServiceRequest?authored=2024-03", {"sr-a", "sr-b", "sr-c"}),
    ("ServiceRequest?authored=2024", {"sr-a", "sr-b", "sr-c", "sr-d"}),
    ("ServiceRequest?authored=2024-03-10T08:00:00%2B01:00", {"sr-a"}),
    ("ServiceRequest?authored=2024-03-10T07:00:00Z", {"sr-a"}),
    ("ServiceRequest?authored=2024-03-10T07:00Z", {"sr-a"}),  # minute precision
    ("ServiceRequest?authored=2024-03-10T09:00:00%2B02:00", {"sr-a"}),
    ("ServiceRequest?authored=2024-03-10T08:00:00Z", set()),
    ("ServiceRequest?authored=2024-03-10T21:30:00-04:00", {"sr-b"}),
    ("ServiceRequest?authored=2024-04-01T12:00:00.250Z", {"sr-d"}),
    ("ServiceRequest?authored=2024-04-01T12:00:00Z", {"sr-d"}),  # the second contains .250
    ("ServiceRequest?authored=2024-04-01T12:00:00.2Z", {"sr-d"}),
    ("ServiceRequest?authored=2024-04-01T12:00:00.3Z", set()),
    ("ServiceRequest?authored=gt2024-03-10T07:00:00Z", {"sr-b", "sr-d"}),
    ("ServiceRequest?authored=lt2024-03-10T07:00:00Z", {"sr-c", "sr-e"}),
    ("ServiceRequest?authored=ge2024-03-10T07:00:00Z", {"sr-a", "sr-b", "sr-d"}),
    ("ServiceRequest?authored=le2024-03-10T07:00:00Z", {"sr-a", "sr-c", "sr-e"}),
    ("ServiceRequest?authored=sa2024-03-10T12:00:00Z", {"sr-b", "sr-d"}),
    ("ServiceRequest?authored=eb2024-03-10", {"sr-c", "sr-e"}),
    ("ServiceRequest?authored=ne2024-03", {"sr-d", "sr-e"}),
    ("ServiceRequest?authored=gt2024-03-10&authored=lt2024-04", {"sr-b"}),
    ("ServiceRequest?authored=ap2024-04-01T12:00:00Z", {"sr-a", "sr-b", "sr-c", "sr-d"}),
    ("ServiceRequest?authored=lt2020", set()),
    # --- occurrence: Periods (open ends unbounded) and a dateTime
    ("ServiceRequest?occurrence=2024-06", {"per-closed"}),
    ("ServiceRequest?occurrence=2024-06-15", set()),  # no value lies within that day only
    ("ServiceRequest?occurrence=2024", {"per-closed", "per-july", "occ-dt"}),
    ("ServiceRequest?occurrence=2024-07-01", {"per-july"}),  # 07:00Z-08:00Z
    ("ServiceRequest?occurrence=2024-08-20T11:15:00Z", {"occ-dt"}),
    ("ServiceRequest?occurrence=gt2024-06-30", {"per-open-end", "per-july", "occ-dt"}),
    ("ServiceRequest?occurrence=gt2024-06-20", {"per-closed", "per-open-end", "per-july", "occ-dt"}),
    ("ServiceRequest?occurrence=lt2024-06-01", {"per-open-start"}),
    ("ServiceRequest?occurrence=lt2024-06-20", {"per-open-start", "per-closed", "per-open-end"}),
    ("ServiceRequest?occurrence=ge2024-06", {"per-closed", "per-open-end", "per-july", "occ-dt"}),
    ("ServiceRequest?occurrence=le2024-06", {"per-open-start", "per-closed"}),
    ("ServiceRequest?occurrence=sa2024-06-14", {"per-open-end", "per-july", "occ-dt"}),
    ("ServiceRequest?occurrence=sa2024-06-15", {"per-july", "occ-dt"}),  # starts 08:00Z on the 15th
    ("ServiceRequest?occurrence=eb2024-06-01", {"per-open-start"}),
    ("ServiceRequest?occurrence=eb2024-06-15", {"per-open-start"}),
    ("ServiceRequest?occurrence=ne2024-06", {"per-open-end", "per-open-start", "per-july", "occ-dt"}),
    ("ServiceRequest?occurrence=sa2099", set()),
    ("ServiceRequest?occurrence=eb1900", set()),
    # --- Appointment.start (date), Slot.start
    ("Appointment?date=2024-09-02", {"appt-morning", "appt-evening"}),  # 06:00Z and 21:30Z
    ("Appointment?date=2024-09-02T06:00:00Z", {"appt-morning"}),
    ("Appointment?date=gt2024-09-02T12:00:00Z", {"appt-evening"}),
    ("Appointment?date=lt2024-09-02T12:00:00Z", {"appt-morning"}),
    ("Appointment?date=2024-09-03", set()),
    ("Slot?start=ge2024-09-02T08:30:00%2B02:00", {"slot-2"}),
    ("Slot?start=lt2024-09-02T08:30:00%2B02:00", {"slot-1"}),
    ("Slot?start=2024-09-02&status=free", {"slot-1"}),
    # --- Task.executionPeriod (open end), EpisodeOfCare.period
    ("Task?period=gt2024-12-31", {"task-running"}),
    ("Task?period=2024-09", {"task-done"}),
    ("Task?period=lt2024-09-02", {"task-done"}),
    ("Task?period=sa2024-09-30", {"task-running"}),
    ("Task?period=eb2024-10-01", {"task-done"}),
    ("EpisodeOfCare?date=2022", {"eoc-closed"}),
    ("EpisodeOfCare?date=gt2023", {"eoc-open"}),
    ("EpisodeOfCare?date=eb2023", {"eoc-closed"}),
    ("EpisodeOfCare?date=ge2022-06", {"eoc-closed", "eoc-open"}),
]


@pytest.mark.parametrize("query,expected", CASES, ids=[c[0] for c in CASES])
def test_date_search(fhir, query, expected):
    assert fhir.ids(query) == expected


ERRORS = [
    "Patient?birthdate=1980-13",
    "Patient?birthdate=1980-02-30",
    "Patient?birthdate=xx1980",
    "Patient?birthdate=15/05/1980",
    "Patient?birthdate=today",
    "Patient?birthdate:exact=1980",
    "ServiceRequest?authored=2024-03-10T25:00:00Z",
]


@pytest.mark.parametrize("query", ERRORS)
def test_date_invalid_is_400(fhir, query):
    r = fhir.get(query)
    assert r.status_code == 400, f"{query}: {r.status_code} {r.text}"
    assert r.json()["resourceType"] == "OperationOutcome"
