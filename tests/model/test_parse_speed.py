"""fhir_core's null check, replaced because ``check_json_rules`` makes it redundant
(``model.parse._skip_redundant_null_check``): nothing it refused gets through."""

import pytest

from fhir_server.errors import InvalidResource
from fhir_server.model import parse
from fhir_server.model.parse import parse_resource


def test_the_redundant_validator_is_replaced_with_the_pinned_fhir_core():
    assert parse.NULL_CHECK_SKIPPED
    assert parse._skip_redundant_null_check()  # once is enough: asking again changes nothing


@pytest.mark.parametrize("body", [
    b'{"resourceType":"Patient","name":[null]}',
    b'{"resourceType":"Patient","name":[{"family":"A"},null]}',
    b'{"resourceType":"Patient","identifier":[{"type":{"coding":[null]}}]}',
    b'{"resourceType":"Patient","contained":[{"resourceType":"Organization","contact":[null]}]}',
    b'{"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"Patient","telecom":[null]}}]}',
    b'{"resourceType":"Patient","name":[{"given":["a",null]}]}',
])
def test_null_array_items_are_still_refused(body):
    with pytest.raises(InvalidResource, match="null is not allowed"):
        parse_resource(body)


def test_null_placeholders_of_primitive_extensions_stay_allowed():
    body = (b'{"resourceType":"Patient","name":[{"given":["a","b"],'
            b'"_given":[null,{"extension":[{"url":"http://x","valueString":"y"}]}]}]}')
    assert parse_resource(body)["name"][0]["_given"][0] is None
