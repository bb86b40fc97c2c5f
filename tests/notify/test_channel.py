"""Reading a backport-subscription (IG 1.1.0, R4): topic, filters and the rest-hook channel,
each fault a 422 naming where it is."""

from __future__ import annotations

import copy

import pytest

from fhir_server.errors import Unprocessable
from fhir_server.notify.channel import DEFAULT_MAX_COUNT, DEFAULT_TIMEOUT, read_subscription
from tests.support.notify import BACKPORT, subscription


def _read(**kw):
    return read_subscription(subscription(kw.pop("topic", "task-assigned"), kw.pop("endpoint", "https://h.example/hook"),
                                          **kw))


def test_a_full_subscription():
    spec = _read(filters=("Task?owner=Organization/a", "code=https://evi-fhir.org/fhir/CodeSystem/evi-task-type|intake"),
                 content="full-resource", headers=("Authorization: Bearer x",), heartbeat=60, timeout=5, max_count=3)
    assert spec.topic.code == "task-assigned"
    assert [c.pairs for c in spec.criteria] == [(("owner", "Organization/a"),),
                                               (("code", "https://evi-fhir.org/fhir/CodeSystem/evi-task-type|intake"),)]
    ch = spec.channel
    assert (ch.endpoint, ch.headers, ch.content, ch.heartbeat, ch.timeout, ch.max_count) == (
        "https://h.example/hook", (("Authorization", "Bearer x"),), "full-resource", 60, 5, 3)


def test_defaults():
    spec = _read()
    assert spec.criteria == () and spec.channel.heartbeat is None
    assert (spec.channel.timeout, spec.channel.max_count, spec.channel.content) == (DEFAULT_TIMEOUT, DEFAULT_MAX_COUNT,
                                                                                    "id-only")
    assert _read(content=None).channel.content == "empty"  # no payload: an empty notification


def test_same_delivery_tells_a_new_handshake_apart():
    a = _read(filters=("Task?owner=Organization/a",))
    assert a.same_delivery(_read(filters=("Task?owner=Organization/a",)))
    assert not a.same_delivery(_read(filters=("Task?owner=Organization/b",)))
    assert not a.same_delivery(_read(filters=("Task?owner=Organization/a",), endpoint="https://other.example/"))
    assert not a.same_delivery(None)


def _with(change) -> dict:
    resource = subscription("task-assigned", "https://h.example/hook")
    change(resource)
    return resource


@pytest.mark.parametrize("change,where", [
    (lambda r: r.update(criteria="Task?owner=Organization/a"), "Subscription.criteria"),
    (lambda r: r.update(criteria="https://evi-fhir.org/fhir/SubscriptionTopic/nope"), "Subscription.criteria"),
    (lambda r: r["channel"].update(type="websocket"), "Subscription.channel.type"),
    (lambda r: r["channel"].update(endpoint="ftp://h.example/"), "Subscription.channel.endpoint"),
    (lambda r: r["channel"].update(endpoint="https:///nohost"), "Subscription.channel.endpoint"),
    (lambda r: r["channel"].update(endpoint="http://h.example:99999/"), "Subscription.channel.endpoint"),
    (lambda r: r["channel"].pop("endpoint"), "Subscription.channel.endpoint"),
    (lambda r: r["channel"].update(header=["no colon"]), "Subscription.channel.header"),
    (lambda r: r["channel"].update(header=["Content-Type: text/plain"]), "Subscription.channel.header"),
    (lambda r: r["channel"].update(header=["X-A: line\nbreak"]), "Subscription.channel.header"),
    (lambda r: r["channel"].update(header=[f"X-{i}: v" for i in range(21)]), "Subscription.channel.header"),
    (lambda r: r["channel"].update(payload="application/xml"), "Subscription.channel.payload"),
    (lambda r: r["channel"]["_payload"]["extension"][0].update(valueCode="everything"), "Subscription.channel.payload"),
    (lambda r: r["channel"].pop("payload"), "Subscription.channel.payload"),  # content without a payload type
    (lambda r: r["channel"].update(extension=[{"url": BACKPORT + "backport-timeout", "valueUnsignedInt": 61}]),
     "Subscription.channel"),
    (lambda r: r["channel"].update(extension=[{"url": BACKPORT + "backport-heartbeat-period", "valueUnsignedInt": True}]),
     "Subscription.channel"),
    (lambda r: r["channel"].update(extension=[{"url": BACKPORT + "backport-max-count", "valuePositiveInt": 0}]),
     "Subscription.channel"),
    (lambda r: r.update(_criteria={"extension": [{"url": BACKPORT + "backport-filter-criteria",
                                                  "valueString": "Task?owner=Organization/a"}] * 11}),
     "Subscription.criteria"),
])
def test_what_the_server_cannot_serve_is_422_naming_where(change, where):
    with pytest.raises(Unprocessable) as caught:
        read_subscription(_with(change))
    assert caught.value.status == 422
    assert any(e.startswith(where) for i in caught.value.issues for e in i.expression), caught.value.issues


def test_the_resource_is_not_changed_by_reading_it():
    resource = subscription("task-assigned", "https://h.example/hook", filters=("Task?owner=Organization/a",))
    before = copy.deepcopy(resource)
    read_subscription(resource)
    assert resource == before
