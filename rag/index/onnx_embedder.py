"""The default embedder, without torch: the sentence-transformers model exported
to ONNX (``rag.index.onnx_export``, once) and run by ONNX Runtime, with the model's own
tokenizer through the ``tokenizers`` library.

Two exports live in one cache folder per model (``RAG_CACHE_DIR``): ``fp32.onnx``
embeds questions (the torch model's vectors to about 1e-7) and ``int8.onnx``
(weights quantized per channel) embeds documents, about 2.5 times faster on a
CPU. Pooling and L2 normalisation are inside both graphs. When an export is
made it is checked against the torch model on probe texts, and what was checked
is written next to it (``manifest.json``: each file's sha256 and the error
measured), so that loading needs no torch: a file whose hash differs from the
manifest is damaged, and the export is made again (which imports torch, once).

Texts are embedded shortest first, in batches of similar length (little
padding), each distinct text once. With a CUDA GPU, documents are embedded on
it (see ``DocumentDevice``); questions stay on the CPU, where one short text takes
a few milliseconds."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from rag.threads import Background, cpu_threads

log = logging.getLogger(__name__)

FORMAT = 2  # bumped whenever the export or the manifest changes what they hold
MANIFEST = "manifest.json"
TOKENIZER = "tokenizer.json"
FP32 = "fp32.onnx"
INT8 = "int8.onnx"
BATCH_SIZE = 8  # texts per ONNX run: length-sorted small batches were fastest on 2 cores
GPU_BATCH_SIZE = 128  # texts per run on a GPU (not measured here: no GPU on the development machine)

DocumentDevice = Literal["auto", "cpu", "cuda"]


class DamagedExport(Exception):
    """A cached export that is missing, incomplete or not what its manifest recorded."""


@dataclass(frozen=True)
class Manifest:
    """What ``manifest.json`` records about one cache folder."""

    folder: Path
    key: str
    dim: int
    inputs: tuple[str, ...]
    lowercase: bool
    files: dict[str, dict[str, Any]] = field(default_factory=dict)

    def usable(self, name: str) -> bool:
        return bool(self.files.get(name, {}).get("usable"))

    def sha256(self, name: str) -> str:
        return str(self.files[name]["sha256"])


def cache_folder(cache_dir: Path, model_dir: Path) -> Path:
    """The cache folder of ``model_dir``: keyed by the model's files (names, sizes,
    modification times) and ``FORMAT``, so a changed model gets a new export."""
    return cache_dir / f"embedder-{model_key(model_dir)}"


def model_key(model_dir: Path) -> str:
    files = sorted((str(p.relative_to(model_dir)), p.stat().st_size, p.stat().st_mtime_ns)
                   for p in model_dir.rglob("*") if p.is_file())
    blob = json.dumps([FORMAT, str(model_dir.resolve()), files])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def read_manifest(folder: Path, key: str) -> Manifest:
    """The manifest of ``folder``, which must be for ``key``; DamagedExport if it is
    missing, unreadable or for something else."""
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        if data.get("format") != FORMAT or data.get("key") != key:
            raise DamagedExport(f"{folder / MANIFEST} is for another model or format")
        return Manifest(folder, key, int(data["dim"]), tuple(data["inputs"]), bool(data["lowercase"]),
                        dict(data["files"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DamagedExport(f"{folder / MANIFEST}: {exc}") from exc


def verified_bytes(folder: Path, name: str, sha256: str) -> bytes:
    """The bytes of ``folder/name``, or DamagedExport if their sha256 is not ``sha256``."""
    try:
        data = (folder / name).read_bytes()
    except OSError as exc:
        raise DamagedExport(f"{folder / name}: {exc}") from exc
    if hashlib.sha256(data).hexdigest() != sha256:
        raise DamagedExport(f"{folder / name} is not the file that was checked (sha256 differs)")
    return data


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)  # releases the GIL: runs beside the session being made
    return digest.hexdigest()


def verified_session(folder: Path, name: str, sha256: str,
                     providers: Sequence[str] = ("CPUExecutionProvider",)) -> Any:
    """An ONNX Runtime session on ``folder/name``, or DamagedExport if the file's
    sha256 is not ``sha256``. The file is hashed in a thread while the session
    loads it (the session is dropped if the hash differs), unless its stamp says
    that this very file (same size and modification time) was hashed before."""
    path = folder / name
    stamped = stamp_matches(path, sha256)
    before = "" if stamped else _stat_key(path)  # "" : stamped, or no such file
    hashing = None if stamped else Background(lambda: file_sha256(path), "rag-hash-export")
    try:
        session = new_session(str(path), providers)
        error = None
    except Exception as exc:  # noqa: BLE001 - judged below, with the hash
        session, error = None, exc
    if hashing is not None:
        try:
            digest = hashing.result()
        except OSError as exc:
            raise DamagedExport(f"{path}: {exc}") from exc
        if digest != sha256:
            raise DamagedExport(f"{path} is not the file that was checked (sha256 differs)")
    if error is not None:  # the file that was checked, yet it does not load: made again too
        raise DamagedExport(f"{path} does not load: {error}") from error
    if before:
        write_stamp(path, sha256, before)
    return session


STAMP_SUFFIX = ".verified"


def _stat_key(path: Path) -> str:
    """Size, modification time and inode of ``path`` ("" if it cannot be read)."""
    try:
        st = path.stat()
    except OSError:
        return ""
    return f"{st.st_size} {st.st_mtime_ns} {st.st_ino}"


def stamp_matches(path: Path, sha256: str) -> bool:
    """Whether ``path`` was hashed to ``sha256`` when it had its present size,
    modification time and inode (hashing the 90 MB fp32 file costs about 0.15 s
    of a core at every start; any rewrite of the file changes its stamp)."""
    key = _stat_key(path)
    try:
        return bool(key) and path.with_name(path.name + STAMP_SUFFIX).read_text() == f"{sha256} {key}"
    except OSError:
        return False


def write_stamp(path: Path, sha256: str, hashed: str) -> None:
    """Record that ``path`` hashed to ``sha256`` when its stat key was ``hashed`` (taken
    before hashing: a file changed meanwhile gets no stamp)."""
    try:
        if _stat_key(path) != hashed:
            return
        path.with_name(path.name + STAMP_SUFFIX).write_text(f"{sha256} {hashed}")
    except OSError as exc:  # an unwritable cache: the file is hashed again next time
        log.debug("cannot write the stamp of %s: %s", path, exc)


def new_session(model: bytes | str, providers: Sequence[str] = ("CPUExecutionProvider",)) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = cpu_threads()
    options.log_severity_level = 3
    # idle ONNX threads must not spin: llama.cpp needs the cores right after a question
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model, options, providers=list(providers))


def cuda_provider() -> bool:
    """Whether this ONNX Runtime build can run on a CUDA GPU (``onnxruntime-gpu``)."""
    import onnxruntime as ort

    return "CUDAExecutionProvider" in ort.get_available_providers()


def nvidia_present() -> bool:
    """A cheap sign of an NVIDIA GPU, checked before paying for ``import torch``."""
    return Path("/proc/driver/nvidia/version").exists() or Path("/dev/nvidia0").exists()


def length_batches(texts: Sequence[str], size: int) -> list[list[int]]:
    """Indices of ``texts`` shortest first, in batches of ``size``: texts of about the
    same length share a batch, so little of it is padding."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    return [order[i:i + size] for i in range(0, len(order), size)]


