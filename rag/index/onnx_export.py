"""Making the ONNX exports that ``rag.index.onnx_embedder`` runs: the only place that
needs torch, run once per model (and again only if the cache is damaged).

The sentence-transformers model (pooling and L2 normalisation included) is
exported to ``fp32.onnx``; ``int8.onnx`` is that export with its weights
quantized per channel by ONNX Runtime (dynamic quantization). Each is checked
against the torch model's vectors of ``PROBES`` through the same tokenizer and
batching the embedder uses, and ``manifest.json`` records each file's sha256, the
error measured and whether it may be used. Everything is written into a
temporary folder and moved into place whole, so a folder with a manifest is
complete."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from rag.index.onnx_embedder import (
    FORMAT,
    FP32,
    INT8,
    MANIFEST,
    TOKENIZER,
    DamagedExport,
    DocumentDevice,
    Manifest,
    OnnxEmbedder,
    OnnxSession,
    cache_folder,
    embed_distinct,
    file_sha256,
    new_session,
    read_manifest,
)

log = logging.getLogger(__name__)

PROBES = (
    "Which companies may use the models?",
    "Nick Clegg said the models would help with logistics, tracking terrorist financing and cyber "
    "defences in several allied countries.",
    "  Leading and trailing white space, UPPER CASE and Mixed Case.  ",
    "Wer ist der Präsident für globale Angelegenheiten bei Meta?",
    "subprocess.run(args, *, stdin=None, capture_output=False, timeout=None, check=False)",
    "Basic Commands > Sectioning\nThe \\section command starts a new section; \\subsection a smaller one.",
    "Debian " * 300,  # longer than the model's 256 tokens: truncated the same way
)
TOLERANCE = 1e-4  # the fp32 export: largest difference of any component from torch's vector
INT8_MIN_COSINE = 0.96  # the int8 export: every probe's cosine to torch's vector at least this
INT8_MEAN_COSINE = 0.985  # ... and on average at least this
KNOWN_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def install(model_dir: Path, cache_dir: Path, key: str) -> tuple[Manifest, tempfile.TemporaryDirectory[str] | None]:
    """Make the exports of ``model_dir`` and move them into ``cache_dir``'s folder for
    ``key``. Where the cache cannot be written, they are made in a temporary folder
    instead, returned with the manifest (it lives as long as that object)."""
    target = cache_dir / f"embedder-{key}"
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        building = Path(tempfile.mkdtemp(prefix=".building-", dir=cache_dir))
    except OSError as exc:
        log.info("cannot write the embedder's export to %s (%s): keeping it for this process only",
                 cache_dir, exc)
        keep = tempfile.TemporaryDirectory(prefix="rag-embedder-")
        return build(model_dir, Path(keep.name), key), keep
    try:
        build(model_dir, building, key)
        if _complete(target, key):  # another process finished one meanwhile: use that one
            return read_manifest(target, key), None
        shutil.rmtree(target, ignore_errors=True)  # a damaged one
        try:
            os.replace(building, target)
        except OSError:  # another process put a folder there meanwhile: use the one that is there
            pass
        remove_stale(cache_dir, model_dir, key)
        return read_manifest(target, key), None
    finally:
        shutil.rmtree(building, ignore_errors=True)


def _complete(folder: Path, key: str) -> bool:
    """Whether ``folder`` holds a whole export for ``key`` whose files hash as recorded."""
    try:
        manifest = read_manifest(folder, key)
        return all(file_sha256(folder / name) == manifest.sha256(name) for name in manifest.files)
    except (DamagedExport, OSError):
        return False


def remove_stale(cache_dir: Path, model_dir: Path, key: str) -> None:
    """Delete exports of ``model_dir`` made for other keys (older formats, changed
    model files) and the single-question exports of earlier versions (``query-*.onnx``)."""
    for old in cache_dir.glob("query-*.onnx"):
        old.unlink(missing_ok=True)
    for folder in cache_dir.glob("embedder-*"):
        if folder.name == f"embedder-{key}":
            continue
        try:
            made_for = json.loads((folder / MANIFEST).read_text(encoding="utf-8")).get("model_dir")
        except (OSError, ValueError, AttributeError):
            continue
        if made_for == str(model_dir):
            log.info("removing the stale embedder export %s", folder)
            shutil.rmtree(folder, ignore_errors=True)


def build(model_dir: Path, folder: Path, key: str) -> Manifest:
    """Export, quantize and check; write the files and ``manifest.json`` into ``folder``."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    log.info("exporting the embedder %s to ONNX (once; checked against torch)", model_dir)
    model = SentenceTransformer(str(model_dir), device="cpu")
    inputs = _input_names(model)
    lowercase = bool(getattr(model[0], "do_lower_case", False))
    expected = model.encode(list(PROBES), normalize_embeddings=True, convert_to_numpy=True,
                            show_progress_bar=False)
    tokenizer = _tokenizer(model)
    (folder / TOKENIZER).write_text(tokenizer.to_str(), encoding="utf-8")
    fp32 = _export(model, inputs)
    (folder / FP32).write_bytes(fp32)
    files = {TOKENIZER: {"sha256": _sha256((folder / TOKENIZER).read_bytes())},
             FP32: _checked(fp32, tokenizer, inputs, lowercase, expected)}
    files[FP32]["usable"] = files[FP32]["max_abs_error"] <= TOLERANCE
    if files[FP32]["usable"]:
        int8 = _quantize(folder / FP32)
        (folder / INT8).write_bytes(int8)
        files[INT8] = _checked(int8, tokenizer, inputs, lowercase, expected)
        files[INT8]["usable"] = (files[INT8]["min_cosine"] >= INT8_MIN_COSINE
                                 and files[INT8]["mean_cosine"] >= INT8_MEAN_COSINE)
    else:
        log.warning("the ONNX export of the embedder differs from torch by %.2g; embedding with torch",
                    files[FP32]["max_abs_error"])
    manifest = {"format": FORMAT, "key": key, "model_dir": str(model_dir), "dim": int(expected.shape[1]),
                "inputs": inputs, "lowercase": lowercase, "probes": len(PROBES), "files": files,
                "made_with": _versions()}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    log.info("embedder export checked: %s", {k: v for k, v in files.items() if k != TOKENIZER})
    return read_manifest(folder, key)


