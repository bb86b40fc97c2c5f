"""The product's canonical URLs and codes that the workflow rules use (domain.md §2)."""

from __future__ import annotations

BASE = "https://evi-fhir.org/fhir"
CS = f"{BASE}/CodeSystem/"
SD = f"{BASE}/StructureDefinition/"

TASK_TYPE = CS + "evi-task-type"
TASK_PARAMETER = CS + "evi-task-parameter"
TASK_STAGE = CS + "evi-task-stage"
ELIGIBILITY_FLAG = CS + "evi-eligibility-flag"
TRIAGE_OUTCOME = CS + "evi-triage-outcome"
ORGANIZATION_TYPE = CS + "evi-organization-type"
CARE_LEVEL = CS + "evi-care-level"
VISIT_MODE = CS + "evi-visit-mode"
PLACEMENT_TYPE = CS + "evi-placement-type"
PLACEMENT_LEGAL_BASIS = CS + "evi-placement-legal-basis"
INTEGRATED_CARE_STEP = CS + "evi-integrated-care-step"
CAREPLAN_CATEGORY = CS + "evi-careplan-category"

REFERRAL = SD + "evi-referral"
INTAKE_TASK = SD + "evi-intake-task"
NOTIFICATION = SD + "evi-notification"
APPOINTMENT = SD + "evi-appointment"
SIP = SD + "evi-sip"
SIP_CARETEAM = SD + "evi-sip-careteam"
CONSENT = SD + "evi-consent"
INTEGRATED_CARE = SD + "evi-integrated-care"
CARE_TRANSFER = SD + "evi-care-transfer"

EXT_PLACEMENT = SD + "evi-placement"
EXT_CARE_LEVEL = SD + "evi-care-level"
EXT_VISIT_MODE = SD + "evi-visit-mode"
EXT_SIS_HOME = SD + "evi-sis-home"
EXT_INTEGRATED_CARE_STEP = SD + "evi-integrated-care-step"
EXT_CAPACITY = SD + "evi-capacity"
EXT_OVERDUE = SD + "evi-overdue"

PERSONNUMMER = "http://electronichealth.se/identifier/personnummer"
SAMORDNINGSNUMMER = "http://electronichealth.se/identifier/samordningsnummer"

#: organisation types whose active EpisodeOfCare is an ongoing care contact (rule 2)
CARE_CONTACT_UNIT_TYPES = frozenset({"bup-clinic", "bup-mobile-team", "primary-care"})
