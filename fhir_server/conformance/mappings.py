"""The EVI concept -> FHIR mappings (``mappings/*.json``) as data, and their Markdown page.

In a source checkout the files are read from ``mappings/``; an installed wheel carries them
as the data package ``fhir_server.mappings`` (see pyproject.toml), as ``ig.py`` does for
``profiles/``.  Four tables:

  concepts         domain.md §2's "EVI concept | FHIR | profile id" rows
  triage-outcomes  per evi-triage-outcome code: what ``$triage`` creates and updates, its
                   required and optional Parameters, the intake Task outputs it records
  channels         per evi-contact-channel code: ServiceRequest.intent and Questionnaires
  municipalities   Sweden's municipalities by kommunkod (the measures' municipality stratum)

``python -m fhir_server.conformance.mappings`` writes ``docs/mappings.md`` from them;
``--check`` exits 1 when that page is stale.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import orjson

__all__ = [
    "NAMES",
    "CreatedResource",
    "ResourceUpdate",
    "TaskOutput",
    "TriageOutcomeMapping",
    "TriageParameter",
    "load_mappings",
    "mappings_directory",
    "render_markdown",
    "triage_outcome",
    "triage_outcomes",
]

NAMES = ("concepts", "triage-outcomes", "channels", "municipalities")
_ROOT = Path(__file__).resolve().parents[2]
DOCS_PAGE = _ROOT / "docs" / "mappings.md"
GENERATED = "Generated from mappings/*.json by `python -m fhir_server.conformance.mappings`; do not edit."


def mappings_directory(override: str | Path | None = None) -> Path | None:
    if override:
        return Path(override)
    checkout = _ROOT / "mappings"
    if checkout.is_dir():
        return checkout
    # installed: a namespace package without __init__.py, so take its directory from the
    # import spec (str() of importlib.resources.files() would be a MultiplexedPath repr)
    spec = importlib.util.find_spec("fhir_server.mappings")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


@lru_cache(maxsize=16)
def _read(path: Path) -> dict:
    return orjson.loads(path.read_bytes())


def load_mappings(name: str, directory: str | Path | None = None) -> dict:
    """The parsed table ``{name}.json`` (one of NAMES). Shared: do not mutate it."""
    if name not in NAMES:
        raise KeyError(f"unknown mapping table {name!r}; expected one of {NAMES}")
    base = mappings_directory(directory)
    if base is None:
        raise FileNotFoundError("no mappings/ directory and no fhir_server.mappings package")
    return _read((base / f"{name}.json").resolve())


# ---- triage outcomes ----------------------------------------------------------------------


@dataclass(frozen=True)
class TriageParameter:
    """An input of ``$triage`` besides the outcome: ``value{value_type}``."""

    name: str
    value_type: str  # Reference | Coding | string
    target_type: str | None  # for Reference
    value_set: str | None  # for Coding
    default: str | None
    meaning: str


@dataclass(frozen=True)
class CreatedResource:
    resource_type: str
    profile: str | None
    elements: tuple[tuple[str, str], ...]  # (element path, value or where it comes from)


@dataclass(frozen=True)
class ResourceUpdate:
    resource_type: str
    path: str
    from_value: str
    to_value: str


@dataclass(frozen=True)
class TaskOutput:
    """One ``Task.output`` of the intake Task; value is ``system|code`` (Coding) or a type (Reference)."""

    slice: str
    type: str  # code from evi-task-parameter
    value_type: str  # Coding | Reference
    value: str


@dataclass(frozen=True)
class TriageOutcomeMapping:
    code: str
    sv: str
    en: str
    creates: tuple[CreatedResource, ...]
    updates: tuple[ResourceUpdate, ...]
    required_parameters: tuple[str, ...]
    optional_parameters: tuple[str, ...]
    parameters: tuple[TriageParameter, ...]  # definitions of required, then optional ones
    task_outputs: tuple[TaskOutput, ...]

    @property
    def allowed_parameters(self) -> frozenset[str]:
        return frozenset(self.required_parameters + self.optional_parameters)


def _parameter(name: str, row: dict) -> TriageParameter:
    return TriageParameter(
        name, row["valueType"], row.get("targetType"), row.get("valueSet"), row.get("default"), row["meaning"]
    )


def _task_output(row: dict) -> TaskOutput:
    value_type = "Coding" if "valueCoding" in row else "Reference"
    return TaskOutput(row["slice"], row["type"], value_type, row[f"value{value_type}"])


def _outcome(row: dict, parameters: dict) -> TriageOutcomeMapping:
    required, optional = tuple(row["requiredParameters"]), tuple(row["optionalParameters"])
    return TriageOutcomeMapping(
        code=row["code"],
        sv=row["sv"],
        en=row["en"],
        creates=tuple(
            CreatedResource(c["resourceType"], c["profile"], tuple((e["path"], e["value"]) for e in c["elements"]))
            for c in row["creates"]
        ),
        updates=tuple(ResourceUpdate(u["resourceType"], u["path"], u["from"], u["to"]) for u in row["updates"]),
        required_parameters=required,
        optional_parameters=optional,
        parameters=tuple(_parameter(name, parameters[name]) for name in required + optional),
        task_outputs=tuple(_task_output(o) for o in row["taskOutputs"]),
    )


@lru_cache(maxsize=4)
def _outcomes(directory: Path | None) -> dict[str, TriageOutcomeMapping]:
    table = load_mappings("triage-outcomes", directory)
    return {row["code"]: _outcome(row, table["parameters"]) for row in table["outcomes"]}


def triage_outcomes(directory: str | Path | None = None) -> dict[str, TriageOutcomeMapping]:
    """Every outcome by code, in the table's order. Shared: do not mutate it."""
    return _outcomes(mappings_directory(directory))


