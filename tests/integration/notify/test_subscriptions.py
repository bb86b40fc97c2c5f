"""Topic-based Subscriptions over HTTP with a real webhook receiver on loopback (domain.md §7):
handshake, filtered delivery, consecutive event numbers, no event for a rolled-back
transaction, the payload kinds, $status and $events, retries, heartbeats."""

from __future__ import annotations

import threading
import uuid

import pytest

from tests.support.notify import FHIR_JSON, TOPIC, create_subscription, subscription, task, wait_status
from tests.support.webhook import Receiver, event_numbers, focus_of, status_of


def owner() -> str:
    return f"Organization/o-{uuid.uuid4().hex[:12]}"


def url(client, ref: str) -> str:
    return f"{str(client.base_url).rstrip('/')}/{ref}"


def post_task(client, resource: dict) -> dict:
    r = client.post("/Task", json=resource, headers=FHIR_JSON)
    assert r.status_code == 201, r.text
    return r.json()


def test_handshake_answered_2xx_makes_the_subscription_active(fhir_http):
    with Receiver() as hook:
        created = create_subscription(fhir_http, subscription(
            "task-assigned", hook.url, filters=(f"Task?owner={owner()}",), headers=("X-Api-Key: s3cret",)))
        assert created["status"] == "requested"  # the server's: the handshake decides
        active = wait_status(fhir_http, created["id"], "active")
    [handshake] = hook.received
    status = status_of(handshake.body)
    assert handshake.body["resourceType"] == "Bundle" and handshake.body["type"] == "history"
    assert len(handshake.body["entry"]) == 1
    assert status["type"] == "handshake" and status["status"] == "requested"
    assert status["events-since-subscription-start"] == "0"
    assert status["subscription"].endswith(f"/Subscription/{created['id']}")
    assert status["topic"] == TOPIC + "task-assigned"
    assert handshake.headers["X-Api-Key"] == "s3cret"
    assert handshake.headers["Content-Type"].startswith("application/fhir+json")
    assert active["meta"]["versionId"] == "2" and "error" not in active


def test_handshake_answered_500_makes_it_error_and_nothing_is_sent(fhir_http):
    mine = owner()
    with Receiver(answer=500) as hook:
        created = create_subscription(fhir_http, subscription("task-assigned", hook.url, filters=(f"Task?owner={mine}",)))
        failed = wait_status(fhir_http, created["id"], "error")
        post_task(fhir_http, task(mine))
        status = fhir_http.get(f"/Subscription/{created['id']}/$status").json()
    assert "HTTP 500" in failed["error"]
    assert len(hook.received) == 1  # the handshake only
    parameters = status_of(status["entry"][0]["resource"] and {"entry": status["entry"]})
    assert parameters["status"] == "error" and parameters["type"] == "query-status"


def test_handshake_to_an_endpoint_that_refuses_connections_is_error(fhir_http):
    closed = Receiver()  # never started: its port refuses
    created = create_subscription(fhir_http, subscription("task-assigned", closed.url))
    failed = wait_status(fhir_http, created["id"], "error")
    assert "ConnectError" in failed["error"]


def test_only_matching_subscribers_are_notified(fhir_http):
    first, second, other = owner(), owner(), owner()
    with Receiver() as a, Receiver() as b:
        sa = create_subscription(fhir_http, subscription("task-assigned", a.url, filters=(f"Task?owner={first}",)))
        sb = create_subscription(fhir_http, subscription("task-assigned", b.url, filters=(f"Task?owner={second}",)))
        wait_status(fhir_http, sa["id"], "active")
        wait_status(fhir_http, sb["id"], "active")
        t1 = post_task(fhir_http, task(first))
        post_task(fhir_http, task(other))
        t2 = post_task(fhir_http, task(second))
        t3 = post_task(fhir_http, task(first))
        a.wait_for(lambda: a.events() == [1, 2])
        b.wait_for(lambda: b.events() == [1])
    assert [f for bundle in a.bundles("event-notification") for f in focus_of(bundle)] == [
        url(fhir_http, f"Task/{t1['id']}"), url(fhir_http, f"Task/{t3['id']}")]
    assert focus_of(b.bundles("event-notification")[0]) == [url(fhir_http, f"Task/{t2['id']}")]


