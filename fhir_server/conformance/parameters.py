"""Operation inputs (R4 operations.html#request): query parameters and a ``Parameters``
body become plain, typed requests for the terminology operations. Pure: no I/O.

Names and cardinalities follow the R4 OperationDefinitions ValueSet-expand,
CodeSystem-lookup, ValueSet-validate-code and CodeSystem-validate-code. A bad
value, a repeated 0..1 parameter or a missing required one is a ``BadRequest``
naming the parameter.
"""

from __future__ import annotations

from dataclasses import dataclass

from fhir_server.errors import BadRequest

__all__ = [
    "Inputs",
    "ExpandRequest",
    "LookupRequest",
    "ValidateCodeRequest",
    "operation_inputs",
    "parse_expand",
    "parse_lookup",
    "parse_validate_code",
    "TranslateRequest",
    "parse_translate",
]

#: parameter name -> values (strings from a query, value[x] or resource from a Parameters body)
Inputs = dict[str, list]


def operation_inputs(query: list[tuple[str, str]], body: dict | None) -> Inputs:
    """Both sources merged; ``_format``, ``_pretty`` and other ``_`` parameters are the HTTP layer's."""
    out: Inputs = {}
    for name, value in query:
        if not name.startswith("_"):
            out.setdefault(name, []).append(value)
    if body is None:
        return out
    if body.get("resourceType") != "Parameters":
        raise BadRequest("The body of an operation request must be a Parameters resource", expression="resourceType")
    for i, p in enumerate(body.get("parameter") or ()):
        where = f"Parameters.parameter[{i}]"
        if not isinstance(p, dict) or not isinstance(p.get("name"), str):
            raise BadRequest(f"{where} needs a name", expression=where)
        values = [v for k, v in p.items() if k.startswith("value")]
        if "resource" in p:
            values.append(p["resource"])
        if len(values) != 1:
            raise BadRequest(f"{where} ({p['name']}) needs exactly one value[x] or resource", expression=where)
        out.setdefault(p["name"], []).append(values[0])
    return out


def _one(inputs: Inputs, name: str):
    values = inputs.get(name) or []
    if len(values) > 1:
        raise BadRequest(f"The parameter {name} may occur only once")
    return values[0] if values else None


def _string(inputs: Inputs, name: str) -> str | None:
    value = _one(inputs, name)
    if value is not None and (not isinstance(value, str) or not value):
        raise BadRequest(f"The parameter {name} must be a non-empty string")
    return value


def _strings(inputs: Inputs, name: str) -> tuple[str, ...]:
    values = inputs.get(name) or []
    if not all(isinstance(v, str) and v for v in values):
        raise BadRequest(f"The parameter {name} must be non-empty strings")
    return tuple(values)


def _integer(inputs: Inputs, name: str) -> int | None:
    value = _one(inputs, name)
    if value is None:
        return None
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 18:
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise BadRequest(f"The parameter {name} must be a non-negative integer, not {value!r}")
    return value


def _boolean(inputs: Inputs, name: str) -> bool | None:
    value = _one(inputs, name)
    if isinstance(value, str) and value in ("true", "false"):
        return value == "true"
    if value is not None and not isinstance(value, bool):
        raise BadRequest(f"The parameter {name} must be true or false, not {value!r}")
    return value


def _resource(inputs: Inputs, name: str, resource_type: str) -> dict | None:
    value = _one(inputs, name)
    if value is not None and not (isinstance(value, dict) and value.get("resourceType") == resource_type):
        raise BadRequest(f"The parameter {name} must be a {resource_type} resource (in a Parameters body)")
    return value


def _coding(value, name: str) -> tuple[str | None, str, str | None, str | None]:
    """(system, code, version, display) of a Coding."""
    if not isinstance(value, dict) or not isinstance(value.get("code"), str):
        raise BadRequest(f"The parameter {name} must be a Coding with a code")
    return value.get("system"), value["code"], value.get("version"), value.get("display")


@dataclass(frozen=True)
class ExpandRequest:
    url: str | None = None
    value_set: dict | None = None
    value_set_version: str | None = None
    filter: str | None = None
    offset: int = 0
    count: int | None = None
    include_designations: bool = False
    #: ``designation`` tokens: a language, or a use as code or system|code
    designations: tuple[str, ...] = ()
    include_definition: bool = False
    active_only: bool = False
    display_language: str | None = None
    exclude_systems: tuple[str, ...] = ()


def parse_expand(inputs: Inputs) -> ExpandRequest:
    if _string(inputs, "context") is not None:
        raise BadRequest("The parameter context is not supported here; name the ValueSet by url")
    return ExpandRequest(
        url=_string(inputs, "url"),
        value_set=_resource(inputs, "valueSet", "ValueSet"),
        value_set_version=_string(inputs, "valueSetVersion"),
        filter=_string(inputs, "filter"),
        offset=_integer(inputs, "offset") or 0,
        count=_integer(inputs, "count"),
        include_designations=bool(_boolean(inputs, "includeDesignations")) or bool(inputs.get("designation")),
        designations=_strings(inputs, "designation"),
        include_definition=bool(_boolean(inputs, "includeDefinition")),
        active_only=bool(_boolean(inputs, "activeOnly")),
        display_language=_string(inputs, "displayLanguage"),
        exclude_systems=_strings(inputs, "exclude-system"),
    )


