"""What the question path of the ``rag`` command imports: ``rag search`` and
``rag ask`` run in their own processes on a small index and never import torch
(the embedder's export is cached, checked by hash); ``rag --version`` answers
without the settings, the engine or the evaluation package."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "sentence_transformers", "transformers", "sklearn", "matplotlib")

# Runs ``rag`` as its console script does, then writes the top-level modules it imported.
WRAPPER = """
import atexit, json, sys
out = sys.argv.pop(1)
atexit.register(lambda: open(out, "w").write(json.dumps(sorted({m.split(".")[0] for m in sys.modules}))))
from rag.cli.main import main
main(sys.argv[1:])
"""


def run_rag(tmp_path: Path, *argv: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    modules = tmp_path / "modules.json"
    proc = subprocess.run([sys.executable, "-c", WRAPPER, str(modules), *argv], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=300)
    return proc, set(json.loads(modules.read_text()))


@pytest.fixture(scope="module")
def small_index(tmp_path_factory: pytest.TempPathFactory, embedder) -> Path:
    """seeds/ ingested by a ``rag ingest`` process (which makes the embedder's export
    in RAG_CACHE_DIR if the session has not yet)."""
    data = tmp_path_factory.mktemp("startup-index")
    proc = subprocess.run([sys.executable, "-m", "rag", "ingest", str(ROOT / "seeds"), "--data-dir", str(data)],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return data


@pytest.mark.slow
def test_search_never_imports_torch(tmp_path: Path, small_index: Path) -> None:
    proc, modules = run_rag(tmp_path, "search", "Who is Meta's president of global affairs?", "--json",
                            "--data-dir", str(small_index))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["results"]
    assert not modules & set(HEAVY), sorted(modules & set(HEAVY))
    assert {"onnxruntime", "tokenizers", "chromadb_rust_bindings"} <= modules
    assert not modules & {"chromadb", "scipy", "bm25s", "httpx"}  # Chroma's engine is read directly


@pytest.mark.slow
def test_ask_never_imports_torch(tmp_path: Path, small_index: Path) -> None:
    proc, modules = run_rag(tmp_path, "ask", "Who is Meta's president of global affairs?", "--no-llm", "--json",
                            "--data-dir", str(small_index))
    assert proc.returncode == 0, proc.stderr
    answer = json.loads(proc.stdout)
    assert "Clegg" in answer["answer"] and answer["citations"]
    assert not modules & set(HEAVY), sorted(modules & set(HEAVY))
    assert not modules & {"chromadb", "scipy", "bm25s"}


def test_version_imports_neither_settings_nor_engine(tmp_path: Path) -> None:
    from rag import __version__

    proc, modules = run_rag(tmp_path, "--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"rag {__version__}"
    assert not modules & {"pydantic", "pydantic_settings", "chromadb", "numpy", "onnxruntime", "llama_cpp", *HEAVY}


def test_version_through_the_installed_script() -> None:
    script = Path(sys.executable).with_name("rag")
    if not script.is_file():
        pytest.skip("no installed rag script next to this Python")
    proc = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.startswith("rag ")
