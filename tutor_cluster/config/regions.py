"""Settings of regions: where each region's learners are served and where their personal data lives.

One settings file describes every region of a deployment. Each region is one Serve application (its gateway,
edge, router, memory actors, and by default its own model tiers) whose replicas request the region's custom Ray
resource, so they land on that region's nodes; it has its own vault, key files, audit log and learner store.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tutor_cluster import constants
from tutor_cluster.config.deployment import DeploymentOptions
from tutor_cluster.config.learner import StoreConfig
from tutor_cluster.config.privacy import RetentionConfig

#: ``tutor_cluster.config.settings.Settings`` (which imports this module: named, not imported).
Settings = Any

REGION_PATTERN = r"^[a-z0-9-]{1,32}$"
#: How much of its region's resource each replica or actor requests (a node offers 1000 per region it serves).
REGION_RESOURCE_PER_REPLICA = 0.001
#: How much of each region's resource a local Ray offers.
REGION_RESOURCE_PER_NODE = 1000
#: First path segments of the API's own routes: no region's prefix may take them from the region at '/'.
RESERVED_PREFIXES = frozenset({"v1", "healthz", "readyz", "docs", "openapi.json", "-"})


class RegionPrivacy(BaseModel):
    """What a region sets for itself over the top-level ``privacy`` section (unset: the top-level value; a
    file path unset while several regions exist: its own file in ``regions/<name>/`` beside the top-level one —
    but for the region ``privacy.region`` names, which keeps the top-level files)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    consent_age: int | None = Field(default=None, ge=13, le=16, description=(
        "The region's age of digital consent (COPPA 13; GDPR Art. 8: 13-16 by member state)."))
    retention: RetentionConfig | None = Field(default=None, description="The region's retention per data class.")
    vault_sqlite_path: str | None = Field(default=None, description="The region's vault (SQLite).")
    vault_redis_url: str | None = Field(default=None, pattern=r"^(rediss?|unix)://", description=(
        "The region's vault on Redis (several gateway nodes). Default: the top-level vault_redis_url, if any. "
        "Its keys are under '<vault_redis_prefix>-<name>' (but for the region privacy.region names)."))
    vault_kek_file: str | None = Field(default=None, description="The region's vault key-encryption key file.")
    pseudonym_keys_file: str | None = Field(default=None, description="The region's pseudonym secret file.")
    audit_sqlite_path: str | None = Field(default=None, description="The region's disclosure audit log (SQLite).")
    audit_redis_url: str | None = Field(default=None, pattern=r"^(rediss?|unix)://", description=(
        "The region's audit log on Redis (several gateway nodes). Default: the top-level audit_redis_url, if "
        "any. Its keys are under '<audit_redis_prefix>-<name>' (but for the region privacy.region names)."))


