"""Relays (domain.md §7): the region file's ``[[relay]]`` tables send a topic's events to an
upstream FHIR server (a BUP clinic's EHR, a municipality's system that speaks FHIR).

A relay is a stream of the outbox like a Subscription's (``relay/{key}``, the key a hash of
its topic, filter and URL: the same table keeps its stream and backlog across restarts),
recorded in the same unit of work as the write and delivered by the same worker, in event
order, retried the same way. It has no owner: the region configured it, every matching
event goes. For each event the worker writes, with fhirpy, the resources the focus
references (one level: its Patient, its referral, its Organizations...) and then the
focus itself, each by ``PUT [url]/{type}/{id}`` under its own id. Before a PUT it reads
the upstream copy and leaves it alone when it already holds the same content (``meta``
aside), so a repeated delivery changes nothing there, not even a version.

A relay never turns ``error``: it keeps retrying at the longest interval, and
``evi-fhir relay status`` shows its backlog and last error. A protected identity's address
and contact details never go upstream (the Patient is sent redacted): the region names no
care unit for a relay, and only the responsible one may see them (domain.md §2, §5).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import orjson
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import ResourceNotFound

from fhir_server.errors import FhirError
from fhir_server.notify.criteria import Criterion, parse_criterion
from fhir_server.notify.occurrences import literal_references
from fhir_server.notify.topics import Topic, topic_by_code, TOPICS
from fhir_server.security.redaction import is_protected, redact
from fhir_server.storage import ResourceVersion
from fhir_server.workflow import RegionError, RelayRule

__all__ = ["Relay", "relays_of", "RelayWriter", "RELAY_PREFIX", "write_order"]

RELAY_PREFIX = "relay/"
#: seconds each request to an upstream server may take
UPSTREAM_TIMEOUT = 10
#: referenced resources go first, the directory before the patient before the rest, so an
#: upstream server that checks references (or runs rules on them) finds them in place
_FIRST = ("Organization", "HealthcareService", "Location", "Practitioner", "PractitionerRole", "Patient",
          "RelatedPerson", "Consent", "QuestionnaireResponse", "ServiceRequest", "EpisodeOfCare")


@dataclass(frozen=True)
class Relay:
    topic: Topic
    criterion: Criterion | None
    url: str
    headers: tuple[tuple[str, str], ...]

    @property
    def name(self) -> str:
        text = f"{self.topic.code}\n{self.criterion.text if self.criterion else ''}\n{self.url}"
        return RELAY_PREFIX + hashlib.sha256(text.encode()).hexdigest()[:16]


def relays_of(rules: tuple[RelayRule, ...]) -> tuple[Relay, ...]:
    """The region's relay tables, checked: a topic of this server, a filter it allows."""
    relays = []
    for n, rule in enumerate(rules, 1):
        topic = topic_by_code(rule.topic)
        if topic is None:
            raise RegionError(f"relay {n}: unknown topic {rule.topic!r}; topics: {', '.join(t.code for t in TOPICS)}")
        try:
            criterion = parse_criterion(topic, rule.filter) if rule.filter is not None else None
        except FhirError as exc:
            raise RegionError(f"relay {n}: {exc.message}") from None
        relays.append(Relay(topic, criterion, rule.url.rstrip("/"), rule.headers))
    names = [r.name for r in relays]
    if len(set(names)) != len(names):
        raise RegionError("two [[relay]] tables have the same topic, filter and url")
    return tuple(relays)


def write_order(focus: tuple[str, str], referenced: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """What a relay writes for one event, in order: the referenced resources, then the focus."""
    rank = {t: i for i, t in enumerate(_FIRST)}
    others = [r for r in referenced if r != focus]
    return sorted(others, key=lambda r: rank.get(r[0], len(rank))) + [focus]


def _without_meta(resource: dict) -> dict:
    return {k: v for k, v in resource.items() if k != "meta"}


def _outgoing(resource: dict) -> dict:
    """As it goes upstream: redacted if protected; meta keeps only the profiles and labels."""
    if is_protected(resource):
        resource = redact(resource)
    meta = {k: v for k, v in (resource.get("meta") or {}).items() if k in ("profile", "security", "tag")}
    out = {k: v for k, v in resource.items() if k != "meta"}
    if meta:
        out["meta"] = meta
    return out


class RelayWriter:
    """Writes one relay's events upstream (a client per relay: fhirpy keeps no connections)."""

    def __init__(self, relay: Relay):
        self.relay = relay
        self._client = SyncFHIRClient(relay.url, extra_headers={"Accept": "application/fhir+json", **dict(relay.headers)},
                                      requests_config={"timeout": UPSTREAM_TIMEOUT, "allow_redirects": False})

    def write(self, version: ResourceVersion, referenced: list[ResourceVersion]) -> list[tuple[str, str]]:
        """PUT the referenced resources, then the focus ``version``; returns what it wrote
        (or found already there). Raises on the first failure (the event is retried whole)."""
        by_key = {(v.resource_type, v.id): v for v in referenced}
        focus = (version.resource_type, version.id)
        by_key[focus] = version
        order = write_order(focus, [(v.resource_type, v.id) for v in referenced])
        for key in order:
            self._put(_outgoing(orjson.loads(by_key[key].body)))
        return order

    def _put(self, resource: dict) -> None:
        rtype, rid = resource["resourceType"], resource["id"]
        try:
            upstream = self._client.reference(rtype, rid).to_resource().serialize()
        except ResourceNotFound:
            upstream = None
        if upstream is not None and _without_meta(upstream) == _without_meta(resource):
            return  # already there as it is: a repeated delivery changes nothing
        self._client.resource(rtype, **resource).save()

    @staticmethod
    def referenced(resource: dict, base_url: str) -> list[tuple[str, str]]:
        return literal_references(resource, base_url)
