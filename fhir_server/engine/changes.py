"""What one unit of work wrote, and why: the ledger answers are built from.

Every write of the pipeline (``engine.write``) is recorded here, whoever made it: the
request itself (a single interaction, a transaction or batch entry, an operation), or a
server rule acting on one of those writes. Two questions are answered from it once the
unit of work's deferred rules have run:

- **the final version** of a resource: a rule may write a later version of what an entry
  wrote (the integrated-care flags refresh an EpisodeOfCare when a SIP CarePlan arrives),
  and answers must show what was committed, not what the entry wrote first;
- **the side effects** of a request's write: each resource a server rule created, updated
  or deleted because of it, with the rule's name (``Cause``).
"""

from __future__ import annotations

from dataclasses import dataclass

from fhir_server.storage.base import ResourceVersion

__all__ = ["Cause", "Changes", "SideEffect"]

Key = tuple[str, str]


@dataclass(frozen=True)
class Cause:
    """Why a write happens: the request's own write of ``key`` set off ``rule``."""

    key: Key
    rule: str


@dataclass(frozen=True)
class SideEffect:
    """One resource a server rule changed because of a request's write, as committed."""

    rule: str
    #: created, updated or deleted: what the rule's first write of it did
    action: str
    #: the final version of the resource in the unit of work
    version: ResourceVersion

    @property
    def location(self) -> str:
        v = self.version
        return f"{v.resource_type}/{v.id}/_history/{v.version_id}"

    def describe(self) -> str:
        v = self.version
        where = f"{v.resource_type}/{v.id}" if self.action == "deleted" else self.location
        return f"Server rule '{self.rule}' {self.action} {where}"


class Changes:
    """The ledger of one unit of work (not shared between threads: a unit of work is one request's)."""

    def __init__(self) -> None:
        #: (type, id) -> (last version written, its content)
        self._final: dict[Key, tuple[ResourceVersion, dict | None]] = {}
        #: cause key -> {(changed key, rule): action}, in the order the rules first wrote each resource
        self._effects: dict[Key, dict[tuple[Key, str], str]] = {}

    def record(
        self, version: ResourceVersion, resource: dict | None, previous: ResourceVersion | None, cause: Cause | None
    ) -> None:
        key = (version.resource_type, version.id)
        self._final[key] = (version, resource)
        if cause is None:
            return
        if version.deleted:
            action = "deleted"
        else:
            action = "created" if previous is None or previous.deleted else "updated"
        self._effects.setdefault(cause.key, {}).setdefault((key, cause.rule), action)

    def wrote(self, resource_type: str, rid: str) -> bool:
        """Whether this unit of work wrote ``resource_type/rid`` (so far)."""
        return (resource_type, rid) in self._final

    def final(self, resource_type: str, rid: str) -> tuple[ResourceVersion, dict | None] | None:
        """The last version written of ``resource_type/rid`` and its content (None: not written)."""
        return self._final.get((resource_type, rid))

    def side_effects(self, resource_type: str, rid: str) -> list[SideEffect]:
        """What server rules changed because of the request's write of ``resource_type/rid``."""
        effects = self._effects.get((resource_type, rid), {})
        return [SideEffect(rule, action, self._final[key][0]) for (key, rule), action in effects.items()]