def test_event_numbers_start_at_one_and_never_skip_under_concurrent_writes(fhir_http):
    mine = owner()
    with Receiver() as hook:
        sub = create_subscription(fhir_http, subscription("task-assigned", hook.url, filters=(f"Task?owner={mine}",)))
        wait_status(fhir_http, sub["id"], "active")

        def writer():
            for _ in range(5):
                post_task(fhir_http, task(mine))

        threads = [threading.Thread(target=writer) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        hook.wait_for(lambda: len(hook.events()) >= 20)
    assert hook.events() == list(range(1, 21))
    since = [int(status_of(b)["events-since-subscription-start"]) for b in hook.bundles("event-notification")]
    assert since == sorted(since) and since[-1] == 20


def test_a_rolled_back_transaction_makes_no_event(fhir_http):
    mine = owner()
    with Receiver() as hook:
        sub = create_subscription(fhir_http, subscription("task-assigned", hook.url, filters=(f"Task?owner={mine}",)))
        wait_status(fhir_http, sub["id"], "active")
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": task(mine), "request": {"method": "POST", "url": "Task"}},
            {"resource": {"resourceType": "Patient", "birthDate": "not a date"}, "request": {"method": "POST", "url": "Patient"}},
        ]}
        r = fhir_http.post("", json=bundle, headers=FHIR_JSON)
        assert r.status_code == 400, r.text
        kept = post_task(fhir_http, task(mine))
        hook.wait_for(lambda: hook.events() == [1])
    assert focus_of(hook.bundles("event-notification")[0]) == [url(fhir_http, f"Task/{kept['id']}")]
    assert fhir_http.get("/Task", params={"owner": mine}).json()["total"] == 1


def test_payload_kinds(fhir_http):
    mine = owner()
    with Receiver() as empty, Receiver() as ids, Receiver() as full:
        for hook, content in ((empty, "empty"), (ids, "id-only"), (full, "full-resource")):
            sub = create_subscription(fhir_http, subscription(
                "task-assigned", hook.url, filters=(f"Task?owner={mine}",), content=content))
            wait_status(fhir_http, sub["id"], "active")
        written = post_task(fhir_http, task(mine, **{"for": {"reference": "Patient/child-maja"}}))
        for hook in (empty, ids, full):
            hook.wait_for(lambda hook=hook: hook.events() == [1])
    task_url = url(fhir_http, f"Task/{written['id']}")
    [e] = empty.bundles("event-notification")
    assert len(e["entry"]) == 1 and "topic" not in status_of(e)
    assert status_of(e)["notification-event"] == [{"event-number": "1", "timestamp": written["meta"]["lastUpdated"]}]
    [i] = ids.bundles("event-notification")
    assert focus_of(i) == [task_url] and status_of(i)["topic"] == TOPIC + "task-assigned"
    assert i["entry"][1] == {"fullUrl": task_url, "request": {"method": "POST", "url": "Task"}, "response": {"status": "201"}}
    [f] = full.bundles("event-notification")
    assert f["entry"][1]["resource"] == written
    assert f["entry"][2]["resource"]["id"] == "child-maja"  # the Task's Patient as additional context
    assert status_of(f)["notification-event"][0]["additional-context"] == url(fhir_http, f"Patient/child-maja")


def test_status_and_events_fill_a_gap(fhir_http):
    mine = owner()
    with Receiver() as hook:
        sub = create_subscription(fhir_http, subscription("task-assigned", hook.url, filters=(f"Task?owner={mine}",)))
        wait_status(fhir_http, sub["id"], "active")
        tasks = [post_task(fhir_http, task(mine)) for _ in range(4)]
        hook.wait_for(lambda: len(hook.events()) == 4)
    sid = sub["id"]
    status = fhir_http.get(f"/Subscription/{sid}/$status").json()
    assert status["type"] == "searchset" and status["total"] == 1
    parameters = status_of({"entry": status["entry"]})
    assert (parameters["status"], parameters["type"], parameters["events-since-subscription-start"]) == (
        "active", "query-status", "4")
    events = fhir_http.get(f"/Subscription/{sid}/$events",
                           params={"eventsSinceNumber": "2", "eventsUntilNumber": "3", "content": "full-resource"}).json()
    assert events["type"] == "history" and status_of(events)["type"] == "query-event"
    assert event_numbers(events) == [2, 3]
    assert [e["resource"]["id"] for e in events["entry"][1:]] == [tasks[1]["id"], tasks[2]["id"]]
    posted = fhir_http.post(f"/Subscription/{sid}/$events", json={"resourceType": "Parameters", "parameter": [
        {"name": "eventsSinceNumber", "valueString": "4"}]}, headers=FHIR_JSON).json()
    assert event_numbers(posted) == [4] and len(posted["entry"]) == 2  # id-only, as subscribed