def _checked(model: bytes, tokenizer: Any, inputs: list[str], lowercase: bool,
             expected: np.ndarray) -> dict[str, Any]:
    """The file's sha256 and how far its vectors of the probes are from ``expected``,
    each probe embedded alone and all together in padded batches."""
    session = OnnxSession(tokenizer, new_session(model), inputs, lowercase)
    alone = np.vstack([session([p]) for p in PROBES])
    together = embed_distinct(list(PROBES), expected.shape[1], 4, session)
    cosines = np.concatenate([(alone * expected).sum(1), (together * expected).sum(1)])
    error = max(float(np.abs(alone - expected).max()), float(np.abs(together - expected).max()))
    return {"sha256": _sha256(model), "max_abs_error": error, "min_cosine": float(cosines.min()),
            "mean_cosine": float(cosines.mean())}


def _input_names(model: Any) -> list[str]:
    import torch

    features = _preprocess(model, PROBES[0])
    names = [k for k, v in features.items() if isinstance(v, torch.Tensor)]
    unknown = set(names) - set(KNOWN_INPUTS)
    if unknown:
        raise ValueError(f"the model takes inputs the ONNX path does not make: {sorted(unknown)}")
    return names


def _tokenizer(model: Any) -> Any:
    """The model's fast tokenizer, truncating at its ``max_seq_length`` and padding
    each batch to its longest text, as sentence-transformers does."""
    from tokenizers import Tokenizer

    hf = model.tokenizer
    backend = getattr(hf, "backend_tokenizer", None)
    if backend is None:
        raise ValueError("the model has no fast (tokenizers) tokenizer")
    tokenizer = Tokenizer.from_str(backend.to_str())
    tokenizer.enable_truncation(max_length=int(model.max_seq_length))
    tokenizer.enable_padding(direction=getattr(hf, "padding_side", "right"), pad_id=int(hf.pad_token_id or 0),
                             pad_token=str(hf.pad_token or "[PAD]"))
    return tokenizer


