"""The retry schedule (domain.md §7): the first retry within 10 s, doubling up to 10 minutes."""

from __future__ import annotations

from fhir_server.notify.delivery import DeliveryPolicy
from fhir_server.settings import Settings


def test_the_default_schedule():
    settings = Settings()
    policy = DeliveryPolicy(retry_hours=settings.notify_retry_hours, first_retry=settings.notify_retry_first_seconds,
                            max_retry=settings.notify_retry_max_seconds)
    delays = [policy.retry_delay(n) for n in range(1, 12)]
    assert delays[0] <= 10
    assert all(b == min(2 * a, 600) for a, b in zip(delays, delays[1:]))
    assert delays[-1] == 600
    assert policy.retry_hours == 24
