"""The Kubernetes path (deployments/kuberay/, rendered by tutor_cluster/app/kuberay.py from the Serve config and
cluster.yaml), validated offline: KubeRay's own CRD schemas (v1.7.0, vendored under tests/data/kuberay/, strict
about unknown fields), Ray's ServeDeploySchema for every Serve config, and what the manifests must guarantee:
every replica fits a worker group, the head runs no tutoring work, a region's secrets reach only its nodes,
the dashboard only the operator."""

from __future__ import annotations

import copy
import gzip
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from ray.serve.schema import ServeDeploySchema

from tests import REPO_ROOT
from tests.unit.test_deployments import production_regions, replica_requests
from tutor_cluster.app import kuberay

OUT = REPO_ROOT / "deployments" / "kuberay"
CRDS = REPO_ROOT / "tests" / "data" / "kuberay"


def _strict(schema: Any) -> Any:
    """The schema as `kubectl apply --validate=strict` applies it: an object that names its properties takes no
    others (unless Kubernetes says it keeps unknown fields)."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if ("properties" in schema and "additionalProperties" not in schema
                and not schema.get("x-kubernetes-preserve-unknown-fields")):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


def _crd_schema(kind: str) -> dict[str, Any]:
    crd = yaml.safe_load(gzip.decompress((CRDS / f"ray.io_{kind.lower()}s.yaml.gz").read_bytes()))
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    return _strict(version["schema"]["openAPIV3Schema"])


@pytest.fixture(scope="module")
def schemas() -> dict[str, dict[str, Any]]:
    return {kind: _crd_schema(kind) for kind in ("RayService", "RayJob")}


def _docs(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((OUT / name).read_text()) if d]


def _errors(schema: dict[str, Any], doc: dict[str, Any]) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in jsonschema.Draft7Validator(schema).iter_errors(doc)]


def test_the_checked_in_manifests_are_what_the_renderer_makes() -> None:
    files = kuberay.render(REPO_ROOT / "deployments" / "serve.yaml", REPO_ROOT / "cluster.yaml")
    assert sorted(files) == sorted(p.name for p in OUT.glob("*.yaml"))
    for name, text in files.items():
        assert (OUT / name).read_text() == text, f"{name} is stale: run `python -m tutor_cluster.app.kuberay`"


@pytest.mark.parametrize(("name", "kind"), [("rayservice.yaml", "RayService"), ("rayjob-reembed.yaml", "RayJob")])
def test_ray_resources_validate_against_kuberays_crd(schemas: dict[str, Any], name: str, kind: str) -> None:
    (doc,) = _docs(name)
    assert doc["kind"] == kind and doc["apiVersion"] == "ray.io/v1"
    assert _errors(schemas[kind], doc) == []


def test_the_strict_schema_refuses_what_kuberay_would_not_know(schemas: dict[str, Any]) -> None:
    """The control: a misspelt field, a wrong type and a bad enum value are all caught."""
    (doc,) = _docs("rayservice.yaml")
    for path, value in ((("spec", "rayClusterConfig", "enableInTreeAutoscalling"), True),
                        (("spec", "rayClusterConfig", "workerGroupSpecs", 0, "maxReplicas"), "eight"),
                        (("spec", "rayClusterConfig", "authOptions", "mode"), "password")):
        bad = copy.deepcopy(doc)
        node = bad
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        assert _errors(schemas["RayService"], bad), path


def _pod_template_schema(schemas: dict[str, Any]) -> dict[str, Any]:
    return schemas["RayService"]["properties"]["spec"]["properties"]["rayClusterConfig"]["properties"][
        "headGroupSpec"]["properties"]["template"]


def test_kubernetes_objects_validate_against_the_schemas_kuberay_embeds(schemas: dict[str, Any]) -> None:
    """CronJob, NetworkPolicy and PodMonitor have no CRD here: their pod template and ingress rules are checked
    against the Kubernetes schemas KubeRay's CRD embeds, the rest field by field as Kubernetes documents them."""
    (cron,) = _docs("cronjob-retention.yaml")
    assert (cron["apiVersion"], cron["kind"]) == ("batch/v1", "CronJob")
    assert set(cron["spec"]) <= {"schedule", "concurrencyPolicy", "successfulJobsHistoryLimit",
                                 "failedJobsHistoryLimit", "jobTemplate", "suspend", "timeZone",
                                 "startingDeadlineSeconds"}
    assert len(cron["spec"]["schedule"].split()) == 5 and cron["spec"]["concurrencyPolicy"] == "Forbid"
    template = cron["spec"]["jobTemplate"]["spec"]["template"]
    assert _errors(_pod_template_schema(schemas), template) == []
    assert template["spec"]["containers"][0]["command"][:3] == ["python", "-m", "tutor_cluster.pipelines.retention"]
    rules = schemas["RayService"]["properties"]["spec"]["properties"]["rayClusterConfig"]["properties"][
        "networkPolicy"]["properties"]["head"]["properties"]["ingressRules"]
    for policy in _docs("networkpolicy.yaml"):
        assert (policy["apiVersion"], policy["kind"]) == ("networking.k8s.io/v1", "NetworkPolicy")
        assert set(policy["spec"]) == {"podSelector", "policyTypes", "ingress"}
        assert policy["spec"]["policyTypes"] == ["Ingress"]
        assert _errors(rules, policy["spec"]["ingress"]) == []
    (monitor,) = _docs("podmonitor.yaml")
    assert (monitor["apiVersion"], monitor["kind"]) == ("monitoring.coreos.com/v1", "PodMonitor")
    assert set(monitor["spec"]) == {"jobLabel", "selector", "podMetricsEndpoints"}
    assert monitor["spec"]["podMetricsEndpoints"][0]["port"] == "metrics"


