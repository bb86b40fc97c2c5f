"""Exemptions one rule grants another, for one unit of work.

A server operation or rule sometimes needs a step another rule forbids to clients:
``$triage`` completes an intake Task straight from ``requested``, a care transfer goes
``accepted`` → ``completed``. The granting rule puts a typed ``Exemption`` on the unit of
work (``Work.grant``); the checking rule asks for an equal one (``Work.exempt``). Both
sides name the same frozen dataclass, so what may be exempted, and by whom, is visible in
the types (``workflow.task_states.ServerTransition``), not hidden in shared string keys.
Exemptions end with the unit of work.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Exemption", "Exemptions"]


@dataclass(frozen=True)
class Exemption:
    """Base of exemptions (subclass as a frozen dataclass). Equal exemptions are the same
    grant; ``granted_by`` names the granting rule for logs and is not compared."""

    granted_by: str = field(default="server rule", compare=False, kw_only=True)


class Exemptions:
    def __init__(self) -> None:
        self._granted: set[Exemption] = set()

    def grant(self, exemption: Exemption) -> None:
        self._granted.add(exemption)

    def holds(self, exemption: Exemption) -> bool:
        return exemption in self._granted
