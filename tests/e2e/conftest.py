"""One real service per test session: `tutor-cluster up` (local Ray on loopback, Serve, the vLLM CPU
engine with the bundled model) started as a subprocess, exactly as the README's run command does."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import yaml

from tests import REPO_ROOT
from tutor_cluster.api.auth import hash_key, new_key
from tutor_cluster.app import sockets
from tutor_cluster.config.settings import SAMPLE_CURRICULUM, SHIPPED_CONFIGS

#: Answer lengths of the test service's models (the shipped catalogue's, shortened: the bundled model writes
#: ~20 tokens/s on two shared cores, and no test needs a long answer).
MAX_OUTPUT_TOKENS = {"small": 48, "core": 96}
#: Class budgets of the test service: less than one tutor-core turn's worst case (96 tokens at 0.015/1k = 0.00144
#: of output alone), more than a tutor-small one's (~0.0002): core turns of these classes hit the budget, small
#: ones pass.
REJECT_CLASS, DOWNGRADE_CLASS, CLASS_LIMIT = "budget-reject", "budget-downgrade", 0.0011
#: How often Ray's metrics agent publishes (default 10 s; shorter so the metrics test waits less).
METRICS_INTERVAL_MS = 1000

START_TIMEOUT_S = 600
#: `tutor-cluster up` to ready on a quiet 2-core dev machine (measured 118-132 s: four processes in a row import
#: vLLM for the engine, ~20 s each).
QUIET_START_S = 120.0


class SocketWatch:
    """Samples the kernel's socket table for every process of the service (its session and their descendants,
    Ray job drivers included) once a second while the e2e tier runs; remembers each socket that listened on, or
    was connected over, a non-loopback address. Loopback only is a property of the whole run, not of a moment."""

    def __init__(self, session_id: int, interval_s: float = 1.0) -> None:
        self.session_id = session_id
        self.exposed: set[sockets.Socket] = set()
        self.processes: set[str] = set()  # names of the processes that held sockets
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval_s,), daemon=True)
        self._lock = threading.Lock()

    def start(self) -> "SocketWatch":
        self._thread.start()
        return self

    def _run(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            self.check()

    def check(self) -> None:
        found = sockets.sockets_of(sockets.service_pids(self.session_id))
        with self._lock:
            self.samples += 1
            self.processes.update(s.process for s in found)
            self.exposed.update(s for s in found if s.exposed())

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.check()

    def report(self) -> str:
        return "\n".join(sorted(str(s) for s in self.exposed))

#: The service's second region (at /<name>, served with eu's model tiers); eu, at /, serves every other test.
HOME_REGION, OTHER_REGION = "eu", "us"
#: Two schools with a key each (tutor scope): the tenancy tests use them.
TENANTS = ("acme", "globex")
#: The rate of the e2e key that tests rate limits (the other keys have none).
LIMITED_RATE = "{requests_per_minute: 1, burst: 5}"  # a refill a minute: 9 requests cannot outlast it

@dataclass
class Service:
    url: str
    key: str          # all scopes
    chat_key: str     # 'chat' scope only
    log: Path
    config: Path
    dashboard: str    # the Ray dashboard / Jobs API (loopback, token auth)
    metrics: str      # Ray's Prometheus endpoint of the node
    events: Path      # interaction events dataset (Parquet)
    env: dict[str, str]  # environment of the `up` process (its TUTOR_STATE_DIR): for `status` / `down`
    pid: int = 0      # the `up` process: a session leader, so its Ray processes share its session id
    sockets: SocketWatch | None = field(default=None, repr=False)
    start_s: float = 0.0  # how long `up` took to become ready on this machine, in this run
    tenant_keys: dict[str, str] = field(default_factory=dict)  # tenant → a 'tutor' key of that tenant
    limited_key: str = ""  # 'chat' scope, its own low rate (LIMITED_RATE)

    def patience(self, quiet_s: float) -> float:
        """A wait bound scaled by this machine's measured slowness: ``quiet_s`` is enough when `up` is ready in
        QUIET_START_S; a machine that started the service k times slower gets k times longer."""
        return quiet_s * max(1.0, self.start_s / QUIET_START_S)

    def region_settings(self, region: str = HOME_REGION):  # noqa: ANN201 - Settings
        """The settings region ``region``'s application runs with (its vault, secrets, stores)."""
        from tutor_cluster.config.settings import load_settings

        return load_settings(self.config, env={}).for_region(region)

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key}"}

    def stats(self) -> dict:
        r = httpx.get(f"{self.url}/v1/admin/stats", headers=self.headers(), timeout=30)
        r.raise_for_status()
        return r.json()

    def core_requests(self) -> int:
        return sum(e["chat_requests"] for e in self.stats()["core"].values())

    def submit_reembed(self, source: Path, token: str) -> subprocess.CompletedProcess:
        """``ray job submit`` of the re-embed pipeline to this service's cluster (Jobs API, token auth)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
        env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token)
        cmd = [str(Path(sys.executable).parent / "ray"), "job", "submit", "--address", self.dashboard,
               "--working-dir", str(REPO_ROOT), "--", sys.executable, "-m", "tutor_cluster.pipelines.reembed",
               "--source", str(source), "--config", str(self.config)]
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def ray_token() -> str:
    """The token of the local Ray cluster (Ray writes it on first start)."""
    path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")
    return os.environ.get("RAY_AUTH_TOKEN") or path.read_text().strip()


def _catalogue(tmp: Path) -> Path:
    """The shipped catalogue with the test service's answer lengths."""
    catalogue = yaml.safe_load((SHIPPED_CONFIGS / "models.yaml").read_text())
    for model in catalogue["models"]:
        model["max_output_tokens"] = MAX_OUTPUT_TOKENS[model["tier"]]
    path = tmp / "models.yaml"
    path.write_text(yaml.safe_dump(catalogue))
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory, redis_server) -> Service:
    tmp = tmp_path_factory.mktemp("service")
    key, chat_key = new_key(), new_key()
    tenant_keys = {tenant: new_key() for tenant in TENANTS}
    limited_key = new_key()
    port, dashboard_port, metrics_port = _free_port(), _free_port(), _free_port()
    config = tmp / "settings.yaml"
    config.write_text(
        f"server: {{port: {port}, request_timeout_s: 120}}\n"
        "auth:\n  api_keys:\n"
        f"    - {{id: test-admin, sha256: {hash_key(key)}, role: admin, scopes: [tutor, chat, admin]}}\n"
        f"    - {{id: test-chat, sha256: {hash_key(chat_key)}, scopes: [chat]}}\n"
        + "".join(f"    - {{id: test-{t}, sha256: {hash_key(k)}, tenant: {t}, scopes: [tutor]}}\n"
                  for t, k in tenant_keys.items()) +
        f"    - {{id: test-limited, sha256: {hash_key(limited_key)}, scopes: [chat], rate: {LIMITED_RATE}}}\n"
        f"limits: {{backend: redis, redis_url: '{redis_server.url}', key_prefix: it-rl}}\n"
        f"catalogue: {_catalogue(tmp)}\n"
        f"exercises: {SHIPPED_CONFIGS / 'exercises.yaml'}\n"
        f"ray: {{include_dashboard: true, dashboard_port: {dashboard_port}, metrics_export_port: {metrics_port}}}\n"
        f"telemetry:\n  events: {{path: {tmp / 'events'}, region: test-region, flush_interval_s: 1}}\n"
        f"privacy: {{audit_sqlite_path: {tmp / 'audit.db'}, vault_sqlite_path: {tmp / 'vault.db'}}}\n"
        f"knowledge:\n  source: {SAMPLE_CURRICULUM}\n  store: {{path: {tmp / 'qdrant'}}}\n"
        "  retrieval: {refresh_interval_s: 1}\n"
        "routing:\n  budgets:\n"
        f"    backend: redis\n    redis_url: '{redis_server.url}'\n    key_prefix: it-budget\n"
        "    rules:\n"
        f"      - {{scope: class, id: {REJECT_CLASS}, limit: {CLASS_LIMIT}, on_exhaustion: reject}}\n"
        f"      - {{scope: class, id: {DOWNGRADE_CLASS}, limit: {CLASS_LIMIT}, on_exhaustion: downgrade}}\n"
        "learner:\n  actors: 2\n"
        f"  store: {{backend: redis, redis_url: '{redis_server.url}', key_prefix: it, timeout_s: 0.5}}\n"
        # two regions on this one machine: eu at / (every other test's), us at /us using eu's model tiers, its
        # vault and audit log on Redis (as several gateway nodes would share them)
        "regions:\n"
        "  eu:\n    route_prefix: /\n    foreign_learners: forward\n"
        f"    privacy: {{audit_sqlite_path: {tmp / 'audit.db'}, vault_sqlite_path: {tmp / 'vault.db'}}}\n"
        f"    learner_store: {{backend: redis, redis_url: '{redis_server.url}', key_prefix: it, timeout_s: 0.5}}\n"
        f"  {OTHER_REGION}: {{processing_regions: [eu], models_from: eu, privacy: {{vault_redis_url: '{redis_server.url}', "
        f"audit_redis_url: '{redis_server.url}'}}}}\n"
    )
    log = tmp / "up.log"
    env = {k: v for k, v in os.environ.items() if k != "TUTOR_API_KEY"}
    env.update(TUTOR_STATE_DIR=str(tmp / "state"), RAY_USAGE_STATS_ENABLED="0", PYTHONUNBUFFERED="1",
               RAY_metrics_report_interval_ms=str(METRICS_INTERVAL_MS),
               # Serve's throughput mode buffers replica log lines (1,000 records); the tracing test reads them now
               RAY_SERVE_REQUEST_PATH_LOG_BUFFER_SIZE="1")
    with log.open("w") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tutor_cluster.cli.main", "up", "--config", str(config)],
            stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )
    svc = Service(url=f"http://127.0.0.1:{port}", key=key, chat_key=chat_key, log=log, config=config,
                  dashboard=f"http://127.0.0.1:{dashboard_port}", metrics=f"http://127.0.0.1:{metrics_port}/metrics",
                  events=tmp / "events", env=env, pid=proc.pid, tenant_keys=tenant_keys,
                  limited_key=limited_key)
    svc.sockets = SocketWatch(proc.pid).start()  # from the first moment: start-up opens most sockets
    deadline = time.monotonic() + START_TIMEOUT_S
    try:
        while "[up] ready" not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-4000:]
                pytest.fail(f"tutor-cluster up did not become ready (exit {proc.poll()}):\n{tail}")
            time.sleep(1)
        svc.start_s = time.monotonic() - (deadline - START_TIMEOUT_S)
        yield svc
    finally:
        exposed = ""
        if svc.sockets is not None:
            svc.sockets.stop()
            exposed = svc.sockets.report()
        if proc.poll() is None:
            down = subprocess.run([sys.executable, "-m", "tutor_cluster.cli.main", "down", "--timeout", "90"],
                                  env=env, capture_output=True, text=True, timeout=120)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                pytest.fail(f"`tutor-cluster down` did not stop `up`: {down.stdout}{down.stderr}")
            assert down.returncode == 0 and proc.returncode == 0, (down.stdout, down.stderr, proc.returncode)
        if exposed:
            pytest.fail(f"the service used non-loopback addresses during the e2e tier:\n{exposed}")


@pytest.fixture(scope="session")
def client(service: Service):
    with httpx.Client(base_url=service.url, headers=service.headers(), timeout=120) as c:
        yield c


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that break the shared service (marked `destructive`) run after every other test."""
    items.sort(key=lambda item: (item.get_closest_marker("destructive") is not None,
                                 getattr(item.module, "AFTER_THE_TRAFFIC", False)))