def test_serve_configs_are_what_serve_deploy_accepts() -> None:
    for name in ("serve.yaml", "serve.local.yaml"):
        ServeDeploySchema.model_validate(yaml.safe_load((REPO_ROOT / "deployments" / name).read_text()))
    (service,) = _docs("rayservice.yaml")
    embedded = yaml.safe_load(service["spec"]["serveConfigV2"])
    assert embedded == yaml.safe_load((REPO_ROOT / "deployments" / "serve.yaml").read_text())
    ServeDeploySchema.model_validate(embedded)
    with pytest.raises(ValueError, match="remote URIs"):  # the control: what `serve deploy` refuses
        ServeDeploySchema.model_validate({**embedded, "applications": [
            {**embedded["applications"][0], "runtime_env": {"working_dir": "."}}]})


def _groups() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    (service,) = _docs("rayservice.yaml")
    cluster = service["spec"]["rayClusterConfig"]
    return cluster["headGroupSpec"], cluster["workerGroupSpecs"]


def _offers(group: dict[str, Any]) -> dict[str, float]:
    """The Ray resources a node of the group has (the group's ``resources`` override what Ray would detect); a
    GPU Ray is told of is a GPU the container gets from Kubernetes."""
    container = group["template"]["spec"]["containers"][0]
    offer = {k: float(v) for k, v in group.get("resources", {}).items()}
    assert offer.get("GPU", 0) == float(container["resources"]["limits"].get("nvidia.com/gpu", 0)), group["groupName"]
    requested = container["resources"]["requests"]["cpu"]
    assert float(requested.removesuffix("m")) / 1000 < offer["CPU"], "the pod must fit on the node it stands for"
    return offer


def test_every_replica_of_every_region_fits_a_worker_group_and_none_the_head() -> None:
    head, workers = _groups()
    assert head["rayStartParams"]["num-cpus"] == "0" and "resources" not in head
    offers = [_offers(g) for g in workers]
    for settings in production_regions():
        region = settings.privacy.region
        for name, request in replica_requests(settings).items():
            fits = [g["groupName"] for g, o in zip(workers, offers)
                    if all(o.get(k, 0) >= v for k, v in request.items() if v)]
            assert fits, f"{region} {name} asks for {request}: no worker group offers it"
            assert all(f"region-{region}" in g["resources"] for g in workers if g["groupName"] in fits)
    gpu = [g for g, o in zip(workers, offers) if o.get("GPU")]
    assert gpu and all(g["template"]["spec"]["tolerations"] for g in gpu)
    assert all(g["template"]["spec"]["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-L4"} for g in gpu)


def test_a_regions_secrets_reach_only_its_own_nodes_and_no_secret_is_rendered() -> None:
    head, workers = _groups()
    assert not head["template"]["spec"]["containers"][0]["volumeMounts"]
    for group in workers:
        regions = {k.removeprefix("region-") for k in group["resources"] if k.startswith("region-")}
        mounted = {m["mountPath"].rsplit("/", 1)[1] for m in group["template"]["spec"]["containers"][0]["volumeMounts"]
                   if m["mountPath"].startswith(kuberay.SECRETS_DIR)}
        assert mounted == regions, group["groupName"]
    production = yaml.safe_load((REPO_ROOT / "tutor_cluster" / "defaults" / "configs" / "production.yaml").read_text())
    for region, spec in production["regions"].items():  # the settings read them where they are mounted
        assert spec["privacy"]["vault_kek_file"].startswith(f"{kuberay.SECRETS_DIR}/{region}/")
    for path in OUT.glob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            assert doc["kind"] != "Secret" and "stringData" not in str(doc), path.name


