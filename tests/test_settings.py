"""Settings: RAG_ environment variables, overrides on top, validation."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from models.manifest import default_model_path
from rag.settings import Settings, get_settings


def test_defaults() -> None:
    s = Settings()
    assert s.data_dir == Path("data")
    assert s.top_k == 5
    assert s.chunk_chars == 600
    assert s.collection == "rag"
    assert s.use_llm is True
    assert s.chroma_url is None and s.llm_url is None and s.api_key is None
    assert s.model_path == default_model_path()
    assert 1 <= s.n_threads <= 8


def test_rag_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "idx"))
    monkeypatch.setenv("RAG_TOP_K", "7")
    monkeypatch.setenv("RAG_CHUNK_CHARS", "800")
    monkeypatch.setenv("RAG_USE_LLM", "false")
    monkeypatch.setenv("RAG_COLLECTION", "docs_v2")
    monkeypatch.setenv("RAG_MODEL_PATH", str(tmp_path / "m.gguf"))
    monkeypatch.setenv("RAG_API_KEY", "s3cret")
    monkeypatch.setenv("TOP_K", "9")  # no prefix: ignored
    s = get_settings()
    assert s.data_dir == tmp_path / "idx"
    assert s.top_k == 7
    assert s.chunk_chars == 800
    assert s.use_llm is False
    assert s.collection == "docs_v2"
    assert s.model_path == tmp_path / "m.gguf"
    assert s.api_key is not None and s.api_key.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(s)


def test_environment_variable_names_are_case_insensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("rag_top_k", "3")
    assert Settings().top_k == 3


def test_overrides_win_over_the_environment_and_none_means_unset(monkeypatch: pytest.MonkeyPatch,
                                                                tmp_path: Path) -> None:
    monkeypatch.setenv("RAG_TOP_K", "7")
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "env"))
    s = get_settings(top_k=2, data_dir=tmp_path / "flag")
    assert s.top_k == 2 and s.data_dir == tmp_path / "flag"
    s = get_settings(top_k=None, data_dir=None, use_llm=None)
    assert s.top_k == 7 and s.data_dir == tmp_path / "env" and s.use_llm is True
    assert Settings(top_k=11).top_k == 11


@pytest.mark.parametrize(("var", "value"), [
    ("RAG_TOP_K", "0"),
    ("RAG_TOP_K", "51"),
    ("RAG_TOP_K", "five"),
    ("RAG_CHUNK_CHARS", "50"),
    ("RAG_CTX", "128"),
    ("RAG_N_THREADS", "0"),
    ("RAG_COLLECTION", "bad name!"),
    ("RAG_USE_LLM", "maybe"),
])
def test_bad_environment_values_are_validation_errors(monkeypatch: pytest.MonkeyPatch, var: str,
                                                      value: str) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ValidationError) as info:
        get_settings()
    assert var.removeprefix("RAG_").lower() in str(info.value)


@pytest.mark.parametrize("overrides", [{"top_k": 0}, {"max_answer_tokens": 4}, {"n_gpu_layers": -2}])
def test_bad_overrides_are_validation_errors(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        get_settings(**overrides)


def test_settings_are_not_read_at_import_time(monkeypatch: pytest.MonkeyPatch) -> None:
    assert get_settings().top_k == 5
    monkeypatch.setenv("RAG_TOP_K", "4")
    assert get_settings().top_k == 4


def test_scale_out_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    s = Settings()
    assert s.llm_model is None and s.llm_concurrency == 1
    monkeypatch.setenv("RAG_CHROMA_URL", "http://chroma.internal:8001")
    monkeypatch.setenv("RAG_LLM_URL", "https://llm.internal/v1")
    monkeypatch.setenv("RAG_LLM_MODEL", "meta-llama/Llama-3.1-8B-Instruct")
    monkeypatch.setenv("RAG_LLM_CONCURRENCY", "4")
    s = get_settings()
    assert (s.chroma_url, s.llm_url) == ("http://chroma.internal:8001", "https://llm.internal/v1")
    assert s.llm_model == "meta-llama/Llama-3.1-8B-Instruct" and s.llm_concurrency == 4


@pytest.mark.parametrize("var", ["RAG_CHROMA_URL", "RAG_LLM_URL", "RAG_LLM_MODEL"])
def test_an_empty_server_setting_means_unset(monkeypatch: pytest.MonkeyPatch, var: str) -> None:
    monkeypatch.setenv(var, " ")
    assert getattr(get_settings(), var.removeprefix("RAG_").lower()) is None


@pytest.mark.parametrize(("var", "value"), [
    ("RAG_CHROMA_URL", "localhost:8001"),
    ("RAG_LLM_URL", "ftp://llm/v1"),
    ("RAG_LLM_URL", "http://"),
    ("RAG_LLM_CONCURRENCY", "0"),
])
def test_bad_server_settings_are_validation_errors(monkeypatch: pytest.MonkeyPatch, var: str, value: str) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ValidationError) as info:
        get_settings()
    assert var.removeprefix("RAG_").lower() in str(info.value)


@pytest.mark.parametrize(("overrides", "slots"), [
    ({}, 1),
    ({"llm_url": "http://llm:8080/v1", "llm_concurrency": 4}, 4),
    ({"llm_concurrency": 4}, 1),  # in-process llama.cpp: one at a time whatever is asked
    ({"llm_concurrency": 3, "use_llm": False}, 3),  # extractive answers need no model
])
def test_the_generation_gate_gets_its_slots_from_the_settings(overrides: dict[str, object], slots: int) -> None:
    from server.app import generation_slots

    assert generation_slots(Settings(**overrides)) == slots  # type: ignore[arg-type]


@pytest.mark.parametrize("key", ["", " s3cret", "s3cret ", "\ts3cret"])
def test_an_empty_or_padded_api_key_is_refused(monkeypatch: pytest.MonkeyPatch, key: str) -> None:
    monkeypatch.setenv("RAG_API_KEY", key)
    with pytest.raises(ValidationError) as err:
        get_settings()
    assert err.value.errors()[0]["loc"] == ("api_key",)


def test_rag_serve_refuses_an_empty_api_key_in_one_line(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "RAG_API_KEY": "", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "rag", "serve", "--data-dir", str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("error: RAG_API_KEY: Value error, is empty: give a key, or unset it to run "
                                   "without one")


def test_host_and_origin_lists_are_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_ALLOWED_HOSTS", " rag.example.org, *.lan ,")
    monkeypatch.setenv("RAG_CORS_ORIGINS", "https://app.example.org")
    settings = get_settings()
    assert settings.host_names == ["rag.example.org", "*.lan"] and settings.origins == ["https://app.example.org"]
