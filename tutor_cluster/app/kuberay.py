# size: one renderer for the five manifests, which share the labels, ports, containers and mounts
"""Kubernetes (KubeRay) manifests rendered from the same sources as `ray up`: the Serve config and cluster.yaml.

    python -m tutor_cluster.app.kuberay [--serve deployments/serve.yaml] [--cluster cluster.yaml]
                                        [--image IMAGE] [--out deployments/kuberay]

writes into ``--out``:

- ``rayservice.yaml``: the service. ``serveConfigV2`` is the Serve config itself; the head runs no tutoring work;
  one worker group per cluster.yaml node type, offering the same Ray resources (custom resources as the group's
  ``resources``, CPUs and GPUs as the container's), min/max replicas as min/max workers; Ray token auth
  (KubeRay makes the token Secret); each region's secret files mounted only on that region's nodes.
- ``networkpolicy.yaml``: ingress to the Ray pods only from the cluster's own pods, the KubeRay operator (the
  dashboard, which grants code execution), the ingress controller (Serve's port) and Prometheus (metrics).
- ``rayjob-reembed.yaml``: curriculum re-embedding as a RayJob on a cluster of its own, removed when done.
- ``cronjob-retention.yaml``: the retention sweep (no Ray needed) nightly, as a Kubernetes CronJob.
- ``podmonitor.yaml``: Prometheus (operator) scraping every Ray pod's metrics port.

Secrets are referenced, never rendered: create them with ``kubectl create secret`` (docs/operations.md). A test
renders the files again and compares, and validates them against KubeRay's CRD schemas.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from tutor_cluster.runtime import RAY_ENV_DEFAULTS

RAY_VERSION = "2.60.0"
NAME = "tutor-cluster"
#: The image `docker build -t tutor-cluster:0.1.0 .` makes; push it to your registry and render with --image.
DEFAULT_IMAGE = "tutor-cluster:0.1.0"
#: Labels on every pod this renders (the pod monitor selects by them); each kind of pod also names its component
#: (the network policies protect the service's: "service").
APP_LABELS = {"app.kubernetes.io/name": NAME}
SERVICE_LABELS = {**APP_LABELS, "app.kubernetes.io/component": "service"}
REEMBED_LABELS = {**APP_LABELS, "app.kubernetes.io/component": "reembed"}
#: The image's unprivileged user (rayproject/ray's `ray`, uid 1000): numeric, so the kubelet can check runAsNonRoot.
RUN_AS = 1000
#: Share of a node's CPUs and memory a pod requests (the rest is the kubelet's and the system's).
ALLOCATABLE = 0.85
#: GPU node label per accelerator (NVIDIA GPU feature discovery's), so engines land on the GPU type they ask for.
#: (Only accelerators sold as one product; for another, add the label values your nodes carry.)
GPU_PRODUCTS = {"L4": "NVIDIA-L4", "A10G": "NVIDIA-A10G"}
#: Ports of a Ray pod (KubeRay's names: the metrics port is what the PodMonitor scrapes); workers have the last two.
PORTS = {"gcs-server": 6379, "dashboard": 8265, "client": 10001, "serve": 8000, "metrics": 8080}
WORKER_PORTS = ("serve", "metrics")
#: Memory per CPU requested for a pool without GPUs / with GPUs (cluster.yaml names instance types, not memory).
MEMORY_GIB_PER_CPU = {"cpu": 2, "gpu": 4}
SECRETS_DIR = "/etc/tutor-cluster/secrets"
ANALYTICS_DIR = "/mnt/analytics"


class _Dumper(yaml.SafeDumper):
    """Plain YAML for people: no anchors, multi-line strings (serveConfigV2) as literal blocks."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


_Dumper.add_representer(str, lambda dumper, text: dumper.represent_scalar(
    "tag:yaml.org,2002:str", text, style="|" if "\n" in text else None))


def _dump(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, width=120)


def _quantity(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _env() -> list[dict[str, Any]]:
    """What every tutoring container gets: Ray's settings as `ray up` sets them, and the secrets the settings
    read from the environment (the API keys' hashes, the Qdrant key), from Kubernetes Secrets."""
    env: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in RAY_ENV_DEFAULTS.items()]
    env.append({"name": "TUTOR__AUTH__API_KEYS",
                "valueFrom": {"secretKeyRef": {"name": f"{NAME}-api-keys", "key": "api_keys"}}})
    env.append({"name": "QDRANT_API_KEY",
                "valueFrom": {"secretKeyRef": {"name": f"{NAME}-qdrant", "key": "api_key", "optional": True}}})
    return env


