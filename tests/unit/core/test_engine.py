"""An engine's LLMConfig: where its weights come from."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from ray.llm._internal.common.utils.cloud_utils import CloudMirrorConfig
from ray.llm._internal.serve.engines.vllm.vllm_models import VLLMEngineConfig

from tutor_cluster.config.catalogue import MODEL_STORE_SCHEMES, EngineConfig
from tutor_cluster.core.engine import llm_config


@pytest.mark.parametrize("scheme", MODEL_STORE_SCHEMES)
def test_a_model_store_uri_reaches_rays_downloader_unchanged(scheme: str) -> None:
    """Ray Serve LLM downloads a remote ``model_source`` at replica start (``download_utils``: a remote path
    becomes a ``CloudMirrorConfig``); ours must arrive as given and be one it accepts. (No object store can be
    reached from here: the download itself is Ray's and not exercised.)"""
    uri = f"{scheme}://models-bucket/Llama-3.1-8B-Instruct"
    config = llm_config("core", EngineConfig(source=uri, accelerator="L4"))
    assert config.model_loading_config.model_source == uri
    assert VLLMEngineConfig.from_llm_config(config).mirror_config.bucket_uri == uri  # what the replica downloads


def test_an_unknown_store_scheme_is_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError) as refused:
        EngineConfig(source="ftp://models/llama")
    assert "source" in str(refused.value) and "s3://" in str(refused.value)
    with pytest.raises(ValueError):  # and Ray would not take it either
        CloudMirrorConfig(bucket_uri="ftp://models/llama")


def test_a_local_folder_or_model_id_is_used_as_is(tmp_path) -> None:
    assert llm_config("core", EngineConfig(source=str(tmp_path))).model_loading_config.model_source == str(tmp_path)
    assert llm_config("core", EngineConfig(source="org/model")).model_loading_config.model_source == "org/model"
