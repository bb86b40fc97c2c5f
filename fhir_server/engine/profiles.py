"""Profile validation in the write pipeline and for ``$validate``.

With ``EVI_ENFORCE_PROFILES`` on (the default), a write of a resource that claims
``meta.profile`` is validated against those profiles before commit; errors make it
422 with the validator's OperationOutcome. Plain R4 resources that claim nothing
are unaffected (they are validated against the base specification as always).

Every write is also held to what ``$validate`` checks beyond the models
(``check_invariants``, 400): the base specification's invariants where the
structure walk found objects they apply to (``conformance/validation/base_invariants.py``),
and, for a resource that uses an extension with a known definition (the guide's,
the core package's) and is not validated against claimed profiles anyway, the
validator's walk of the base definitions, which checks those extensions.
"""

from __future__ import annotations

import threading

from fhir_server.conformance import guide_terminology, ig_directory, ig_resources
from fhir_server.conformance.validation.base_invariants import evaluate as evaluate_invariants
from fhir_server.conformance.validator import ValidationIssue, Validator, value_set_lookup
from fhir_server.engine.hooks import HookPoint, WriteEvent
from fhir_server.engine.work import Runtime
from fhir_server.errors import InvalidResource, Issue, Unprocessable
from fhir_server.model import InvariantSites

__all__ = ["validator_for", "install_profile_enforcement", "issues_of", "validate_operation", "check_invariants"]

_lock = threading.Lock()
_validators: dict[str, Validator] = {}
#: Runtime.profiles_dir -> its folder's validator (the same folder, read once per process)
_by_setting: dict[str | None, Validator] = {}


def validator_for(runtime: Runtime) -> Validator:
    """The validator of the runtime's guide folder, built on first use (it compiles
    profiles lazily too). Keyed by the folder, not the runtime: every runtime, thread
    and test that reads one guide shares its validator, and a runtime that goes away
    leaves nothing behind that a later one could take for its own."""
    found = _by_setting.get(runtime.profiles_dir)
    if found is not None:
        return found  # a write asks for it: no file system look-up on that path
    directory = ig_directory(runtime.profiles_dir)
    key = str(directory.resolve()) if directory is not None else ""
    found = _validators.get(key)
    if found is None:
        with _lock:
            found = _validators.get(key)
            if found is None:
                profiles = [r for r in ig_resources(directory) if r.get("resourceType") == "StructureDefinition"]
                found = Validator(profiles, value_set_lookup(guide_terminology(directory)))
                _validators[key] = found
    _by_setting[runtime.profiles_dir] = found
    return found


def issues_of(found: list[ValidationIssue]) -> list[Issue]:
    return [
        Issue(i.message, i.code, (i.expression,) if i.expression else (), severity=i.severity)
        for i in found
    ]


def _references(value: object) -> list[str]:
    items = value if isinstance(value, list) else [value]
    return [i.get("reference") for i in items if isinstance(i, dict) and isinstance(i.get("reference"), str)]


def _missing_required(resource: dict, rules) -> str | None:
    """The profile a region rule requires and the resource does not claim, if any."""
    claimed = set((resource.get("meta") or {}).get("profile") or ())
    for rule in rules:
        if rule.type != resource["resourceType"] or rule.profile in claimed:
            continue
        if rule.performer is None or rule.performer in _references(resource.get("performer")):
            return rule.profile
    return None


def install_profile_enforcement(runtime: Runtime, required: tuple = ()) -> None:
    """``required``: region rules (``Settings.required_profiles``) naming profiles a write must claim."""

    def before_commit(event: WriteEvent) -> None:
        resource = event.resource
        if resource is None:
            return
        missing = _missing_required(resource, required) if required else None
        if missing is not None:
            raise Unprocessable(
                f"This region requires every such {resource['resourceType']} to claim the profile {missing}",
                expression=f"{resource['resourceType']}.meta.profile",
            )
        if not (resource.get("meta") or {}).get("profile"):
            return
        found = validator_for(runtime).validate(resource)
        errors = [i for i in found if i.severity in ("error", "fatal")]
        if errors:
            raise Unprocessable(
                f"{resource['resourceType']} does not conform to its claimed profiles: {errors[0].message}",
                issues=issues_of(errors),
            )

    runtime.hooks.register(HookPoint.BEFORE_COMMIT, before_commit)
    runtime.profiles_enforced = True


def check_invariants(runtime: Runtime, resource: dict, sites: InvariantSites) -> None:
    """Refuse (400) a validated resource that ``$validate`` would not accept for the base
    invariants at ``sites`` or the definitions of the extensions it uses."""
    if not sites.found:
        return
    validator = validator_for(runtime)
    errors, extensions = evaluate_invariants(validator, sites)
    if not errors and extensions and not (runtime.profiles_enforced and _claims(resource)):
        # the claims are profile enforcement's (422) or, with it off, not checked
        errors = [i for i in validator.validate(resource, claims=False) if i.severity in ("error", "fatal")]
    if errors:
        rtype = resource["resourceType"]
        raise InvalidResource(f"Invalid {rtype}: {errors[0].message}", issues=issues_of(errors))


def _claims(resource: dict) -> bool:
    meta = resource.get("meta")
    return isinstance(meta, dict) and bool(meta.get("profile"))


def validate_operation(runtime: Runtime, resource: dict, resource_type: str, profile: str | None) -> list[Issue]:
    """``$validate``: base R4 checks, then the claimed profiles and ``profile`` (R4 resource-operation-validate)."""
    from fhir_server.model import validate_resource

    server_rule: list[Issue] = []
    try:
        validate_resource(resource, resource_type)
    except InvalidResource as exc:
        return list(exc.issues)
    except Unprocessable as exc:  # valid R4, but a Swedish identifier breaks its format: say what the profiles say too
        server_rule = list(exc.issues)
    validator = validator_for(runtime)
    if profile is not None and not validator.known_profile(profile):
        return [Issue(f"Unknown profile {profile}", "not-found", ())]
    return server_rule + issues_of(validator.validate(resource, [profile] if profile else None))