def _region_mounts(regions: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(volumes, mounts) of the analytics volume (telemetry.events.path) and the regions' secret files (pseudonym
    keys, vault KEK), each region's only where it is named."""
    volumes: list[dict[str, Any]] = [{"name": "analytics", "persistentVolumeClaim": {"claimName": f"{NAME}-analytics"}}]
    mounts: list[dict[str, Any]] = [{"name": "analytics", "mountPath": ANALYTICS_DIR}]
    for region in regions:
        volumes.append({"name": f"secrets-{region}", "secret": {"secretName": f"{NAME}-{region}", "defaultMode": 0o400}})
        mounts.append({"name": f"secrets-{region}", "mountPath": f"{SECRETS_DIR}/{region}", "readOnly": True})
    return volumes, mounts


def _container(name: str, image: str, *, cpus: float, gpus: float, mounts: list[dict[str, Any]],
               kind: str, ports: tuple[str, ...] = WORKER_PORTS) -> dict[str, Any]:
    """A container sized to fit on a node of ``cpus`` CPUs (requests: :data:`ALLOCATABLE` of it; Ray is told the
    node's whole count by the group's ``resources``)."""
    memory = f"{max(2, int(cpus * MEMORY_GIB_PER_CPU[kind] * ALLOCATABLE))}Gi"
    limits: dict[str, str] = {"memory": memory}
    if gpus:
        limits["nvidia.com/gpu"] = _quantity(gpus)
    return {"name": name, "image": image, "env": _env(),
            "ports": [{"name": n, "containerPort": PORTS[n]} for n in ports],
            "resources": {"requests": {"cpu": f"{max(500, int(cpus * ALLOCATABLE * 1000))}m", "memory": memory},
                          "limits": limits},
            "volumeMounts": mounts,
            "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True, "runAsUser": RUN_AS,
                                "capabilities": {"drop": ["ALL"]}}}


def _head(image: str, labels: dict[str, str], *, volumes: list[dict[str, Any]] | None = None,
          mounts: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [_container("ray-head", image, cpus=4, gpus=0, mounts=mounts or [],
                                                      kind="cpu", ports=tuple(PORTS))]}
    if volumes:
        spec["volumes"] = volumes
    return {
        # no tutoring work on the head; the dashboard listens in the pod (the operator deploys through it) and
        # only the operator and the cluster's own pods may reach it (networkpolicy.yaml), with Ray's token
        "rayStartParams": {"num-cpus": "0", "dashboard-host": "0.0.0.0"},
        "template": {"metadata": {"labels": dict(labels)}, "spec": spec},
    }


