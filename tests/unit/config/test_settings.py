import os
import subprocess
import sys
from pathlib import Path

import pytest

from tutor_cluster.app.checks import check_settings
from tutor_cluster.config.settings import (
    DEFAULT_FILE,
    SHIPPED_CONFIGS,
    ConfigError,
    load_settings,
)


def _write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _with_catalogue(body: str) -> str:
    return body + f"\ncatalogue: {SHIPPED_CONFIGS / 'models.yaml'}\nexercises: {SHIPPED_CONFIGS / 'exercises.yaml'}\n"


def test_default_settings_load() -> None:
    s = load_settings(DEFAULT_FILE, env={})
    assert s.server.host == "127.0.0.1"
    assert {m.tier for m in s.catalogue.models} == {"small", "core"}
    assert s.exercises.get("frac-add-1") is not None


def test_unknown_key_names_file_and_key(tmp_path: Path) -> None:
    path = _write(tmp_path, _with_catalogue("server:\n  prot: 8000\n"))
    with pytest.raises(ConfigError) as exc:
        load_settings(path, env={})
    assert str(path) in str(exc.value) and "server.prot" in str(exc.value) and "unknown key" in str(exc.value)


def test_wrong_type_names_key(tmp_path: Path) -> None:
    path = _write(tmp_path, _with_catalogue("server:\n  port: eighty\n"))
    with pytest.raises(ConfigError, match=r"server\.port"):
        load_settings(path, env={})


def test_errors_in_an_included_file_name_that_file(tmp_path: Path) -> None:
    cat = _write(tmp_path, "engines: {e: {}}\nmodels:\n  - {name: m, tier: huge, engine: e, price_per_1k_input: 0, "
                 "price_per_1k_output: 0, context_length: 10}\n", "models.yaml")
    path = _write(tmp_path, "catalogue: models.yaml\n")
    with pytest.raises(ConfigError) as exc:
        load_settings(path, env={})
    assert str(cat) in str(exc.value) and "models[0].tier" in str(exc.value)


def test_env_overrides_and_is_validated(tmp_path: Path) -> None:
    path = _write(tmp_path, _with_catalogue(""))
    assert load_settings(path, env={"TUTOR__SERVER__PORT": "8123"}).server.port == 8123
    with pytest.raises(ConfigError, match=r"server\.port"):
        load_settings(path, env={"TUTOR__SERVER__PORT": "not-a-port"})


def test_unknown_policy_lists_registered_ones(tmp_path: Path) -> None:
    path = _write(tmp_path, _with_catalogue("routing:\n  policy: magic\n"))
    settings = load_settings(path, env={})  # a schema-valid name: loading builds nothing
    with pytest.raises(ConfigError, match="routing.policy: unknown routing policy 'magic'; registered: cascade, learned, rules"):
        check_settings(settings, str(path))


def test_broken_yaml_names_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "server:\n  port: [1,\n")
    with pytest.raises(ConfigError, match=r"s\.yaml:\d+: not valid YAML"):
        load_settings(path, env={})


@pytest.mark.parametrize(
    ("body", "needle"),
    [("server:\n  prot: 1\n", "server.prot"), ("ray:\n  num_cpus: many\n", "ray.num_cpus"), ("- a\n", "mapping")],
)
def test_cli_config_check_exits_2_with_one_line(tmp_path: Path, body: str, needle: str) -> None:
    path = _write(tmp_path, _with_catalogue(body) if not body.startswith("-") else body)
    proc = subprocess.run(
        [sys.executable, "-m", "tutor_cluster.cli.main", "config", "check", str(path)],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0]


def test_cli_config_check_accepts_shipped_configs() -> None:
    for name in ("default.yaml", "production.yaml"):
        proc = subprocess.run(
            [sys.executable, "-m", "tutor_cluster.cli.main", "config", "check", str(SHIPPED_CONFIGS / name)],
            capture_output=True, text=True, timeout=60,
        )
        assert proc.returncode == 0, proc.stderr


def test_env_reaches_into_included_files() -> None:
    env = {"TUTOR__CATALOGUE__ENGINES__SMOLLM2__STREAM_BATCHING_INTERVAL_MS": "120"}
    assert load_settings(DEFAULT_FILE, env=env).catalogue.engines["smollm2"].stream_batching_interval_ms == 120


def test_every_cache_path_follows_tutor_cache_dir(tmp_path) -> None:
    """TUTOR_CACHE_DIR moves every embedded store of the default settings (read once, in a fresh process)."""
    code = ("from tutor_cluster.config.settings import load_settings; s = load_settings(None); "
            "print(s.learner.store.sqlite_path, s.routing.budgets.sqlite_path, s.knowledge.store.path, "
            "s.telemetry.events.path)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "TUTOR_CACHE_DIR": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    paths = out.stdout.split()
    assert len(paths) == 4 and all(p.startswith(str(tmp_path)) for p in paths), paths


def test_a_regions_redis_urls_with_their_passwords_come_from_env() -> None:
    """Production keeps passwords out of files: each region's whole ``rediss://`` URL (password, CA file) can be
    given by env, down to one region's store (tests/service/test_redis_security.py runs the stores over it)."""
    memory = "rediss://:pw-memory@learner-redis.eu:6380/0?ssl_ca_certs=/etc/tutor-cluster/redis-ca.pem"
    vault = "rediss://:pw-vault@vault-redis.eu:6380/0?ssl_ca_certs=/etc/tutor-cluster/redis-ca.pem"
    settings = load_settings("production.yaml", env={"TUTOR__REGIONS__EU__LEARNER_STORE__REDIS_URL": memory,
                                                     "TUTOR__REGIONS__EU__PRIVACY__VAULT_REDIS_URL": vault})
    eu, uk = settings.for_region("eu"), settings.for_region("uk")
    assert (eu.learner.store.redis_url, eu.privacy.vault_redis_url) == (memory, vault)
    assert memory not in (uk.learner.store.redis_url, uk.privacy.vault_redis_url)
