import pytest

from fhir_server.model import is_valid_id


@pytest.mark.parametrize("value", ["a", "A-1.b", "a" * 64, "123"])
def test_valid_ids(value):
    assert is_valid_id(value)


@pytest.mark.parametrize("value", ["", "a" * 65, "a b", "a/b", "é", "abc\n", "\nabc", 0, 1.5, False, None, ["a"], {"a": 1}])
def test_invalid_ids_of_any_kind_are_refused_without_raising(value):
    assert is_valid_id(value) is False
