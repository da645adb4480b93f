"""The service tier: real Redis (tests/conftest.py) and a local Ray on loopback, started the way the service
starts it (``tutor_cluster.runtime``), one per test module, shut down when the module ends."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def local_ray(num_cpus: int, namespace: str | None = None) -> Iterator[None]:
    """A local Ray for one module; on the way out, every socket of this process and its children (Ray's GCS,
    raylet, agents, workers, Ray Data) must have stayed on loopback."""
    import ray

    from tutor_cluster import runtime
    from tutor_cluster.app import sockets

    runtime.init_local_ray(num_cpus=num_cpus, namespace=namespace, log_to_driver=False)
    try:
        yield
        me = os.getpid()
        exposed = sockets.exposed_sockets({me} | sockets.descendants({me}))
        assert not exposed, "non-loopback sockets:\n" + "\n".join(map(str, exposed))
    finally:
        ray.shutdown()
