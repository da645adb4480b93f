"""Routing policies, registered by name so that a config string picks one.

A policy is pure: given the edge's signals (and, later, the learner's state) it names a catalogue
model and says why. It never calls a model, so it is cheap enough for the hot path and easy to test.
"""

from __future__ import annotations

from typing import Callable, Protocol

from pydantic import BaseModel, ConfigDict, Field

from tutor_cluster.edge.signals import EdgeSignals
from tutor_cluster.routing.budgets import BudgetConfig
from tutor_cluster.routing.catalogue import Catalogue, Tier


class Decision(BaseModel):
    model_config = ConfigDict(frozen=True)

    tier: Tier
    model: str = Field(description="Catalogue model that will answer.")
    reason: str
    features: dict[str, float | str | None] = Field(default_factory=dict, description="What the decision looked at.")
    escalate_to: str | None = Field(default=None, description=(
        "Cascade: the model to use when this model's answer fails verification (None: no cascade)."))


class LearnerFeatures(BaseModel):
    """What routing may know about the learner (from learner memory; no personal data)."""

    model_config = ConfigDict(frozen=True)

    mastery: float | None = Field(default=None, description="Mastery of the turn's skill, if known.")
    attempts: int = Field(default=0, description="Graded attempts at the turn's skill.")
    misconceptions: int = Field(default=0, description="Misconceptions seen on the turn's skill (total count).")


class RulesPolicyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    complexity_threshold: float = Field(
        default=0.5, ge=0, le=1, description="Messages at or above this complexity go to the core model."
    )
    small_model: str | None = Field(default=None, description="Model for simple turns (default: first 'small').")
    core_model: str | None = Field(default=None, description="Model for hard turns (default: first 'core').")
    struggle_misconceptions: int = Field(
        default=2, ge=1, description="A learner with this many misconceptions on the skill gets the core model.")
    struggle_attempts: int = Field(default=3, ge=1, description="With at least this many attempts ...")
    struggle_mastery: float = Field(default=0.3, ge=0, le=1, description="... and mastery below this: core model.")


class CascadePolicyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    first_model: str | None = Field(default=None, description="Model tried first (default: first 'small').")
    escalate_model: str | None = Field(default=None, description="Model escalated to (default: first 'core').")
    direct_complexity: float = Field(default=0.85, ge=0, le=1, description=(
        "At or above this complexity the escalation model answers directly (a cheap try would be wasted)."))


class LearnedPolicyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model_path: str | None = Field(default=None, description="Trained model file (`tutor-cluster routing train`).")
    small_model: str | None = Field(default=None, description="Cheaper model (default: first 'small').")
    core_model: str | None = Field(default=None, description="Stronger model (default: first 'core').")


class RoutingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    policy: str = Field(default="rules", description="Name of a registered policy (see `tutor-cluster policies`).")
    rules: RulesPolicyConfig = Field(default_factory=RulesPolicyConfig, description="Settings of the 'rules' policy.")
    cascade: CascadePolicyConfig = Field(default_factory=CascadePolicyConfig,
                                         description="Settings of the 'cascade' policy.")
    learned: LearnedPolicyConfig = Field(default_factory=LearnedPolicyConfig,
                                         description="Settings of the 'learned' policy.")
    budgets: BudgetConfig = Field(default_factory=BudgetConfig, description="Spending budgets (none: unlimited).")
    fallbacks: dict[str, list[str]] = Field(default_factory=dict, description=(
        "Model → models to try, in order, when its engine fails, times out or is cooling down."))
    cooldown_s: float = Field(default=30, ge=0, description="How long a failed engine is skipped (per router replica).")
    first_token_timeout_s: float = Field(default=30, gt=0, description=(
        "Deadline for an engine's first streamed item; past it the call is cancelled and the next fallback tried."))


class RoutingPolicy(Protocol):
    name: str

    def decide(self, signals: EdgeSignals, learner: LearnerFeatures | None = None) -> Decision: ...


PolicyFactory = Callable[[RoutingConfig, Catalogue], RoutingPolicy]
_REGISTRY: dict[str, PolicyFactory] = {}


def register_policy(name: str) -> Callable[[PolicyFactory], PolicyFactory]:
    def wrap(factory: PolicyFactory) -> PolicyFactory:
        if name in _REGISTRY:
            raise ValueError(f"routing policy {name!r} is registered twice")
        _REGISTRY[name] = factory
        return factory

    return wrap


def registered_policies() -> list[str]:
    return sorted(_REGISTRY)


class UnknownPolicyError(ValueError):
    pass


def build_policy(config: RoutingConfig, catalogue: Catalogue) -> RoutingPolicy:
    try:
        factory = _REGISTRY[config.policy]
    except KeyError:
        raise UnknownPolicyError(
            f"unknown routing policy {config.policy!r}; registered: {', '.join(registered_policies())}"
        ) from None
    return factory(config, catalogue)


def _resolve(catalogue: Catalogue, name: str | None, tier: Tier) -> str:
    if name is not None:
        entry = catalogue.get(name)
        if entry is None:
            raise ValueError(f"routing model {name!r} is not in the catalogue")
        return entry.name
    entry = catalogue.first_of_tier(tier) or catalogue.models[0]
    return entry.name


def _features(signals: EdgeSignals, learner: LearnerFeatures | None) -> dict[str, float | str | None]:
    return {
        "intent": signals.intent,
        "complexity": signals.complexity,
        "check": None if signals.check is None else str(signals.check.correct),
        "mastery": None if learner is None else learner.mastery,
        "attempts": 0 if learner is None else learner.attempts,
        "misconceptions": 0 if learner is None else learner.misconceptions,
    }


class TwoModelPolicy:
    """Base of the policies that choose between a cheaper ('small') and a stronger ('core') catalogue model."""

    def __init__(self, catalogue: Catalogue, small: str | None, core: str | None) -> None:
        self._small = _resolve(catalogue, small, "small")
        self._core = _resolve(catalogue, core, "core")
        self._tiers = {m.name: m.tier for m in catalogue.models}

    def _pick(self, model: str, reason: str, features: dict[str, float | str | None],
              escalate_to: str | None = None) -> Decision:
        return Decision(tier=self._tiers[model], model=model, reason=reason, features=features,
                        escalate_to=escalate_to)


@register_policy("rules")
class RulesPolicy(TwoModelPolicy):
    """Edge signals and message complexity decide: hard or ungraded work goes to core, the rest to small."""

    name = "rules"

    def __init__(self, config: RoutingConfig, catalogue: Catalogue) -> None:
        self._cfg = config.rules
        super().__init__(catalogue, self._cfg.small_model, self._cfg.core_model)

    def decide(self, signals: EdgeSignals, learner: LearnerFeatures | None = None) -> Decision:
        cfg = self._cfg
        features = {**_features(signals, learner), "threshold": cfg.complexity_threshold}
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
        features = {**_features(signals, learner), "direct_complexity": self._cfg.direct_complexity}
        if signals.complexity >= self._cfg.direct_complexity:
            return self._pick(self._core, f"cascade: complexity {signals.complexity:.2f} >= "
                                          f"{self._cfg.direct_complexity:.2f}: {self._core} answers directly", features)
        return self._pick(self._small, f"cascade: {self._small} first; escalate to {self._core} if verification "
                                       "fails", features, escalate_to=self._core)


from tutor_cluster.routing import learned as _learned  # noqa: E402,F401  (registers the 'learned' policy)
