"""The owner of a Subscription: the tag naming its client, and the caller kept with its stream."""

from __future__ import annotations

from fhir_server.notify.ownership import OWNER_TAG, owner_caller, owner_text, tagged_client, with_owner_tag
from fhir_server.security import Caller, Scopes


def test_the_owner_round_trips_through_the_outbox():
    caller = Caller(role="municipality", scopes=Scopes.parse("system/*.rs system/Subscription.cud"),
                    client_id="kalmar-soc", organization="Organization/kalmar-soc")
    back = owner_caller(owner_text(caller))
    assert (back.role, back.client_id, back.organization, back.user) == ("municipality", "kalmar-soc",
                                                                         "Organization/kalmar-soc", None)
    assert back.scopes.allows("Communication", "r") and back.scopes.allows("Subscription", "c")
    assert not back.scopes.allows("Task", "u")
    assert owner_text(None) is None and owner_caller(None) is None


def test_the_tag_replaces_whatever_the_client_sent():
    resource = {"meta": {"tag": [{"system": OWNER_TAG, "code": "someone-else"}, {"system": "urn:x", "code": "keep"}]}}
    with_owner_tag(resource, "kalmar-soc")
    assert tagged_client(resource) == "kalmar-soc"
    assert {"system": "urn:x", "code": "keep"} in resource["meta"]["tag"]
    assert len([t for t in resource["meta"]["tag"] if t["system"] == OWNER_TAG]) == 1
    with_owner_tag(resource, None)  # auth off: no owner
    assert tagged_client(resource) is None and resource["meta"]["tag"] == [{"system": "urn:x", "code": "keep"}]
    bare: dict = {}
    with_owner_tag(bare, None)
    assert bare == {"meta": {}}
    assert tagged_client(None) is None
