"""The PDL log's hook (``notify/disclosure.py``): the delivery worker reports every
attempt that carried events, with what it carried and how it ended; handshakes carry no
patient data and are not reported."""

from __future__ import annotations

import time
import uuid

import pytest

from fhir_server.app import build_runtime
from fhir_server.engine import RequestContext, create
from fhir_server.notify import DeliveryPolicy, Disclosure, Notifier
from fhir_server.settings import Settings
from tests.support.notify import subscription
from tests.support.webhook import Receiver

BASE = "http://evi.example/fhir"


def _wait(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.02)


@pytest.mark.parametrize("answer,outcome", [(200, "delivered"), (500, "failed")])
def test_each_delivery_attempt_is_reported(tmp_path, answer, outcome):
    runtime = build_runtime(Settings(storage=f"sqlite://{tmp_path / 'evi.db'}"))
    seen: list[Disclosure] = []
    calls = iter([200])  # the handshake succeeds; then the receiver answers ``answer``
    with Receiver(answer=lambda n: next(calls, answer)) as hook:
        notifier = Notifier(runtime, BASE, DeliveryPolicy(first_retry=60.0), on_disclosure=seen.append)
        runtime.services["notify"].bell.attach(notifier.wake)
        notifier.start()
        try:
            ctx = RequestContext(base_url=BASE, from_client=True)
            with runtime.work(ctx, write=True) as work:
                sid = create(work, "Subscription", subscription("task-assigned", hook.url)).version.id
            _wait(lambda: len(hook.received) == 1)  # the handshake: not a disclosure
            with runtime.work(ctx, write=True) as work:
                tid = create(work, "Task", {"resourceType": "Task", "status": "requested", "intent": "order",
                                            "owner": {"reference": f"Organization/{uuid.uuid4().hex[:8]}"}}).version.id
            _wait(lambda: len(seen) == 1)
        finally:
            notifier.stop()
            runtime.store.close()
    [d] = seen
    assert (d.owner, d.stream, d.recipient, d.content) == (None, f"Subscription/{sid}", hook.url, "id-only")
    assert (d.events, d.resources, d.outcome) == ((1, 1), (("Task", tid),), outcome)