def embed_distinct(texts: Sequence[str], dim: int, batch_size: int,
                   run: Callable[[list[str]], np.ndarray]) -> np.ndarray:
    """``run`` over the distinct texts, in length-sorted batches; one row per text."""
    if not texts:
        return np.zeros((0, dim), dtype=np.float32)
    unique = list(dict.fromkeys(texts))
    table = np.empty((len(unique), dim), dtype=np.float32)
    for batch in length_batches(unique, batch_size):
        table[batch] = run([unique[i] for i in batch])
    if len(unique) == len(texts):
        return table
    row = {t: i for i, t in enumerate(unique)}
    return table[[row[t] for t in texts]]


class OnnxSession:
    """One ONNX export with the tokenizer in front of it: texts in, unit vectors out."""

    def __init__(self, tokenizer: Any, session: Any, inputs: Sequence[str], lowercase: bool) -> None:
        self._tokenizer = tokenizer
        self._session = session
        self._inputs = tuple(inputs)
        self._lowercase = lowercase

    def __call__(self, texts: list[str]) -> np.ndarray:
        if self._lowercase:
            texts = [t.lower() for t in texts]
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids,
                 "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
                 "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64)}
        out = self._session.run(None, {name: feeds[name] for name in self._inputs})[0]
        return np.asarray(out, dtype=np.float32)


def load_tokenizer(manifest: Manifest) -> Any:
    from tokenizers import Tokenizer

    data = verified_bytes(manifest.folder, TOKENIZER, manifest.sha256(TOKENIZER))
    return Tokenizer.from_str(data.decode("utf-8"))


