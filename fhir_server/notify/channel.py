"""A Subscription as the backport IG 1.1.0 shapes it on R4 (profile ``backport-subscription``):
topic canonical in ``criteria``, filters in its ``backport-filter-criteria`` extensions, the
``rest-hook`` channel with its endpoint, headers, payload content, heartbeat, timeout and
max count. ``read_subscription`` checks all of it (422 with what is wrong) and gives the
delivery worker the same reading of a stored Subscription.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from fhir_server.errors import Unprocessable
from fhir_server.notify.criteria import MAX_CRITERIA, Criterion, parse_criterion
from fhir_server.notify.topics import TOPICS, Topic, topic_by_canonical

__all__ = [
    "BACKPORT", "BACKPORT_PROFILE", "FILTER_CRITERIA", "PAYLOAD_CONTENT", "HEARTBEAT_PERIOD", "TIMEOUT", "MAX_COUNT",
    "CONTENTS", "Channel", "SubscriptionSpec", "read_subscription",
]

BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
BACKPORT_PROFILE = BACKPORT + "backport-subscription"
FILTER_CRITERIA = BACKPORT + "backport-filter-criteria"
PAYLOAD_CONTENT = BACKPORT + "backport-payload-content"
HEARTBEAT_PERIOD = BACKPORT + "backport-heartbeat-period"
TIMEOUT = BACKPORT + "backport-timeout"
MAX_COUNT = BACKPORT + "backport-max-count"
CHANNEL_TYPE = BACKPORT + "backport-channel-type"

CONTENTS = ("empty", "id-only", "full-resource")
#: payload content when the channel names a payload type but no content (the profile wants one)
DEFAULT_CONTENT = "id-only"
DEFAULT_TIMEOUT = 10
MAX_TIMEOUT = 60
DEFAULT_MAX_COUNT = 20
LARGEST_MAX_COUNT = 100
MAX_HEADERS = 20
_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,64}$")
_HEADER_VALUE = re.compile(r"^[\t\x20-\x7e\x80-\xff]{0,4096}$")
#: set by the server itself: a subscriber's headers may not replace them
_RESERVED = frozenset({"content-type", "content-length", "host", "transfer-encoding", "connection", "te",
                       "upgrade", "trailer", "keep-alive", "proxy-connection", "expect"})
_PAYLOAD_TYPES = frozenset({"application/fhir+json", "application/json"})


@dataclass(frozen=True)
class Channel:
    endpoint: str
    headers: tuple[tuple[str, str], ...]
    #: empty | id-only | full-resource
    content: str
    timeout: int
    heartbeat: int | None
    max_count: int


@dataclass(frozen=True)
class SubscriptionSpec:
    topic: Topic
    criteria: tuple[Criterion, ...]
    channel: Channel
    #: Subscription.end (an instant): past it, nothing more is sent
    end: str | None

    def same_delivery(self, other: "SubscriptionSpec | None") -> bool:
        """Whether ``other`` asks for the same topic, filters and channel (no new handshake needed)."""
        return other is not None and (self.topic, self.criteria, self.channel) == (other.topic, other.criteria, other.channel)


def _refuse(message: str, where: str) -> Unprocessable:
    return Unprocessable(message, expression=where)


def _extensions(element: object, url: str) -> list[dict]:
    found = (element or {}).get("extension") if isinstance(element, dict) else None
    return [e for e in found or () if isinstance(e, dict) and e.get("url") == url]


def _one_int(element: dict, url: str, key: str, low: int, high: int, where: str) -> int | None:
    found = _extensions(element, url)
    if not found:
        return None
    if len(found) > 1:
        raise _refuse(f"{url.rsplit('/', 1)[1]} may be given once", where)
    value = found[0].get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise _refuse(f"{url.rsplit('/', 1)[1]} must be a {key[5:]} from {low} to {high}", where)
    return value


def read_subscription(resource: dict) -> SubscriptionSpec:
    """The topic, filters and channel of a Subscription; Unprocessable (422) names what is wrong."""
    topic = topic_by_canonical(resource.get("criteria"))
    if topic is None:
        known = ", ".join(t.canonical for t in TOPICS)
        raise _refuse(f"Subscription.criteria must be the canonical URL of a topic of this server ({known}); "
                      f"criteria in the R4 query style are not supported", "Subscription.criteria")
    filters = _extensions(resource.get("_criteria"), FILTER_CRITERIA)
    if len(filters) > MAX_CRITERIA:
        raise _refuse(f"At most {MAX_CRITERIA} filter criteria per Subscription", "Subscription.criteria")
    criteria = tuple(parse_criterion(topic, f.get("valueString")) for f in filters)
    channel = read_channel(resource.get("channel") or {})
    end = resource.get("end") if isinstance(resource.get("end"), str) else None
    return SubscriptionSpec(topic, criteria, channel, end)


def read_channel(channel: dict) -> Channel:
    where = "Subscription.channel"
    if channel.get("type") != "rest-hook" or _extensions(channel.get("_type"), CHANNEL_TYPE):
        raise _refuse("Subscription.channel.type must be rest-hook (the only channel this server sends on)",
                      f"{where}.type")
    endpoint = _endpoint(channel.get("endpoint"))
    return Channel(
        endpoint=endpoint,
        headers=_headers(channel.get("header")),
        content=_content(channel),
        timeout=_one_int(channel, TIMEOUT, "valueUnsignedInt", 1, MAX_TIMEOUT, where) or DEFAULT_TIMEOUT,
        heartbeat=_one_int(channel, HEARTBEAT_PERIOD, "valueUnsignedInt", 1, 86_400, where),
        max_count=_one_int(channel, MAX_COUNT, "valuePositiveInt", 1, LARGEST_MAX_COUNT, where) or DEFAULT_MAX_COUNT,
    )


def _endpoint(value: object) -> str:
    where = "Subscription.channel.endpoint"
    if not isinstance(value, str) or len(value) > 2048:
        raise _refuse("A rest-hook channel needs an endpoint: an http or https URL", where)
    try:
        parts = urlsplit(value)
        port = parts.port  # a bad port raises here
    except ValueError:
        raise _refuse(f"The endpoint {value!r} is not a URL", where) from None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.fragment or (port is not None and port < 1):
        raise _refuse("The endpoint must be an absolute http or https URL with a host and no fragment", where)
    return value


def _headers(value: object) -> tuple[tuple[str, str], ...]:
    where = "Subscription.channel.header"
    items = value if isinstance(value, list) else []
    if len(items) > MAX_HEADERS:
        raise _refuse(f"At most {MAX_HEADERS} channel headers", where)
    headers = []
    for item in items:
        name, sep, text = item.partition(":") if isinstance(item, str) else ("", "", "")
        name, text = name.strip(), text.strip()
        if not sep or not _HEADER_NAME.match(name) or not _HEADER_VALUE.match(text):
            raise _refuse("Each channel header is 'Name: value' (an HTTP field name, a value without line breaks)",
                          where)
        if name.lower() in _RESERVED:
            raise _refuse(f"The header {name} is set by the server and cannot be given", where)
        headers.append((name, text))
    return tuple(headers)


def _content(channel: dict) -> str:
    where = "Subscription.channel.payload"
    payload = channel.get("payload")
    contents = _extensions(channel.get("_payload"), PAYLOAD_CONTENT)
    if payload is None:
        if contents:
            raise _refuse("backport-payload-content needs channel.payload (application/fhir+json)", where)
        return "empty"  # R4: no payload, just a notification
    if payload.split(";", 1)[0].strip() not in _PAYLOAD_TYPES:
        raise _refuse("channel.payload must be application/fhir+json (notifications are sent as FHIR JSON)", where)
    if not contents:
        return DEFAULT_CONTENT
    if len(contents) > 1 or contents[0].get("valueCode") not in CONTENTS:
        raise _refuse(f"backport-payload-content must be one of {', '.join(CONTENTS)}", where)
    return contents[0]["valueCode"]