def _worker_groups(cluster: dict[str, Any], image: str) -> list[dict[str, Any]]:
    groups = []
    head = cluster["head_node_type"]
    for name, node in cluster["available_node_types"].items():
        if name == head:
            continue
        res = dict(node.get("resources", {}))
        cpus, gpus = float(res.pop("CPU", 1)), float(res.pop("GPU", 0))
        regions = sorted(k.removeprefix("region-") for k in res if k.startswith("region-"))
        volumes, mounts = _region_mounts(regions)
        spec: dict[str, Any] = {"containers": [_container("ray-worker", image, cpus=cpus, gpus=gpus, mounts=mounts,
                                                          kind="gpu" if gpus else "cpu")],
                                "volumes": volumes}
        if gpus:
            spec["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
            accelerators = [k.split(":", 1)[1] for k in res if k.startswith("accelerator_type:")]
            if accelerators and accelerators[0] in GPU_PRODUCTS:
                spec["nodeSelector"] = {"nvidia.com/gpu.product": GPU_PRODUCTS[accelerators[0]]}
        groups.append({
            "groupName": name.replace("_", "-"),
            "replicas": node.get("min_workers", 0), "minReplicas": node.get("min_workers", 0),
            "maxReplicas": node.get("max_workers", node.get("min_workers", 0)),
            "rayStartParams": {},
            # what Ray is told the node has: cluster.yaml's counts, whatever the pod requests from Kubernetes
            "resources": {k: _quantity(v) for k, v in sorted({**res, "CPU": cpus, **({"GPU": gpus} if gpus else {})
                                                              }.items())},
            "template": {"metadata": {"labels": dict(SERVICE_LABELS)}, "spec": spec},
        })
    return groups


def rayservice(serve_config: dict[str, Any], cluster: dict[str, Any], image: str) -> dict[str, Any]:
    return {
        "apiVersion": "ray.io/v1", "kind": "RayService",
        "metadata": {"name": NAME, "labels": dict(APP_LABELS)},
        "spec": {
            "excludeHeadPodFromServeSvc": True,
            "serveConfigV2": _dump(serve_config),
            "rayClusterConfig": {
                "rayVersion": RAY_VERSION,
                "enableInTreeAutoscaling": True,
                "autoscalerOptions": {"idleTimeoutSeconds": int(cluster.get("idle_timeout_minutes", 10)) * 60},
                "authOptions": {"mode": "token"},
                "headGroupSpec": _head(image, SERVICE_LABELS),
                "workerGroupSpecs": _worker_groups(cluster, image),
            },
        },
    }


def network_policies(operator_namespace: str, ingress_namespace: str, monitoring_namespace: str) -> list[dict[str, Any]]:
    def ns(name: str) -> dict[str, Any]:
        return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}

    metrics = {"from": [ns(monitoring_namespace)], "ports": [{"protocol": "TCP", "port": PORTS["metrics"]}]}
    operator = {"from": [ns(operator_namespace)], "ports": [{"protocol": "TCP", "port": PORTS["dashboard"]}]}

    def policy(name: str, labels: dict[str, str], node_type: str | None, extra: list[dict[str, Any]]
               ) -> dict[str, Any]:
        """Ingress to the pods with ``labels`` (of one node type): from each other, Prometheus, and ``extra``."""
        selected = {**labels, "ray.io/node-type": node_type} if node_type else dict(labels)
        return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": {"name": f"{NAME}-{name}", "labels": dict(APP_LABELS)},
                "spec": {"podSelector": {"matchLabels": selected}, "policyTypes": ["Ingress"],
                         "ingress": [{"from": [{"podSelector": {"matchLabels": dict(labels)}}]}, metrics, *extra]}}

    return [
        policy("head", SERVICE_LABELS, "head", [operator]),
        policy("worker", SERVICE_LABELS, "worker",
               [{"from": [ns(ingress_namespace)], "ports": [{"protocol": "TCP", "port": PORTS["serve"]}]}]),
        # the re-embedding job's own cluster: the job is submitted from a sidecar of its head; the operator
        # follows it through the dashboard
        policy("reembed", REEMBED_LABELS, None, [operator]),
    ]


def _job_cluster(image: str, *, workers: int, cpus: float) -> dict[str, Any]:
    """A cluster of its own for a RayJob (its pods are not the service's: the service's network policies do not
    admit them). The curriculum is mounted where the job's driver reads it (the head) and on the workers."""
    labels = REEMBED_LABELS
    volumes = [{"name": "curriculum", "persistentVolumeClaim": {"claimName": f"{NAME}-curriculum"}}]
    mounts = [{"name": "curriculum", "mountPath": "/curriculum", "readOnly": True}]
    return {
        "rayVersion": RAY_VERSION,
        "authOptions": {"mode": "token"},
        "headGroupSpec": _head(image, labels, volumes=volumes, mounts=mounts),
        "workerGroupSpecs": [{
            "groupName": "embed-cpu", "replicas": workers, "minReplicas": workers, "maxReplicas": workers,
            "rayStartParams": {},
            "template": {"metadata": {"labels": labels}, "spec": {
                "containers": [_container("ray-worker", image, cpus=cpus, gpus=0, kind="cpu", mounts=mounts)],
                "volumes": volumes}},
        }],
    }


def reembed_job(settings_name: str, image: str) -> dict[str, Any]:
    return {
        "apiVersion": "ray.io/v1", "kind": "RayJob",
        "metadata": {"name": f"{NAME}-reembed", "labels": dict(APP_LABELS)},
        "spec": {
            "entrypoint": f"python -m tutor_cluster.pipelines.reembed --config {settings_name} --source /curriculum "
                          "--actors 2",
            "shutdownAfterJobFinishes": True,
            "ttlSecondsAfterFinished": 3600,
            "activeDeadlineSeconds": 7200,
            "submissionMode": "SidecarMode",  # submitted from the head pod: no extra pod to let through
            "rayClusterSpec": _job_cluster(image, workers=2, cpus=4),
        },
    }


