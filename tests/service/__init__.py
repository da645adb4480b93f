"""The service tier: real Redis (tests/conftest.py) and a local Ray on loopback, started the way the service
starts it (``tutor_cluster.runtime``), one per test module, shut down when the module ends."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def local_ray(num_cpus: int, namespace: str | None = None) -> Iterator[None]:
    import ray

    from tutor_cluster import runtime

    runtime.init_local_ray(num_cpus=num_cpus, namespace=namespace, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()