@pytest.mark.parametrize("query, status", [
    ("$events?eventsSinceNumber=x", 400), ("$events?eventsUntilNumber=-1", 400), ("$events?content=everything", 400),
    ("$events?since=1", 400), ("$status?id=x", 400),
])
def test_operation_parameters_are_checked(fhir_http, query, status):
    with Receiver() as hook:
        sub = create_subscription(fhir_http, subscription("task-assigned", hook.url))
    r = fhir_http.get(f"/Subscription/{sub['id']}/{query}")
    assert r.status_code == status and r.json()["resourceType"] == "OperationOutcome"


def test_operations_on_an_unknown_subscription_are_404(fhir_http):
    for op in ("$status", "$events"):
        r = fhir_http.get(f"/Subscription/{uuid.uuid4()}/{op}")
        assert r.status_code == 404 and r.json()["resourceType"] == "OperationOutcome"


def test_a_receiver_failing_for_a_while_gets_everything_in_order_after_it_recovers(fhir_http):
    mine = owner()
    answers = iter([200] + [500] * 4)  # the handshake passes, then four failures
    with Receiver(answer=lambda n: next(answers, 200)) as hook:
        sub = create_subscription(fhir_http, subscription(
            "task-assigned", hook.url, filters=(f"Task?owner={mine}",), max_count=1))
        wait_status(fhir_http, sub["id"], "active")
        for _ in range(3):
            post_task(fhir_http, task(mine))
        hook.wait_for(lambda: hook.events() == [1, 2, 3], timeout=30)
    tried = [event_numbers(b) for b in hook.bundles("event-notification")]
    assert tried[:4] == [[1]] * 4 and tried[4:] == [[1], [2], [3]]  # event 1 retried until it passed
    assert fhir_http.get(f"/Subscription/{sub['id']}").json()["status"] == "active"


def test_heartbeats_while_nothing_happens(fhir_http):
    with Receiver() as hook:
        sub = create_subscription(fhir_http, subscription("task-assigned", hook.url, heartbeat=1, content="empty"))
        wait_status(fhir_http, sub["id"], "active")
        hook.wait_for(lambda: len(hook.bundles("heartbeat")) >= 2, timeout=10)
        fhir_http.delete(f"/Subscription/{sub['id']}")
    beat = status_of(hook.bundles("heartbeat")[0])
    assert (beat["status"], beat["events-since-subscription-start"]) == ("active", "0")


def test_off_stops_events_and_requested_starts_again_with_a_handshake(fhir_http):
    mine = owner()
    with Receiver() as hook:
        sub = create_subscription(fhir_http, subscription("task-assigned", hook.url, filters=(f"Task?owner={mine}",)))
        active = wait_status(fhir_http, sub["id"], "active")
        r = fhir_http.put(f"/Subscription/{sub['id']}", json={**active, "status": "off"}, headers=FHIR_JSON)
        assert r.status_code == 200 and r.json()["status"] == "off"
        post_task(fhir_http, task(mine))  # while off: no event
        again = {**r.json(), "status": "requested"}
        assert fhir_http.put(f"/Subscription/{sub['id']}", json=again, headers=FHIR_JSON).status_code == 200
        wait_status(fhir_http, sub["id"], "active")
        post_task(fhir_http, task(mine))
        hook.wait_for(lambda: hook.events() == [1])
    assert len(hook.bundles("handshake")) == 2


def test_a_client_cannot_set_active_or_error_itself(fhir_http):
    with Receiver(answer=500) as hook:
        created = create_subscription(fhir_http, subscription("task-assigned", hook.url, status="active"))
        assert created["status"] == "requested"
        failed = wait_status(fhir_http, created["id"], "error")
        # an update that changes nothing else keeps the server's status and its error
        r = fhir_http.put(f"/Subscription/{created['id']}", json={**failed, "status": "active", "error": "x"},
                          headers=FHIR_JSON)
    assert (r.json()["status"], r.json()["error"]) == ("error", failed["error"])