class OnnxEmbedder:
    """The ``Embedder`` of the default model: ``embed`` gives the torch model's
    vectors (fp32 export; questions), ``embed_documents`` the vectors ingestion
    stores (the int8 export on a CPU, when it passed its check and ``quantized``
    is on; the fp32 export otherwise, or the GPU). Build it with
    ``rag.index.onnx_export.load_onnx_embedder``."""

    def __init__(self, name: str, manifest: Manifest, model_dir: Path, cache_dir: Path, quantized: bool = True,
                 device: DocumentDevice = "auto", batch_size: int = BATCH_SIZE, keep: object = None,
                 remake: Callable[[Path, Path, str], tuple[Manifest, object]] | None = None) -> None:
        """``keep``: whatever must live as long as this embedder (a temporary export
        folder); ``remake``: makes the export again when a file of it is found damaged
        (``rag.index.onnx_export.make_export``; without it, the damage is raised). Raises DamagedExport if the tokenizer is not the one checked. The
        fp32 session loads in a thread meanwhile (ONNX Runtime mostly releases the
        GIL: the caller opens the store and the LLM in the time); a damaged fp32
        file is found, and the export made again, at the first ``embed``."""
        self.name = name
        self.dim = manifest.dim
        self.batch_size = batch_size
        self.manifest = manifest
        self.model_dir = model_dir
        self.cache_dir = cache_dir
        self.quantized = quantized
        self.device = device
        self._keep = keep
        self._remake_export = remake
        self._lock = threading.Lock()
        self._tokenizer = load_tokenizer(manifest)
        self._loading = Background(lambda: self._session(FP32), "rag-load-embedder")
        self._query: OnnxSession | None = None
        self._documents: Callable[[list[str]], np.ndarray] | None = None
        self.documents_backend = ""  # what embeds documents, once the first batch has come

    def _session(self, name: str, providers: Sequence[str] = ("CPUExecutionProvider",)) -> OnnxSession:
        session = verified_session(self.manifest.folder, name, self.manifest.sha256(name), providers)
        return OnnxSession(self._tokenizer, session, self.manifest.inputs, self.manifest.lowercase)

    def _remake(self, exc: DamagedExport) -> None:
        if self._remake_export is None:
            raise exc
        log.warning("making the embedder's ONNX export again: %s", exc)
        self.manifest, self._keep = self._remake_export(self.model_dir, self.cache_dir, self.manifest.key)
        self._tokenizer = load_tokenizer(self.manifest)

    def _query_session(self) -> OnnxSession:
        if self._query is None:
            with self._lock:
                if self._query is None:
                    try:
                        self._query = self._loading.result()
                    except DamagedExport as exc:
                        self._remake(exc)
                        self._query = self._session(FP32)
        return self._query

    def embed(self, texts: list[str]) -> np.ndarray:
        return embed_distinct(texts, self.dim, self.batch_size, self._query_session())

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        if self._documents is None:
            query = self._query_session()
            with self._lock:
                if self._documents is None:
                    try:
                        self._documents, self.documents_backend = self._document_encoder(query)
                    except DamagedExport as exc:  # the int8 file, loaded only now
                        self._remake(exc)
                        self._documents, self.documents_backend = self._document_encoder(query)
                    log.info("embedding documents with %s", self.documents_backend)
        batch = GPU_BATCH_SIZE if "CUDA" in self.documents_backend else self.batch_size
        return embed_distinct(texts, self.dim, batch, self._documents)

    def _document_encoder(self, query: OnnxSession) -> tuple[Callable[[list[str]], np.ndarray], str]:
        """A CUDA GPU when there is one (ONNX Runtime's CUDA provider, else torch on
        CUDA), else the int8 export (if it passed its check and is wanted), else fp32."""
        if self.device != "cpu":
            if cuda_provider():
                return self._session(FP32, ("CUDAExecutionProvider", "CPUExecutionProvider")), \
                    "ONNX Runtime fp32 on CUDA"
            if self.device == "cuda" or nvidia_present():
                gpu = torch_cuda_encoder(self.model_dir, GPU_BATCH_SIZE)
                if gpu is not None:
                    return gpu, "torch on CUDA"
            if self.device == "cuda":
                log.warning("RAG_EMBED_DEVICE=cuda, but no CUDA GPU is usable: embedding on the CPU")
        if self.quantized and self.manifest.usable(INT8):
            return self._session(INT8), "ONNX Runtime int8 on the CPU"
        return query, "ONNX Runtime fp32 on the CPU"


def torch_cuda_encoder(model_dir: Path, batch_size: int) -> Callable[[list[str]], np.ndarray] | None:
    """sentence-transformers on the GPU, or None when torch sees no CUDA device."""
    try:
        import torch

        if not torch.cuda.is_available():
            return None
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(model_dir), device="cuda")
    except Exception as exc:  # noqa: BLE001 - any failure only costs speed
        log.warning("cannot embed on the GPU with torch (%s: %s)", type(exc).__name__, exc)
        return None

    def run(texts: list[str]) -> np.ndarray:
        vectors = model.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                               convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)

    return run
