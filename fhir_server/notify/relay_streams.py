"""The relays' streams in the outbox: configured at start-up from the region file, and
reported by ``evi-fhir relay status``."""

from __future__ import annotations

from dataclasses import dataclass

from fhir_server.notify.relay import RELAY_PREFIX, Relay
from fhir_server.notify.subscribers import GENERATION
from fhir_server.storage import Store, Stream, StreamConfig

__all__ = ["configure_relays", "RelayStatus", "relay_status"]


def _config(relay: Relay) -> StreamConfig:
    criteria = (relay.criterion.text,) if relay.criterion is not None else ()
    return StreamConfig(relay.name, relay.topic.code, criteria, None, "active")


def configure_relays(store: Store, relays: tuple[Relay, ...]) -> None:
    """Each relay's stream active with its configuration (its numbers and backlog kept);
    the streams of relays the region file no longer has turned off (their events kept).
    Writes nothing when all is as configured (every process starting does this)."""
    wanted = {r.name: _config(r) for r in relays}
    with store.unit_of_work(write=False) as uow:
        existing = {s.name: s.config for s in uow.outbox.streams() if s.name.startswith(RELAY_PREFIX)}
    gone = {name: config for name, config in existing.items() if name not in wanted and config.status != "off"}
    if all(existing.get(name) == config for name, config in wanted.items()) and not gone:
        return
    with store.unit_of_work(write=True) as uow:
        for config in wanted.values():
            uow.outbox.save_stream(config)
        for name, config in gone.items():
            uow.outbox.save_stream(StreamConfig(name, config.topic, config.criteria, None, "off"))
        uow.bump(GENERATION)


@dataclass(frozen=True)
class RelayStatus:
    relay: Relay
    #: events written upstream
    delivered: int
    #: events waiting (numbered or not)
    backlog: int
    last_success: float | None
    last_error: str | None


def relay_status(store: Store, relays: tuple[Relay, ...]) -> list[RelayStatus]:
    with store.unit_of_work(write=False) as uow:
        unnumbered = uow.outbox.unnumbered()
        found: dict[str, Stream] = {s.name: s for s in uow.outbox.streams() if s.name.startswith(RELAY_PREFIX)}
    out = []
    for relay in relays:
        s = found.get(relay.name)
        waiting = unnumbered.get(relay.name, 0)
        if s is None:
            out.append(RelayStatus(relay, 0, waiting, None, None))
        else:
            out.append(RelayStatus(relay, s.delivered, s.numbered - s.delivered + waiting, s.last_success, s.last_error))
    return out