class RegionConfig(BaseModel):
    """One region: its placement, its stores, and what it does with a request for another region's learner."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    resource: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,64}$", description=(
        "The custom Ray resource its replicas and learner-memory actors request (a little each), so they run "
        "only on nodes that offer it (cluster.yaml node types; a local Ray offers every region's). Default: "
        "'region-<name>'."))
    route_prefix: str | None = Field(default=None, pattern=r"^/([a-z0-9-]+)?$", description=(
        "HTTP route prefix of the region's gateway on the Serve proxy. Default: '/' for a single region, "
        "'/<name>' when there are several (a region may claim '/')."))
    url: str | None = Field(default=None, description=(
        "Base URL of the region's gateway that other regions forward to (e.g. https://eu.tutor.example). "
        "Default: this Serve proxy (server.host:server.port) plus route_prefix."))
    foreign_learners: Literal["refuse", "forward"] = Field(default="refuse", description=(
        "A request that reaches this region for a learner homed elsewhere: 'refuse' answers 421 wrong_region "
        "naming the home region; 'forward' passes it, with the caller's own credentials, to the home region's "
        "gateway when the home region lists this one in processing_regions (else refuses). Never served here."))
    processing_regions: list[str] = Field(default_factory=list, description=(
        "Other regions allowed to process this region's learners' requests in transit: their gateways may "
        "forward them here, and their model tiers may serve this region's turns (models_from). Default: none."))
    models_from: str | None = Field(default=None, description=(
        "A region whose model tiers (core engines, curriculum retrieval) serve this region's turns instead of "
        "its own: they see the turn's text (after the gateway and the edge redact known personal data) and keep "
        "none. Must be in processing_regions. Default: the region runs its own."))
    privacy: RegionPrivacy = Field(default_factory=RegionPrivacy, description="The region's own privacy settings.")
    learner_store: StoreConfig | None = Field(default=None, description=(
        "The region's learner-memory store. Default: the top-level learner.store, with its own SQLite file "
        "(or Redis key prefix '<prefix>-<name>') when there are several regions."))

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not re.match(r"^https?://[^/?#\s]+(/[^?#\s]*)?$", value):
            raise ValueError(f"{value!r} is not an http(s) base URL without query or fragment")
        return value.rstrip("/")

    @field_validator("processing_regions")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not re.match(REGION_PATTERN, name):
                raise ValueError(f"{name!r} is not a region name (lowercase letters, digits, '-')")
        return value


# --------------------------------------------------------------------------- specialising settings per region
def _regional(path: Path, name: str) -> Path:
    """A region's own file beside a shared default: ``<dir>/regions/<name>/<file>``."""
    return path.parent / "regions" / name / path.name


def _with_resource(options: DeploymentOptions, resource: str) -> DeploymentOptions:
    return options.model_copy(update={"resources": {**options.resources, resource: REGION_RESOURCE_PER_REPLICA}})


def resource_of(name: str, region: RegionConfig) -> str:
    return region.resource or f"region-{name}"


def specialise(settings: Settings, name: str) -> Settings:
    """``settings`` as region ``name``'s application runs them (see :meth:`Settings.for_region`). The region
    ``privacy.region`` names (or the only one) keeps the files and stores the top level gives (turning regions
    on, or adding one, moves no data); every other region gets its own beside them."""
    region = settings.regions[name]
    mine = region.privacy
    top = settings.privacy
    several = len(settings.regions) > 1 and name != top.region
    files = {"vault_sqlite_path": top.vault_path(), "vault_kek_file": top.kek_path(),
             "pseudonym_keys_file": top.keys_path(), "audit_sqlite_path": top.audit_path()}
    own = {key: getattr(mine, key) or (str(_regional(path, name)) if several else getattr(top, key))
           for key, path in files.items()}
    retention = (top.retention.model_copy(update=mine.retention.model_dump(exclude_unset=True))
                 if mine.retention is not None else top.retention)  # what the region sets, over the top level
    privacy = top.model_copy(update={
        "region": name, "consent_age": mine.consent_age or top.consent_age, "retention": retention, **own,
        "vault_redis_url": mine.vault_redis_url or top.vault_redis_url,
        "vault_redis_prefix": f"{top.vault_redis_prefix}-{name}" if several else top.vault_redis_prefix,
        "audit_redis_url": mine.audit_redis_url or top.audit_redis_url,
        "audit_redis_prefix": f"{top.audit_redis_prefix}-{name}" if several else top.audit_redis_prefix})
    # a secret file that neither the region, the top level nor the environment names is the region's default
    # one: `up` creates it (a named one must exist)
    privacy._derived = frozenset(k for k in ("vault_kek_file", "pseudonym_keys_file")
                                 if getattr(mine, k) is None and getattr(top, k) is None
                                 and not constants.SECRET_FILES_FROM_ENV[k])
    shared = settings.learner.store
    store = region.learner_store or (shared.model_copy(update={
        "sqlite_path": str(_regional(Path(shared.sqlite_path).expanduser(), name)),
        "key_prefix": f"{shared.key_prefix}-{name}"}) if several else shared)
    resource = resource_of(name, region)
    learner = settings.learner.model_copy(update={
        "store": store, "name_prefix": f"{settings.learner.name_prefix}-{name}" if several else
        settings.learner.name_prefix,
        "resources": {**settings.learner.resources, resource: REGION_RESOURCE_PER_REPLICA}})
    d = settings.deployments
    deployments = d.model_copy(update={tier: _with_resource(getattr(d, tier), resource)
                                       for tier in ("gateway", "edge", "router", "knowledge")})
    catalogue = settings.catalogue.model_copy(update={"engines": {
        engine: cfg.model_copy(update={"deployment": _with_resource(cfg.deployment, resource)})
        for engine, cfg in settings.catalogue.engines.items()}})
    events = settings.telemetry.events.model_copy(update={"region": name})
    telemetry = settings.telemetry.model_copy(update={"events": events})
    return settings.model_copy(update={"privacy": privacy, "learner": learner, "deployments": deployments,
                                       "catalogue": catalogue, "telemetry": telemetry})


