"""One module per search-parameter type; each registers here by type name.

A module provides ``MODIFIERS``, ``parse_value(raw, modifier, definition)`` and
``extract(definition, nodes)``. Adding a type adds a module and one line below.
"""

from fhir_server.search.params import composite, date, number, quantity, reference, string, token, uri

PARAM_TYPES = {
    "token": token,
    "string": string,
    "number": number,
    "date": date,
    "quantity": quantity,
    "uri": uri,
    "reference": reference,
    "composite": composite,
}

__all__ = ["PARAM_TYPES"]
