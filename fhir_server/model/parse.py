"""Parse and validate a resource: JSON -> dict checked against the R4 models.

Validation is fhir.resources (R4B models; the resources we serve are the same in
R4 4.0.1) plus what it leaves out: FHIR JSON rules (no null/empty) and codes of
required bindings, and exact JSON kinds of primitives (pydantic's lax mode
takes "yes" for a boolean). The validated resource is kept as the client's dict — the
model is used to check, not to re-serialise (that would cost 3x the validation).

Nesting depth is bounded before anything recursive sees a value: the models,
our walkers and fhirpathpy all recurse per level (about four Python frames per
JSON level from HTTP to storage), so 64 levels use ~300 of Python's 1,000
frames and 100 levels ~440. Realistic resources are far shallower: the deepest
R4 example (a v3 CodeSystem) is 19, our scenario Bundles 11.
"""

from __future__ import annotations

from functools import lru_cache

import orjson
from fhir.resources.R4B import get_fhir_model_class
from fhir_core.fhirabstractmodel import FHIRAbstractModel
from pydantic import ValidationError

from fhir_server.errors import BadRequest, InvalidResource, Issue, Unprocessable
from fhir_server.model.bindings import check_required_bindings
from fhir_server.model.identifiers import check_identifiers
from fhir_server.model.json_rules import check_json_rules
from fhir_server.model.meta import is_valid_id
from fhir_server.model.primitives import InvariantSites, check_primitive_kinds
from fhir_server.model.resource_types import is_resource_type

__all__ = ["parse_json", "validate_resource", "parse_resource", "check_json_depth", "MAX_JSON_DEPTH", "MAX_RESOURCE_DEPTH"]

#: default nesting limit of a request body (Settings.max_json_depth)
MAX_JSON_DEPTH = 64
#: no resource deeper than this is validated, however it was made (a patch result
#: too); also the highest Settings.max_json_depth allowed
MAX_RESOURCE_DEPTH = 100


def check_json_depth(value: object, limit: int) -> None:
    """Raise BadRequest if ``value`` nests objects/arrays deeper than ``limit``
    (the top-level object is depth 1). Iterative: safe on any depth."""
    if not isinstance(value, (dict, list)):
        return
    stack = [(value, 1)]
    pop, push = stack.pop, stack.append
    while stack:
        node, depth = pop()
        children = node.values() if isinstance(node, dict) else node
        for child in children:
            if isinstance(child, (dict, list)):
                if depth >= limit:
                    raise BadRequest(f"The JSON is nested deeper than {limit} levels (objects and arrays)")
                push((child, depth + 1))


def parse_json(body: bytes, max_depth: int | None = MAX_JSON_DEPTH) -> dict:
    """A JSON object; ``max_depth`` None when what follows is ``validate_resource``, whose
    first walk holds it to the depth limit anyway (one walk fewer on a create)."""
    if not body:
        raise BadRequest("The request body is empty; a FHIR resource was expected")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"Malformed JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadRequest("The request body must be a JSON object (a FHIR resource)")
    if max_depth is not None:
        check_json_depth(data, max_depth)
    return data


def parse_resource(body: bytes, expected_type: str | None = None, max_depth: int = MAX_JSON_DEPTH) -> dict:
    return validate_resource(parse_json(body, max_depth), expected_type)


