"""The input of ``Task/{id}/$triage``: Parameters checked against the outcome's row of
``mappings/triage-outcomes.json`` into a ``TriageRequest`` (400 lists every problem)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from fhir_server.conformance import guide_terminology, ig_directory
from fhir_server.conformance.mappings import load_mappings, triage_outcome, triage_outcomes
from fhir_server.errors import BadRequest, Issue
from fhir_server.workflow.codes import CARE_LEVEL, TRIAGE_OUTCOME, VISIT_MODE

__all__ = ["TriageRequest", "definitions_of_parameters", "parse_parameters"]

_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_CODE_SYSTEMS = {"outcome": TRIAGE_OUTCOME, "careLevel": CARE_LEVEL, "visitMode": VISIT_MODE}


@dataclass(frozen=True)
class TriageRequest:
    """The checked input Parameters of one ``$triage`` call."""

    outcome: str
    note: str | None = None
    slot: str | None = None  # Slot id
    recipient: str | None = None  # Organization id
    care_level: str | None = None
    visit_mode: str | None = None
    #: parameter name -> its index in Parameters.parameter (for error expressions)
    positions: dict[str, int] = field(default_factory=dict, compare=False)

    def where(self, name: str) -> str:
        index = self.positions.get(name)
        return f"Parameters.parameter[{index}]" if index is not None else name


def definitions_of_parameters() -> dict[str, dict]:
    """name -> {valueType, targetType...} of every input: the table's parameters plus outcome."""
    table = load_mappings("triage-outcomes")
    return {"outcome": {"valueType": "Coding"}, **table["parameters"]}


def _codes(system: str, profiles_dir: str | None) -> frozenset[str]:
    """Every code of one of the guide's CodeSystems (nested concepts too)."""
    return guide_terminology(ig_directory(profiles_dir)).codes(system)


def _known_codes(name: str, profiles_dir: str | None) -> frozenset[str]:
    if name == "outcome":
        return frozenset(triage_outcomes())
    return _codes(_CODE_SYSTEMS[name], profiles_dir)


def _literal_id(value: dict, target: str, base_url: str | None) -> str | None:
    """The id of a literal ``{target}/{id}`` reference (relative, or absolute on this server)."""
    reference = value.get("reference")
    if not isinstance(reference, str):
        return None
    if base_url and reference.startswith(base_url.rstrip("/") + "/"):
        reference = reference[len(base_url.rstrip("/")) + 1:]
    rtype, _, rid = reference.partition("/")
    if rtype != target or not _ID.fullmatch(rid):
        return None
    if value.get("type") not in (None, target):
        return None
    return rid


def _value(
    entry: dict, name: str, where: str, definition: dict, base_url: str | None, profiles_dir: str | None
) -> tuple[str | None, Issue | None]:
    """The checked value of one parameter entry, or the issue that makes it unusable."""
    value_type = definition["valueType"]
    key = "value" + value_type[0].upper() + value_type[1:]
    present = [k for k in entry if k.startswith("value")] + [k for k in ("resource", "part") if k in entry]
    if present != [key]:
        got = ", ".join(present) or "no value"
        return None, Issue(f"Parameter '{name}' takes {key}; got {got}", "invalid", (where,))
    value = entry[key]
    if value_type == "string":
        if not isinstance(value, str) or not value.strip():
            return None, Issue(f"Parameter '{name}' needs a non-empty valueString", "invalid", (where,))
        return value, None
    if not isinstance(value, dict):
        return None, Issue(f"Parameter '{name}': {key} must be a JSON object", "invalid", (where,))
    if value_type == "Reference":
        target = definition["targetType"]
        rid = _literal_id(value, target, base_url)
        if rid is None:
            shown = value.get("reference", "no literal reference")
            return None, Issue(
                f"Parameter '{name}' must be a literal reference {target}/{{id}}; got {shown!r}", "invalid", (where,)
            )
        return rid, None
    return _coding_value(value, name, where, profiles_dir)