def retention_cronjob(settings_name: str, regions: list[str], image: str, schedule: str) -> dict[str, Any]:
    volumes, mounts = _region_mounts(regions)
    container = _container("retention", image, cpus=1, gpus=0, mounts=mounts, kind="cpu", ports=())
    container["command"] = ["python", "-m", "tutor_cluster.pipelines.retention", "--config", settings_name]
    return {
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": f"{NAME}-retention", "labels": dict(APP_LABELS)},
        "spec": {"schedule": schedule, "concurrencyPolicy": "Forbid", "successfulJobsHistoryLimit": 3,
                 "failedJobsHistoryLimit": 3,
                 "jobTemplate": {"spec": {"backoffLimit": 2, "template": {
                     "metadata": {"labels": {**APP_LABELS, "app.kubernetes.io/component": "retention"}},
                     "spec": {"restartPolicy": "OnFailure", "containers": [container], "volumes": volumes}}}}},
    }


def pod_monitor(release: str) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor",
        "metadata": {"name": NAME, "labels": {**APP_LABELS, "release": release}},
        "spec": {"jobLabel": "ray", "selector": {"matchLabels": dict(APP_LABELS)},
                 "podMetricsEndpoints": [{"port": "metrics", "relabelings": [
                     {"action": "replace", "sourceLabels": ["__meta_kubernetes_pod_label_ray_io_cluster"],
                      "targetLabel": "ray_io_cluster"}]}]},
    }


HEADER = ("# Rendered by `python -m tutor_cluster.app.kuberay` from {sources}; do not edit by hand (a test renders it\n"
          "# again and compares). docs/operations.md: what to create first (namespace, Secrets, volumes).\n")


def render(serve_file: Path, cluster_file: Path, *, image: str = DEFAULT_IMAGE,
           operator_namespace: str = "kuberay-operator", ingress_namespace: str = "ingress-nginx",
           monitoring_namespace: str = "monitoring", prometheus_release: str = "prometheus",
           retention_schedule: str = "17 3 * * *") -> dict[str, str]:
    """File name → YAML text of every manifest."""
    from tutor_cluster.config.settings import load_settings

    serve_config = yaml.safe_load(serve_file.read_text())
    cluster = yaml.safe_load(cluster_file.read_text())
    if not isinstance(serve_config, dict) or not isinstance(serve_config.get("applications"), list):
        raise ValueError(f"{serve_file}: not a Serve config (a mapping with 'applications')")
    if not isinstance(cluster, dict) or not isinstance(cluster.get("available_node_types"), dict):
        raise ValueError(f"{cluster_file}: not a cluster launcher config (a mapping with 'available_node_types')")
    names = {(app.get("args") or {}).get("config") for app in serve_config["applications"] if isinstance(app, dict)}
    if len(names) != 1:
        raise ValueError(f"{serve_file}: every application must read the same settings file, not {sorted(names)}")
    settings_name = names.pop()
    regions = load_settings(settings_name, env={}).region_names()
    sources = f"{serve_file.name} and {cluster_file.name}"

    def doc(*objects: dict[str, Any]) -> str:
        return HEADER.format(sources=sources) + "---\n".join(_dump(o) for o in objects)

    return {
        "rayservice.yaml": doc(rayservice(serve_config, cluster, image)),
        "networkpolicy.yaml": doc(*network_policies(operator_namespace, ingress_namespace, monitoring_namespace)),
        "rayjob-reembed.yaml": doc(reembed_job(settings_name, image)),
        "cronjob-retention.yaml": doc(retention_cronjob(settings_name, regions, image, retention_schedule)),
        "podmonitor.yaml": doc(pod_monitor(prometheus_release)),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tutor_cluster.app.kuberay", description=__doc__.split("\n\n")[0])
    p.add_argument("--serve", type=Path, default=Path("deployments/serve.yaml"), help="Serve config (serveConfigV2).")
    p.add_argument("--cluster", type=Path, default=Path("cluster.yaml"), help="Node types (worker groups).")
    p.add_argument("--image", default=DEFAULT_IMAGE, help=f"Container image (default {DEFAULT_IMAGE}).")
    p.add_argument("--out", type=Path, default=Path("deployments/kuberay"), help="Folder to write into.")
    args = p.parse_args(argv)
    for path in (args.serve, args.cluster):
        if not path.is_file():
            print(f"kuberay: no such file: {path}", file=sys.stderr)
            return 2
    try:
        files = render(args.serve, args.cluster, image=args.image)
    except (ValueError, KeyError, TypeError, yaml.YAMLError) as exc:
        print(f"kuberay: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (args.out / name).write_text(text)
    print(f"kuberay: wrote {', '.join(sorted(files))} into {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
