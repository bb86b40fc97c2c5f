"""The seven EVI subscription topics (domain.md §7): what fires each, on which writes, and
which filters a subscriber may set.

A topic fires on a write by comparing the version written with the one it replaces
(``previous``; None for a create, or a write over a deleted resource). Deletes fire
nothing. The topics are published in the guide as R4 ``Basic`` resources (the backport
IG's R4 shape of a SubscriptionTopic, ``profiles/Basic-topic-*.json``); this module is
what the server runs, and ``tests/notify/test_topics.py`` holds the two in step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

__all__ = ["Topic", "FilterParam", "TOPICS", "TOPIC_TYPES", "TOPIC_BASE", "topic_by_canonical", "topic_by_code",
           "topics_fired"]

TOPIC_BASE = "https://evi-fhir.org/fhir/SubscriptionTopic/"
_CS = "https://evi-fhir.org/fhir/CodeSystem/"
_TASK_TYPE = _CS + "evi-task-type"
_SIP = (_CS + "evi-careplan-category", "sip")

Trigger = Callable[[dict | None, dict], bool]


@dataclass(frozen=True)
class FilterParam:
    """A search parameter a subscriber may filter the topic by (``backport-filter-criteria``)."""

    name: str
    #: reference parameters name resources, which the subscriber must be able to see
    kind: str  # reference | token


@dataclass(frozen=True)
class Topic:
    code: str
    resource_type: str
    title: str
    description: str
    trigger: Trigger
    filters: tuple[FilterParam, ...]
    #: element names of the focus whose literal references are the event's additional
    #: context (sent with ``full-resource`` payloads, as the owner may see them)
    context: tuple[str, ...]

    @property
    def canonical(self) -> str:
        return TOPIC_BASE + self.code

    def filter_param(self, name: str) -> FilterParam | None:
        return next((f for f in self.filters if f.name == name), None)


def _has_code(resource: dict, element: str, system: str, code: str) -> bool:
    concepts = resource.get(element)
    for concept in concepts if isinstance(concepts, list) else [concepts]:
        for coding in (concept or {}).get("coding") or () if isinstance(concept, dict) else ():
            if isinstance(coding, dict) and coding.get("system") == system and coding.get("code") == code:
                return True
    return False


def _owner(resource: dict | None) -> str | None:
    owner = (resource or {}).get("owner")
    return owner.get("reference") if isinstance(owner, dict) else None


def _intake_created(previous: dict | None, current: dict) -> bool:
    return previous is None and _has_code(current, "code", _TASK_TYPE, "intake")


def _intake_completed(previous: dict | None, current: dict) -> bool:
    return (_has_code(current, "code", _TASK_TYPE, "intake") and current.get("status") == "completed"
            and (previous or {}).get("status") != "completed")


def _created(previous: dict | None, current: dict) -> bool:
    return previous is None


def _assigned(previous: dict | None, current: dict) -> bool:
    owner = _owner(current)
    return owner is not None and owner != _owner(previous)


def _sip_written(previous: dict | None, current: dict) -> bool:
    return _has_code(current, "category", *_SIP)  # created, or revised: every new version


def _booked(previous: dict | None, current: dict) -> bool:
    return current.get("status") == "booked" and (previous or {}).get("status") != "booked"


def _transfer_status(previous: dict | None, current: dict) -> bool:
    return (_has_code(current, "code", _TASK_TYPE, "transfer-care-responsibility")
            and current.get("status") != (previous or {}).get("status"))


_OWNER = FilterParam("owner", "reference")

TOPICS: tuple[Topic, ...] = (
    Topic("referral-received", "Task", "Remiss mottagen (referral received)",
          "An intake Task is created: a referral, self-referral or phone contact reached the EVI unit.",
          _intake_created, (_OWNER,), ("for", "focus")),
    Topic("triage-completed", "Task", "Triage klar (triage completed)",
          "An intake Task becomes completed: $triage recorded its outcome.",
          _intake_completed, (_OWNER, FilterParam("triage-outcome", "token")), ("for", "focus")),
    Topic("communication-received", "Communication", "Meddelande (communication received)",
          "A Communication is created (e.g. a notice to a municipality about a placed child).",
          _created, (FilterParam("recipient", "reference"),), ("subject",)),
    Topic("task-assigned", "Task", "Uppgift tilldelad (task assigned)",
          "A Task is created with an owner, or its owner changes.",
          _assigned, (_OWNER, FilterParam("code", "token")), ("for", "focus")),
    Topic("sip-changed", "CarePlan", "SIP ändrad (SIP changed)",
          "A SIP CarePlan (category sip) is created or revised (every new version).",
          _sip_written, (FilterParam("care-team.participant", "reference"),), ("subject",)),
    Topic("appointment-booked", "Appointment", "Tid bokad (appointment booked)",
          "An Appointment is created booked, or becomes booked.",
          _booked, (FilterParam("actor", "reference"),), ("participant",)),
    Topic("care-transfer", "Task", "Vårdansvarsöverföring (care transfer)",
          "A care-responsibility transfer Task is created or changes status.",
          _transfer_status, (_OWNER,), ("for", "focus")),
)

#: the resource types some topic fires on (a write of another type costs nothing)
TOPIC_TYPES = frozenset(t.resource_type for t in TOPICS)
_BY_CODE = {t.code: t for t in TOPICS}
_BY_CANONICAL = {t.canonical: t for t in TOPICS}
_BY_TYPE: dict[str, tuple[Topic, ...]] = {
    rtype: tuple(t for t in TOPICS if t.resource_type == rtype) for rtype in TOPIC_TYPES
}


def topic_by_code(code: str) -> Topic | None:
    return _BY_CODE.get(code)


def topic_by_canonical(url: object) -> Topic | None:
    return _BY_CANONICAL.get(url) if isinstance(url, str) else None


def topics_fired(resource_type: str, previous: dict | None, current: dict | None) -> tuple[Topic, ...]:
    """The topics a write fires (``current`` None: a delete, which fires none)."""
    if current is None:
        return ()
    return tuple(t for t in _BY_TYPE.get(resource_type, ()) if t.trigger(previous, current))
