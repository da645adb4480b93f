"""What a routing policy decides, what it looks at, and the registry that lets a config string pick a policy.

A policy is pure: given the edge's signals and the learner's features it names a catalogue model and says why.
It never calls a model, so it is cheap enough for the hot path and easy to test.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tutor_cluster.config.catalogue import Catalogue, Tier
from tutor_cluster.config.routing import RoutingConfig
from tutor_cluster.edge.signals import EdgeSignals


class LearnerFeatures(BaseModel):
    """What routing may know about the learner (from learner memory; no personal data)."""

    model_config = ConfigDict(frozen=True)

    mastery: float | None = Field(default=None, description="Mastery of the turn's skill, if known.")
    attempts: int = Field(default=0, description="Graded attempts at the turn's skill.")
    misconceptions: int = Field(default=0, description="Misconceptions seen on the turn's skill (total count).")


class DecisionFeatures(BaseModel):
    """What a decision looked at, as typed values. The spend ledger records them, and ``routing train`` learns
    from them; policy-specific values (thresholds, the learned probability) are set by the policy that used them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    intent: str | None = Field(default=None, description="The edge's intent label.")
    complexity: float = Field(default=0.0, description="The edge's complexity score (0..1).")
    checked: bool = Field(default=False, description="A deterministic answer check ran.")
    check_correct: bool | None = Field(default=None, description="Its verdict; None when it needs a model's review.")
    mastery: float | None = Field(default=None, description="Mastery of the turn's skill, if known.")
    attempts: int = Field(default=0, description="Graded attempts at the turn's skill.")
    misconceptions: int = Field(default=0, description="Misconceptions seen on the turn's skill.")
    threshold: float | None = Field(default=None, description="The threshold the policy compared against.")
    direct_complexity: float | None = Field(default=None, description="cascade: complexity that skips the cheap try.")
    p_small_ok: float | None = Field(default=None, description="learned: P(the cheaper model suffices).")

    @model_validator(mode="before")
    @classmethod
    def _logged_check(cls, data: Any) -> Any:
        """Ledgers written before features were typed say ``check: "True" | "False" | "None" | null``."""
        if isinstance(data, Mapping) and "check" in data:
            data = dict(data)
            check = data.pop("check")
            data.setdefault("checked", check not in (None, "None"))
            data.setdefault("check_correct", {"True": True, "False": False}.get(check))
        return data

    @classmethod
    def of(cls, signals: EdgeSignals, learner: LearnerFeatures | None, **policy: float) -> "DecisionFeatures":
        check = signals.check
        return cls(intent=signals.intent, complexity=signals.complexity, checked=check is not None,
                   check_correct=None if check is None else check.correct,
                   mastery=None if learner is None else learner.mastery,
                   attempts=0 if learner is None else learner.attempts,
                   misconceptions=0 if learner is None else learner.misconceptions, **policy)


class Decision(BaseModel):
    model_config = ConfigDict(frozen=True)

    tier: Tier
    model: str = Field(description="Catalogue model that will answer.")
    reason: str
    features: DecisionFeatures | None = Field(default=None, description="What the decision looked at.")
    escalate_to: str | None = Field(default=None, description=(
        "Cascade: the model to use when this model's answer fails verification (None: no cascade)."))


class RoutingPolicy(Protocol):
    name: str

    def decide(self, signals: EdgeSignals, learner: LearnerFeatures | None = None) -> Decision: ...


PolicyFactory = Callable[[RoutingConfig, Catalogue], RoutingPolicy]
REGISTRY: dict[str, PolicyFactory] = {}


def register_policy(name: str) -> Callable[[PolicyFactory], PolicyFactory]:
    """Class decorator: make a policy available under ``routing.policy: <name>``."""

    def wrap(factory: PolicyFactory) -> PolicyFactory:
        if name in REGISTRY:
            raise ValueError(f"routing policy {name!r} is registered twice")
        REGISTRY[name] = factory
        return factory

    return wrap


def _resolve(catalogue: Catalogue, name: str | None, tier: Tier) -> str:
    if name is not None:
        entry = catalogue.get(name)
        if entry is None:
            raise ValueError(f"routing model {name!r} is not in the catalogue")
        return entry.name
    entry = catalogue.first_of_tier(tier) or catalogue.models[0]
    return entry.name


class TwoModelPolicy:
    """Base of the policies that choose between a cheaper ('small') and a stronger ('core') catalogue model."""

    def __init__(self, catalogue: Catalogue, small: str | None, core: str | None) -> None:
        self._small = _resolve(catalogue, small, "small")
        self._core = _resolve(catalogue, core, "core")
        self._tiers = {m.name: m.tier for m in catalogue.models}

    def _pick(self, model: str, reason: str, features: DecisionFeatures, escalate_to: str | None = None) -> Decision:
        return Decision(tier=self._tiers[model], model=model, reason=reason, features=features,
                        escalate_to=escalate_to)
