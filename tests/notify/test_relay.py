"""Relays from the region file: checked at start, named stably, written in reference order."""

from __future__ import annotations

import pytest

from fhir_server.notify.relay import RELAY_PREFIX, relays_of, write_order
from fhir_server.workflow import RegionError, RelayRule

URL = "https://ehr.example/fhir/"


def test_a_relay_is_checked_and_named_by_what_it_sends_where():
    [relay] = relays_of((RelayRule("triage-completed", URL, "Task?owner=Organization/bup", (("X-Key", "k"),)),))
    assert relay.topic.code == "triage-completed" and relay.url == "https://ehr.example/fhir"
    assert relay.criterion.pairs == (("owner", "Organization/bup"),) and relay.headers == (("X-Key", "k"),)
    assert relay.name.startswith(RELAY_PREFIX)
    # the same table keeps its stream across restarts; another filter or URL is another stream
    assert relays_of((RelayRule("triage-completed", URL, "Task?owner=Organization/bup"),))[0].name == relay.name
    assert relays_of((RelayRule("triage-completed", URL, "Task?owner=Organization/x"),))[0].name != relay.name
    assert relays_of((RelayRule("triage-completed", "https://other.example/fhir"),))[0].name != relay.name


@pytest.mark.parametrize("rules,why", [
    ((RelayRule("no-such-topic", URL),), "unknown topic"),
    ((RelayRule("triage-completed", URL, "Task?status=completed"),), "relay 1"),
    ((RelayRule("task-assigned", URL), RelayRule("task-assigned", URL)), "same topic, filter and url"),
])
def test_a_relay_the_server_cannot_run_stops_the_start(rules, why):
    with pytest.raises(RegionError) as caught:
        relays_of(rules)
    assert why in str(caught.value)


def test_the_directory_and_the_patient_go_before_what_references_them():
    focus = ("Task", "t1")
    referenced = [("ServiceRequest", "sr"), ("Patient", "p"), ("Organization", "o"), ("Task", "t1"), ("Basic", "b")]
    assert write_order(focus, referenced) == [("Organization", "o"), ("Patient", "p"), ("ServiceRequest", "sr"),
                                              ("Basic", "b"), ("Task", "t1")]
