"""Settings of request rate limits: per API key and per tenant, shared by every gateway replica."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt

from tutor_cluster import constants


class Rate(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    requests_per_minute: PositiveInt = Field(description="Steady rate allowed.")
    burst: PositiveInt = Field(default=20, description="Requests allowed at once on top of an idle bucket.")


class RateLimitConfig(BaseModel):
    """Generic cell rate (GCRA, a token bucket keeping one timestamp per bucket). A request counts against its
    key's bucket and its tenant's, all or nothing. Over the limit: 429 with ``Retry-After``; every limited
    response carries ``X-RateLimit-Limit``/``-Remaining``/``-Reset``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    per_key: Rate | None = Field(default=None, description="Each API key's rate (null: unlimited).")
    per_tenant: Rate | None = Field(default=None, description="Each tenant's rate, all its keys together.")
    backend: Literal["sqlite", "redis"] = Field(default="sqlite", description="Where buckets live (shared by "
                                                "the replicas: a file on one machine, Redis on a cluster).")
    sqlite_path: str = Field(default=str(constants.CACHE_DIR / "ratelimits.db"), description="SQLite buckets.")
    redis_url: str = Field(default="redis://127.0.0.1:6379/0", description="Redis for buckets (production).")
    key_prefix: str = Field(default="tc:rl", description="Redis key prefix.")
