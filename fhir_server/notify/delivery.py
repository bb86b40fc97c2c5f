"""The delivery worker (domain.md §7): sends what the outbox holds, off the event loop.

One thread (``notify-loop``) wakes when a commit may have recorded events (the hooks ring
``wake``), or every ``poll`` seconds (events another process recorded, retries that came
due). Each round, in one write unit of work, it numbers the new events of every stream
(``Outbox.number``) and leases the streams that have work (``Outbox.claim``); a pool of
sender threads serves the leased streams, one stream per thread, so a slow endpoint holds
up only its own subscriber. Per stream, in order:

- a ``requested`` Subscription gets its ``handshake``: a 2xx makes it ``active``, anything
  else ``error``;
- undelivered events go out in event-number order, up to the channel's max count per
  notification; a failure is retried after ``first_retry`` seconds, then twice as long each
  time up to ``max_retry`` seconds between tries, the schedule kept in the outbox so it holds
  across restarts; when the first failure is ``retry_hours`` old, the Subscription turns
  ``error`` with the reason;
- an ``active`` Subscription with a heartbeat period that has sent nothing for that long
  gets a ``heartbeat``.

At least once: the outbox marks events delivered only after the endpoint's 2xx, so a
process killed in between sends them again. Never twice at once: the lease (``claim`` /
``settle``) gives a stream to one process at a time, across processes on one database.
Status changes are written as new versions of the Subscription by the server's own unit
of work (``If-Match`` the version read, so a client's concurrent change wins).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from fhir_server.engine import RequestContext, Runtime
from fhir_server.notify.delivery_log import Attempt, log_attempt
from fhir_server.notify.disclosure import DisclosureLog, no_disclosure_log
from fhir_server.notify.relay import RELAY_PREFIX, Relay, RelayWriter
from fhir_server.notify.relay_delivery import serve_relay
from fhir_server.notify.rest_hook import RestHook
from fhir_server.notify.subscription_delivery import serve_subscription
from fhir_server.storage import Stream

__all__ = ["Notifier", "DeliveryPolicy"]

log = logging.getLogger("fhir_server.notify")


@dataclass(frozen=True)
class DeliveryPolicy:
    """Settings ``notify_*``: how long and how often failed deliveries are tried again."""

    #: EVI_NOTIFY_RETRY_HOURS: a Subscription whose deliveries failed this long turns error
    retry_hours: float = 24.0
    #: seconds to the first retry (within 10 s, domain.md §7), doubled for each later one ...
    first_retry: float = 5.0
    #: ... up to this many seconds between tries
    max_retry: float = 600.0
    #: sender threads (streams served at once)
    senders: int = 4
    #: seconds between looks at the outbox when nothing rings
    poll: float = 1.0
    #: seconds from one round to the next when the bell rings, per stream the last round
    #: handed over, up to ``gather``: an event after a quiet spell goes out at once, a
    #: steady flow to many subscribers in fuller notifications at most this often (their
    #: sends and write transactions otherwise compete with the requests' for the CPU and
    #: the one writer); a sender with work left skips the wait
    gather_per_stream: float = 0.025
    gather: float = 0.1
    #: seconds a lease lasts: longer than any one attempt (the longest channel timeout, 60 s,
    #: or a relay's few requests), so a live sender never loses its stream mid-attempt
    lease: float = 180.0

    def retry_delay(self, attempts: int) -> float:
        """Seconds before try ``attempts + 1``, after ``attempts`` failures."""
        return min(self.first_retry * 2 ** max(attempts - 1, 0), self.max_retry)


class Notifier:
    """Started and stopped with the app (``app.py`` lifespan); ``wake`` is thread-safe."""

    def __init__(self, runtime: Runtime, base_url: str, policy: DeliveryPolicy = DeliveryPolicy(),
                 relays: tuple[Relay, ...] = (), on_disclosure: DisclosureLog = no_disclosure_log,
                 registered=None):
        """``registered``: a client id -> (role or None) look-up of the registered clients
        (auth on): a Subscription whose owning client is gone or changed role stops (error)."""
        self.runtime = runtime
        self.base_url = base_url.rstrip("/")
        self.policy = policy
        self.relays = {r.name: r for r in relays}
        self.on_disclosure = on_disclosure
        self.registered = registered
        self.id = f"{uuid.uuid4().hex[:12]}"
        self.hook = RestHook()
        self._bell = threading.Event()
        #: a sender left work due on its stream: the next round goes without gathering
        self._more = threading.Event()
        self._last_round = 0.0
        self._last_handed = 0
        self._stopped = threading.Event()
        self._busy: set[str] = set()
        self._lock = threading.Lock()
        self._writers: dict[str, RelayWriter] = {}
        self._pool = ThreadPoolExecutor(policy.senders, thread_name_prefix="notify-send")
        self._thread = threading.Thread(target=self._run, name="notify-loop", daemon=True)

    # -- life ---------------------------------------------------------------------------
    def start(self) -> "Notifier":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._bell.set()
        self._thread.join(timeout=30)
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.hook.close()

    def wake(self) -> None:
        self._bell.set()

    # -- the loop -----------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stopped.is_set():
            if self._bell.wait(self.policy.poll) and not self._more.is_set():
                wait = min(self.policy.gather, self.policy.gather_per_stream * self._last_handed)
                pause = self._last_round + wait - time.monotonic()
                if pause > 0:
                    self._stopped.wait(pause)
            self._more.clear()
            self._bell.clear()
            if self._stopped.is_set():
                return
            self._last_round = time.monotonic()
            try:
                self.round()
            except Exception:  # the database away for a moment: try again at the next round
                log.exception("notify: a delivery round failed")
                self._stopped.wait(self.policy.poll)

    def round(self) -> list[str]:
        """Number new events and lease the streams with work; hand them to the senders.
        Returns the names of the streams handed over."""
        with self._lock:
            free = self.policy.senders - len(self._busy)
        now = time.time()
        with self.runtime.store.unit_of_work(write=True) as uow:
            outbox = uow.outbox
            for name in outbox.unnumbered():
                outbox.number(name)
            claimed = outbox.claim(self.id, now, now + self.policy.lease, free) if free > 0 else []
        self._last_handed = len(claimed)
        for stream in claimed:
            with self._lock:
                self._busy.add(stream.name)
            self._pool.submit(self._serve, stream)
        return [s.name for s in claimed]

    def _serve(self, stream: Stream) -> None:
        more = False
        try:
            if stream.name.startswith(RELAY_PREFIX):
                more = serve_relay(self, stream)
            else:
                more = serve_subscription(self, stream)
        except Exception:
            log.exception("notify: serving %s failed", stream.name)
            self._release(stream, time.time() + self.policy.first_retry)
        finally:
            with self._lock:
                self._busy.discard(stream.name)
            if more:
                self._more.set()
            self._bell.set()  # a sender is free (and its stream may have more)

    # -- what the servers share ----------------------------------------------------------
    def server_context(self) -> RequestContext:
        """The server's own work: unrestricted, not a client's."""
        return RequestContext(base_url=self.base_url)

    def relay_writer(self, relay: Relay) -> RelayWriter:
        with self._lock:
            writer = self._writers.get(relay.name)
            if writer is None:
                writer = self._writers[relay.name] = RelayWriter(relay)
            return writer

    def settle(self, stream: Stream, **state) -> bool:
        with self.runtime.store.unit_of_work(write=True) as uow:
            return uow.outbox.settle(stream.name, self.id, **state)

    def _release(self, stream: Stream, next_attempt: float) -> None:
        try:
            self.settle(stream, next_attempt=next_attempt)
        except Exception:
            log.exception("notify: releasing %s failed (its lease runs out by itself)", stream.name)

    def failed(self, stream: Stream, error: str, now: float) -> tuple[int, float, bool]:
        """(attempts, failing since, given up): the retry state after a failed attempt."""
        attempts = stream.attempts + 1
        since = stream.failing_since if stream.failing_since is not None else now
        return attempts, since, now - since >= self.policy.retry_hours * 3600

    def log(self, attempt: Attempt) -> None:
        log_attempt(attempt)
