"""Every metric the service exports, declared once.

The code records through :class:`Metrics` (Ray's metrics API, exported on Ray's Prometheus endpoint); the
Grafana dashboards and the Prometheus rules are generated from / checked against :data:`METRICS`, so a panel
cannot name a metric that does not exist. Labels carry no personal data and have bounded values (tiers, models,
skills of the curriculum, routes, error types) — never learner, session or request ids.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

#: Prefix Ray puts in front of every application metric on its Prometheus endpoint.
RAY_PREFIX = "ray_"
LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0]
ATTEMPT_BUCKETS = [1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30]


@dataclass(frozen=True)
class MetricSpec:
    name: str
    kind: Literal["counter", "histogram", "gauge"]
    description: str
    labels: tuple[str, ...] = ()
    buckets: list[float] = field(default_factory=list)
    #: "ray": recorded by Ray Serve itself (we only query it); "tutor": recorded by our code.
    owner: Literal["tutor", "ray"] = "tutor"

    @property
    def exported(self) -> str:
        """The base name on the Prometheus endpoint (histograms add _bucket/_sum/_count)."""
        return RAY_PREFIX + self.name

    def series(self, suffix: str = "") -> str:
        """A series name for queries: counters get ``_total``; histograms ``_bucket``/``_sum``/``_count``."""
        if self.kind == "counter":
            return f"{self.exported}_total"
        return self.exported + suffix


_SPECS = [
    # ---- system
    MetricSpec("tutor_requests", "counter", "API requests by route and HTTP status class.", ("route", "status")),
    MetricSpec("tutor_request_latency_seconds", "histogram", "End-to-end latency of API requests.", ("route",),
               LATENCY_BUCKETS),
    MetricSpec("tutor_tier_latency_seconds", "histogram", "Latency of each tier inside a turn.", ("tier",),
               LATENCY_BUCKETS),
    MetricSpec("tutor_ttft_seconds", "histogram", "Time to the model's first token.", ("model",), LATENCY_BUCKETS),
    MetricSpec("tutor_turns", "counter", "Turns by answering tier and model ('-' at the edge).", ("tier", "model")),
    MetricSpec("tutor_tokens", "counter", "Model tokens by model and kind (prompt/completion).", ("model", "kind")),
    MetricSpec("tutor_cost", "counter", "Spend in the catalogue currency, by model and tier.", ("model", "tier")),
    MetricSpec("tutor_errors", "counter", "Error responses by route and error type.", ("route", "type")),
    MetricSpec("tutor_budget_alerts", "counter", "Model calls made past a budget's soft limit, by rule.", ("rule",)),
    MetricSpec("tutor_retrieval_passages", "counter", "Curriculum passages put into prompts.", ()),
    MetricSpec("tutor_memory_reads", "counter", "Learner-context reads in memory actors by result (hit/miss).",
               ("result",)),
    MetricSpec("tutor_in_flight", "gauge", "Requests in flight in a gateway replica.", ()),
    # ---- pedagogy
    MetricSpec("tutor_attempts", "counter", "Graded answer attempts by skill and correctness.", ("skill", "correct")),
    MetricSpec("tutor_misconceptions", "counter", "Misconceptions seen, by skill and tag.", ("skill", "tag")),
    MetricSpec("tutor_hints", "counter", "Hints given, by skill.", ("skill",)),
    MetricSpec("tutor_mastery_transitions", "counter", "Skills newly mastered (BKT crosses the threshold).",
               ("skill",)),
    MetricSpec("tutor_attempts_to_mastery", "histogram", "Graded attempts a learner needed to master a skill.",
               ("skill",), ATTEMPT_BUCKETS),
]
# ---- Ray Serve's own, queried by the dashboards: queue depth and replica count per tier (deployment)
_SPECS += [
    MetricSpec("serve_deployment_queued_queries", "gauge", "Requests waiting at handles for a replica, by "
               "deployment.", ("deployment",), owner="ray"),
    MetricSpec("serve_deployment_replica_healthy", "gauge", "1 per healthy replica, by deployment.",
               ("deployment", "replica"), owner="ray"),
]
METRICS: dict[str, MetricSpec] = {s.name: s for s in _SPECS}


class Metrics:
    """Ray metric objects for the specs, created on first use in each process (Ray metrics need a worker)."""

    def __init__(self, specs: dict[str, MetricSpec] | None = None) -> None:
        self._specs = specs or METRICS
        self._objects: dict[str, Any] = {}

    def _get(self, name: str) -> Any:
        obj = self._objects.get(name)
        if obj is None:
            from ray.util import metrics

            spec = self._specs[name]
            if spec.owner != "tutor":
                raise ValueError(f"{name} is recorded by Ray Serve, not by tutor-cluster")
            if spec.kind == "counter":
                obj = metrics.Counter(spec.name, description=spec.description, tag_keys=spec.labels)
            elif spec.kind == "gauge":
                obj = metrics.Gauge(spec.name, description=spec.description, tag_keys=spec.labels)
            else:
                obj = metrics.Histogram(spec.name, description=spec.description, boundaries=spec.buckets,
                                        tag_keys=spec.labels)
            self._objects[name] = obj
        return obj

    def inc(self, name: str, value: float = 1.0, **labels: str) -> None:
        if value:
            self._get(name).inc(value, tags=labels or None)

    def observe(self, name: str, value: float, **labels: str) -> None:
        self._get(name).observe(value, tags=labels or None)

    def set(self, name: str, value: float, **labels: str) -> None:
        self._get(name).set(value, tags=labels or None)
