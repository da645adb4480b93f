"""The process runtime: the environment every process sets before Ray starts, and the one recipe for a local
Ray (and everything it starts: Serve, vLLM, Ray Data) that binds and connects on loopback only.

Used by the CLI, the app, the jobs, the benchmarks and the tests, so they all run the same Ray. Nothing here
imports Ray at module level.
"""

from __future__ import annotations

import os
import sys
from typing import Any

#: The only address a local service uses.
LOOPBACK = "127.0.0.1"

#: Environment for Ray/Serve processes in every mode, set before Ray starts (workers inherit it). Measured in
#: docs/benchmarks.md (P2): Serve's throughput-optimised mode (gRPC between handles, user code on the replica's
#: loop, buffered access logs) lifts streaming tokens/s from 0.70x to 0.87x of the bare engine on 2 cores.
#: Direct ingress stays off so HTTP is only served by the proxy on server.host.
RAY_ENV_DEFAULTS = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
    "RAY_SERVE_ENABLE_DIRECT_INGRESS": "0",
    "HF_HUB_OFFLINE": "1",
}

#: Extra environment of a *local* service only (never of a process joining a cluster), found in the sources of
#: our pinned versions (docs/security.md has the details):
#: - Ray 2.60 turns an explicit ``_node_ip_address="127.0.0.1"`` into the machine's routable address
#:   (``services.resolve_ip_for_localhost``) unless multi-node clusters are switched off; with them off every
#:   Ray process (GCS, raylet, agents, workers, Serve, Ray Data) uses and binds the loopback node address.
#: - vLLM's CPU worker listened on 0.0.0.0 (its torch.distributed process groups); ``GLOO_SOCKET_IFNAME`` /
#:   ``TP_SOCKET_IFNAME`` pin those to ``lo``, and vLLM's own host and loopback addresses are pinned too.
#: Idle CPU (docs/benchmarks.md, "Idle CPU"): Serve's controller loop every 0.5 s instead of 0.1 s and its
#: handles' metrics cache flushed every 1 s instead of 0.1 s (deployments and health react up to 0.4 s later);
#: no pool of idle pre-started workers kept (each costs ~0.01 core doing nothing; our actors and replicas are
#: long-lived, and a crashed actor gets a fresh process either way); node stats every 10 s instead of 5 s.
#: And one for a busy machine: the raylet aborts when its agents have not registered within
#: ``agent_register_timeout_ms``; on a loaded 2-core machine it aborted after ~24 s while the dashboard agent took
#: 44 s to start.
LOCAL_MARKER = "TUTOR_LOCAL_LOOPBACK"
LOCAL_ENV = {
    LOCAL_MARKER: "1",  # read by bind_replica_grpc_on_loopback in Serve replicas
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "VLLM_HOST_IP": LOOPBACK,
    "VLLM_LOOPBACK_IP": LOOPBACK,
    "GLOO_SOCKET_IFNAME": "lo",
    "TP_SOCKET_IFNAME": "lo",
    "RAY_SERVE_CONTROL_LOOP_INTERVAL_S": "0.5",
    "RAY_SERVE_METRICS_EXPORT_INTERVAL_MS": "1000",
    "RAY_num_workers_soft_limit": "0",
    "REPORTER_UPDATE_INTERVAL_MS": "10000",
    "RAY_agent_register_timeout_ms": "180000",
}


class LoopbackError(RuntimeError):
    """A local Ray came up on an address other than loopback (refused: the service would be exposed)."""


def apply_ray_env(*, local: bool = True) -> None:
    """Set the Ray environment (and, for a local service, :data:`LOCAL_ENV`) unless already set.

    Call before the process first imports ray where possible; :func:`init_local_ray` also handles a process
    that imported ray earlier.
    """
    for key, value in RAY_ENV_DEFAULTS.items():
        os.environ.setdefault(key, value)
    if local:
        for key, value in LOCAL_ENV.items():
            os.environ.setdefault(key, value)


_WILDCARDS = ("[::]:", "0.0.0.0:", ":::")