def triage_outcome(code: str, directory: str | Path | None = None) -> TriageOutcomeMapping:
    """The mapping of one evi-triage-outcome code; KeyError for an unknown code."""
    try:
        return triage_outcomes(directory)[code]
    except KeyError:
        raise KeyError(f"no triage-outcome mapping for code {code!r}") from None


# ---- the Markdown page --------------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _row(*cells: str) -> str:
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    return [_row(*header), "|" + "---|" * len(header), *(_row(*r) for r in rows), ""]


def _id(canonical: str | None) -> str:
    return f"`{canonical.rsplit('/', 1)[1]}`" if canonical else "—"


def _created(c: CreatedResource) -> str:
    return f"{c.resource_type} ({_id(c.profile)})" if c.profile else c.resource_type


def _concepts(table: dict) -> list[str]:
    rows = []
    for concept in table["concepts"]:
        for i, res in enumerate(concept["resources"]):
            profile = ", ".join(_id(c) for c in res.get("canonicals", [])) or _id(res["profile"])
            elements = "<br>".join(f"`{e['path']}`: {e['meaning']}" for e in res["elements"])
            extensions = "<br>".join(
                f"{_id(x['url'])} on `{x['on']}`: {x['meaning']}" for x in res["extensions"]
            )
            name = (concept["concept"]["en"], concept["concept"]["sv"]) if i == 0 else ("", "")
            rows.append((*name, res["resourceType"], profile, elements, extensions))
    header = ("EVI concept", "Swedish", "FHIR", "profile", "key elements", "extensions")
    return ["## Concepts", "", "One row per resource; canonicals under `https://evi-fhir.org/fhir`.", "",
            *_table(header, rows)]


def _triage(table: dict, outcomes: dict[str, TriageOutcomeMapping]) -> list[str]:
    task = table["intakeTask"]
    lines = [
        "## Triage outcomes (`Task/{id}/$triage`)",
        "",
        f"The intake Task becomes `{task['status']}` (businessStatus `{task['businessStatus']}`) from "
        + ", ".join(f"`{s}`" for s in task["completesFrom"])
        + "; everything happens in one transaction. The returned Parameters carry "
        + "; ".join(f"`{k}`: {v}" for k, v in table["returns"].items()) + ".",
        "",
    ]
    rows = [
        (
            f"`{o.code}`", o.sv,
            ", ".join(_created(c) for c in o.creates) or "—",
            ", ".join(f"`{u.path}` {u.from_value} → {u.to_value}" for u in o.updates) or "—",
            ", ".join(f"`{p}`" for p in o.required_parameters) or "—",
            ", ".join(f"`{p}`" for p in o.optional_parameters) or "—",
            "<br>".join(f"`{t.type}`: {t.value_type} `{t.value.rsplit('|', 1)[-1]}`" for t in o.task_outputs),
        )
        for o in outcomes.values()
    ]
    header = ("code", "Swedish", "creates", "updates", "required", "optional", "intake Task outputs")
    lines += _table(header, rows)
    params = [
        (f"`{name}`", p["valueType"] + (f"({p['targetType']})" if "targetType" in p else "")
         + (f" from {_id(p['valueSet'])}" if "valueSet" in p else ""), p["meaning"], p.get("default", "—"))
        for name, p in table["parameters"].items()
    ]
    lines += ["### Parameters", "", *_table(("name", "value", "meaning", "default"), params)]
    for o in outcomes.values():
        for c in o.creates:
            lines += [f"### `{o.code}` creates {_created(c)}", ""]
            lines += _table(("element", "value"), [(f"`{p}`", v) for p, v in c.elements])
    return lines


def _channels(table: dict) -> list[str]:
    rows = [
        (f"`{c['code']}`", c["sv"], f"`{c['intent']}`", ", ".join(_id(q) for q in c["questionnaires"]) or "—")
        for c in table["channels"]
    ]
    return ["## Contact channels (`evi-contact-channel`)", "",
            *_table(("code", "Swedish", "ServiceRequest.intent", "Questionnaire"), rows)]


def _municipalities(table: dict) -> list[str]:
    by_county: dict[str, list[str]] = {}
    for m in table["municipalities"]:
        by_county.setdefault(m["code"][:2], []).append(f"`{m['code']}` {m['name']}")
    rows = [(f"`{county}`", table["counties"][county], ", ".join(names)) for county, names in sorted(by_county.items())]
    return ["## Municipalities (kommunkod, `" + table["system"] + "`)", "",
            f"{len(table['municipalities'])} municipalities; a home address's district naming one (by name or code) "
            "is coded by its kommunkod in the measures' municipality stratum.", "",
            *_table(("county", "län", "municipalities"), rows)]


def render_markdown(directory: str | Path | None = None) -> str:
    lines = ["# EVI concept → FHIR mappings", "", f"> {GENERATED}", ""]
    lines += _concepts(load_mappings("concepts", directory))
    lines += _triage(load_mappings("triage-outcomes", directory), triage_outcomes(directory))
    lines += _channels(load_mappings("channels", directory))
    lines += _municipalities(load_mappings("municipalities", directory))
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write docs/mappings.md from mappings/*.json.")
    parser.add_argument("--check", action="store_true", help="exit 1 if the page is stale")
    parser.add_argument("--output", type=Path, default=DOCS_PAGE)
    parser.add_argument("--mappings", type=Path, default=None, help="directory of the JSON tables")
    args = parser.parse_args(argv)
    text = render_markdown(args.mappings)
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.is_file() else None
        if current != text:
            print(f"{args.output} is stale: run python -m fhir_server.conformance.mappings", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
