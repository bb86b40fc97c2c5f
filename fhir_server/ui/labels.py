"""Swedish words for what the pages show. The guide's own codes (channel, triage
outcome, eligibility flag, stage, organisation type) take the Swedish display of the
guide's CodeSystems, so the dashboard and the data never disagree; FHIR's own codes
(request priority, Task status) are translated here."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from fhir_server.conformance import guide_terminology, ig_directory

__all__ = ["PRIORITY", "TASK_STATUS", "Labels", "local_time", "EXT", "CS"]

CS = "https://evi-fhir.org/fhir/CodeSystem/"
EXT = "https://evi-fhir.org/fhir/StructureDefinition/"

#: R4 request-priority
PRIORITY = {"stat": "Omedelbart", "asap": "Snarast", "urgent": "Brådskande", "routine": "Rutin"}
#: R4 task-status
TASK_STATUS = {
    "draft": "Utkast", "requested": "Begärd", "received": "Mottagen", "accepted": "Accepterad",
    "rejected": "Avvisad", "ready": "Redo", "cancelled": "Avbruten", "in-progress": "Pågår",
    "on-hold": "Pausad", "failed": "Misslyckad", "completed": "Klar", "entered-in-error": "Felregistrerad",
}
_ZONE = ZoneInfo("Europe/Stockholm")


def local_time(instant: object, *, with_time: bool = True) -> str:
    """A FHIR date/dateTime/instant as Swedish local time (``2026-03-18 14:05``)."""
    if not isinstance(instant, str) or not instant:
        return ""
    if len(instant) <= 10:
        return instant
    try:
        moment = datetime.fromisoformat(instant.replace("Z", "+00:00"))
    except ValueError:
        return instant
    if moment.tzinfo is not None:
        moment = moment.astimezone(_ZONE)
    return moment.strftime("%Y-%m-%d %H:%M" if with_time else "%Y-%m-%d")


class Labels:
    """Displays of the guide's codes (the guide's folder as the server's settings name it)."""

    def __init__(self, profiles_dir: str | None):
        self._terminology = guide_terminology(ig_directory(profiles_dir))

    def code(self, system: str, code: object) -> str:
        if not isinstance(code, str):
            return ""
        return self._terminology.display(system, code) or code

    def coding(self, coding: object) -> str:
        if not isinstance(coding, dict):
            return ""
        return coding.get("display") or self.code(coding.get("system", ""), coding.get("code"))

    def channel(self, code: object) -> str:
        return self.code(CS + "evi-contact-channel", code)

    def outcome(self, code: object) -> str:
        return self.code(CS + "evi-triage-outcome", code)
