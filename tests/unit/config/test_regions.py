"""Regions in settings: what each region's application runs with (its own stores, secrets and resource), and the
configurations refused because regions would share data or name what does not exist."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tutor_cluster import constants
from tutor_cluster.app.builder import app_builder
from tutor_cluster.config.regions import REGION_RESOURCE_PER_REPLICA
from tutor_cluster.config.settings import SHIPPED_CONFIGS, ConfigError, Settings, load_settings

BASE = f"catalogue: {SHIPPED_CONFIGS / 'models.yaml'}\nexercises: {SHIPPED_CONFIGS / 'exercises.yaml'}\n"
TWO = """
regions:
  eu: {route_prefix: /, foreign_learners: forward, privacy: {consent_age: 16}}
  us: {processing_regions: [eu], models_from: eu}
"""


def load(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "s.yaml"
    path.write_text(BASE + f"privacy: {{vault_sqlite_path: {tmp_path / 'vault.db'}}}\n" + text)
    return load_settings(path, env={})


def test_one_region_without_regions_is_the_app_as_before(tmp_path: Path) -> None:
    s = load(tmp_path, "")
    assert s.region_names() == ["local"] and s.for_region("local") is s
    assert (s.app_name(), s.route_prefix(), s.region_url()) == (constants.APP_NAME, "/", "http://127.0.0.1:8000")
    assert s.deployments.gateway.resources == {}


def test_each_region_runs_with_its_own_stores_secrets_consent_age_and_resource(tmp_path: Path) -> None:
    s = load(tmp_path, TWO)
    eu, us = s.for_region("eu"), s.for_region("us")
    assert (eu.privacy.region, us.privacy.region) == ("eu", "us")
    assert (eu.privacy.consent_age, us.privacy.consent_age) == (16, 13)  # eu's own; us the top level's
    for attr in ("vault_path", "kek_path", "keys_path", "audit_path"):
        mine, theirs = getattr(eu.privacy, attr)(), getattr(us.privacy, attr)()
        assert mine != theirs and mine.parent.name == "eu" and theirs.parent.name == "us", attr
    assert eu.privacy.vault_path() == tmp_path / "regions" / "eu" / "vault.db"  # beside the configured file
    # secret files nobody named are the regions' own defaults: `up` creates them (a named one it never does)
    assert not eu.privacy.configured("vault_kek_file") and not eu.privacy.configured("pseudonym_keys_file")
    assert eu.learner.store.sqlite_path != us.learner.store.sqlite_path
    assert (eu.learner.name_prefix, us.learner.name_prefix) == ("learner-memory-eu", "learner-memory-us")
    assert (eu.telemetry.events.region, us.telemetry.events.region) == ("eu", "us")
    for region, settings in (("eu", eu), ("us", us)):
        wanted = {f"region-{region}": REGION_RESOURCE_PER_REPLICA}
        d = settings.deployments
        assert all(getattr(d, t).resources == wanted for t in ("gateway", "edge", "router", "knowledge"))
        assert all(e.deployment.resources == wanted for e in settings.catalogue.engines.values())
        assert settings.learner.resources == wanted
    assert [s.app_name(n) for n in ("eu", "us")] == [f"{constants.APP_NAME}-eu", f"{constants.APP_NAME}-us"]
    assert [s.route_prefix(n) for n in ("eu", "us")] == ["/", "/us"]
    assert s.region_url("us") == "http://127.0.0.1:8000/us"
    assert eu.for_region("eu") is eu  # already one region's: not specialised twice
    with pytest.raises(ValueError, match="specialise the full ones"):
        eu.for_region("us")


def test_a_region_may_name_its_own_files_store_resource_and_url(tmp_path: Path) -> None:
    s = load(tmp_path, f"""
regions:
  eu: {{resource: eu-west-pool, url: "https://eu.tutor.example",
        privacy: {{vault_kek_file: {tmp_path / 'eu.kek'}}}, learner_store: {{backend: redis, key_prefix: eu}}}}
  us: {{processing_regions: [eu], models_from: eu}}
