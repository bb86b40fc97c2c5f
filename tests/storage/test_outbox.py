"""The notification outbox (``storage/outbox.py``) on every backend: streams, events appended
in the writer's unit of work, numbering from 1 without gaps, leases, settling."""

import threading

import pytest

from fhir_server.storage import StreamConfig

SUB = "Subscription/s1"
TASK = ("Task", "t1", 1)
AT = "2026-03-01T10:00:00.000000Z"


def _config(name=SUB, status="active", **kw) -> StreamConfig:
    values = {"topic": "task-assigned", "criteria": ("Task?owner=Organization/o1",), "owner": None,
              "status": status, "heartbeat": None}
    values.update(kw)
    return StreamConfig(name, **values)


def _numbered(store, name=SUB) -> int:
    with store.unit_of_work(write=True) as uow:
        return uow.outbox.number(name)


def test_stream_configuration_round_trips_and_keeps_delivery_state(store):
    with store.unit_of_work(write=True) as uow:
        uow.outbox.save_stream(_config(heartbeat=60, owner='{"role": "evi"}'))
        uow.outbox.append(SUB, "task-assigned", TASK, AT)
        uow.outbox.number(SUB)
    with store.unit_of_work(write=True) as uow:
        uow.outbox.save_stream(_config(status="off", criteria=("Task?code=x|y",)))
    with store.unit_of_work(write=False) as uow:
        stream = uow.outbox.stream(SUB)
        assert uow.outbox.stream("Subscription/none") is None
        assert [s.name for s in uow.outbox.streams()] == [SUB]
        assert uow.outbox.streams(("active",)) == []
    assert stream.config == _config(status="off", criteria=("Task?code=x|y",))
    assert stream.numbered == 1 and stream.delivered == 0  # configuration changes keep the numbers


def test_events_are_numbered_from_one_in_append_order_without_gaps(store):
    with store.unit_of_work(write=True) as uow:
        uow.outbox.save_stream(_config())
        uow.outbox.save_stream(_config("relay/r1"))
        for i in range(3):
            uow.outbox.append(SUB, "task-assigned", ("Task", f"t{i}", 1), AT)
        uow.outbox.append("relay/r1", "task-assigned", ("Task", "x", 2), AT)
    with store.unit_of_work(write=False) as uow:
        assert uow.outbox.unnumbered() == {SUB: 3, "relay/r1": 1}
        assert uow.outbox.events(SUB, 1, None, 10) == []  # not numbered yet
    assert _numbered(store) == 3
    with store.unit_of_work(write=True) as uow:
        uow.outbox.append(SUB, "task-assigned", ("Task", "t3", 1), AT)
    assert _numbered(store) == 4 and _numbered(store) == 4
    with store.unit_of_work(write=False) as uow:
        events = uow.outbox.events(SUB, 1, None, 10)
        assert uow.outbox.unnumbered() == {"relay/r1": 1}
        assert [e.number for e in uow.outbox.events(SUB, 2, 3, 10)] == [2, 3]
        assert [e.number for e in uow.outbox.events(SUB, 0, None, 2)] == [1, 2]
    assert [(e.number, e.focus_id) for e in events] == [(1, "t0"), (2, "t1"), (3, "t2"), (4, "t3")]
    assert events[0].topic == "task-assigned" and events[0].focus_type == "Task" and events[0].at == AT


def test_an_event_rolls_back_with_its_unit_of_work(store):
    with store.unit_of_work(write=True) as uow:
        uow.outbox.save_stream(_config())
    with pytest.raises(RuntimeError):
        with store.unit_of_work(write=True) as uow:
            uow.outbox.append(SUB, "task-assigned", TASK, AT)
            raise RuntimeError("the write failed")
    with store.unit_of_work(write=False) as uow:
        assert uow.outbox.unnumbered() == {}
    assert _numbered(store) == 0