def _coding_value(value: dict, name: str, where: str, profiles_dir: str | None) -> tuple[str | None, Issue | None]:
    system, code = value.get("system"), value.get("code")
    expected = _CODE_SYSTEMS[name]
    if not isinstance(code, str) or not code:
        return None, Issue(f"Parameter '{name}': the Coding has no code", "invalid", (where,))
    if system != expected:
        return None, Issue(
            f"Parameter '{name}': the Coding's system must be {expected}; got {system!r}", "code-invalid", (where,)
        )
    known = _known_codes(name, profiles_dir)
    if code not in known:
        return None, Issue(
            f"Parameter '{name}': unknown code '{code}' of {expected}; known: {', '.join(sorted(known))}",
            "code-invalid",
            (where,),
        )
    return code, None


def parse_parameters(
    parameters: dict, *, base_url: str | None = None, profiles_dir: str | None = None
) -> TriageRequest:
    """Check the input Parameters against the outcome's row of the table; 400 lists every problem."""
    entries = parameters.get("parameter")
    if entries is None:
        entries = []
    if not isinstance(entries, list):
        raise BadRequest("Parameters.parameter must be a list", expression="Parameters.parameter")
    values, positions, issues = _read_entries(entries, base_url, profiles_dir)
    outcome = values.get("outcome")
    if "outcome" not in positions:
        issues.insert(0, Issue(
            "Parameter 'outcome' is required (valueCoding from " + TRIAGE_OUTCOME + ")", "required", ("outcome",)
        ))
    if outcome is not None:
        issues += _outcome_issues(outcome, positions)
    if issues:
        raise BadRequest(issues[0].diagnostics, issues=issues)
    return TriageRequest(
        outcome=outcome,
        note=values.get("note"),
        slot=values.get("slot"),
        recipient=values.get("recipient"),
        care_level=values.get("careLevel"),
        visit_mode=values.get("visitMode"),
        positions=positions,
    )


def _read_entries(
    entries: list, base_url: str | None, profiles_dir: str | None
) -> tuple[dict[str, str], dict[str, int], list[Issue]]:
    """name -> checked value, name -> position, and the issues of every unusable entry."""
    definitions = definitions_of_parameters()
    issues: list[Issue] = []
    values: dict[str, str] = {}
    positions: dict[str, int] = {}
    for i, entry in enumerate(entries):
        where = f"Parameters.parameter[{i}]"
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not name:
            issues.append(Issue("Every parameter needs a name", "invalid", (where,)))
            continue
        if name not in definitions:
            issues.append(Issue(
                f"Unknown parameter '{name}'; $triage takes {', '.join(definitions)}", "invalid", (where,)
            ))
            continue
        if name in positions:
            issues.append(Issue(
                f"Parameter '{name}' is repeated (first at Parameters.parameter[{positions[name]}]); "
                "give it at most once",
                "invalid",
                (where,),
            ))
            continue
        positions[name] = i
        value, issue = _value(entry, name, where, definitions[name], base_url, profiles_dir)
        if issue is not None:
            issues.append(issue)
        else:
            values[name] = value
    return values, positions, issues


def _outcome_issues(outcome: str, positions: dict[str, int]) -> list[Issue]:
    """Parameters the outcome does not use, and those it requires but lacks."""
    mapping = triage_outcome(outcome)
    issues = []
    for name, index in positions.items():
        if name != "outcome" and name not in mapping.allowed_parameters:
            uses = ", ".join(mapping.required_parameters + mapping.optional_parameters) or "nothing"
            issues.append(Issue(
                f"The outcome '{outcome}' does not use parameter '{name}' (it takes {uses})",
                "invalid",
                (f"Parameters.parameter[{index}]",),
            ))
    for name in mapping.required_parameters:
        if name not in positions:
            issues.append(Issue(f"The outcome '{outcome}' requires parameter '{name}'", "required", (name,)))
    return issues
