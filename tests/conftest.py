"""Shared by the whole suite: a real redis-server (installed by scripts/test.sh), and the drills' report."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest


class RedisServer:
    """A redis-server on loopback with AOF and ``appendfsync always``; can be killed -9 and restarted. With
    ``password`` it requires AUTH; with ``tls`` it speaks only TLS (a CA and a server certificate for 127.0.0.1 made
    here), and :attr:`url` is the ``rediss://`` URL every store of ours takes, CA file and password included."""

    def __init__(self, workdir: Path, *, tls: bool = False, password: str | None = None) -> None:
        self.dir = workdir
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.password = password
        self._log = workdir.parent / f"{workdir.name}.log"  # not in its dir: tests scan that dir's bytes
        self.ca = _tls_files(workdir) if tls else None
        auth = f":{password}@" if password else ""
        self.url = (f"rediss://{auth}127.0.0.1:{self.port}/0?ssl_ca_certs={self.ca}" if tls
                    else f"redis://{auth}127.0.0.1:{self.port}/0")
        self.proc: subprocess.Popen | None = None

    def _listen_args(self) -> list[str]:
        args = ["--requirepass", self.password] if self.password else []
        if self.ca is None:
            return [*args, "--port", str(self.port)]
        return [*args, "--port", "0", "--tls-port", str(self.port), "--tls-cert-file", str(self.dir / "server.crt"),
                "--tls-key-file", str(self.dir / "server.key"), "--tls-ca-cert-file", str(self.ca),
                "--tls-auth-clients", "no"]

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", *self._listen_args(), "--bind", "127.0.0.1", "--dir", str(self.dir),
             "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--protected-mode", "yes",
             # values stay readable on disk and in DUMP, so the erasure tests' byte scans can find them
             "--rdbcompression", "no", "--aof-use-rdb-preamble", "no"],
            stdout=self._log.open("ab"), stderr=subprocess.STDOUT,  # a file (a pipe could fill), beside its dir
        )
        import redis

        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                if redis.Redis.from_url(self.url, socket_timeout=0.5, socket_connect_timeout=0.2).ping():
                    return
            except redis.RedisError:
                pass
            time.sleep(0.05)
        self.proc.kill()
        self.proc.wait()
        self.proc = None
        raise RuntimeError("redis-server did not start:\n" + self._log.read_text(errors="replace")[-2000:])

    def kill9(self) -> None:
        if self.proc is not None:
            self.proc.kill()  # SIGKILL: no chance to flush anything
            self.proc.wait()
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory):
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed: run the tests with `bash scripts/test.sh`, which installs it")
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_tls_server(tmp_path_factory: pytest.TempPathFactory):
    """A redis-server as production runs one: TLS only, and a password."""
    server = RedisServer(tmp_path_factory.mktemp("redis-tls"), tls=True, password="tls-test-pass")
    server.start()
    yield server
    server.stop()


def _tls_files(workdir: Path) -> Path:
    """A CA and a server certificate for 127.0.0.1 signed by it (server.crt/.key); returns the CA's file."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tutor-cluster test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    server = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "redis")]))
              .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
              .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                             critical=False)
              .sign(ca_key, hashes.SHA256()))
    (workdir / "server.crt").write_bytes(server.public_bytes(serialization.Encoding.PEM))
    (workdir / "server.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                           serialization.PrivateFormat.TraditionalOpenSSL,
                                                           serialization.NoEncryption()))
    ca_file = workdir / "ca.crt"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return ca_file


_REPORTS: list[str] = []


@pytest.fixture
def drill_report(request: pytest.FixtureRequest):
    """Call with one line (what a drill measured: throughput, recovery times); printed at the end of the run, and
    kept for docs/reliability.md when scripts/drills/run.py runs the drills (``$TUTOR_DRILL_REPORT``)."""
    path = os.environ.get("TUTOR_DRILL_REPORT")

    def report(line: str) -> None:
        _REPORTS.append(line)
        if path:
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps({"test": request.node.nodeid, "line": line}) + "\n")

    return report


def pytest_terminal_summary(terminalreporter) -> None:
    if _REPORTS:
        terminalreporter.section("drills: what they measured on this machine")
        for line in _REPORTS:
            terminalreporter.write_line(line)