def test_deleting_a_subscription_stops_it(fhir_http):
    mine = owner()
    with Receiver() as hook:
        sub = create_subscription(fhir_http, subscription("task-assigned", hook.url, filters=(f"Task?owner={mine}",)))
        wait_status(fhir_http, sub["id"], "active")
        assert fhir_http.delete(f"/Subscription/{sub['id']}").status_code in (200, 204)
        post_task(fhir_http, task(mine))
        assert fhir_http.get(f"/Subscription/{sub['id']}/$status").status_code == 410
    assert hook.events(accepted=False) == []


@pytest.mark.parametrize("change, where", [
    ({"criteria": TOPIC + "no-such-topic"}, "criteria"),
    ({"criteria": "Task?owner=Organization/x"}, "criteria"),
    ({"_criteria": {"extension": [{"url": "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
                                          "backport-filter-criteria", "valueString": "Task?status=requested"}]}},
     "criteria"),
    ({"_criteria": {"extension": [{"url": "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
                                          "backport-filter-criteria", "valueString": "Communication?owner=Organization/x"}]}},
     "criteria"),
    ({"_criteria": {"extension": [{"url": "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
                                          "backport-filter-criteria", "valueString": "Task?owner=http://x/Organization/1"}]}},
     "criteria"),
    ({"channel": {"type": "websocket", "endpoint": "http://127.0.0.1:9/hook"}}, "channel.type"),
    ({"channel": {"type": "rest-hook", "endpoint": "ftp://127.0.0.1/hook"}}, "channel.endpoint"),
    ({"channel": {"type": "rest-hook"}}, "channel.endpoint"),
    ({"channel": {"type": "rest-hook", "endpoint": "http://127.0.0.1:9/hook", "header": ["no colon"]}}, "channel.header"),
    ({"channel": {"type": "rest-hook", "endpoint": "http://127.0.0.1:9/hook", "header": ["Host: evil"]}}, "channel.header"),
    ({"channel": {"type": "rest-hook", "endpoint": "http://127.0.0.1:9/hook", "payload": "application/fhir+xml"}},
     "channel.payload"),
    ({"channel": {"type": "rest-hook", "endpoint": "http://127.0.0.1:9/hook", "payload": "application/fhir+json",
                  "_payload": {"extension": [{"url": "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
                                                     "backport-payload-content", "valueCode": "everything"}]}}},
     "channel.payload"),
    ({"channel": {"type": "rest-hook", "endpoint": "http://127.0.0.1:9/hook", "extension": [
        {"url": "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-timeout",
         "valueUnsignedInt": 3600}]}}, "channel"),
])
def test_a_subscription_the_server_cannot_serve_is_422_and_not_stored(fhir_http, change, where):
    before = fhir_http.get("/Subscription", params={"_summary": "count"}).json()["total"]
    resource = {**subscription("task-assigned", "http://127.0.0.1:9/hook"), **change}
    r = fhir_http.post("/Subscription", json=resource, headers=FHIR_JSON)
    assert r.status_code == 422, r.text
    outcome = r.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["expression"][0].startswith(f"Subscription.{where}")
    assert fhir_http.get("/Subscription", params={"_summary": "count"}).json()["total"] == before


def test_the_capability_statement_lists_the_topics_and_operations(fhir_http):
    statement = fhir_http.get("/metadata").json()
    entry = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Subscription")
    topics = [e["valueCanonical"] for e in entry["extension"]
              if e["url"].endswith("/capabilitystatement-subscriptiontopic-canonical")]
    assert topics == [TOPIC + c for c in ("referral-received", "triage-completed", "communication-received",
                                          "task-assigned", "sip-changed", "appointment-booked", "care-transfer")]
    assert "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription" in entry["supportedProfile"]
    assert {o["name"] for o in entry["operation"]} >= {"status", "events"}


def test_the_topics_are_served_from_the_guide(fhir_http):
    found = fhir_http.get("/Basic", params={"code": "http://hl7.org/fhir/fhir-types|SubscriptionTopic"}).json()
    urls = sorted(e["resource"]["extension"][0]["valueUri"] for e in found["entry"])
    assert urls == sorted(TOPIC + c for c in ("referral-received", "triage-completed", "communication-received",
                                              "task-assigned", "sip-changed", "appointment-booked", "care-transfer"))
