"""Settings of telemetry: interaction events to Parquet (metrics need no settings)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from tutor_cluster import constants


class EventsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(default=True, description="Write interaction events (Parquet).")
    path: str = Field(default=str(constants.CACHE_DIR / "events"), description="Dataset root (a shared volume or a "
                                                                           "mounted bucket in production).")
    region: str = Field(default="local", pattern=r"^[a-z0-9-]{1,32}$", description="Region partition value.")
    flush_interval_s: float = Field(default=30, gt=0, description="Longest time an event waits in memory.")
    max_buffer: int = Field(default=1000, ge=1, description="Events buffered before a write.")


class TelemetrySettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    events: EventsConfig = Field(default_factory=EventsConfig, description="Interaction events to Parquet.")
