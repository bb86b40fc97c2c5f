"""The one Settings object. Only this module reads the environment (``EVI_*``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "RequiredProfile"]


class RequiredProfile(BaseModel):
    """Writes of ``type`` (optionally only those whose performer is ``performer``,
    e.g. the region's EVI unit) must claim ``profile``."""

    type: str
    profile: str
    performer: str | None = None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EVI_", extra="ignore")

    #: ``sqlite:///abs/path/evi.db`` (absolute, as in file URLs), ``sqlite://evi.db``
    #: (relative to the working directory) or ``sqlite://:memory:``
    storage: str = "sqlite://evi.db"
    host: str = "127.0.0.1"
    port: int = 8080
    #: pins the public base URL (behind a proxy); default: each answer's links follow the
    #: request's own address (Host, and the Forwarded headers with ``trust_proxy``)
    base_url: str | None = None
    #: request bodies above this many bytes are refused with 413
    max_body_size: int = Field(default=16 * 1024 * 1024, gt=0)
    #: validate writes that claim meta.profile against those profiles (422 when they do not conform)
    enforce_profiles: bool = True
    #: resource types that must claim a profile, as JSON in EVI_REQUIRED_PROFILES, e.g.
    #: [{"type": "ServiceRequest", "profile": "https://evi-fhir.org/fhir/StructureDefinition/evi-referral",
    #:   "performer": "Organization/evi-kalmar"}]
    required_profiles: list[RequiredProfile] = Field(default_factory=list)
    #: the region's configuration file (TOML; README "Region configuration")
    region_file: str | None = None
    #: the region's upstream FHIR server for the existing-contact check (overrides the region file)
    upstream_fhir_url: str | None = None
    #: the implementation guide's folder (default: profiles/ of a checkout, or the installed copy)
    profiles_dir: str | None = None
    default_page_size: int = Field(default=20, gt=0)
    max_page_size: int = Field(default=1000, gt=0)
    #: seconds a request may take, queueing for a worker included; past it: 503 too-costly
    #: and whatever it was doing is rolled back (0: no limit)
    request_timeout: float = Field(default=30.0, ge=0)
    #: resources one answer may carry (search matches and includes, history entries,
    #: summed over a batch's entries); more: 400 too-costly
    max_response_entries: int = Field(default=10_000, gt=0)
    #: worker threads for requests that only read / that write (store work never runs
    #: on the event loop; writers queue for SQLite's one write lock anyway)
    read_workers: int = Field(default=8, gt=0)
    write_workers: int = Field(default=4, gt=0)
    #: server processes for ``evi-fhir serve`` (all on the same database)
    workers: int = Field(default=1, gt=0)
    #: take the client-facing scheme, host and path prefix from ``Forwarded`` /
    #: ``X-Forwarded-Proto``, ``-Host``, ``-Prefix`` (only behind a proxy that sets them)
    trust_proxy: bool = False
    #: origins allowed to call from a browser (CORS); empty: CORS off
    cors_origins: list[str] = Field(default_factory=list)
    #: the access policy (TOML, domain.md §5); default: the shipped policies/access.toml
    access_policy: str | None = None
    #: creating or activating SearchParameters and ``$reindex`` (runtime configuration)
    allow_runtime_searchparameters: bool = True
    #: entries a batch or transaction Bundle may hold; more is 413 (too-costly) before any entry runs
    max_bundle_entries: int = Field(default=10_000, gt=0)
    #: request bodies nested deeper than this (objects and arrays) are refused with 400;
    #: at most 100, model.MAX_RESOURCE_DEPTH (the walkers' safety margin, docs/hardening.md)
    max_json_depth: int = Field(default=64, ge=8, le=100)
    #: comma-separated (OR) values of one search parameter, and of _sort, _type, _elements
    max_or_values: int = Field(default=100, gt=0)
    #: parameters in one search request
    max_search_parameters: int = Field(default=30, gt=0)
    #: the largest _offset / _getpagesoffset
    max_search_offset: int = Field(default=1_000_000, ge=0, le=2**62)

    #: notifications (domain.md §7, docs/notify.md): a Subscription whose deliveries have
    #: failed for this many hours turns ``error``
    notify_retry_hours: float = Field(default=24.0, gt=0)
    #: seconds to the first retry of a failed delivery (within 10 s), doubled for each later
    #: one up to ``notify_retry_max_seconds`` between tries
    notify_retry_first_seconds: float = Field(default=5.0, gt=0, le=10)
    notify_retry_max_seconds: float = Field(default=600.0, gt=0)
    #: this process runs the delivery worker (``serve``); several processes on one database
    #: share the work (a lease per subscriber), so turning it off is only for dedicated roles
    notify_deliver: bool = True
    #: subscribers (endpoints, relays) one process sends to at once
    notify_senders: int = Field(default=4, gt=0, le=64)

    #: ``off`` (only on a loopback address: ``serve`` refuses another without
    #: ``--insecure-no-auth``) or ``smart``: bearer tokens on every FHIR request (domain.md §5)
    auth: Literal["off", "smart"] = "off"
    #: the registered clients of SMART Backend Services (TOML, ``[[client]]`` tables)
    clients_file: str | None = None
    #: the region's OpenID Connect provider whose tokens people (EVI staff) bring: its
    #: issuer (``iss``), its JWK Set's URL and the audience (``aud``) tokens must name
    oidc_issuer: str | None = None
    oidc_jwks_url: str | None = None
    oidc_audience: str | None = None
    #: the secret the server signs its access tokens with (HS256, at least 32 bytes);
    #: unset with auth on: a random one per start (tokens do not survive a restart).
    #: Checked where authentication is set up, so that a refusal never echoes it
    token_secret: str | None = Field(default=None, repr=False)
    #: seconds an access token from ``[base]/auth/token`` lives (SMART: at most 300)
    token_lifetime: int = Field(default=300, ge=10, le=300)
    #: the region's secret for pseudonyms in reports and exports (HMAC-SHA-256, at least
    #: 32 bytes; domain.md §8): without it the server starts, but reporting and
    #: pseudonymised export (``reporting`` role, ``_pseudonymize=true``) are refused
    pseudonym_key: str | None = Field(default=None, repr=False)

    #: the dashboard (``/ui``, domain.md §9) as a client of the region's OpenID Connect
    #: provider (authorization code flow with PKCE): its client id there, its secret
    #: when the provider registered it as a confidential client, and the scopes it asks for
    ui_client_id: str | None = None
    ui_client_secret: str | None = Field(default=None, repr=False)
    ui_scopes: str = "openid"
    #: hours a dashboard sign-in lasts at most (it ends earlier with the person's token)
    ui_session_hours: float = Field(default=8.0, gt=0, le=24)

    #: where Bulk Data export files are written (docs/export.md); default: beside the
    #: database (``evi.db-export/``), or ``evi-export/`` in the working directory for
    #: MongoDB (several machines need a directory they share) and a temporary one for ``:memory:``
    export_dir: str | None = None
    #: resources per step of an export job (read, written, progress saved)
    export_batch_size: int = Field(default=1000, gt=0, le=100_000)
    #: the most resources per second one export job reads (0: no limit), so that a large
    #: export does not crowd out clinical work (Bulk Data IG: "distribute processing over time")
    export_rate: float = Field(default=0, ge=0)
    #: seconds a process holds an export job between progress saves; a process that died
    #: gives its jobs up to another (or to itself, restarted) after this long
    export_lease_seconds: float = Field(default=30, gt=0, le=3600)
    #: hours a finished export's files are kept (then removed with the job)
    export_retention_hours: float = Field(default=24, gt=0)

    #: the implementation guide package's publisher, contact and copyright (``evi-fhir ig
    #: package``): the organisation that publishes the guide and answers for it. evi-fhir is
    #: software, not an organisation: unset, the package says that no publisher was configured
    ig_publisher: str | None = None
    ig_contact_name: str | None = None
    #: a web address or ``mailto:`` address of the contact
    ig_contact_url: str | None = None
    ig_copyright: str | None = None
    #: the PDL access log (domain.md §6): ``off`` (EVI_AUDIT=off) only for benchmarks and
    #: development, never in production: nothing that clients read or write is logged then
    audit: bool = True
    #: years the access log must keep an event; ``evi-fhir audit purge`` refuses younger
    #: ones (PDL and HSLF-FS 2016:40 require at least 5)
    audit_retention_years: int = Field(default=5, ge=0, le=100)

    @property
    def public_base(self) -> str:
        if self.base_url:
            return self.base_url.rstrip("/")
        return f"http://{self.host}:{self.port}/fhir"
