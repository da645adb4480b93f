"""Builds the Serve application graph from settings: Gateway → EdgeTier, Knowledge, LearnerMemory (actors) →
Router → core engines."""

from __future__ import annotations

import logging
from typing import Any

from tutor_cluster.api.gateway import Gateway
from tutor_cluster.app.checks import check_learner_store, check_secret_files, check_settings
from tutor_cluster.config.settings import Settings, load_settings
from tutor_cluster.core.engine import build_engine_app
from tutor_cluster.edge.deployment import EdgeTier
from tutor_cluster.knowledge.retriever import Knowledge
from tutor_cluster.learner.memory import LearnerMemory
from tutor_cluster.routing.router import Router

log = logging.getLogger(__name__)


def build_app(settings: Settings) -> Any:
    """The bound application; deploy it with ``serve.run`` (or via a Serve config file). The pseudonym secrets
    and the vault's key-encryption key must exist first (made here in the default local place; a configured path
    must already hold them)."""
    check_secret_files(settings, create=True)
    d = settings.deployments
    logs = {"logging_config": {"encoding": settings.server.log_encoding}}  # request ids in every tier's lines
    engines = {name: build_engine_app(name, engine) for name, engine in settings.catalogue.engines.items()}
    router = Router.options(**d.router.serve_options(), **logs).bind(settings.routing, settings.catalogue, engines)
    edge = EdgeTier.options(**d.edge.serve_options(), **logs).bind(settings.edge, settings.exercises)
    knowledge = (Knowledge.options(**d.knowledge.serve_options(), **logs).bind(settings.knowledge)
                 if settings.knowledge.enabled else None)
    # Learner memory: named actors (not a Serve deployment: one writer per learner, state kept across deploys),
    # built here with this deploy's settings; actors built with other settings are retired.
    memory = LearnerMemory(settings.learner, namespace=settings.ray.namespace, retire_stale=True,
                           retention=settings.privacy.retention)
    return Gateway.options(**d.gateway.serve_options(), **logs).bind(settings, edge, router, memory, knowledge)


def app_builder(args: dict[str, str]) -> Any:
    """Entry point for Serve config files: ``import_path: tutor_cluster.app.builder:app_builder``,
    ``args: {config: path/to/settings.yaml}``."""
    unknown = set(args) - {"config"}
    if unknown:
        raise ValueError(f"unknown application args {sorted(unknown)}; the only arg is 'config'")
    config = args.get("config")
    settings = check_settings(load_settings(config), str(config or "settings"))
    warning = check_learner_store(settings, str(config or "settings"))
    if warning:
        log.warning(warning)
    return build_app(settings)
