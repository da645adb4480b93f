"""The built-in routing policies (``rules``, ``cascade``; ``learned`` in its own module) and :func:`build_policy`,
which picks one by the name in ``routing.policy``."""

from __future__ import annotations

from tutor_cluster.config.catalogue import Catalogue
from tutor_cluster.config.routing import RoutingConfig
from tutor_cluster.edge.signals import EdgeSignals
from tutor_cluster.routing import learned
from tutor_cluster.routing.decisions import (
    REGISTRY,
    Decision,
    DecisionFeatures,
    LearnerFeatures,
    RoutingPolicy,
    TwoModelPolicy,
    register_policy,
)

__all__ = ["CascadePolicy", "RulesPolicy", "UnknownPolicyError", "build_policy", "learned", "registered_policies"]


class UnknownPolicyError(ValueError):
    pass


def registered_policies() -> list[str]:
    return sorted(REGISTRY)


def build_policy(config: RoutingConfig, catalogue: Catalogue) -> RoutingPolicy:
    try:
        factory = REGISTRY[config.policy]
    except KeyError:
        raise UnknownPolicyError(
            f"unknown routing policy {config.policy!r}; registered: {', '.join(registered_policies())}"
        ) from None
    return factory(config, catalogue)



@register_policy("rules")
class RulesPolicy(TwoModelPolicy):
    """Edge signals and message complexity decide: hard or ungraded work goes to core, the rest to small."""

    name = "rules"

    def __init__(self, config: RoutingConfig, catalogue: Catalogue) -> None:
        self._cfg = config.rules
        super().__init__(catalogue, self._cfg.small_model, self._cfg.core_model)

    def decide(self, signals: EdgeSignals, learner: LearnerFeatures | None = None) -> Decision:
        cfg = self._cfg
        features = DecisionFeatures.of(signals, learner, threshold=cfg.complexity_threshold)
        if learner is not None and learner.misconceptions >= cfg.struggle_misconceptions:
            return self._pick(self._core, f"rules: {learner.misconceptions} misconceptions on this skill "
                                          f"(>= {cfg.struggle_misconceptions}): the learner is struggling", features)
        if (learner is not None and learner.mastery is not None and learner.attempts >= cfg.struggle_attempts
                and learner.mastery < cfg.struggle_mastery):
            return self._pick(self._core, f"rules: mastery {learner.mastery:.2f} < {cfg.struggle_mastery:.2f} after "
                                          f"{learner.attempts} attempts: the learner is struggling", features)
        if signals.check is not None and signals.check.correct is None:
            return self._pick(self._core, "rules: submitted code parses but needs a review by the core model", features)
        if signals.complexity >= self._cfg.complexity_threshold:
            return self._pick(
                self._core,
                f"rules: complexity {signals.complexity:.2f} >= {self._cfg.complexity_threshold:.2f}",
                features,
            )
        return self._pick(
            self._small,
            f"rules: {signals.intent} with complexity {signals.complexity:.2f} < {self._cfg.complexity_threshold:.2f}",
            features,
        )


@register_policy("cascade")
class CascadePolicy(TwoModelPolicy):
    """FrugalGPT-style: the cheap model answers first; the router verifies its answer deterministically
    (``routing/verify.py``) and escalates only when verification fails. Very complex turns go straight up."""

    name = "cascade"

    def __init__(self, config: RoutingConfig, catalogue: Catalogue) -> None:
        self._cfg = config.cascade
        super().__init__(catalogue, self._cfg.first_model, self._cfg.escalate_model)

    def decide(self, signals: EdgeSignals, learner: LearnerFeatures | None = None) -> Decision:
        features = DecisionFeatures.of(signals, learner, direct_complexity=self._cfg.direct_complexity)
        if signals.complexity >= self._cfg.direct_complexity:
            return self._pick(self._core, f"cascade: complexity {signals.complexity:.2f} >= "
                                          f"{self._cfg.direct_complexity:.2f}: {self._core} answers directly", features)
        return self._pick(self._small, f"cascade: {self._small} first; escalate to {self._core} if verification "
                                       "fails", features, escalate_to=self._core)
