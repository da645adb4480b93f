"""Per-tier Serve deployment options, shared by every tier's config."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, PositiveFloat, PositiveInt, model_validator


class Autoscaling(BaseModel):
    """Serve's ``autoscaling_config`` for one deployment. Fields left unset take Serve's defaults (named in each
    description); a test checks every field against Serve's own ``AutoscalingConfig``.

    The signal is Serve's: requests ongoing per replica (running plus queued in it), averaged over
    ``look_back_period_s``; the LLM engines scale on the same signal, so ``target_ongoing_requests`` of an engine
    is its concurrent-sequence budget (vLLM queues the rest)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_replicas: int = Field(default=1, ge=0, description="Fewest replicas kept running.")
    max_replicas: PositiveInt = Field(default=1, description="Most replicas autoscaling may start.")
    initial_replicas: int | None = Field(default=None, ge=0, description=(
        "Replicas at deploy time (Serve: min_replicas)."))
    target_ongoing_requests: float = Field(default=16, gt=0, description="Requests per replica autoscaling aims at.")
    upscale_delay_s: float | None = Field(default=None, ge=0, description=(
        "How long demand must stay above target before replicas are added (Serve: 30 s)."))
    downscale_delay_s: float | None = Field(default=None, ge=0, description=(
        "How long demand must stay below target before replicas are removed (Serve: 600 s)."))
    downscale_to_zero_delay_s: float | None = Field(default=None, ge=0, description=(
        "Delay before the last replica goes when min_replicas is 0 (Serve: downscale_delay_s)."))
    upscaling_factor: PositiveFloat | None = Field(default=None, description=(
        "Multiplier on each upscaling step: below 1 scales up more cautiously (Serve: 1)."))
    downscaling_factor: PositiveFloat | None = Field(default=None, description=(
        "Multiplier on each downscaling step (Serve: 1)."))
    metrics_interval_s: PositiveFloat | None = Field(default=None, description=(
        "How often replicas report their load (Serve: 10 s)."))
    look_back_period_s: PositiveFloat | None = Field(default=None, description=(
        "Window the load is averaged over (Serve: 30 s)."))
    aggregation_function: Literal["mean", "max", "min"] | None = Field(default=None, description=(
        "How the window's samples combine (Serve: mean)."))

    @model_validator(mode="after")
    def _bounds(self) -> "Autoscaling":
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"min_replicas ({self.min_replicas}) must not exceed max_replicas ({self.max_replicas})")
        if self.initial_replicas is not None and not self.min_replicas <= self.initial_replicas <= self.max_replicas:
            raise ValueError(f"initial_replicas ({self.initial_replicas}) must lie between min_replicas "
                             f"({self.min_replicas}) and max_replicas ({self.max_replicas})")
        return self

    def serve_config(self) -> dict[str, Any]:
        """Serve's ``autoscaling_config``: the fields set here (Serve's defaults for the rest)."""
        return self.model_dump(exclude_none=True)


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
            opts["autoscaling_config"] = self.autoscaling.serve_config()
        else:
            opts["num_replicas"] = self.num_replicas
        actor: dict[str, Any] = {"num_cpus": self.num_cpus}
        if self.num_gpus:
            actor["num_gpus"] = self.num_gpus
        if self.resources:
            actor["resources"] = dict(self.resources)
        opts["ray_actor_options"] = actor
        return opts