def _preprocess(model: Any, text: str) -> dict[str, Any]:
    preprocess = getattr(model, "preprocess", None) or model.tokenize  # sentence-transformers < 5.2
    return preprocess([text])


def _export(model: Any, names: list[str]) -> bytes:
    """The model, pooling and normalisation included, as ONNX bytes. Attention is
    exported in its plain ("eager") form: on a CPU, ONNX Runtime runs that graph
    about a quarter faster than the one traced from PyTorch's fused attention."""
    import torch

    inner = getattr(model[0], "auto_model", None)
    if inner is not None and hasattr(inner, "set_attn_implementation"):
        try:
            inner.set_attn_implementation("eager")
        except (ValueError, ImportError) as exc:
            log.info("exporting the model's own attention: %s", exc)
    features = _preprocess(model, PROBES[1])
    constants = {k: v for k, v in features.items() if k not in names}

    class Normalised(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
            out = self.inner({**constants, **dict(zip(names, tensors))})["sentence_embedding"]
            return torch.nn.functional.normalize(out, p=2, dim=1)

    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer notes about Python branches fixed at export
        torch.onnx.export(Normalised().eval(), tuple(features[n] for n in names), buffer,
                          input_names=names, output_names=["embedding"],
                          dynamic_axes={n: {0: "batch", 1: "tokens"} for n in names},
                          opset_version=17, dynamo=False)
    return buffer.getvalue()


def _quantize(fp32: Path) -> bytes:
    """Dynamic int8 quantization of the weights of every matrix product, one scale
    per output channel (per tensor loses a few hundredths of cosine on MiniLM)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out = fp32.with_name(".int8.tmp.onnx")
    logger = logging.getLogger()  # the quantizer logs advice at WARNING on the root logger
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        quantize_dynamic(fp32, out, per_channel=True, weight_type=QuantType.QInt8)
    finally:
        logger.setLevel(level)
    data = out.read_bytes()
    out.unlink()
    return data


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("torch", "sentence-transformers", "onnxruntime", "tokenizers"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return found


def load_onnx_embedder(name: str, model_dir: Path, cache_dir: Path, quantized: bool = True,
                       device: DocumentDevice = "auto") -> OnnxEmbedder | None:
    """The ONNX embedder of ``model_dir`` from its cached, checked export (no torch),
    or made now when the cache has none or a damaged one (torch, once). None when
    the export does not match torch or cannot be made (logged): the caller embeds
    with torch then."""
    folder = cache_folder(cache_dir, model_dir)
    key = folder.name.removeprefix("embedder-")
    try:
        manifest = read_manifest(folder, key)
        if not manifest.usable(FP32):
            log.info("embedding with torch: the ONNX export did not match it (%s)", folder / MANIFEST)
            return None
        return OnnxEmbedder(name, manifest, model_dir, cache_dir, quantized, device, remake=make_export)
    except DamagedExport as exc:
        if folder.exists():
            log.info("making the embedder's ONNX export again: %s", exc)
    try:
        manifest, keep = make_export(model_dir, cache_dir, key)
        if not manifest.usable(FP32):
            return None
        return OnnxEmbedder(name, manifest, model_dir, cache_dir, quantized, device, keep=keep, remake=make_export)
    except Exception as exc:  # noqa: BLE001 - any failure only costs speed
        log.warning("embedding with torch: the ONNX export cannot be made (%s: %s)", type(exc).__name__, exc)
        return None


def make_export(model_dir: Path, cache_dir: Path, key: str) -> tuple[Manifest, object]:
    """Make and check the exports (imports torch)."""
    return install(model_dir, cache_dir, key)
