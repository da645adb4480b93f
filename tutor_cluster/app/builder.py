"""Builds the Serve application graph from settings: Gateway → EdgeTier, Knowledge, LearnerMemory (actors) →
Router → core engines."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tutor_cluster.api.gateway import Gateway
from tutor_cluster.app.checks import check_learner_store, check_secret_files, check_settings
from tutor_cluster.config.catalogue import EngineConfig
from tutor_cluster.config.settings import Settings, load_settings
from tutor_cluster.core.engine import build_engine_app, engine_deployment_name
from tutor_cluster.edge.deployment import EdgeTier
from tutor_cluster.knowledge.retriever import Knowledge
from tutor_cluster.learner.memory import LearnerMemory
from tutor_cluster.routing.router import Router
from tutor_cluster.runtime import DeploymentRef

log = logging.getLogger(__name__)

#: Builds one engine's bound Serve deployment from its catalogue entry: ``(name, engine) -> bound app``. The real
#: one is vLLM's (:func:`build_engine_app`); tests standing in for a GPU pool inject their own.
EngineBuilder = Callable[[str, EngineConfig], Any]


@dataclass(frozen=True)
class RegionApp:
    """One region's Serve application and where it is served."""

    region: str
    name: str
    route_prefix: str
    app: Any


def build_region_apps(settings: Settings) -> list[RegionApp]:
    """Every region's application, those whose model tiers other regions use first (``serve.run`` them in this
    order). One region without ``regions`` configured: one application, ``tutor`` at ``/``."""
    names = sorted(settings.region_names(), key=lambda n: settings.region(n).models_from is not None)
    return [RegionApp(name, settings.app_name(name), settings.route_prefix(name),
                      build_app(settings.for_region(name))) for name in names]


def build_app(settings: Settings, engine_builder: EngineBuilder = build_engine_app) -> Any:
    """The bound application of the region ``settings`` serve (``Settings.for_region``; the settings themselves
    when no regions are configured); deploy it with ``serve.run`` (or via a Serve config file). The pseudonym
    secrets and the vault's key-encryption key must exist first (made here in the default local place; a
    configured path must already hold them)."""
    if settings.regions and settings.privacy.region not in settings.regions:
        raise ValueError(f"build_app needs one region's settings: Settings.for_region(one of {list(settings.regions)})")
    settings = settings.for_region(settings.privacy.region)
    check_secret_files(settings, create=True)
    d = settings.deployments
    logs = {"logging_config": {"encoding": settings.server.log_encoding}}  # request ids in every tier's lines
    models_from = settings.region().models_from
    knowledge: Any = None
    if models_from is not None:  # another region's model tiers, by name: that application deploys them
        app = settings.app_name(models_from)
        engines: dict[str, Any] = {name: DeploymentRef(app, engine_deployment_name(name))
                                   for name in settings.catalogue.engines}
        knowledge = DeploymentRef(app, "knowledge") if settings.knowledge.enabled else None
    else:
        engines = {name: engine_builder(name, engine) for name, engine in settings.catalogue.engines.items()}
        knowledge = (Knowledge.options(**d.knowledge.serve_options(), **logs).bind(settings.knowledge)
                     if settings.knowledge.enabled else None)
    router = Router.options(**d.router.serve_options(), **logs).bind(settings.routing, settings.catalogue, engines)
    edge = EdgeTier.options(**d.edge.serve_options(), **logs).bind(settings.edge, settings.exercises)
    # Learner memory: named actors (not a Serve deployment: one writer per learner, state kept across deploys),
    # built here with this deploy's settings; actors built with other settings are retired.
    memory = LearnerMemory(settings.learner, namespace=settings.ray.namespace, retire_stale=True,
                           retention=settings.privacy.retention)
    return Gateway.options(**d.gateway.serve_options(), **logs).bind(settings, edge, router, memory, knowledge)


def app_builder(args: dict[str, str], engine_builder: EngineBuilder = build_engine_app) -> Any:
    """Entry point for Serve config files: ``import_path: tutor_cluster.app.builder:app_builder``,
    ``args: {config: path/to/settings.yaml, region: eu}`` (``region``: which of the settings' regions this
    application is; needed when they have several)."""
    unknown = set(args) - {"config", "region"}
    if unknown:
        raise ValueError(f"unknown application args {sorted(unknown)}; the args are 'config' and 'region'")
    config = args.get("config")
    settings = check_settings(load_settings(config), str(config or "settings"))
    names = settings.region_names()
    region = args.get("region") or (names[0] if len(names) == 1 else None)
    if region not in names:
        raise ValueError(f"application arg 'region' must be one of {names} (got {region!r})")
    settings = settings.for_region(region)
    warning = check_learner_store(settings, str(config or "settings"))
    if warning:
        log.warning(warning)
    return build_app(settings, engine_builder)
