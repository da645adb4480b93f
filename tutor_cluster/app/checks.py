"""Checks of a settings file that need more than its schema: the named policies exist and build (a ``learned``
policy reads its model file). Loading settings builds nothing; the CLI and the app builder run these."""

from __future__ import annotations

from tutor_cluster.config.settings import ConfigError, Settings
from tutor_cluster.learner import policies as learner_policies
from tutor_cluster.routing.policies import build_policy


def check_settings(settings: Settings, source: str = "settings") -> Settings:
    """``settings`` unchanged, or :class:`ConfigError` naming ``source`` and the key at fault."""
    try:
        build_policy(settings.routing, settings.catalogue)
    except ValueError as exc:
        raise ConfigError(f"{source}: routing.policy: {exc}") from None
    try:
        learner_policies.get(settings.learner.next_exercise_policy)
    except ValueError as exc:
        raise ConfigError(f"{source}: learner.next_exercise_policy: {exc}") from None
    return settings
