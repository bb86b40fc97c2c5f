"""AuditTrail: outcomes settle per step, operations merge into one event per patient."""

from fhir_server.audit import Access, AuditTrail, action_of, outcome_of


def test_actions_and_outcomes():
    assert [action_of(i) for i in ("read", "vread", "create", "update", "patch", "delete")] == list("RRCUUD")
    assert {action_of(i) for i in ("search-type", "search-system", "history-instance", "operation")} == {"E"}
    assert [outcome_of(s) for s in (200, 201, 304, 400, 401, 403, 404, 500, 503)] == list("000444488")


def test_settle_gives_a_failed_step_its_status_or_its_fallback():
    trail = AuditTrail()
    trail.add(Access("read", "p1"))
    since = trail.mark()
    trail.add(Access("create", "p2"))
    trail.settle(since, 422)
    assert [a.outcome for a in trail.accesses] == [None, 422]
    since = trail.mark()
    trail.settle(since, 403, Access("update", None, ("Observation/x",)))
    assert trail.accesses[-1] == Access("update", None, ("Observation/x",), outcome=403)


def test_an_operation_writes_one_event_per_patient():
    trail = AuditTrail("Task/$triage-queue", "_count=5", operation="triage-queue")
    trail.add(Access("operation", "p1", ("Task/1",)))
    trail.add(Access("operation", "p2", ("Task/2",)))
    trail.add(Access("operation", "p1", ("Task/3", "Task/1")))
    events = trail.events()
    assert [(e.patient, e.resources) for e in events] == [("p1", ("Task/1", "Task/3")), ("p2", ("Task/2",))]
    assert {(e.operation, e.query, e.path) for e in events} == {("triage-queue", "_count=5", "Task/$triage-queue")}
    assert AuditTrail().events(Access("read", None)) == [Access("read", None)]
    assert AuditTrail().events() == []
