"""The catalogue of write-pipeline hook points. Domain rules (``workflow/``) register here;
``api`` and ``storage`` never contain domain branches.

| point             | when                                         | arguments    | may veto |
|-------------------|----------------------------------------------|--------------|----------|
| BEFORE_VALIDATION | a resource arrives, before R4 validation     | WriteEvent   | yes      |
| BEFORE_COMMIT     | validated, version assigned, not yet stored  | WriteEvent   | yes      |
| AFTER_COMMIT      | the unit of work committed                   | WriteEvent   | no       |

A hook vetoes by raising a ``FhirError``; it may add resources to the same unit of
work through ``event.work`` (the engine's functions take a ``Work``).
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
    BEFORE_COMMIT = "before-commit"
    AFTER_COMMIT = "after-commit"


@dataclass
class WriteEvent:
    work: "Work"
    resource_type: str
    id: str
    method: str  # POST, PUT, PATCH, DELETE
    resource: dict | None  # None for a delete
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
