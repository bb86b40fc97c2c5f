"""Both backends compile values through one registry keyed by parameter type
(storage/sqlite/values.py, storage/mongo/values.py): every type the search layer
parses has exactly one compiler; composite components dispatch through the same
registrations; a type nobody registered is refused, not dropped."""

from __future__ import annotations

import pytest

from fhir_server.search.params import PARAM_TYPES
from fhir_server.search.params.composite import CompositeValue
from fhir_server.search.params.date import DateValue
from fhir_server.search.params.number import NumberValue
from fhir_server.search.params.quantity import QuantityValue
from fhir_server.search.params.reference import ReferenceValue
from fhir_server.search.params.string import StringValue
from fhir_server.search.params.token import TokenValue
from fhir_server.search.params.uri import UriValue
from fhir_server.storage.mongo import values as mongo
from fhir_server.storage.sqlite import values as sqlite

PARTS = {"token": TokenValue, "string": StringValue, "number": NumberValue, "date": DateValue,
         "quantity": QuantityValue, "uri": UriValue, "reference": ReferenceValue}


@pytest.mark.parametrize("backend", [sqlite, mongo], ids=["sqlite", "mongo"])
def test_every_parameter_type_has_one_compiler(backend):
    assert set(backend._KINDS) == set(PARAM_TYPES)
    for name, value_class in PARTS.items():
        assert value_class in backend.kind(name).parts, name
        assert sum(value_class in k.parts for k in backend._KINDS.values()) == 1, name
    assert backend.kind("composite").part is None and backend.kind("composite").sort is None
    assert {n for n, k in backend._KINDS.items() if k.column is not None} == {"token", "date"}
    with pytest.raises(backend.UnsupportedClause, match="parameter type special"):
        backend.kind("special")
    with pytest.raises(backend.UnsupportedClause, match="composite part"):
        backend.component_kind(object())


def test_a_composite_compiles_its_parts_with_their_types_compilers():
    value = CompositeValue((TokenValue("http://loinc.org", "8480-6", True), UriValue("urn:x")))
    sql = sqlite.Sql()
    assert sqlite.kind("composite").value(sql, value, None) == "((x.c0_a = ? AND x.c0_b = ?) AND x.c1_b = ?)"
    assert sql.args == ["http://loinc.org", "8480-6", "urn:x"]
    assert mongo.kind("composite").value(value, None) == {
        "$and": [{"c0.a": "http://loinc.org", "c0.b": "8480-6"}, {"c1.b": "urn:x"}]}
