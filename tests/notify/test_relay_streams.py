"""The relays' streams: configured from the region file at every start, reported by
``evi-fhir relay status``."""

from __future__ import annotations

from fhir_server.notify import relay_status, relays_of
from fhir_server.notify.relay_streams import configure_relays
from fhir_server.storage import open_store
from fhir_server.workflow import RelayRule

A = RelayRule("triage-completed", "https://a.example/fhir")
B = RelayRule("task-assigned", "https://b.example/fhir", "Task?owner=Organization/x")


def _streams(store) -> dict[str, str]:
    with store.unit_of_work(write=False) as uow:
        return {s.name: s.config.status for s in uow.outbox.streams()}


def test_relays_are_kept_turned_off_and_reported(tmp_path):
    store = open_store(f"sqlite://{tmp_path / 'evi.db'}")
    try:
        a, b = relays_of((A, B))
        configure_relays(store, (a, b))
        assert _streams(store) == {a.name: "active", b.name: "active"}
        with store.unit_of_work(write=True) as uow:  # two events for a, one delivered
            for n in range(2):
                uow.outbox.append(a.name, "triage-completed", ("Task", f"t{n}", 1), "2026-03-01T10:00:00Z")
            uow.outbox.number(a.name)
            [claimed] = [s for s in uow.outbox.claim("me", 0.0, 60.0, 10) if s.name == a.name]
            assert claimed.numbered == 2
            uow.outbox.settle(a.name, "me", delivered=1, last_error="upstream refused: no")
        with store.unit_of_work(write=True) as uow:
            uow.outbox.append(a.name, "triage-completed", ("Task", "t9", 1), "2026-03-01T10:00:00Z")  # unnumbered
        [sa, sb] = relay_status(store, (a, b))
        assert (sa.delivered, sa.backlog, sa.last_error) == (1, 2, "upstream refused: no")
        assert (sb.delivered, sb.backlog, sb.last_error) == (0, 0, None)
        configure_relays(store, (a,))  # b left the region file: off, its stream kept
        assert _streams(store) == {a.name: "active", b.name: "off"}
        assert relay_status(store, (a,))[0].backlog == 2  # a's numbers and backlog survive
    finally:
        store.close()