@dataclass(frozen=True)
class LookupRequest:
    system: str
    code: str
    version: str | None = None
    #: ``property`` codes wanted (empty: all the server has)
    properties: tuple[str, ...] = ()
    display_language: str | None = None


def parse_lookup(inputs: Inputs) -> LookupRequest:
    system, code, version = _string(inputs, "system"), _string(inputs, "code"), _string(inputs, "version")
    coding = _one(inputs, "coding")
    if coding is not None:
        if code is not None:
            raise BadRequest("Give either code (with system) or coding, not both")
        system, code, coding_version, _ = _coding(coding, "coding")
        version = version or coding_version
    if code is None or system is None:
        raise BadRequest("$lookup needs a system and a code (or a coding with both)")
    return LookupRequest(system, code, version, _strings(inputs, "property"), _string(inputs, "displayLanguage"))


@dataclass(frozen=True)
class ValidateCodeRequest:
    url: str | None = None
    value_set: dict | None = None
    value_set_version: str | None = None
    #: (system, code, version, display) per coding to check; one valid coding suffices
    codings: tuple[tuple[str | None, str, str | None, str | None], ...] = ()
    display_language: str | None = None
    abstract: bool = True


def parse_validate_code(inputs: Inputs, *, code_system: bool = False) -> ValidateCodeRequest:
    """ValueSet-validate-code, or CodeSystem-validate-code (``url`` names the CodeSystem, ``version`` its version)."""
    code, display = _string(inputs, "code"), _string(inputs, "display")
    system = _string(inputs, "system")
    version = _string(inputs, "version" if code_system else "systemVersion")
    coding, concept = _one(inputs, "coding"), _one(inputs, "codeableConcept")
    given = [x is not None for x in (code, coding, concept)]
    if sum(given) != 1:
        raise BadRequest("Give exactly one of code, coding or codeableConcept")
    if display is not None and code is None:
        raise BadRequest("display needs code")
    if code is not None:
        if system is None and not code_system:
            raise BadRequest("code needs system (R4 ValueSet-validate-code)")
        codings = ((system, code, version, display),)
    elif coding is not None:
        codings = (_coding(coding, "coding"),)
    else:
        if not isinstance(concept, dict) or not isinstance(concept.get("coding"), list) or not concept["coding"]:
            raise BadRequest("The parameter codeableConcept must have at least one coding")
        codings = tuple(_coding(c, "codeableConcept.coding") for c in concept["coding"])
    abstract = _boolean(inputs, "abstract")
    target = "CodeSystem" if code_system else "ValueSet"
    return ValidateCodeRequest(
        url=_string(inputs, "url"),
        value_set=_resource(inputs, target[0].lower() + target[1:], target),
        value_set_version=_string(inputs, "valueSetVersion"),
        codings=codings,
        display_language=_string(inputs, "displayLanguage"),
        abstract=True if abstract is None else abstract,
    )


@dataclass(frozen=True)
class TranslateRequest:
    codings: tuple[tuple[str | None, str, str | None], ...]  # (system, code, version)
    url: str | None = None
    concept_map: dict | None = None
    concept_map_version: str | None = None
    source: str | None = None
    target: str | None = None
    target_system: str | None = None
    reverse: bool = False


def parse_translate(inputs: Inputs) -> TranslateRequest:
    if inputs.get("dependency"):
        raise BadRequest("The parameter dependency is not supported by this server's $translate")
    codings = []
    code = _string(inputs, "code")
    if code is not None:
        system = _string(inputs, "system")
        if system is None:
            raise BadRequest("The parameter code needs system (R4 ConceptMap-translate)")
        codings.append((system, code, _string(inputs, "version")))
    coding = _one(inputs, "coding")
    if coding is not None:
        system, found, version, _ = _coding(coding, "coding")
        codings.append((system, found, version))
    concept = _one(inputs, "codeableConcept")
    if concept is not None:
        if not isinstance(concept, dict) or not isinstance(concept.get("coding"), list) or not concept["coding"]:
            raise BadRequest("The parameter codeableConcept must be a CodeableConcept with at least one coding")
        codings += [_coding(c, "codeableConcept.coding")[:3] for c in concept["coding"]]
    if len([x for x in (code, coding, concept) if x is not None]) != 1:
        raise BadRequest("Give exactly one of code (with system), coding or codeableConcept")
    if any(not s for s, _, _ in codings):
        raise BadRequest("Each coding to translate needs a system")
    return TranslateRequest(
        codings=tuple(codings), url=_string(inputs, "url"),
        concept_map=_resource(inputs, "conceptMap", "ConceptMap"),
        concept_map_version=_string(inputs, "conceptMapVersion"),
        source=_string(inputs, "source"), target=_string(inputs, "target"),
        target_system=_string(inputs, "targetsystem"), reverse=bool(_boolean(inputs, "reverse")),
    )
