"""deployments/ (Serve configs) and cluster.yaml must agree: every resource a replica asks for exists."""


import pytest
import yaml

from tests import REPO_ROOT
from tutor_cluster.config.settings import load_settings

ROOT = REPO_ROOT


def _cluster_node_types() -> dict[str, dict[str, float]]:
    cluster = yaml.safe_load((ROOT / "cluster.yaml").read_text())
    return {name: nt.get("resources", {}) for name, nt in cluster["available_node_types"].items()}


def _placeable(request: dict[str, float], nodes: dict[str, dict[str, float]]) -> bool:
    return any(all(res.get(k, 0) >= v for k, v in request.items() if v) for res in nodes.values())


@pytest.mark.parametrize("serve_file", ["serve.yaml", "serve.local.yaml"])
def test_serve_configs_name_every_region_as_up_deploys_it(serve_file: str) -> None:
    cfg = yaml.safe_load((ROOT / "deployments" / serve_file).read_text())
    apps = cfg["applications"]
    assert all(app["import_path"] == "tutor_cluster.app.builder:app_builder" for app in apps)
    configs = {app["args"]["config"] for app in apps}
    assert len(configs) == 1, "every application of one deployment reads the same settings"
    settings = load_settings(configs.pop(), env={})  # raises if invalid
    names = settings.region_names()
    assert [app["args"].get("region", names[0]) for app in apps] == sorted(
        names, key=lambda n: settings.region(n).models_from is not None)  # model-serving regions first
    for app in apps:
        region = app["args"].get("region", names[0])
        assert (app["name"], app["route_prefix"]) == (settings.app_name(region), settings.route_prefix(region))
    from tutor_cluster.app.builder import app_builder  # the import path resolves
    assert callable(app_builder)


def _regional_settings():  # noqa: ANN202
    cfg = yaml.safe_load((ROOT / "deployments" / "serve.yaml").read_text())
    settings = load_settings(cfg["applications"][0]["args"]["config"], env={})
    return [settings.for_region(app["args"]["region"]) for app in cfg["applications"]]


def replica_requests(settings) -> dict[str, dict[str, float]]:  # noqa: ANN001
    """What each replica (and memory actor) of one region's application asks Ray for, by name."""
    region = settings.privacy.region
    requests = {}
    for name in ("gateway", "edge", "router", "knowledge"):
        opts = getattr(settings.deployments, name)
        assert opts.resources.get("edge") and opts.resources.get(f"region-{region}"), (region, name)
        requests[name] = {"CPU": opts.num_cpus, **opts.resources}
    requests["memory actor"] = {"CPU": settings.learner.num_cpus, **settings.learner.resources}
    if settings.region().models_from is None:  # else that region's engines serve it
        for engine_name, engine in settings.catalogue.engines.items():
            assert engine.deployment.resources.get("core"), f"engine {engine_name} must request the core pool"
            request = {"CPU": engine.deployment.num_cpus, **engine.deployment.resources}
            if engine.accelerator != "cpu":
                request.update({"GPU": 1, f"accelerator_type:{engine.accelerator}": 1})
            requests[engine_name] = request
    return requests


def production_regions():  # noqa: ANN201
    """Each region's settings as production runs them (serve.yaml's applications)."""
    return _regional_settings()


def test_production_replicas_fit_cluster_node_types() -> None:
    nodes = _cluster_node_types()
    assert nodes["head"].get("CPU") == 0, "the head must not run tutoring work"
    regions = _regional_settings()
    assert len(regions) == 2, "production shows two regions"
    for settings in regions:
        for name, request in replica_requests(settings).items():
            assert _placeable(request, nodes), (f"{settings.privacy.region} {name} asks for {request}; no node type "
                                                "in cluster.yaml has it")


def test_cluster_yaml_is_what_ray_up_accepts() -> None:
    """Validated offline as `ray up` validates it (defaults filled in, then Ray's autoscaler schema): the image in a
    docker block, nothing installed by name, the head without tutoring work, token auth with its token shipped."""
    import copy

    from ray.autoscaler._private.util import prepare_config, validate_config

    cluster = yaml.safe_load((ROOT / "cluster.yaml").read_text())
    validate_config(prepare_config(copy.deepcopy(cluster)))
    with pytest.raises(Exception, match="min_workerz"):  # the control: the schema refuses an unknown field
        bad = copy.deepcopy(cluster)
        bad["available_node_types"]["head"]["min_workerz"] = 1
        validate_config(prepare_config(bad))
    assert cluster["docker"]["image"] and not cluster["setup_commands"]
    assert not any("tutor-cluster" in c for c in (*cluster["head_setup_commands"], *cluster["worker_setup_commands"]))
    assert cluster["file_mounts"]["~/.ray/auth_token"] == "~/.ray/auth_token"
    head = " ".join(cluster["head_start_ray_commands"])
    assert "--num-cpus=0" in head and cluster["available_node_types"]["head"]["resources"]["CPU"] == 0


def test_cluster_keeps_dashboard_on_loopback_with_token_auth() -> None:
    text = (ROOT / "cluster.yaml").read_text()
    assert "--dashboard-host=127.0.0.1" in text and "RAY_AUTH_MODE=token" in text
    assert "--dashboard-host=0.0.0.0" not in text


def test_production_ray_env_matches_local_defaults() -> None:
    from tutor_cluster.runtime import RAY_ENV_DEFAULTS

    cfg = yaml.safe_load((ROOT / "deployments" / "serve.yaml").read_text())
    for app in cfg["applications"]:
        assert app["runtime_env"]["env_vars"] == RAY_ENV_DEFAULTS
    cluster = yaml.safe_load((ROOT / "cluster.yaml").read_text())
    for cmd in (*cluster["head_start_ray_commands"], *cluster["worker_start_ray_commands"]):
        if "ray start" in cmd:
            for key in ("RAY_SERVE_THROUGHPUT_OPTIMIZED", "RAY_SERVE_ENABLE_DIRECT_INGRESS", "RAY_USAGE_STATS_ENABLED"):
                assert f"{key}={RAY_ENV_DEFAULTS[key]}" in cmd