def validate_resource(
    data: dict, expected_type: str | None = None, *, max_depth: int = MAX_RESOURCE_DEPTH,
    sites: InvariantSites | None = None,
) -> dict:
    """Return ``data`` if it is a valid R4 resource (of ``expected_type``), else raise
    InvalidResource (400); then hold its Swedish identifiers to their formats, anywhere in
    it (``identifiers.py``: 422 Unprocessable, a server rule), normalising their systems
    in ``data`` itself.

    ``sites``: also note where the caller's invariant rules apply (``primitives.py``);
    what was noted is meaningful only when this returns."""
    resource_type = data.get("resourceType")
    if not isinstance(resource_type, str) or not resource_type:
        raise InvalidResource("The resource has no resourceType", expression="resourceType")
    if not is_resource_type(resource_type):
        raise InvalidResource(f"Unknown resource type '{resource_type}'", expression="resourceType")
    if expected_type is not None and resource_type != expected_type:
        raise InvalidResource(
            f"resourceType '{resource_type}' does not match the type in the URL '{expected_type}'",
            expression="resourceType",
        )
    rid = data.get("id")
    if rid is not None and not (isinstance(rid, str) and is_valid_id(rid)):
        raise InvalidResource(f"Invalid id {rid!r}: 1-64 characters of A-Z a-z 0-9 - .", expression=f"{resource_type}.id")
    # the first walk over the whole resource also holds it to ``max_depth``: the walks after
    # it recurse, and may then never come near Python's recursion limit
    identifiers: list[tuple[dict, str]] = []
    issues = check_json_rules(data, resource_type, max_depth) or check_primitive_kinds(data, sites, identifiers)
    if not issues:
        try:
            _model(resource_type).model_validate(data)
        except ValidationError as exc:
            issues = [_issue_from_pydantic(resource_type, err) for err in exc.errors()]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            # fhir.resources raises plain errors on some malformed nesting; still the client's fault
            issues = [Issue(f"The {resource_type} could not be validated: {exc!r}", "structure", (resource_type,))]
    if not issues:
        issues = [
            Issue(b.message, "code-invalid", (b.expression,)) for b in check_required_bindings(data)
        ]
    if issues:
        raise InvalidResource(f"Invalid {resource_type}: {issues[0].diagnostics}", issues=issues)
    if identifiers and (issues := check_identifiers(identifiers)):
        raise Unprocessable(f"{resource_type}: {issues[0].diagnostics}", issues=issues)
    return data


@lru_cache(maxsize=None)
def _model(resource_type: str):
    return get_fhir_model_class(resource_type)


def _unchanged(cls, data):
    return data


#: every name fhir_core 1.1's validator uses: a version that calls anything else is kept
_NULL_CHECK_NAMES = frozenset({
    "isinstance", "dict", "model_fields", "items", "is_list_type", "is_primitive_type", "endswith", "alias", "get",
    "list", "any", "append", "PydanticCustomError", "ValidationError", "from_exception_data", "__name__",
})


def _skip_redundant_null_check() -> bool:
    """fhir_core's ``reject_null_complex_elements`` (a "before" validator of every model,
    nested ones included) refuses ``null`` items in arrays of complex types. Here the
    models only ever see a resource ``check_json_rules`` has passed, and that refuses every
    ``null`` array item outside the ``_name`` siblings of primitive arrays, which the
    validator leaves alone too: it can never refuse anything. Yet it loops over every
    field of every model it runs on, about a third of a model validation's time (a
    ServiceRequest: 67 -> 44 µs). pydantic compiled the validator into each model's schema
    when the class was made, so its code is replaced in place (same signature, no
    closure), once. Only for the fhir_core this was checked against: any other shape is
    left as it is. True when it was replaced (tests/model/test_parse_speed.py)."""
    func = getattr(FHIRAbstractModel.__dict__.get("reject_null_complex_elements"), "__func__", None)
    code = getattr(func, "__code__", None)
    if code is None:
        return False
    if code is _unchanged.__code__:
        return True
    if code.co_argcount != 2 or code.co_freevars or code.co_varnames[:2] != ("cls", "data"):
        return False
    if not _NULL_CHECK_NAMES.issuperset(code.co_names):  # it does something else now: leave it
        return False
    func.__code__ = _unchanged.__code__
    return True


NULL_CHECK_SKIPPED = _skip_redundant_null_check()


_MESSAGES = {
    "extra_forbidden": "Unknown element",
    "model_field_validation.missing": "Missing mandatory element",
    "missing": "Missing mandatory element",
}


def _issue_from_pydantic(resource_type: str, err: dict) -> Issue:
    path = resource_type
    for part in err["loc"]:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part != "root" and not part.startswith("function-"):
            path += f".{part}"
    kind = err.get("type", "")
    text = _MESSAGES.get(kind) or str(err.get("msg", "invalid value")).removeprefix("Value error, ")
    code = "required" if "missing" in kind else "structure"
    return Issue(f"{text} at {path}", code, (path,))