def test_the_dashboard_is_reachable_only_from_the_operator_and_the_clusters_own_pods() -> None:
    """Both clusters (the service's and the re-embedding job's) are behind policies: each admits its own pods on
    every port, the operator on the dashboard, Prometheus on metrics, and the ingress controller on Serve's port
    of the service's workers; nothing else."""
    policies = {p["metadata"]["name"].removeprefix(f"{kuberay.NAME}-"): p for p in _docs("networkpolicy.yaml")}
    assert set(policies) == {"head", "worker", "reembed"}
    dashboard = kuberay.PORTS["dashboard"]
    operator = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kuberay-operator"}}}]
    for name, policy in policies.items():
        own = kuberay.REEMBED_LABELS if name == "reembed" else kuberay.SERVICE_LABELS
        assert own.items() <= policy["spec"]["podSelector"]["matchLabels"].items()
        for rule in policy["spec"]["ingress"]:
            ports = {p["port"] for p in rule.get("ports", [])}
            if not ports:  # all ports: only the same cluster's own pods
                assert rule["from"] == [{"podSelector": {"matchLabels": own}}], name
            elif dashboard in ports:
                assert name in ("head", "reembed") and rule["from"] == operator
            else:
                assert ports <= {kuberay.PORTS["metrics"], kuberay.PORTS["serve"]}, (name, ports)
                assert kuberay.PORTS["serve"] not in ports or name == "worker"
    (job,) = _docs("rayjob-reembed.yaml")
    assert job["spec"]["submissionMode"] == "SidecarMode"  # no submitter pod for the policy to shut out
    (service,) = _docs("rayservice.yaml")
    assert service["spec"]["rayClusterConfig"]["authOptions"] == {"mode": "token"}
    # the job and the sweep are not the service's pods: its policies admit neither
    (job,) = _docs("rayjob-reembed.yaml")
    (cron,) = _docs("cronjob-retention.yaml")
    others = [job["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["metadata"]["labels"],
              cron["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]]
    service_pods = kuberay.SERVICE_LABELS.items()
    assert all(not service_pods <= labels.items() for labels in others)
    head_labels = service["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["metadata"]["labels"]
    assert service_pods <= head_labels.items()


def test_pods_run_as_a_numeric_non_root_user_and_the_job_reads_its_curriculum_where_its_driver_runs() -> None:
    """The kubelet checks runAsNonRoot only against a numeric user; a RayJob's entrypoint runs on its head."""
    docs = [d for name in ("rayservice.yaml", "rayjob-reembed.yaml", "cronjob-retention.yaml") for d in _docs(name)]
    containers = [c for d in docs for c in _containers(d)]
    assert containers and all(c["securityContext"]["runAsUser"] == kuberay.RUN_AS for c in containers)
    assert f"USER {kuberay.RUN_AS}:" in (REPO_ROOT / "Dockerfile").read_text()
    (job,) = _docs("rayjob-reembed.yaml")
    source = job["spec"]["entrypoint"].split("--source ")[1].split()[0]
    head = job["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert any(m["mountPath"] == source for m in head["volumeMounts"]), head["volumeMounts"]


def _containers(node: Any) -> list[dict[str, Any]]:
    """Every container spec anywhere in a manifest."""
    if isinstance(node, dict):
        found = list(node["containers"]) if isinstance(node.get("containers"), list) else []
        return found + [c for k, v in node.items() if k != "containers" for c in _containers(v)]
    if isinstance(node, list):
        return [c for v in node for c in _containers(v)]
    return []


def test_the_renderer_refuses_missing_files_with_exit_2(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "tutor_cluster.app.kuberay", "--serve", str(tmp_path / "nope.yaml"),
                        "--out", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "nope.yaml" in r.stderr, r.stderr
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "serve.yaml").write_text("[]\n")  # YAML, but not a Serve config
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "tutor_cluster.app.kuberay", "--serve", str(tmp_path / "serve.yaml"),
                        "--out", str(out)], capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "not a Serve config" in r.stderr, r.stderr
    assert not out.exists()
