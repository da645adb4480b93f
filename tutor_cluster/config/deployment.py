"""Per-tier Serve deployment options, shared by every tier's config."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, PositiveInt, model_validator


class Autoscaling(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min_replicas: int = Field(default=1, ge=0, description="Fewest replicas kept running.")
    max_replicas: PositiveInt = Field(default=1, description="Most replicas autoscaling may start.")
    target_ongoing_requests: float = Field(default=16, gt=0, description="Requests per replica autoscaling aims at.")

    @model_validator(mode="after")
    def _bounds(self) -> "Autoscaling":
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"min_replicas ({self.min_replicas}) must not exceed max_replicas ({self.max_replicas})")
        return self


class DeploymentOptions(BaseModel):
    """How many replicas a tier runs, how much each may take on, and where it may be placed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    num_replicas: PositiveInt | None = Field(default=1, description="Fixed replica count (ignored with autoscaling).")
    autoscaling: Autoscaling | None = Field(default=None, description="Autoscaling bounds; overrides num_replicas.")
    max_ongoing_requests: PositiveInt = Field(default=100, description="Concurrent requests per replica.")
    max_queued_requests: PositiveInt | None = Field(default=256, description=(
        "Requests each caller may queue for this deployment beyond what its replicas take on; past it the request "
        "is shed at once (HTTP: 503 with Retry-After) instead of waiting without bound. null: unbounded."))
    num_cpus: NonNegativeFloat = Field(default=0.1, description="Logical CPUs reserved per replica.")
    num_gpus: NonNegativeFloat = Field(default=0, description="GPUs reserved per replica.")
    resources: dict[str, float] = Field(
        default_factory=dict,
        description="Custom resources per replica, e.g. {edge: 0.01} to land on the edge pool of cluster.yaml.",
    )

    def serve_options(self) -> dict[str, Any]:
        """Keyword arguments for ``Deployment.options``."""
        opts: dict[str, Any] = {"max_ongoing_requests": self.max_ongoing_requests}
        if self.max_queued_requests is not None:
            opts["max_queued_requests"] = self.max_queued_requests
        if self.autoscaling is not None:
            opts["autoscaling_config"] = self.autoscaling.model_dump()
        else:
            opts["num_replicas"] = self.num_replicas
        actor: dict[str, Any] = {"num_cpus": self.num_cpus}
        if self.num_gpus:
            actor["num_gpus"] = self.num_gpus
        if self.resources:
            actor["resources"] = dict(self.resources)
        opts["ray_actor_options"] = actor
        return opts
