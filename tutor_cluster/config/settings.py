"""Typed settings: one YAML file (plus the files it names) with environment overrides.

Unknown keys and wrong types are rejected; :class:`ConfigError` names the file and the key.
Environment variables ``TUTOR__SECTION__KEY=value`` override ``section.key`` (value parsed as YAML).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from tutor_cluster import constants
from tutor_cluster.config.auth import AuthConfig
from tutor_cluster.config.catalogue import Catalogue
from tutor_cluster.config.deployment import DeploymentOptions
from tutor_cluster.config.edge import EdgeConfig, ExerciseSet
from tutor_cluster.config.knowledge import KnowledgeSettings
from tutor_cluster.config.learner import MemoryConfig
from tutor_cluster.config.limits import RateLimitConfig
from tutor_cluster.config.privacy import PrivacyConfig
from tutor_cluster.config.regions import RegionConfig, check_regions, specialise
from tutor_cluster.config.routing import RoutingConfig
from tutor_cluster.config.telemetry import TelemetrySettings

#: Shipped defaults (package data): settings files and the sample curriculum.
SHIPPED = Path(str(resources.files("tutor_cluster") / "defaults"))
SHIPPED_CONFIGS = SHIPPED / "configs"
SAMPLE_CURRICULUM = SHIPPED / "curriculum"
DEFAULT_FILE = SHIPPED_CONFIGS / "default.yaml"


class ConfigError(ValueError):
    """A settings file is wrong; the message is one line naming file and key."""


class RaySettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    address: str | None = Field(default=None, description="Existing cluster ('auto', 'ray://...'); null starts local Ray.")
    num_cpus: int | None = Field(
        default=8, ge=1, description="Logical CPUs of a local Ray (more than cores is fine: replicas mostly wait)."
    )
    object_store_memory_mb: int = Field(default=512, ge=78, description="Object store size of a local Ray.")
    include_dashboard: bool = Field(
        default=False, description="Start the dashboard/Jobs API (bound to 127.0.0.1; it grants code execution)."
    )
    dashboard_port: int = Field(default=8265, ge=1, le=65535, description="Dashboard/Jobs API port (127.0.0.1).")
    metrics_export_port: int | None = Field(default=None, ge=1, le=65535, description=(
        "Port of Ray's Prometheus endpoint on this node (null: Ray picks one and lists it in "
        "/tmp/ray/prom_metrics_service_discovery.json)."))
    namespace: str = Field(default="tutor-cluster", description="Ray namespace of the app's actors.")


class ServerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field(default="127.0.0.1", description="HTTP bind address; loopback unless behind a proxy/ingress.")
    port: int = Field(default=8000, ge=1, le=65535, description="HTTP port.")
    max_body_bytes: int = Field(default=64 * 1024, ge=1024, description="Larger bodies get 413.")
    request_timeout_s: float = Field(default=120, gt=0, description="Per-request deadline at the gateway.")
    log_encoding: Literal["JSON", "TEXT"] = Field(default="JSON", description=(
        "Replica log format; JSON lines carry the request id (the X-Request-ID header) in every tier."))


class TierDeployments(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    gateway: DeploymentOptions = Field(default_factory=lambda: DeploymentOptions(num_cpus=0.2))
    edge: DeploymentOptions = Field(default_factory=lambda: DeploymentOptions(num_cpus=0.2))
    router: DeploymentOptions = Field(default_factory=lambda: DeploymentOptions(num_cpus=0.1))
    knowledge: DeploymentOptions = Field(default_factory=lambda: DeploymentOptions(num_cpus=0.2))


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    _region_app: bool = PrivateAttr(default=False)  # for_region's result: already one region's settings

    ray: RaySettings = Field(default_factory=RaySettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    limits: RateLimitConfig = Field(default_factory=RateLimitConfig,
                                    description="Request rate limits per API key and per tenant (none by default).")
    edge: EdgeConfig = Field(default_factory=EdgeConfig)
    routing: RoutingConfig = Field(default_factory=RoutingConfig)
    deployments: TierDeployments = Field(default_factory=TierDeployments)
    learner: MemoryConfig = Field(default_factory=MemoryConfig, description="Learner memory: actors, store, BKT.")
    catalogue: Catalogue = Field(description="Model catalogue (inline, or a file path relative to this file).")
    exercises: ExerciseSet = Field(default_factory=ExerciseSet, description="Exercise set (inline or a file path).")
    knowledge: KnowledgeSettings = Field(default_factory=KnowledgeSettings,
                                         description="Curriculum RAG: embedder, Qdrant store, retrieval.")
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig, description="Where the pseudonym secrets are.")
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings,
                                         description="Analytics events (metrics need no settings).")
    regions: dict[str, RegionConfig] = Field(default_factory=dict, description=(
        "The regions this deployment serves, each one Serve application with its own replicas (placed by a "
        "custom resource), vault, secrets, audit log and learner store. Empty: one region, privacy.region."))

    @model_validator(mode="after")
    def _fallbacks(self) -> "Settings":
        for model, chain in self.routing.fallbacks.items():
            for name in (model, *chain):
                if self.catalogue.get(name) is None:
                    raise ValueError(f"routing.fallbacks: {name!r} is not a catalogue model")
        return self

    @model_validator(mode="after")
    def _regions(self) -> "Settings":
        check_regions(self)
        return self

    # ------------------------------------------------------------------ regions
    def region_names(self) -> list[str]:
        """Every region served: the configured ones, else the one of ``privacy.region``."""
        return list(self.regions) or [self.privacy.region]

    def region(self, name: str | None = None) -> RegionConfig:
        """A region's settings (default: the one these settings serve)."""
        name = name or self.privacy.region
        if name in self.regions:
            return self.regions[name]
        if not self.regions and name == self.privacy.region:
            return RegionConfig()
        raise KeyError(name)

    def app_name(self, name: str | None = None) -> str:
        """The Serve application of a region."""
        return f"{constants.APP_NAME}-{name or self.privacy.region}" if len(self.regions) > 1 else constants.APP_NAME

    def route_prefix(self, name: str | None = None) -> str:
        configured = self.region(name).route_prefix
        return configured or ("/" if len(self.region_names()) == 1 else f"/{name or self.privacy.region}")

    def region_url(self, name: str | None = None) -> str:
        """Base URL of a region's gateway (its configured url, else this Serve proxy plus its prefix)."""
        return self.region(name).url or (
            f"http://{self.server.host}:{self.server.port}{self.route_prefix(name).rstrip('/')}")

    def for_region(self, name: str) -> "Settings":
        """The settings one region's application runs with: ``privacy.region`` is ``name``; its own vault, key
        files, audit log, learner store, consent age and retention; its resource on every replica and actor."""
        if name not in self.region_names():
            raise KeyError(name)
        if not self.regions or self._region_app:
            if self._region_app and name != self.privacy.region:
                raise ValueError(f"these settings are region {self.privacy.region!r}'s; specialise the full ones")
            return self
        out = specialise(self, name)
        out._region_app = True
        return out


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _one_line(exc: ValidationError, source: str, *, strip: int = 0) -> str:
    """First validation error as ``SOURCE: key.path: message``; ``strip`` drops leading key parts."""
    errors = exc.errors(include_url=False)
    err = errors[0]
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    loc = _loc(tuple(err["loc"][strip:]))
    if err["type"] == "extra_forbidden":
        msg = "unknown key; remove it or check its spelling"
    else:
        msg = err["msg"].removeprefix("Value error, ")
    return f"{source}: {loc}: {msg}{more}"


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None