def _store_identity(store: StoreConfig) -> tuple[str, ...]:
    if store.backend == "sqlite":
        return ("sqlite", str(Path(store.sqlite_path).expanduser().resolve()))
    return ("redis", store.redis_url, store.key_prefix)


def check_regions(settings: Settings) -> None:
    """Refuse regions that would share data or name what does not exist (a ValueError naming the key)."""
    regions = settings.regions
    prefixes: dict[str, str] = {}
    for name, region in regions.items():
        if not re.match(REGION_PATTERN, name):
            raise ValueError(f"regions.{name}: a region name is lowercase letters, digits and '-' (at most 32)")
        for other in region.processing_regions:
            if other not in regions or other == name:
                raise ValueError(f"regions.{name}.processing_regions: {other!r} is not another configured region")
        if region.models_from is not None:
            source = regions.get(region.models_from)
            if source is None or region.models_from == name:
                raise ValueError(f"regions.{name}.models_from: {region.models_from!r} is not another configured "
                                 "region")
            if region.models_from not in region.processing_regions:
                raise ValueError(f"regions.{name}.models_from: add {region.models_from!r} to "
                                 f"regions.{name}.processing_regions first (its model tiers would process this "
                                 "region's turns)")
            if source.models_from is not None:
                raise ValueError(f"regions.{name}.models_from: {region.models_from!r} takes its own models from "
                                 f"{source.models_from!r}; name that region instead")
        prefix = settings.route_prefix(name)
        if prefix.strip("/") in RESERVED_PREFIXES:
            raise ValueError(f"regions.{name}.route_prefix: {prefix!r} would take the API's own routes "
                             "(/v1, /healthz, /docs …) from the region at '/'; give another route_prefix")
        if prefix in prefixes:
            raise ValueError(f"regions.{name}.route_prefix: {prefix!r} is also region {prefixes[prefix]!r}'s")
        prefixes[prefix] = name
    if len(regions) < 2:
        return
    seen: dict[tuple[str, object], str] = {}
    for name in regions:
        mine = specialise(settings, name)
        p = mine.privacy
        vault = (("redis", p.vault_redis_url, p.vault_redis_prefix) if p.vault_redis_url
                 else ("sqlite", p.vault_path().resolve()))
        owned = {"privacy.vault": vault, "privacy.vault_kek_file": p.kek_path().resolve(),
                 "privacy.pseudonym_keys_file": p.keys_path().resolve(),
                 "privacy.audit": (("redis", p.audit_redis_url, p.audit_redis_prefix) if p.audit_redis_url
                                   else ("sqlite", p.audit_path().resolve())),
                 "learner_store": _store_identity(mine.learner.store)}
        for key, value in owned.items():
            other = seen.setdefault((key, value), name)
            if other != name:
                raise ValueError(f"regions.{name}.{key}: the same as region {other!r}'s; each region keeps its "
                                 "own (omit it for a file of its own)")
    runs_own = [n for n, r in regions.items() if r.models_from is None]
    if settings.knowledge.enabled and settings.knowledge.store.path is not None and len(runs_own) > 1:
        raise ValueError(f"regions: {', '.join(runs_own)} each run curriculum retrieval on the embedded Qdrant "
                         "folder knowledge.store.path, which one process may open: set models_from on all but one, "
                         "or give knowledge.store.url (a Qdrant server)")
