"""SiS integrated care and care-responsibility transfer (rule 7, issue 7). TO BE WRITTEN by the care-transfer helper."""

from __future__ import annotations

from fhir_server.engine import Runtime
from fhir_server.workflow.region import Region

__all__ = ["install_care_transfer"]


def install_care_transfer(runtime: Runtime, region: Region) -> None:
    pass
