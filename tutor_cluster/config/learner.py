"""Settings of learner memory: actors, the durable store, knowledge tracing (BKT) and the update policy."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tutor_cluster import constants


class BKTParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    prior: float = Field(default=0.1, gt=0, lt=1, description="P(L0): knows the skill before any practice.")
    learn: float = Field(default=0.2, ge=0, lt=1, description="P(T): learns it at an attempt.")
    forget: float = Field(default=0.0, ge=0, lt=1, description="P(F): forgets it between attempts.")
    guess: float = Field(default=0.2, ge=0, lt=0.5, description="P(G): right without knowing.")
    slip: float = Field(default=0.1, ge=0, lt=0.5, description="P(S): wrong despite knowing.")

    @model_validator(mode="after")
    def _identifiable(self) -> "BKTParams":
        if self.guess + self.slip >= 1:
            raise ValueError("guess + slip must be below 1, or a right answer would say nothing")
        return self


class MemoryPolicy(BaseModel):
    """Knobs of the update function (from settings)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bkt: BKTParams = Field(default_factory=BKTParams, description="Default BKT parameters.")
    bkt_by_skill: dict[str, BKTParams] = Field(default_factory=dict, description="Per-skill BKT parameters.")
    mastery_threshold: float = Field(default=0.95, gt=0, lt=1, description="P(known) at which a skill counts as mastered.")
    recent_turns: int = Field(default=20, ge=0, le=200, description="Turn summaries kept per learner.")

    def params(self, skill: str) -> BKTParams:
        return self.bkt_by_skill.get(skill, self.bkt)


class StoreConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: Literal["sqlite", "redis"] = Field(default="sqlite", description="Embedded SQLite (WAL) or Redis.")
    sqlite_path: str = Field(default=str(constants.CACHE_DIR / "learners.db"), description="SQLite file (WAL mode).")
    redis_url: str = Field(default="redis://127.0.0.1:6379/0", description="Redis URL (AOF with appendfsync always).")
    timeout_s: float = Field(default=2.0, gt=0, description="Per-operation timeout; beyond it: 503 + Retry-After.")
    key_prefix: str = Field(default="tc", description="Namespace of Redis keys.")


class MemoryConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    actors: int = Field(default=4, ge=1, le=1024, description="Number of learner-memory actors (fixed: resizing remaps learners).")
    cache_capacity: int = Field(default=10_000, ge=1, description="Contexts cached per actor (LRU).")
    max_concurrency: int = Field(default=32, ge=1, description="Calls one actor serves at once (threads).")
    num_cpus: float = Field(default=0.05, ge=0, description="Logical CPUs reserved per actor.")
    name_prefix: str = Field(default="learner-memory", description="Actors are named '<prefix>-<i>'.")
    resources: dict[str, float] = Field(default_factory=dict, description=(
        "Custom Ray resources per actor (a region adds its own, so its actors run on its nodes)."))
    store: StoreConfig = Field(default_factory=StoreConfig)
    policy: MemoryPolicy = Field(default_factory=MemoryPolicy)
    next_exercise_policy: str = Field(default="lowest_mastery", description="Registered next-exercise policy.")
    call_timeout_s: float = Field(default=10.0, gt=0, description="Gateway's deadline for one memory call (503 after).")
    max_learners_per_tenant: int | None = Field(default=None, ge=1, description=(
        "Learners a tenant may have; a turn that would create one more is 403 learner_quota_exceeded (null: no "
        "quota). Exact on SQLite; on Redis concurrent creations may overshoot by a few."))
