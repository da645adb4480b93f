"""Per-tier deployment options: Serve's whole ``autoscaling_config`` passes through, validated."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from ray.serve.config import AutoscalingConfig

from tutor_cluster.config.deployment import Autoscaling, DeploymentOptions

#: Every field set, none at its default.
FULL = {"min_replicas": 1, "max_replicas": 6, "initial_replicas": 2, "target_ongoing_requests": 3,
        "upscale_delay_s": 5, "downscale_delay_s": 120, "downscale_to_zero_delay_s": 900, "upscaling_factor": 0.5,
        "downscaling_factor": 0.8, "metrics_interval_s": 2, "look_back_period_s": 12, "aggregation_function": "max"}


def test_every_field_is_one_of_serves_and_reaches_serve_unchanged() -> None:
    assert set(Autoscaling.model_fields) == set(FULL)
    assert set(Autoscaling.model_fields) <= set(AutoscalingConfig.model_fields)
    opts = DeploymentOptions(autoscaling=FULL).serve_options()
    assert opts["autoscaling_config"] == FULL and "num_replicas" not in opts
    serve = AutoscalingConfig(**opts["autoscaling_config"])  # Serve accepts it as is
    for name, value in FULL.items():
        got = getattr(serve, name)
        assert getattr(got, "value", got) == value, name


def test_unset_fields_take_serves_defaults() -> None:
    config = DeploymentOptions(autoscaling={"min_replicas": 1, "max_replicas": 3}).serve_options()["autoscaling_config"]
    assert config == {"min_replicas": 1, "max_replicas": 3, "target_ongoing_requests": 16}
    serve = AutoscalingConfig(**config)
    assert (serve.upscale_delay_s, serve.downscale_delay_s) == (30.0, 600.0)


@pytest.mark.parametrize(("change", "field"), [
    ({"initial_replicas": 9}, "initial_replicas"), ({"min_replicas": 7}, "min_replicas"),
    ({"upscale_delay_s": -1}, "upscale_delay_s"), ({"upscaling_factor": 0}, "upscaling_factor"),
    ({"aggregation_function": "median"}, "aggregation_function"), ({"upscale_delay": 5}, "upscale_delay"),
])
def test_bad_values_are_refused_naming_the_field(change: dict, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        Autoscaling(**{**FULL, **change})
    assert field in str(info.value)
