"""composite parameters (R4 search.html#composite): ``value1$value2``, each part
searched as its component parameter, all taken from the same element (so
``code-value-quantity=loinc|8480-6$gt140`` needs one Observation.component with
both). The registry builds the extractor; the plan parser parses the parts."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from fhir_server.errors import InvalidSearch
from fhir_server.search.escaping import split_unescaped
from fhir_server.search.index import CompositeEntry

__all__ = ["CompositeValue", "MODIFIERS", "MAX_COMPONENTS", "parse_value", "extract", "split_parts", "component_extractor"]

MODIFIERS = frozenset({"missing"})
MAX_COMPONENTS = 3


@dataclass(frozen=True, slots=True)
class CompositeValue:
    #: one parsed value per component, parsed by the component's own type module
    parts: tuple


def split_parts(raw: str) -> list[str]:
    return split_unescaped(raw, "$")


def parse_value(raw: str, modifier: str | None, definition=None):
    raise InvalidSearch("composite values are parsed with their component definitions")  # see plan.py


def extract(definition, nodes: list) -> list:
    """Composite entries come from ``component_extractor``; plain extraction has nothing to add."""
    return [n for n in nodes if isinstance(n, CompositeEntry)]


def component_extractor(definition, components: list, modules: dict):
    """An evaluate(resource) that yields CompositeEntry objects.

    ``components``: (component definition, relative expression) pairs.
    """
    from fhir_server.search.expression import compile_expression, compile_relative

    base = compile_expression(definition.expression)
    compiled = [(d, compile_relative(expr)) for d, expr in components]

    def evaluate(resource: dict) -> list:
        out = []
        for node in base(resource):
            if not isinstance(node, dict):
                continue
            per_component = []
            for d, fn in compiled:
                values = fn(node)
                entries = modules[d.type].extract(d, values) if values else []
                if not entries:
                    break
                per_component.append(entries)
            else:
                for combo in itertools.product(*per_component):
                    out.append(CompositeEntry(definition.code, tuple(combo)))
        return out

    return evaluate
