"""RequestContext: who asks, for what, in which request. Carried on every call below ``api``."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

__all__ = ["RequestContext"]


@dataclass(frozen=True)
class RequestContext:
    base_url: str
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    #: caller identity and organisation (authorization, PDL audit and Provenance hang on these)
    caller: str | None = None
    organization: str | None = None
    scopes: tuple[str, ...] = ()
    purpose_of_use: str | None = None
    #: ``Prefer: handling=strict``: refuse unknown search parameters instead of ignoring them
    strict_handling: bool = False
    #: where committed units of work leave their follow-ups (``Work.after_commit``) for
    #: the caller to run off the request's thread; None: run them at once, in line
    follow_ups: list | None = field(default=None, compare=False)
