"""conformance/code_system.py: a CodeSystem's hierarchy and code matching (the filters
are exercised through expansions in test_terminology.py)."""

from fhir_server.conformance.code_system import CodeSystemView
from tests.conformance.test_terminology import ANIMAL_CS


def test_code_system_view_hierarchy_and_case_insensitivity():
    view = CodeSystemView(ANIMAL_CS)
    assert view.descendants("mammal") == {"dog", "puppy", "cat"}
    assert view.ancestors("puppy") == {"dog", "mammal", "animal"}
    assert view.find("DOG") is None
    relaxed = CodeSystemView({**ANIMAL_CS, "caseSensitive": False})
    assert relaxed.find("DOG") == "dog"


def test_concepts_carry_designations_and_status():
    view = CodeSystemView(ANIMAL_CS)
    dog = view.concept("dog")
    assert (dog.system, dog.display, dog.version, dog.language) == ("urn:test:animals", "Dog", "2", "en")
    assert dog.display_in("sv") == "Hund" and dog.display_in("en-US") == "Dog" and dog.display_in("de") == "Dog"
    assert view.concept("dodo").inactive and view.concept("animal").abstract
