"""Rules of particular resource types that no profile states as data.

* StructureDefinition: a constraint's differential must apply to its base (the
  snapshot generator's rules, ``snapshot.py``) and each slicing's discriminator
  paths must lead somewhere in the sliced element (profiling.html#discriminator).
* Observation: an observation with one of the vital signs codes SHALL conform to the
  corresponding vital signs profile (observation-vitalsigns.html); the LOINC codes
  come from the core profiles' own code slices.
"""

from __future__ import annotations

from functools import lru_cache

from fhir_server.conformance.snapshot import SnapshotError, generate_snapshot
from fhir_server.conformance.structure import SD_PREFIX, core_definition, element_ids
from fhir_server.conformance.validation.definitions import compile_model
from fhir_server.conformance.validation.slicing import parse_path
from fhir_server.spec import load_table

__all__ = ["check_structure_definition", "vital_sign_profiles"]

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
#: SNOMED CT codes HL7's reference validator also maps to a vital signs profile
SNOMED_VITAL_SIGNS = {"276885007": "bodytemp"}


# ------------------------------------------------------------------------ StructureDefinition


def check_structure_definition(run, sd: dict, path: str) -> None:
    if sd.get("derivation") != "constraint" or not isinstance(sd.get("differential"), dict) \
            or not isinstance(sd.get("baseDefinition"), str):
        return
    try:
        elements = generate_snapshot(sd, run.defs.resolve)
    except SnapshotError as exc:
        for message in exc.messages:
            run.error("invalid", path, f"Error generating the snapshot: {message}")
        return
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        run.error("invalid", path, f"Error generating the snapshot: {exc}")
        return
    model = compile_model({**sd, "snapshot": {"element": elements}})
    if model is None:
        return
    diff = [e for e in _list(sd["differential"].get("element")) if isinstance(e, dict)]
    diff_index = {eid: i for i, (eid, el) in enumerate(zip(element_ids(diff), diff)) if "slicing" in el}
    stack = [model.root]
    while stack:
        d = stack.pop()
        stack.extend(d.children or ())
        stack.extend(d.slices)
        if d.slicing is None:
            continue
        for n, (kind, dpath) in enumerate(d.slicing.discriminators):
            steps = parse_path(dpath)
            target = run.v.slicing.element_at(d, steps)[0] if steps is not None else None
            if target is None:
                i = diff_index.get(d.id)
                where = f"{path}.differential.element[{i}].slicing.discriminator[{n}]" if i is not None else path
                run.error("invalid", where, f"The discriminator path '{dpath}' does not appear to be valid for "
                                            f"the element that is being sliced '{d.path}'")


def _list(value) -> list:
    return value if isinstance(value, list) else []


# ------------------------------------------------------------------------ vital signs


@lru_cache(maxsize=1)
def _vital_sign_codes() -> dict[tuple[str, str], str]:
    out: dict[tuple[str, str], str] = {}
    vitalsigns = SD_PREFIX + "vitalsigns"
    for name, entry in load_table("elements_profiles").items():
        if name.startswith("_") or not isinstance(entry, dict) or entry.get("bd") not in ("vitalsigns", vitalsigns):
            continue
        sd = core_definition(name)
        for el in (sd or {}).get("snapshot", {}).get("element", ()):
            if el["id"].startswith("Observation.code.coding:") and el["id"].endswith(".code") \
                    and "fixedCode" in el:
                out[(LOINC, el["fixedCode"])] = sd["url"]
    for code, name in SNOMED_VITAL_SIGNS.items():
        out[(SNOMED, code)] = SD_PREFIX + name
    return out


def vital_sign_profiles(observation: dict) -> list[tuple[str, str]]:
    """(profile url, 'the LOINC code 8310-5') for the vital signs codes of an Observation."""
    code = observation.get("code")
    codings = code.get("coding") if isinstance(code, dict) else None
    table = _vital_sign_codes()
    out = []
    for c in codings if isinstance(codings, list) else ():
        if isinstance(c, dict):
            url = table.get((c.get("system"), c.get("code")))
            if url and url not in (u for u, _ in out):
                what = "LOINC" if c.get("system") == LOINC else "SNOMED CT"
                out.append((url, f"the {what} code {c.get('code')}"))
    return out