def _include(value: Any, base: Path, key: str, source: str) -> tuple[Any, str]:
    """A string value names a YAML file relative to ``base`` (a bare name that is no file there: a shipped one);
    return its content and where it came from."""
    if isinstance(value, str):
        path = (base / value).resolve()
        if not path.exists() and Path(value).name == value and (SHIPPED_CONFIGS / value).is_file():
            path = SHIPPED_CONFIGS / value
        data = _read_yaml(path)
        if not isinstance(data, Mapping):
            raise ConfigError(f"{path}: expected a mapping at the top level")
        return dict(data), str(path)
    return value, source


def _apply_env(raw: dict[str, Any], env: Mapping[str, str]) -> list[str]:
    applied = []
    for name, value in env.items():
        if not name.startswith(constants.SETTINGS_ENV_PREFIX):
            continue
        path = [p.lower() for p in name[len(constants.SETTINGS_ENV_PREFIX):].split("__") if p]
        if not path:
            continue
        node = raw
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"env {name}: {'.'.join(path[:-1])} is not a section")
        try:
            node[path[-1]] = yaml.safe_load(value)
        except yaml.YAMLError:
            node[path[-1]] = value
        applied.append(name)
    return applied


def resolve_config(path: str | Path) -> Path:
    """A settings file by path; a bare name that is no file here (``production.yaml``) names a shipped one."""
    file = Path(path).expanduser()
    if not file.exists() and str(path) == file.name and (SHIPPED_CONFIGS / file.name).is_file():
        return SHIPPED_CONFIGS / file.name
    return file.resolve()


def load_settings(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Load and validate settings; raise :class:`ConfigError` with one clear line on any problem."""
    env = os.environ if env is None else env
    file = resolve_config(path or constants.DEFAULT_CONFIG or DEFAULT_FILE)
    raw = _read_yaml(file)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{file}: expected a mapping at the top level")
    sources = {}
    for key in ("catalogue", "exercises"):
        if key in raw:
            raw[key], sources[key] = _include(raw[key], file.parent, key, str(file))
    _apply_env(raw, env)  # after includes, so TUTOR__CATALOGUE__... reaches into the included files
    knowledge = raw.get("knowledge")
    if isinstance(knowledge, dict) and isinstance(knowledge.get("source"), str):  # relative to this file
        knowledge["source"] = str((file.parent / Path(knowledge["source"]).expanduser()).resolve())
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]["loc"]
        key = str(first[0]) if first else ""
        if key in sources and sources[key] != str(file):  # inside an included file: name its own keys
            raise ConfigError(_one_line(exc, sources[key], strip=1)) from None
        raise ConfigError(_one_line(exc, str(file))) from None
