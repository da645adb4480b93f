"""Settings of the cost-aware router: the policy and its knobs, fallbacks, deadlines, spending budgets."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tutor_cluster import constants

Scope = Literal["tenant", "class", "learner"]


Window = Literal["day", "month", "term"]


class BudgetRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    scope: Scope = Field(description="Whose spending: the API key's tenant, the request's class_id, or the learner.")
    id: str = Field(default="*", description="One tenant/class id, or '*' for each one separately "
                                             "(learner rules take '*': learners are pseudonymous here).")
    window: Window = Field(default="day", description="day / month (UTC calendar) or term (routing.budgets.terms).")
    limit: float = Field(gt=0, description="Spend allowed per window, in the catalogue currency.")
    on_exhaustion: Literal["reject", "downgrade"] = Field(
        default="reject", description="reject: 429 + Retry-After; downgrade: answer with the cheapest model instead.")
    soft_limit: float = Field(default=0.8, gt=0, le=1, description="Share of the limit that raises the soft alert.")

    @property
    def name(self) -> str:
        return f"{self.scope}:{self.id}:{self.window}"


class Term(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    start: date
    end: date = Field(description="Last day of the term (inclusive).")


class BudgetConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: list[BudgetRule] = Field(default_factory=list, description="Budgets; none means unlimited.")
    terms: list[Term] = Field(default_factory=list, description="Academic terms for window: term.")
    backend: Literal["sqlite", "redis"] = Field(default="sqlite", description="Where counters live.")
    sqlite_path: str = Field(default=str(constants.CACHE_DIR / "budgets.db"), description="SQLite counters file.")
    redis_url: str = Field(default="redis://127.0.0.1:6379/0", description="Redis for counters (production).")
    key_prefix: str = Field(default="tc:budget", description="Redis key prefix.")
    ledger: bool = Field(default=True, description="Record every model interaction in the spend ledger.")

    @model_validator(mode="after")
    def _terms(self) -> "BudgetConfig":
        if any(r.window == "term" for r in self.rules) and not self.terms:
            raise ValueError("a rule uses window 'term' but routing.budgets.terms is empty; add {name, start, end}")
        return self


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