def bind_replica_grpc_on_loopback() -> None:
    """Call in the ``__init__`` of every Serve deployment of the app (and at import of its module). ``__init__``
    is what counts: a class Serve receives by value (e.g. one made by ``@serve.ingress``) does not import its
    module in the replica, and ``__init__`` runs before the replica starts its gRPC server. Idempotent.

    Ray Serve 2.60 replicas bind their inter-deployment gRPC server on ``[::]:0`` (hard-coded in
    ``serve/_private/replica.py``, no setting; Ray's ``worker_process_setup_hook`` cannot reach it: it is only
    honoured job-wide, where it slowed every worker's start by ~0.7 s here). In a replica of a local service
    this makes that bind 127.0.0.1, which is where callers on a loopback node connect anyway. A no-op anywhere
    else: in cluster mode, in the driver, in non-replica workers.
    """
    if os.environ.get(LOCAL_MARKER) != "1":
        return
    replica = sys.modules.get("ray.serve._private.replica")
    if replica is None:
        return
    original = replica.add_port_to_grpc_server
    if getattr(original, "_tutor_loopback", False):
        return

    def add_port_on_loopback(server: Any, address: str) -> int:
        for wildcard in _WILDCARDS:
            if address.startswith(wildcard):
                address = f"{LOOPBACK}:{address[len(wildcard):]}"
                break
        return original(server, address)

    add_port_on_loopback._tutor_loopback = True  # type: ignore[attr-defined]
    replica.add_port_to_grpc_server = add_port_on_loopback


def init_local_ray(
    *,
    num_cpus: int | None,
    object_store_memory_mb: int = 256,
    include_dashboard: bool = False,
    dashboard_port: int | None = None,
    metrics_export_port: int | None = None,
    namespace: str | None = None,
    log_to_driver: bool = True,
    resources: dict[str, float] | None = None,
) -> None:
    """Start a local Ray whose every process binds and connects on 127.0.0.1; raise LoopbackError otherwise."""
    apply_ray_env(local=True)
    import ray
    from ray._private import ray_constants

    # The constant is read when ray is first imported; a process that imported ray before the environment was
    # set (e.g. a test module) still must not resolve loopback to the routable address.
    ray_constants.ENABLE_RAY_CLUSTER = False
    kwargs: dict[str, Any] = {}
    if include_dashboard:
        kwargs.update(dashboard_host=LOOPBACK, dashboard_port=dashboard_port)
    if metrics_export_port is not None:
        kwargs["_metrics_export_port"] = metrics_export_port
    ray.init(
        num_cpus=num_cpus,
        object_store_memory=object_store_memory_mb * 1024 * 1024,
        include_dashboard=include_dashboard,
        namespace=namespace,
        log_to_driver=log_to_driver,
        resources=resources,
        _node_ip_address=LOOPBACK,
        **kwargs,
    )
    node_ip = ray.util.get_node_ip_address()
    if node_ip != LOOPBACK:
        ray.shutdown()
        raise LoopbackError(f"local Ray came up on {node_ip}, not {LOOPBACK}; refusing to run exposed")


def join_ray(address: str, *, namespace: str | None = None, log_to_driver: bool = True) -> None:
    """Join an existing cluster (its own addresses; token auth as the cluster is configured)."""
    apply_ray_env(local=False)
    import ray

    ray.init(address=address, namespace=namespace, log_to_driver=log_to_driver)


def serve_request_id() -> str | None:
    """The Serve request id (the client's X-Request-ID, or one Serve made); None outside a request."""
    try:
        from ray.serve.context import _get_serve_request_context

        return _get_serve_request_context().request_id or None
    except Exception:  # noqa: BLE001 - private API: tracing must never fail a request
        return None


class DeploymentRef:
    """A deployment of another Serve application (another region's model tiers), bound by name and resolved to a
    handle inside the replica that calls it: the two applications deploy independently."""

    def __init__(self, app: str, deployment: str) -> None:
        self.app, self.deployment = app, deployment

    def __repr__(self) -> str:
        return f"DeploymentRef({self.app!r}, {self.deployment!r})"

    def handle(self) -> Any:
        from ray import serve

        return serve.get_deployment_handle(self.deployment, self.app, _check_exists=False)


def resolve_handle(handle: Any) -> Any:
    """A handle as given, or the handle a :class:`DeploymentRef` names."""
    return handle.handle() if isinstance(handle, DeploymentRef) else handle
