"""One module per search-parameter type; each registers here by type name.

A module provides ``MODIFIERS``, ``parse_value(raw, modifier)`` and
``extract(code, nodes)``. Adding a type adds a module and one line below.
"""

from fhir_server.search.params import date, token

PARAM_TYPES = {
    "token": token,
    "date": date,
}

__all__ = ["PARAM_TYPES"]