def test_concurrent_appenders_get_consecutive_numbers(store):
    with store.unit_of_work(write=True) as uow:
        uow.outbox.save_stream(_config())

    def append(n):
        for i in range(10):
            with store.unit_of_work(write=True) as uow:
                uow.outbox.append(SUB, "task-assigned", ("Task", f"{n}-{i}", 1), AT)

    threads = [threading.Thread(target=append, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert _numbered(store) == 40
    with store.unit_of_work(write=False) as uow:
        numbers = [e.number for e in uow.outbox.events(SUB, 1, None, 100)]
    assert numbers == list(range(1, 41))


def test_dropping_a_stream_removes_its_events(store):
    with store.unit_of_work(write=True) as uow:
        uow.outbox.save_stream(_config())
        uow.outbox.append(SUB, "task-assigned", TASK, AT)
    with store.unit_of_work(write=True) as uow:
        uow.outbox.drop_stream(SUB)
        uow.outbox.append(SUB, "task-assigned", TASK, AT)  # a late event of a stream that is gone
    assert _numbered(store) == 0
    with store.unit_of_work(write=False) as uow:
        assert uow.outbox.stream(SUB) is None and uow.outbox.unnumbered() == {}


def test_claim_takes_streams_with_due_work_and_leases_them(store):
    with store.unit_of_work(write=True) as uow:
        outbox = uow.outbox
        outbox.save_stream(_config("Subscription/new", status="requested"))
        outbox.save_stream(_config("Subscription/idle"))
        outbox.save_stream(_config("Subscription/backlog"))
        outbox.save_stream(_config("Subscription/off", status="off"))
        outbox.save_stream(_config("Subscription/beat", heartbeat=30))
        outbox.append("Subscription/backlog", "task-assigned", TASK, AT)
        outbox.append("Subscription/off", "task-assigned", TASK, AT)
        outbox.number("Subscription/backlog")
        outbox.number("Subscription/off")
    with store.unit_of_work(write=True) as uow:
        claimed = uow.outbox.claim("p1", now=1000.0, until=1010.0, limit=10)
    assert sorted(s.name for s in claimed) == ["Subscription/backlog", "Subscription/beat", "Subscription/new"]
    assert all(s.lease_owner == "p1" and s.lease_until == 1010.0 for s in claimed)
    with store.unit_of_work(write=True) as uow:  # another process: nothing until the leases expire
        assert uow.outbox.claim("p2", now=1005.0, until=1015.0, limit=10) == []
    with store.unit_of_work(write=True) as uow:
        assert len(uow.outbox.claim("p2", now=1011.0, until=1021.0, limit=1)) == 1


def test_settle_needs_the_lease_and_sets_the_delivery_state(store):
    with store.unit_of_work(write=True) as uow:
        uow.outbox.save_stream(_config())
        uow.outbox.append(SUB, "task-assigned", TASK, AT)
        uow.outbox.number(SUB)
        uow.outbox.claim("p1", 100.0, 110.0, 10)
    with store.unit_of_work(write=True) as uow:
        assert not uow.outbox.settle(SUB, "p2", delivered=1)  # not the lease holder
        assert uow.outbox.settle(SUB, "p1", attempts=2, next_attempt=150.0, failing_since=90.0, last_error="HTTP 500")
        with pytest.raises(ValueError):
            uow.outbox.settle(SUB, "p1", status="active")
    with store.unit_of_work(write=True) as uow:
        stream = uow.outbox.stream(SUB)
        assert uow.outbox.claim("p2", 120.0, 130.0, 10) == []  # its next attempt is not due
        assert [s.name for s in uow.outbox.claim("p2", 150.0, 160.0, 10)] == [SUB]
        assert uow.outbox.settle(SUB, "p2", delivered=1, attempts=0, last_success=151.0, last_sent=151.0)
    assert (stream.attempts, stream.next_attempt, stream.failing_since, stream.last_error) == (2, 150.0, 90.0, "HTTP 500")
    assert stream.lease_owner is None
    with store.unit_of_work(write=True) as uow:
        uow.outbox.save_stream(_config(), restart=True)
        assert uow.outbox.claim("p3", 200.0, 210.0, 10) == []  # all delivered
        stream = uow.outbox.stream(SUB)
    assert (stream.delivered, stream.last_success, stream.last_error, stream.attempts) == (1, 151.0, None, 0)