""")
    eu = s.for_region("eu")
    assert eu.privacy.kek_path() == tmp_path / "eu.kek" and eu.privacy.configured("vault_kek_file")
    assert eu.learner.store.backend == "redis" and eu.deployments.edge.resources == {"eu-west-pool": 0.001}
    assert s.region_url("eu") == "https://eu.tutor.example"


@pytest.mark.parametrize(("regions", "message"), [
    ("eu: {}\n  us: {processing_regions: [mars]}", r"regions\.us\.processing_regions: 'mars' is not another"),
    ("eu: {}\n  us: {models_from: eu}", r"regions\.us\.models_from: add 'eu' to regions\.us\.processing_regions"),
    ("eu: {models_from: us, processing_regions: [us]}\n  us: {models_from: eu, processing_regions: [eu]}",
     r"regions\.\w+\.models_from: '\w+' takes its own models from"),
    ("eu: {route_prefix: /x}\n  us: {route_prefix: /x}", r"regions\.us\.route_prefix: '/x' is also region 'eu'"),
    ("eu: {privacy: {vault_sqlite_path: /tmp/v.db}}\n  us: {privacy: {vault_sqlite_path: /tmp/v.db}}",
     r"regions\.us\.privacy\.vault: the same as region 'eu'"),
    ("eu: {learner_store: {sqlite_path: /tmp/l.db}}\n  us: {learner_store: {sqlite_path: /tmp/l.db}}",
     r"regions\.us\.learner_store: the same as region 'eu'"),
    ("EU: {}", r"regions\.EU: a region name is lowercase"),
    ("eu: {route_prefix: /}\n  v1: {}", r"regions\.v1\.route_prefix: '/v1' would take the API's own routes"),
    ("eu: {url: 'ftp://eu.example'}", r"regions\.eu\.url"),
    ("eu: {url: 'https://eu.example/?x=1'}", r"regions\.eu\.url"),
    ("eu: {foreign_learners: proxy}", r"regions\.eu\.foreign_learners"),
])
def test_regions_that_would_share_data_or_name_nothing_are_refused(tmp_path: Path, regions: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(tmp_path, f"regions:\n  {regions}\n")


def test_a_region_overrides_only_the_retention_it_names(tmp_path: Path) -> None:
    s = load(tmp_path, "privacy: {retention: {memory_days: 30, events_days: 100, ledger_days: 400}}\n" + TWO.replace(
        "consent_age: 16}", "consent_age: 16, retention: {events_days: 10}}"))
    eu, us = s.for_region("eu").privacy.retention, s.for_region("us").privacy.retention
    assert (eu.memory_days, eu.events_days, eu.ledger_days) == (30, 10, 400)  # only events_days is eu's own
    assert (us.memory_days, us.events_days, us.ledger_days) == (30, 100, 400)


def test_one_configured_region_keeps_the_files_and_names_it_had(tmp_path: Path) -> None:
    before, after = load(tmp_path, ""), load(tmp_path, "regions: {eu: {}}\n")
    eu = after.for_region("eu")
    assert eu.privacy.vault_path() == before.privacy.vault_path() and eu.learner.store == before.learner.store
    assert eu.privacy.keys_path() == before.privacy.keys_path() and eu.learner.name_prefix == "learner-memory"
    assert after.app_name("eu") == constants.APP_NAME and after.route_prefix("eu") == "/"
    assert eu.deployments.gateway.resources == {"region-eu": REGION_RESOURCE_PER_REPLICA}  # placed all the same


def test_adding_a_region_moves_nothing_of_the_region_privacy_region_names(tmp_path: Path) -> None:
    one = load(tmp_path, "regions: {eu: {}}\n").for_region("eu")
    path = tmp_path / "two.yaml"
    path.write_text(BASE + f"privacy: {{region: eu, vault_sqlite_path: {tmp_path / 'vault.db'}}}\n"
                    "knowledge: {enabled: false}\nregions: {eu: {}, uk: {}}\n")
    two = load_settings(path, env={})
    eu, uk = two.for_region("eu"), two.for_region("uk")
    assert eu.privacy.vault_path() == one.privacy.vault_path() and eu.learner.store == one.learner.store
    assert eu.privacy.keys_path() == one.privacy.keys_path() and eu.learner.name_prefix == one.learner.name_prefix
    assert uk.privacy.vault_path().parent.name == "uk" and uk.learner.name_prefix == "learner-memory-uk"


def test_a_secret_file_named_by_the_environment_is_never_created_for_a_region(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "s.yaml"
    path.write_text(BASE + TWO)
    code = ("from tutor_cluster.config.settings import load_settings as l; s = l(%r).for_region('us').privacy; "
            "print(s.kek_path(), s.configured('vault_kek_file'), s.configured('pseudonym_keys_file'))" % str(path))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "TUTOR_VAULT_KEK_FILE": str(tmp_path / "secrets" / "kek")})
    assert out.stdout.split() == [str(tmp_path / "secrets" / "regions" / "us" / "kek"), "True", "False"], out.stderr


def test_two_regions_cannot_both_open_the_embedded_curriculum_store(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"eu, us each run curriculum retrieval .* set models_from"):
        load(tmp_path, "regions: {eu: {}, us: {}}\n")
    assert load(tmp_path, "knowledge: {enabled: false}\nregions: {eu: {}, us: {}}\n").region_names() == ["eu", "us"]


def test_a_serve_config_names_the_region_of_each_application(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(BASE + TWO)
    with pytest.raises(ValueError, match=r"'region' must be one of \['eu', 'us'\]"):
        app_builder({"config": str(path)})  # several regions: which one is this application?
    with pytest.raises(ValueError, match="must be one of"):
        app_builder({"config": str(path), "region": "mars"})


def test_the_engine_deployment_name_is_the_one_serve_llm_gives() -> None:
    """Another region names our engines' deployments: the name must be the one Ray Serve LLM derives (its own
    function, private in Ray 2.60; building the deployment itself would start a Ray)."""
    from ray.llm._internal.serve.core.server.builder import _get_deployment_name

    from tutor_cluster.core.engine import ENGINE_PREFIX, engine_deployment_name, llm_config

    for name, engine in {**load_settings(env={}).catalogue.engines, "org/model.v1": None}.items():
        if engine is None:
            assert engine_deployment_name(name) == "core-org--model_v1"
            continue
        assert ENGINE_PREFIX + _get_deployment_name(llm_config(name, engine)) == engine_deployment_name(name)
