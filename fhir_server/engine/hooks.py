"""The catalogue of write-pipeline hook points. Domain rules (``workflow/``) and the
engine's own rules (the guide, profiles, SearchParameters) register here; ``api`` and
``storage`` never contain domain branches.

One write (create, update, patch, delete; single, transaction or batch entry, or a rule's
own write) passes the points in this order; a delete has no body, so it passes only
BEFORE_COMMIT and AFTER_COMMIT (with ``resource`` None).

| point             | when                                   | ``event.resource``        | may veto | may mutate the resource | may write more |
|-------------------|----------------------------------------|---------------------------|----------|-------------------------|----------------|
| BEFORE_VALIDATION | asked for; the body is not yet valid   | None: type, id, method only | yes    | no (it is not given)    | no             |
| AFTER_VALIDATION  | passed R4 validation; id, meta.versionId and meta.lastUpdated stamped | what will be stored | yes | yes, server-owned parts only (e.g. meta.tag); it must stay valid R4, it is not validated again | by deferring (below) |
| BEFORE_COMMIT     | content final: serialised and indexed, not yet written | what will be stored (read-only) | yes | no: the stored bytes are already fixed | by deferring (below) |
| AFTER_COMMIT      | the unit of work committed             | as stored (read-only)     | no       | no                      | no: ``Work.after_commit`` follow-ups open a unit of work of their own |

Every hook takes one ``WriteEvent``; ``event.previous`` is the stored version the write
replaces (None: there is none). Hooks only ever see validated content: the body at
AFTER_VALIDATION and later, and stored versions (validated when they were written).

- *veto*: raise a ``FhirError``; the whole unit of work rolls back (a transaction, a
  single request; a batch entry alone).
- *write more*: a hook never writes while the pipeline is inside one write. It defers a
  run of its rule (``Work.defer``, see ``engine.deferred``): the runs execute at the end
  of the unit of work, may veto, and write through the engine's functions (``create``,
  ``update``...), whose writes pass all these points again. What they write is reported
  in the request's answer as side effects of the write that deferred them
  (``engine.changes``).
- *exempt*: a hook at AFTER_VALIDATION, or a deferred run, may grant a typed exemption
  (``Work.grant``) that a BEFORE_COMMIT check honours (``Work.exempt``), e.g. the Task
  state machine's ``ServerTransition``. Points run in the order above, so a grant made at
  AFTER_VALIDATION is seen by every BEFORE_COMMIT hook of the same write.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from fhir_server.engine.work import Work
    from fhir_server.storage.base import ResourceVersion

__all__ = ["HookPoint", "WriteEvent", "Hooks"]


class HookPoint(Enum):
    BEFORE_VALIDATION = "before-validation"
    AFTER_VALIDATION = "after-validation"
    BEFORE_COMMIT = "before-commit"
    AFTER_COMMIT = "after-commit"


@dataclass
class WriteEvent:
    work: "Work"
    resource_type: str
    #: the logical id ("" at BEFORE_VALIDATION of a create: the server assigns it later)
    id: str
    method: str  # POST, PUT, PATCH, DELETE
    #: None at BEFORE_VALIDATION and for a delete (see the catalogue)
    resource: dict | None
    previous: "ResourceVersion | None"


class Hooks:
    def __init__(self) -> None:
        self._hooks: dict[HookPoint, list[Callable[[WriteEvent], None]]] = defaultdict(list)

    def register(self, point: HookPoint, fn: Callable[[WriteEvent], None]) -> None:
        self._hooks[point].append(fn)

    def run(self, point: HookPoint, event: WriteEvent) -> None:
        for fn in self._hooks.get(point, ()):
            fn(event)

    def has(self, point: HookPoint) -> bool:
        return bool(self._hooks.get(point))

    def registered(self, point: HookPoint) -> tuple[Callable[[WriteEvent], None], ...]:
        """The hooks of ``point``, in the order they run."""
        return tuple(self._hooks.get(point, ()))
