"""Who owns a Subscription, and as whom its notifications are made.

With authentication on, a Subscription belongs to the client that created it: the server
tags it (``meta.tag`` ``evi-subscription-owner|{client id}``, set on create, kept on every
later write, whatever a client sends) and the access policy lets every role see the
Subscriptions tagged with its own client id (``policies/access.toml``, ``%client``).

Deliveries are made *as the owner*: its role, organisation and scopes at the time it
created (or last updated) the Subscription are kept with the stream (``owner`` in the
outbox), and every event, payload and included resource goes through the same access
policy and redaction as that caller's own reads would. With auth off there is no owner:
deliveries are unrestricted, as every request is.
"""

from __future__ import annotations

import orjson

from fhir_server.security import Caller, Scopes

__all__ = ["OWNER_TAG", "owner_text", "owner_caller", "tagged_client", "with_owner_tag"]

#: the system of the tag naming the owning client (code: its client id)
OWNER_TAG = "https://evi-fhir.org/fhir/CodeSystem/evi-subscription-owner"


def owner_text(caller: Caller | None) -> str | None:
    """The caller as the outbox keeps it (None: unrestricted)."""
    if caller is None:
        return None
    return orjson.dumps({
        "client": caller.client_id, "user": caller.user, "role": caller.role,
        "organization": caller.organization, "scope": caller.scopes.text(),
    }).decode()


def owner_caller(text: str | None) -> Caller | None:
    """The owner back as a Caller (None: unrestricted)."""
    if text is None:
        return None
    data = orjson.loads(text)
    return Caller(role=data["role"], scopes=Scopes.parse(data.get("scope") or ""), client_id=data.get("client"),
                  user=data.get("user"), organization=data.get("organization"))


def tagged_client(resource: dict | None) -> str | None:
    for tag in ((resource or {}).get("meta") or {}).get("tag") or ():
        if isinstance(tag, dict) and tag.get("system") == OWNER_TAG and isinstance(tag.get("code"), str):
            return tag["code"]
    return None


def with_owner_tag(resource: dict, client_id: str | None) -> None:
    """Make the owner tag of ``resource`` name ``client_id`` (None: carry none), in place;
    any owner tag the client sent is replaced."""
    meta = resource.setdefault("meta", {})
    tags = [t for t in meta.get("tag") or () if not (isinstance(t, dict) and t.get("system") == OWNER_TAG)]
    if client_id is not None:
        tags.append({"system": OWNER_TAG, "code": client_id, "display": "the client that owns this Subscription"})
    if tags:
        meta["tag"] = tags
    else:
        meta.pop("tag", None)
