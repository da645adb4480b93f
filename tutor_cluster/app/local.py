"""Running the app on a local (or existing) Ray cluster: start, wait until ready, stop cleanly."""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tutor_cluster import constants, runtime
from tutor_cluster.api.auth import hash_key, new_key
from tutor_cluster.config.auth import ALL_SCOPES, ApiKey
from tutor_cluster.config.settings import Settings


@dataclass
class RunState:
    pid: int
    url: str
    config: str
    key_file: str | None

    @staticmethod
    def path() -> Path:
        return constants.STATE_DIR / "state.json"

    def save(self) -> None:
        self.path().parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path().with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self)))
        tmp.replace(self.path())

    @classmethod
    def load(cls) -> "RunState | None":
        try:
            return cls(**json.loads(cls.path().read_text()))
        except (FileNotFoundError, json.JSONDecodeError, TypeError):
            return None

    @classmethod
    def clear(cls) -> None:
        cls.path().unlink(missing_ok=True)


def port_free(host: str, port: int) -> bool:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs; an exited process its parent has not reaped yet (zombie) counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def local_key() -> str:
    """The local API key: TUTOR_API_KEY, else one generated once and kept in a 0600 file."""
    if constants.API_KEY:
        return constants.API_KEY
    path = constants.LOCAL_KEY_FILE
    if path.is_file():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = new_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    return key


def with_local_key(settings: Settings) -> tuple[Settings, str | None]:
    """Settings with no keys get the local key (all scopes); configured keys are left alone."""
    if settings.auth.api_keys and not constants.API_KEY:
        return settings, None
    key = local_key()
    entry = ApiKey(id="local", sha256=hash_key(key), tenant="default", role="platform_admin", scopes=list(ALL_SCOPES))
    keys = [*settings.auth.api_keys, entry]
    auth = settings.auth.model_copy(update={"api_keys": keys})
    return settings.model_copy(update={"auth": auth}), key


def http_get(url: str, key: str | None = None, timeout: float = 5) -> tuple[int, Any]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"} if key else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read() or b"null")
        except json.JSONDecodeError:
            return exc.code, None
    except (urllib.error.URLError, OSError, json.JSONDecodeError):
        return 0, None


def start_ray(settings: Settings) -> None:
    """Start a local Ray on loopback only (or join ``ray.address``) with our environment defaults."""
    rs = settings.ray
    if rs.address is None:
        runtime.init_local_ray(
            num_cpus=rs.num_cpus, resources=region_resources(settings),
            object_store_memory_mb=rs.object_store_memory_mb,
            include_dashboard=rs.include_dashboard,
            dashboard_port=rs.dashboard_port,
            metrics_export_port=rs.metrics_export_port,
            namespace=rs.namespace,
        )
    else:
        runtime.join_ray(rs.address, namespace=rs.namespace)


def ensure_curriculum(settings: Settings) -> None:
    """Embed ``knowledge.source`` with the re-embed pipeline when no curriculum version is live yet."""
    ks = settings.knowledge
    if not ks.enabled or ks.source is None:
        return
    from tutor_cluster.knowledge.store import Collections, open_client
    from tutor_cluster.pipelines import reembed

    client = open_client(ks.store)
    try:
        live = Collections(client, ks.store.alias).live()
    finally:
        client.close()
    if live is not None:
        return
    print(f"[up] embedding the curriculum in {ks.source} (first start only)", flush=True)
    summary = reembed.run(ks, ks.source, progress=lambda line: print(f"[up] {line}", flush=True))
    print(f"[up] curriculum version {summary.version}: {summary.chunks} chunks in {summary.seconds:.1f} s", flush=True)


def region_resources(settings: Settings) -> dict[str, float] | None:
    """What a local Ray offers so every region's replicas can run on this one machine."""
    from tutor_cluster.config.regions import REGION_RESOURCE_PER_NODE, resource_of

    return {resource_of(name, region): REGION_RESOURCE_PER_NODE
            for name, region in settings.regions.items()} or None


def start(settings: Settings) -> list[str]:
    """Start (or join) Ray, start Serve on the configured host/port, deploy every region's application. Returns
    their URLs, in the order of ``settings.region_names()``."""
    # before the first `import ray.serve`: Serve reads these at import, in this process too
    runtime.apply_ray_env(local=settings.ray.address is None)
    from ray import serve

    from tutor_cluster.app.builder import build_region_apps

    start_ray(settings)
    ensure_curriculum(settings)
    serve.start(http_options={"host": settings.server.host, "port": settings.server.port})
    for region in build_region_apps(settings):  # model-serving regions first
        serve.run(region.app, name=region.name, route_prefix=region.route_prefix, blocking=False)
    base = f"http://{settings.server.host}:{settings.server.port}"
    return [base + settings.route_prefix(name).rstrip("/") for name in settings.region_names()]


def wait_ready(url: str, timeout: float, stop: Any = lambda: False) -> dict[str, Any]:
    """Poll /readyz until 200; raise TimeoutError after ``timeout`` s or InterruptedError when ``stop()``."""
    deadline = time.monotonic() + timeout
    body: Any = None
    while time.monotonic() < deadline:
        if stop():
            raise InterruptedError("interrupted before the service was ready")
        status, body = http_get(f"{url}/readyz")
        if status == 200:
            return body
        time.sleep(1)
    raise TimeoutError(f"not ready after {timeout:.0f} s; last /readyz: {body}")


SERVE_SHUTDOWN_TIMEOUT_S = 60.0


def stop(settings: Settings) -> None:
    """Stop the app (and the local Ray we started). Serve's shutdown is bounded: in Ray 2.60 it can retry its
    controller's graceful_shutdown forever once it has killed the controller; Ray's own shutdown follows anyway."""
    import threading

    import ray
    from ray import serve

    def _serve_down() -> None:
        try:
            if settings.ray.address is None:
                serve.shutdown()
            else:
                for region in settings.region_names():
                    serve.delete(settings.app_name(region))
        except Exception:  # noqa: BLE001 - best effort; ray.shutdown below still runs
            pass

    worker = threading.Thread(target=_serve_down, daemon=True)
    worker.start()
    worker.join(SERVE_SHUTDOWN_TIMEOUT_S)
    ray.shutdown()


class StopFlag:
    """Turns SIGTERM/SIGINT into a flag the main loop polls, so shutdown runs in the main thread."""

    def __init__(self) -> None:
        self.stopped = False
        self.install()

    def install(self) -> None:
        """(Re)install the handlers; call again after ``ray.init``, which installs its own SIGTERM handler."""
        signal.signal(signal.SIGTERM, self._set)
        signal.signal(signal.SIGINT, self._set)

    def _set(self, *_: Any) -> None:
        self.stopped = True
