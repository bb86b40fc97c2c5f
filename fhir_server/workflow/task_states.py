"""The FHIR R4 Task state machine (domain.md §2 'Task status transitions', rule 5).

Every write of a Task, whatever its code and however it arrives (PUT, PATCH,
transaction), goes through ``_check`` (BEFORE_COMMIT). Creating a Task in any status is
allowed (it records a state reached elsewhere). Server operations and rules may make a
named jump the table does not have by granting a ``ServerTransition`` exemption for the
one Task in the same unit of work, before its write reaches BEFORE_COMMIT
(``allow_server_transition``):

  ``$triage``        requested/received/... → completed of the intake Task it completes
  care transfer      accepted → completed of a transfer Task (granted at AFTER_VALIDATION)
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from fhir_server.engine import Exemption, HookPoint, Runtime, Work, WriteEvent
from fhir_server.errors import Conflict

__all__ = [
    "TRANSITIONS",
    "FINAL",
    "ServerTransition",
    "is_allowed",
    "allow_server_transition",
    "install_task_state_machine",
]

TRANSITIONS: dict[str, frozenset[str]] = {
    "draft": frozenset({"requested", "cancelled"}),
    "requested": frozenset({"received", "accepted", "rejected", "ready", "in-progress", "cancelled"}),
    "received": frozenset({"accepted", "rejected", "cancelled"}),
    "accepted": frozenset({"ready", "in-progress", "cancelled"}),
    "ready": frozenset({"in-progress", "failed", "cancelled"}),
    "in-progress": frozenset({"on-hold", "completed", "failed", "cancelled"}),
    "on-hold": frozenset({"in-progress", "failed", "cancelled"}),
    "completed": frozenset(),
    "failed": frozenset(),
    "rejected": frozenset(),
    "cancelled": frozenset(),
    "entered-in-error": frozenset(),
}
FINAL = frozenset({"completed", "failed", "rejected", "cancelled", "entered-in-error"})



@dataclass(frozen=True)
class ServerTransition(Exemption):
    """Task/{task_id} may move from ``old`` to ``new`` in this unit of work (a server rule)."""

    task_id: str
    old: str
    new: str


def is_allowed(old: str, new: str) -> bool:
    return old == new or new == "entered-in-error" or new in TRANSITIONS.get(old, frozenset())


def allow_server_transition(work: Work, task_id: str, old: str, new: str, *, granted_by: str = "server rule") -> None:
    """Let this unit of work move Task/{task_id} from ``old`` to ``new``."""
    work.grant(ServerTransition(task_id, old, new, granted_by=granted_by))


def _check(event: WriteEvent) -> None:
    if event.resource_type != "Task" or event.resource is None:
        return
    previous = event.previous
    if previous is None or previous.deleted:
        return
    old = orjson.loads(previous.body).get("status")
    new = event.resource.get("status")
    if not isinstance(old, str) or not isinstance(new, str) or is_allowed(old, new):
        return
    if event.work.exempt(ServerTransition(event.id, old, new)):
        return
    allowed = sorted(TRANSITIONS.get(old, ()))
    if allowed:
        rule = f"from '{old}' a Task may move only to {', '.join(allowed)} or entered-in-error"
    else:
        rule = f"'{old}' is a final status (only entered-in-error may follow)"
    raise Conflict(
        f"Task/{event.id}: the status cannot change from '{old}' to '{new}'; {rule} (FHIR R4 Task state machine)",
        expression="Task.status",
    )


def install_task_state_machine(runtime: Runtime) -> None:
    runtime.hooks.register(HookPoint.BEFORE_COMMIT, _check)
